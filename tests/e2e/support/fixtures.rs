//! Shared fixture text for end-to-end tests: the fleet config, its template, an outdated
//! policy, and the names the seeding helpers use.
//!
//! Every policy here is one that moto accepts: moto knows only the pre-2025 lifecycle
//! grammar (action `expire`; `imageCountMoreThan`, or `sinceImagePushed` with
//! `countUnit: days`; `tagStatus` tagged/untagged/any; `tagPrefixList`/`tagPatternList`).

use std::path::{Path, PathBuf};

/// The account moto treats as the caller of static credentials: the management account.
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

/// Writes `ecr-fleet.toml` ([`fleet_config`]) and `policies/ci-builds.json` into `dir`;
/// returns the config's path.
pub fn write_fleet_workspace(dir: &Path, regions: &[&str]) -> PathBuf {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).expect("create policies dir");
    std::fs::write(
        policies.join(format!("{CI_BUILDS_TEMPLATE}.json")),
        CI_BUILDS_POLICY,
    )
    .expect("write template");
    let config = dir.join("ecr-fleet.toml");
    std::fs::write(&config, fleet_config(regions)).expect("write config");
    config
}

/// A template that keeps only the newest `ci-*` image: the one the safety and in-use tests
/// put on repositories whose older CI images are still running somewhere.
pub const KEEP_ONE_CI: &str = r#"{"rules":[{"rulePriority":1,"description":"Keep only the newest image tagged ci-*; older CI builds expire","selection":{"tagStatus":"tagged","tagPrefixList":["ci-"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;

/// A workspace with `policies/keep-one-ci.json` ([`KEEP_ONE_CI`]) and an `ecr-fleet.toml` of
/// `head` (top-level keys and tables) then one `[[match]]` of that template on the names
/// glob `names`.
pub fn keep_one_ci_workspace(head: &str, names: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/keep-one-ci.json"), KEEP_ONE_CI).unwrap();
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        format!("{head}\n[[match]]\ntemplate = \"keep-one-ci\"\nnames = [\"{names}\"]\n"),
    )
    .unwrap();
    dir
}
