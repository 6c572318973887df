//! Shared fixture text for end-to-end tests: the fleet config, its template and an outdated
//! policy (from the simulator crate, whose generated fleet they describe), workspaces
//! written from them, and the templates of the safety and in-use tests.

use std::path::{Path, PathBuf};

pub use ecr_fleet_sim::fleet::{
    fleet_config, CI_BUILDS_POLICY, CI_BUILDS_TEMPLATE, EXEMPT_TAG, FLEET_REGIONS,
    MANAGEMENT_ACCOUNT_ID, MATCHED_NAMES_GLOB, OUTDATED_POLICY, SPOKE_ROLE_NAME,
};

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
