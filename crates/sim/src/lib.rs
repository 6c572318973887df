//! A simulated AWS Organization for ecr-fleet, served on loopback to the real AWS SDK: no
//! account, no credentials, no network beyond 127.0.0.1.
//!
//! - [`fleet`]: the seeded fleet's repository kinds, names, tags and policies, the config
//!   that fits them, and the check of a fleet after an apply;
//! - [`server`]: the synthetic server ([`SynthFleet`]) for fleets of any size, with
//!   [`generate`] (the seeded generator), `org` (STS, Organizations), `ecr` (ECR,
//!   tagging), [`images`] (images and Lambda functions) and [`templates`] (repository
//!   creation templates) answering the calls;
//! - [`faults`]: latency, random throttling and token-bucket quotas;
//! - [`demo`]: the organization and config of `ecr-fleet demo`;
//! - [`http`] and [`wire`]: the HTTP/1.1 layer (hyper) and the AWS protocols' shapes,
//!   shared with the end-to-end tests' fault proxy in front of moto.

pub mod demo;
mod ecr;
pub mod faults;
pub mod fleet;
pub mod generate;
pub mod http;
pub mod images;
mod org;
pub mod server;
pub mod tagging;
pub mod templates;
pub mod wire;

pub use demo::{DemoConfig, DemoSpec};
pub use faults::{LoadRules, Quotas, RandomThrottle};
pub use server::{SynthFleet, SynthSpec};
