//! End-to-end tests: the built `ecr-fleet` binary and the real AWS SDK against moto server
//! (see `support`). Run them with `bash scripts/test.sh --test e2e`, which provides moto.

mod support;

mod bench;
mod fleet;
mod harness;
mod inuse;
mod offline;
mod safety;
mod schema;
mod support_checks;
