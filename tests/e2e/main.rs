//! End-to-end tests: the built `ecr-fleet` binary and the real AWS SDK against moto server
//! (see `support`). Run them with `bash scripts/test.sh --test e2e`, which provides moto.

mod support;

mod bench;
mod cli_docs;
mod creation_templates;
mod doctor;
mod first_failures;
mod fleet;
mod harness;
mod inuse;
mod junit;
mod offline;
mod safe_default;
mod safety;
mod scale;
mod schema;
mod shard;
mod support_checks;
