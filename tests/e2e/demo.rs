//! `ecr-fleet demo`: the README's first command, on a machine with no AWS setup at all. The
//! real pipeline runs against the simulated organization and shows every outcome.

use crate::support::cli::Cli;

/// Nothing listens here: the demo must not use the caller's endpoint, credentials or profile.
const CLOSED: &str = "http://127.0.0.1:9";

/// A run with no AWS credentials, region, profile or endpoint of the user's.
fn bare(home: &std::path::Path) -> Cli {
    Cli::new(CLOSED, home)
        .env("HOME", home)
        .env("AWS_PROFILE", "does-not-exist")
        .without("AWS_ACCESS_KEY_ID")
        .without("AWS_SECRET_ACCESS_KEY")
        .without("AWS_REGION")
        .without("AWS_ENDPOINT_URL")
}

fn count(report: &serde_json::Value, outcome: &str) -> u64 {
    report["summary"]["outcomes"][outcome].as_u64().unwrap()
}

#[test]
fn demo_plans_a_simulated_organization_with_every_outcome_and_no_aws_setup() {
    let home = tempfile::tempdir().unwrap();
    let out = bare(home.path()).run(&["demo", "--output", "json", "--no-progress"]);
    out.assert_code(3);
    let report = out.json();
    assert_eq!(report["command"], "plan");
    for outcome in [
        "create",
        "update",
        "unchanged",
        "excluded",
        "unmatched",
        "blocked",
    ] {
        assert!(
            count(&report, outcome) > 0,
            "no {outcome}: {}",
            report["summary"]
        );
    }
    assert_eq!(count(&report, "error"), 0, "{}", report["summary"]);
    assert_eq!(report["summary"]["inactive_accounts"], 1);
    assert_eq!(report["summary"]["accounts"], 4);
    assert!(report["skipped"].as_array().unwrap().is_empty());
    // Creation templates: one account has none, one an outdated ROOT beside an unmanaged
    // template, one a ROOT already right.
    let templates = &report["summary"]["creation_templates"]["outcomes"];
    for outcome in ["create", "update", "unchanged", "unmanaged"] {
        assert!(
            templates[outcome].as_u64().unwrap() > 0,
            "no template {outcome}: {templates}"
        );
    }
    assert_eq!(templates["error"], 0);
    assert!(
        out.stderr.contains("No AWS account is used"),
        "{}",
        out.stderr
    );
    // The same seed, the same organization.
    let again = bare(home.path()).run(&["demo", "--output", "json", "-q"]);
    assert_eq!(
        again.json()["summary"]["outcomes"],
        report["summary"]["outcomes"]
    );
}

#[test]
fn demo_restore_undoes_the_demo_apply_and_a_throttled_apply_rides_it_out() {
    let home = tempfile::tempdir().unwrap();
    let restore = bare(home.path()).run(&["demo", "restore", "--output", "json", "-q"]);
    restore.assert_code(0);
    let report = restore.json();
    assert_eq!(report["command"], "restore");
    assert!(report["summary"]["applied"].as_u64().unwrap() > 0);
    assert_eq!(count(&report, "error"), 0);

    // Blocked repositories stay pending, so apply exits 1; every other change is written
    // despite a third of the calls being throttled.
    let apply = bare(home.path()).run(&[
        "demo",
        "apply",
        "--throttle",
        "30",
        "--repos",
        "10",
        "--output",
        "json",
        "-q",
    ]);
    apply.assert_code(1);
    let report = apply.json();
    assert_eq!(count(&report, "error"), 0, "{}", report["summary"]);
    let writes = count(&report, "create") + count(&report, "update");
    assert_eq!(report["summary"]["applied"].as_u64().unwrap(), writes);
    assert!(report["summary"]["api_retries"].as_u64().unwrap() > 0);
}

#[test]
fn demo_refuses_bad_sizes_before_starting() {
    let home = tempfile::tempdir().unwrap();
    bare(home.path())
        .run(&["demo", "--accounts", "0"])
        .assert_code(2);
    let out = bare(home.path()).run(&["demo", "--throttle", "150"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--throttle"), "{}", out.stderr);
}
