//! Repository creation templates in the report: one row per template of each visited
//! account-region, and the account-region findings of `audit`.

use serde::{Deserialize, Serialize};

use super::Finding;

/// What a run does (or did) with one creation template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TemplateOutcome {
    /// The config names this prefix and the account-region has no template for it.
    Create,
    /// The lifecycle policy differs semantically, or `appliedFor` differs as a set.
    Update,
    Unchanged,
    /// A template whose prefix the config does not name: listed, never touched.
    Unmanaged,
    Error,
}

impl TemplateOutcome {
    pub const ALL: [TemplateOutcome; 5] = [
        TemplateOutcome::Create,
        TemplateOutcome::Update,
        TemplateOutcome::Unchanged,
        TemplateOutcome::Unmanaged,
        TemplateOutcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateOutcome::Create => "create",
            TemplateOutcome::Update => "update",
            TemplateOutcome::Unchanged => "unchanged",
            TemplateOutcome::Unmanaged => "unmanaged",
            TemplateOutcome::Error => "error",
        }
    }

    /// A change `apply` would write.
    pub fn is_write(self) -> bool {
        matches!(self, TemplateOutcome::Create | TemplateOutcome::Update)
    }
}

/// The settings of an existing creation template that ecr-fleet reads: the two it manages,
/// and the tag mutability it sends back unchanged on update (the API reference says an
/// update without `imageTagMutability` sets MUTABLE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateState {
    /// `None`: the template has no lifecycle policy.
    pub lifecycle_policy: Option<String>,
    /// Sorted, without duplicates.
    pub applied_for: Vec<String>,
    pub image_tag_mutability: Option<String>,
    /// `(filterType, filter)` pairs of `imageTagMutabilityExclusionFilters`.
    pub mutability_exclusion_filters: Vec<(String, String)>,
}

impl TemplateState {
    /// Whether the lifecycle policy is semantically `policy` and `appliedFor` is the set
    /// `applied_for` (sorted).
    pub fn holds(&self, policy: Option<&str>, applied_for: &[String]) -> bool {
        let same_policy = match (self.lifecycle_policy.as_deref(), policy) {
            (None, None) => true,
            (Some(a), Some(b)) => ecr_lifecycle::semantically_equal(a, b),
            _ => false,
        };
        same_policy && self.applied_for == applied_for
    }
}

/// One creation template's row of the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(test, schemars(transform = super::written_as_null(&["template", "diff", "error"])))]
pub struct CreationTemplateResult {
    /// The 12-digit AWS account id.
    pub account_id: String,
    pub region: String,
    /// The template's prefix: a repository namespace, or `ROOT` for any repository no other
    /// template covers.
    pub prefix: String,
    /// The policy template the config gives this prefix; `null` for `unmanaged`.
    pub template: Option<String>,
    pub outcome: TemplateOutcome,
    /// True only for a `create`/`update` this run wrote (`apply`, `restore`).
    pub applied: bool,
    /// Unified diff of the lifecycle policy, then `appliedFor` lines when that changes; null
    /// when nothing changes.
    pub diff: Option<String>,
    /// Why the template could not be read or written; null when it could.
    pub error: Option<String>,
    /// The template as read before this run (`None`: absent), for the journal.
    #[serde(skip)]
    pub current: Option<TemplateState>,
}

impl CreationTemplateResult {
    pub fn new(account_id: &str, region: &str, prefix: &str, template: Option<String>) -> Self {
        CreationTemplateResult {
            account_id: account_id.to_string(),
            region: region.to_string(),
            prefix: prefix.to_string(),
            template,
            outcome: TemplateOutcome::Error,
            applied: false,
            diff: None,
            error: None,
            current: None,
        }
    }

    pub fn key(&self) -> (&str, &str, &str) {
        (&self.account_id, &self.region, &self.prefix)
    }
}

/// An account-region finding of `audit` (`no_creation_template`), listed in the report's
/// `region_findings` and counted in `summary.findings` beside the repository findings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegionFinding {
    pub account_id: String,
    pub region: String,
    pub finding: Finding,
}
