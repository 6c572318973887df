//! Offline validator and simulator for Amazon ECR lifecycle policies.
//!
//! The crate knows nothing about AWS APIs: it reads policy text and image lists as JSON and
//! answers four questions:
//!
//! * is this policy valid? ([`parse_policy`], rules 1.x and 2.x of `RULES.md`);
//! * do two policy texts mean the same? ([`semantically_equal`], [`canonical_pretty`]);
//! * what would a lifecycle run do to these images? ([`evaluate`], [`preview_json`], [`impact`]);
//! * does the policy bound growth at all? ([`coverage`]).
//!
//! Rule numbers in messages and docs ("rule 2.7") refer to `RULES.md` in this crate, which
//! also summarises evaluation. Every guess made where AWS documentation is silent is a named
//! item in [`assumptions`].

pub mod assumptions;
mod canonical;
mod coverage;
mod evaluate;
mod matching;
mod model;
mod preview;
mod validate;

pub use canonical::{canonical_pretty, canonicalize, semantically_equal};
pub use coverage::{coverage, Coverage};
pub use evaluate::{evaluate, pull_reference, Image, ImageAction, ImageStatus};
pub use matching::tag_selected;
pub use model::{
    Action, ActionType, CountType, CountUnit, Policy, Rule, Selection, StorageClass, TagStatus,
};
pub use preview::{impact, parse_images, preview_json, ImagesError, ImpactTotals};
pub use validate::{parse_policy, PolicyError, Violation};
