//! Writes: the write-ahead journal, the writes of `apply`, and `restore`.

pub mod journal;
pub mod put;
pub mod restore;

/// The error of a row whose write was not started because the run was interrupted.
const INTERRUPTED: &str = "not written: interrupted";
