//! Decisions, pure (no AWS, no I/O): the planner, `[safety]`, unused images, the in-use index
//! and policy diffs.

pub mod diff;
pub mod inuse;
pub mod plan;
pub mod safety;
pub mod unused;
