//! ecr-fleet: put the right Amazon ECR lifecycle policy on every repository of an AWS
//! Organization, and prove it.
//!
//! The pipeline is discovery (accounts and credentials) → inventory (repositories, tags,
//! current policies) → plan (one outcome per repository, pure) → apply (writes, with a backup
//! first) → report (one result model, several views). The policy grammar and evaluator live in
//! the `ecr-lifecycle` crate, which has no AWS types.

pub mod apply;
pub mod aws;
pub mod builtin;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod help;
pub mod inuse;
pub mod inventory;
pub mod junit;
pub mod merge;
pub mod pipeline;
pub mod plan;
pub mod prepass;
pub mod progress;
pub mod regions;
pub mod report;
pub mod run;
pub mod shard;
pub mod templates;
pub mod unused;

/// The version `--version` prints: the package version and, when built from git, the commit.
pub const VERSION: &str = env!("ECR_FLEET_VERSION");
