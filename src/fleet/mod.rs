//! A run over the organization: discovery of accounts and their credentials, regions,
//! shards, the first pass over every account (enabled regions, the in-use index), the
//! inventory of each account-region, and the pipeline that streams them.

pub mod discovery;
pub mod doctor;
pub mod inuse;
pub mod inventory;
pub mod pipeline;
pub mod prepass;
pub mod probe;
pub mod regions;
