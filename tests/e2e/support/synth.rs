//! The synthetic AWS for fleets larger than moto can serve: the simulator crate's server
//! (see `ecr_fleet_sim::server` for the calls it answers).

pub use ecr_fleet_sim::fleet::member_id;
pub use ecr_fleet_sim::server::{SynthFleet, SynthSpec};
