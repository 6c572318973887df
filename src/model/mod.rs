//! The result model: one row per repository, its outcome and findings, and the other
//! records a run produces (skipped targets, notices, disabled regions). Every layer above
//! builds or reads these; every view renders them. Plain data: no AWS, no I/O.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod check;
mod shard;
mod unused;

pub use check::{Check, CheckStatus};
pub use shard::{Shard, ShardError};
pub use unused::{Unused, UnusedBucket};

/// What the run decided for one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Create,
    Update,
    Unchanged,
    Excluded,
    Unmatched,
    Blocked,
    Error,
    /// The repository was deleted during the run.
    Gone,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Create,
        Outcome::Update,
        Outcome::Unchanged,
        Outcome::Excluded,
        Outcome::Unmatched,
        Outcome::Blocked,
        Outcome::Error,
        Outcome::Gone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Create => "create",
            Outcome::Update => "update",
            Outcome::Unchanged => "unchanged",
            Outcome::Excluded => "excluded",
            Outcome::Unmatched => "unmatched",
            Outcome::Blocked => "blocked",
            Outcome::Error => "error",
            Outcome::Gone => "gone",
        }
    }

    /// A change `apply` would write.
    pub fn is_write(self) -> bool {
        matches!(self, Outcome::Create | Outcome::Update)
    }
}

/// An image the `[safety]` settings protect that a template would expire or archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ProtectedImage {
    pub image_digest: String,
    pub image_tags: Vec<String>,
    /// `expire` or `transition`.
    pub action: String,
    /// rulePriority of the template rule that selects the image.
    pub rule_priority: i64,
    /// Why it is protected: in use, `tag <glob>` or `pulled within N days`.
    pub reason: String,
    /// What runs it (`[safety] in_use`), in any visited account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
}

/// Images and bytes a policy would act on in one repository, now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Impact {
    pub images: u64,
    pub bytes: u64,
    pub expiring_images: u64,
    pub expiring_bytes: u64,
    pub transitioning_images: u64,
    pub transitioning_bytes: u64,
    /// Estimated monthly saving in USD from the expiring bytes at the configured price.
    pub monthly_saving_usd: f64,
}

impl Impact {
    /// Add another repository's impact (fleet totals).
    pub fn add(&mut self, other: &Impact) {
        self.images += other.images;
        self.bytes += other.bytes;
        self.expiring_images += other.expiring_images;
        self.expiring_bytes += other.expiring_bytes;
        self.transitioning_images += other.transitioning_images;
        self.transitioning_bytes += other.transitioning_bytes;
        self.monthly_saving_usd += other.monthly_saving_usd;
    }
}

/// Content findings of `audit`, in a stable order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    NoPolicy,
    NoUntaggedExpiry,
    NoTaggedCap,
    DriftFromTemplate,
    Exempt,
    /// The stored policy does not pass our validator (it may use grammar we do not know).
    UnrecognisedPolicy,
    /// `audit --images`: images never pulled and pushed more than `unused_after_days` ago.
    UnusedNeverPulled,
    /// `audit --images`: images not pulled for more than `unused_after_days`.
    UnusedNotPulled,
    /// `audit --images`: untagged images pushed more than `unused_after_days` ago.
    UnusedUntagged,
}

/// One repository's row of the report: the single result model every view renders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, schemars(transform = written_as_null(&["template", "diff", "error"])))]
pub struct RepoResult {
    /// The 12-digit AWS account id.
    pub account_id: String,
    pub region: String,
    /// Repository name, e.g. team/api.
    pub repository: String,
    /// The template the configuration assigns (restore: the one named in the backup); null
    /// when none matches. Excluded repositories keep the template they would otherwise get.
    pub template: Option<String>,
    pub outcome: Outcome,
    /// True only when this run wrote the repository's policy.
    pub applied: bool,
    /// Unified diff from the current policy to the template (create, update, blocked); null
    /// otherwise. Rows with the same change share one text.
    pub diff: Option<Arc<str>>,
    /// Why the repository could not be planned or written; null when it could.
    pub error: Option<String>,
    /// Content findings (`audit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// What the target template would do to the images there (with `--images`). Boxed, as
    /// the other rarely set fields: a row of a 100,000-repository run stays small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<Box<Impact>>,
    /// What the repository's current policy does to them (audit with `--images`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_impact: Option<Box<Impact>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_images: Vec<ProtectedImage>,
    /// Unused images, not in use (`audit --images`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unused: Option<Box<Unused>>,
    /// The policy text found before this run (kept for backups, not rendered).
    #[serde(skip)]
    pub current_policy: Option<String>,
}

impl RepoResult {
    /// A row with no outcome decided yet (`error` until something better is known).
    pub fn new(account_id: &str, region: &str, repository: &str, template: Option<String>) -> Self {
        RepoResult {
            account_id: account_id.to_string(),
            region: region.to_string(),
            repository: repository.to_string(),
            template,
            outcome: Outcome::Error,
            applied: false,
            diff: None,
            error: None,
            findings: Vec::new(),
            impact: None,
            current_impact: None,
            protected_images: Vec::new(),
            unused: None,
            current_policy: None,
        }
    }

    pub fn key(&self) -> (&str, &str, &str) {
        (&self.account_id, &self.region, &self.repository)
    }
}

/// Something that runs an image: where it is and what it is called.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    pub source: InUseSource,
    pub account_id: String,
    pub region: String,
    /// `cluster/service`, `cluster/task/<id>`, the function name, or what Inspector reports.
    pub name: String,
}

impl Consumer {
    pub fn new(source: InUseSource, account: &str, region: &str, name: String) -> Consumer {
        Consumer {
            source,
            account_id: account.to_string(),
            region: region.to_string(),
            name,
        }
    }
}

impl fmt::Display for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.source.as_str(),
            self.account_id,
            self.region,
            self.name
        )
    }
}

/// An account or account-region that could not be visited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, schemars(transform = written_as_null(&["region"])))]
pub struct Skipped {
    pub account_id: String,
    /// null when the whole account was unreachable (e.g. the role could not be assumed).
    pub region: Option<String>,
    pub error: String,
}

/// Something the run worked around in one account-region, that a reader should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Notice {
    pub account_id: String,
    pub region: String,
    pub message: String,
}

/// A region named explicitly that an account has not enabled.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DisabledRegion {
    pub account_id: String,
    pub region: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum InUseSource {
    /// Task definitions of active ECS services and of running tasks.
    Ecs,
    /// Lambda functions of package type Image.
    Lambda,
    /// Amazon Inspector's coverage of ECR images (`inUseCount`, `lastInUseAt`).
    Inspector,
}

impl InUseSource {
    pub const ALL: [InUseSource; 3] = [
        InUseSource::Ecs,
        InUseSource::Lambda,
        InUseSource::Inspector,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InUseSource::Ecs => "ecs",
            InUseSource::Lambda => "lambda",
            InUseSource::Inspector => "inspector",
        }
    }

    pub fn parse(name: &str) -> Result<InUseSource, String> {
        InUseSource::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown in-use source {name:?}: expected \"ecs\", \"lambda\" or \"inspector\""
                )
            })
    }
}

/// A schema transform: `fields` are `Option`s that every report writes, as null when empty,
/// so the schema requires them (a reader of the first report shape relies on them).
#[cfg(test)]
fn written_as_null(fields: &'static [&'static str]) -> impl Fn(&mut schemars::Schema) {
    move |schema| {
        if let Some(required) = schema.get_mut("required").and_then(|r| r.as_array_mut()) {
            required.extend(fields.iter().map(|f| serde_json::Value::from(*f)));
        }
    }
}
