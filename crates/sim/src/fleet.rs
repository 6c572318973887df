//! The seeded fleet: the kinds of repositories a generated organization holds, what a
//! `plan` with the fixture config ([`fleet_config`]) decides for each, the
//! policies they carry, and the check of a fleet after an apply.
//!
//! Every policy here is one that moto accepts too: moto knows only the pre-2025 lifecycle
//! grammar (action `expire`; `imageCountMoreThan`, or `sinceImagePushed` with
//! `countUnit: days`; `tagStatus` tagged/untagged/any; `tagPrefixList`/`tagPatternList`).

use std::collections::BTreeMap;
use std::time::Duration;

/// The management account: the caller of static credentials (as in moto).
pub const MANAGEMENT_ACCOUNT_ID: &str = "123456789012";

/// Role assumed in every member account.
pub const SPOKE_ROLE_NAME: &str = "EcrFleetSpoke";

pub const SESSION_NAME: &str = "ecr-fleet";

/// Tag key that opts a repository out.
pub const EXEMPT_TAG: &str = "ecr-fleet:exempt";

/// Template name (file stem under `policies/`) of [`CI_BUILDS_POLICY`].
pub const CI_BUILDS_TEMPLATE: &str = "ci-builds";

/// Repository-name glob of the config's only `[[match]]`.
pub const MATCHED_NAMES_GLOB: &str = "team-*/service-*";

/// Regions of the fleet config and of the benchmark.
pub const FLEET_REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];

/// The target template (`policies/ci-builds.json`): expire untagged images after 7 days,
/// keep the 30 newest images tagged `ci-*` or `pr-*`.
pub const CI_BUILDS_POLICY: &str = r#"{
  "rules": [
    {
      "rulePriority": 1,
      "description": "Expire untagged images after 7 days",
      "selection": {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7
      },
      "action": { "type": "expire" }
    },
    {
      "rulePriority": 2,
      "description": "Keep the 30 newest CI and pull-request builds",
      "selection": {
        "tagStatus": "tagged",
        "tagPrefixList": ["ci-", "pr-"],
        "countType": "imageCountMoreThan",
        "countNumber": 30
      },
      "action": { "type": "expire" }
    }
  ]
}
"#;

/// A policy that differs from [`CI_BUILDS_POLICY`]: what a repository carries before the
/// fleet is brought in line (14 days for untagged images, no cap on CI builds).
pub const OUTDATED_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"Expire untagged images after 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#;

/// [`CI_BUILDS_POLICY`] without whitespace, key order kept: semantically the same policy,
/// as another tool (or the console) may have written it.
pub fn ci_builds_policy_compact() -> String {
    let value: serde_json::Value =
        serde_json::from_str(CI_BUILDS_POLICY).expect("CI_BUILDS_POLICY is JSON");
    serde_json::to_string(&value).expect("serialize policy")
}

/// The fleet config: every account of the organization, `regions`, the exception tag, and
/// one `[[match]]` sending `team-*/service-*` to the `ci-builds` template.
pub fn fleet_config(regions: &[&str]) -> String {
    let regions = regions
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"templates_dir = "policies"
regions = [{regions}]

[accounts]
source = "organization"
exclude = []
role_name = "{SPOKE_ROLE_NAME}"
session_name = "{SESSION_NAME}"

[exception]
tag = "{EXEMPT_TAG}"

[[match]]
template = "{CI_BUILDS_TEMPLATE}"
names = ["{MATCHED_NAMES_GLOB}"]
"#
    )
}

/// Id of the `k`-th generated member account.
pub fn member_id(k: usize) -> String {
    format!("{:012}", 200_000_000_000u64 + k as u64)
}

/// A repository, as `(account id, region, repository name)`.
pub type RepoKey = (String, String, String);

/// What a seeded repository looks like, and so what `plan` must decide for it with the
/// fixture config ([`fleet_config`]).
///
/// The mix, by index `i` of the repository within its account and region (`i % 10`):
///
/// | `i % 10` | kind        | name                   | policy                          | outcome     |
/// |----------|-------------|------------------------|---------------------------------|-------------|
/// | 0, 1, 2  | `Missing`   | `team-N/service-i`     | none                            | `create`    |
/// | 3, 4     | `Outdated`  | `team-N/service-i`     | [`OUTDATED_POLICY`]             | `update`    |
/// | 5, 6, 7  | `Current`   | `team-N/service-i`     | the template (\*)               | `unchanged` |
/// | 8        | `Exempt`    | `team-N/service-i`     | outdated or none (\*\*)         | `excluded`  |
/// | 9        | `Unmatched` | `scratch/experiment-i` | outdated or none (\*\*)         | `unmatched` |
///
/// `N` is `i % 5`. Every repository carries a `team` tag; `Exempt` ones also carry
/// `ecr-fleet:exempt=true`. (\*) The template's exact text when `(i / 10)` is even, the
/// same JSON without whitespace when odd, so semantic comparison is exercised.
/// (\*\*) [`OUTDATED_POLICY`] when `(i / 10)` is even, no policy when odd.
/// So 50 repositories per region hold 15 create, 10 update, 15 unchanged, 5 excluded and
/// 5 unmatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RepoKind {
    Missing,
    Outdated,
    Current,
    Exempt,
    Unmatched,
}

impl RepoKind {
    pub fn for_index(i: usize) -> RepoKind {
        match i % 10 {
            0..=2 => RepoKind::Missing,
            3 | 4 => RepoKind::Outdated,
            5..=7 => RepoKind::Current,
            8 => RepoKind::Exempt,
            _ => RepoKind::Unmatched,
        }
    }

    /// The outcome `plan` reports for such a repository.
    pub fn expected_outcome(self) -> &'static str {
        match self {
            RepoKind::Missing => "create",
            RepoKind::Outdated => "update",
            RepoKind::Current => "unchanged",
            RepoKind::Exempt => "excluded",
            RepoKind::Unmatched => "unmatched",
        }
    }
}

/// Every outcome name of the report, in report order.
pub const OUTCOMES: [&str; 7] = [
    "create",
    "update",
    "unchanged",
    "excluded",
    "unmatched",
    "blocked",
    "error",
];

/// One seeded repository.
#[derive(Clone, Debug)]
pub struct SeededRepo {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub kind: RepoKind,
    /// The policy text written, if any.
    pub policy: Option<String>,
    /// False when the account was closed after seeding.
    pub active: bool,
}

/// What [`seed_fleet`] created.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// Active member account ids, in creation order.
    pub members: Vec<String>,
    /// Closed (SUSPENDED) member account ids.
    pub suspended: Vec<String>,
    pub regions: Vec<String>,
    /// Sorted by account, region, name (the report's order).
    pub repos: Vec<SeededRepo>,
    /// AWS requests the seeding made.
    pub api_calls: usize,
    pub elapsed: Duration,
}

impl Fleet {
    pub fn active_repos(&self) -> impl Iterator<Item = &SeededRepo> {
        self.repos.iter().filter(|r| r.active)
    }

    /// Repositories per outcome (every outcome present, zeros included) that a `plan` of
    /// the active accounts must report.
    pub fn expected_outcomes(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> =
            OUTCOMES.iter().map(|o| (o.to_string(), 0)).collect();
        for repo in self.active_repos() {
            *counts
                .entry(repo.kind.expected_outcome().into())
                .or_default() += 1;
        }
        counts
    }
}

/// The `i`-th repository of an account and region, of the given kind (named, tagged and
/// holding a policy as the table of [`RepoKind`] says for that kind and `i`).
pub fn repo_of_kind(
    account_id: &str,
    region: &str,
    i: usize,
    kind: RepoKind,
) -> (SeededRepo, Vec<(String, String)>) {
    let even_decade = (i / 10).is_multiple_of(2);
    let name = match kind {
        RepoKind::Unmatched => format!("scratch/experiment-{i}"),
        _ => format!("team-{}/service-{i}", i % 5),
    };
    let policy = match kind {
        RepoKind::Missing => None,
        RepoKind::Outdated => Some(OUTDATED_POLICY.to_string()),
        RepoKind::Current if even_decade => Some(CI_BUILDS_POLICY.to_string()),
        RepoKind::Current => Some(ci_builds_policy_compact()),
        RepoKind::Exempt | RepoKind::Unmatched if even_decade => Some(OUTDATED_POLICY.to_string()),
        RepoKind::Exempt | RepoKind::Unmatched => None,
    };
    let mut tags = vec![("team".to_string(), format!("team-{}", i % 5))];
    if kind == RepoKind::Exempt {
        tags.push((EXEMPT_TAG.to_string(), "true".to_string()));
    }
    let repo = SeededRepo {
        account_id: account_id.to_string(),
        region: region.to_string(),
        name,
        kind,
        policy,
        active: true,
    };
    (repo, tags)
}

/// What a fleet holds after an apply, checked against what was seeded and against the
/// writes a server saw.
#[derive(Clone, Debug, Default)]
pub struct Verification {
    /// Managed repositories (`Missing`, `Outdated`, `Current`) whose policy is not
    /// semantically the template (or that could not be read).
    pub wrong: Vec<String>,
    /// `Exempt` or `Unmatched` repositories that were written or whose policy changed.
    pub touched: Vec<String>,
    /// Successful writes, all repositories together.
    pub writes: u64,
    /// Writes beyond one per repository that needed one (`Missing`, `Outdated`).
    pub redundant_writes: u64,
}

impl Verification {
    /// Every managed policy right, nothing else touched.
    pub fn correct(&self) -> bool {
        self.wrong.is_empty() && self.touched.is_empty()
    }
}

impl Fleet {
    /// Checks the policies now held (`current`, every active repository) and the writes
    /// seen per repository against the seeded fleet and the fixture template.
    pub fn verify(
        &self,
        current: &BTreeMap<RepoKey, Option<String>>,
        writes: &BTreeMap<RepoKey, u32>,
    ) -> Verification {
        let template: serde_json::Value =
            serde_json::from_str(CI_BUILDS_POLICY).expect("template is JSON");
        let mut check = Verification {
            writes: writes.values().map(|n| u64::from(*n)).sum(),
            ..Verification::default()
        };
        for repo in self.active_repos() {
            let key = (
                repo.account_id.clone(),
                repo.region.clone(),
                repo.name.clone(),
            );
            let label = format!("{}/{}/{}", repo.account_id, repo.region, repo.name);
            let written = u64::from(writes.get(&key).copied().unwrap_or(0));
            let now = current.get(&key);
            match repo.kind {
                RepoKind::Missing | RepoKind::Outdated | RepoKind::Current => {
                    let right = now
                        .and_then(|text| text.as_deref())
                        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                        .is_some_and(|policy| policy == template);
                    if !right {
                        check.wrong.push(label);
                    }
                    let needed = u64::from(repo.kind != RepoKind::Current);
                    check.redundant_writes += written.saturating_sub(needed);
                }
                RepoKind::Exempt | RepoKind::Unmatched => {
                    if written > 0 || now != Some(&repo.policy) {
                        check.touched.push(label);
                    }
                    check.redundant_writes += written;
                }
            }
        }
        check
    }
}
