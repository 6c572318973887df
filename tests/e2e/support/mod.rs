//! Test infrastructure for the end-to-end tests: a private moto server per test, a
//! fault-injecting proxy, SDK helpers to seed and inspect the emulated AWS, a runner for the
//! built binary, and shared fixtures.
//!
//! Not every test uses every helper.
#![allow(dead_code)]

pub mod aws;
pub mod cli;
pub mod faults;
pub mod fixtures;
pub mod junit;
pub mod moto;
pub mod proxy;
pub mod synth;
pub mod tagging;
pub mod templates;
