//! ecr-fleet: put the right Amazon ECR lifecycle policy on every repository of an AWS
//! Organization, and prove it.
//!
//! The modules are layers, in the order data flows; each imports only from the layers below
//! it (docs/ARCHITECTURE.md; `layering` checks it):
//!
//! - `cli`: the command line (clap) and its help text;
//! - `commands`: one file per command, resolving flags and config and printing the report;
//! - `report`: the report model, its tally and its views (table, Markdown, JSON, JUnit),
//!   and merging the reports of a sharded run;
//! - `fleet`: a run over the organization: discovery, regions, shards, the first pass (in use,
//!   enabled regions), inventory, and the pipeline that streams account-regions;
//! - `write`: the write-ahead journal, the writes, restore;
//! - `decide`: the planner, `[safety]`, unused images, the in-use index, diffs (pure);
//! - `config`: the TOML config, templates, matching;
//! - `model`: rows, outcomes and the other records of a run (plain data);
//! - `aws`: SDK clients, the call gate (retries, pacing), error classification.
//!
//! `exit` (exit statuses) and `progress` (the progress display) import nothing of the crate.
//! The policy grammar and evaluator live in the `ecr-lifecycle` crate, which has no AWS types.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod decide;
pub mod exit;
pub mod fleet;
pub mod model;
pub mod progress;
pub mod report;
pub mod write;

#[cfg(test)]
mod layering;

/// The version `--version` prints: the package version and, when built from git, the commit.
pub const VERSION: &str = env!("ECR_FLEET_VERSION");
