//! Load faults shared by the fault proxy and the synthetic server: the simulator crate's.

pub use ecr_fleet_sim::faults::{LoadRules, LoadState, Quotas};
