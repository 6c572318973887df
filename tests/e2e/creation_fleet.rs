//! Repository creation templates end to end: the built binary plans, applies, audits and
//! restores them against moto, through the proxy that emulates the creation-template API.

use std::path::Path;

use aws_config::SdkConfig;
use serde_json::Value;

use crate::support::aws;
use crate::support::cli::ecr_fleet;
use crate::support::fixtures::{
    CI_BUILDS_POLICY, CI_BUILDS_TEMPLATE, MANAGEMENT_ACCOUNT_ID, OUTDATED_POLICY,
};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};
use crate::support::templates::{self, settings, with_other_settings, CreationTemplate};

const ALL_APPLIED_FOR: [&str; 3] = ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE", "REPLICATION"];

/// A workspace on the caller's own account in `regions`, managing `team-1/*` repositories
/// and the creation templates of `ROOT`, `team-a` and `team-b`, all with the ci-builds
/// template. `head` goes before the tables (extra top-level keys or tables).
fn workspace(regions: &[&str], head: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join(format!("{CI_BUILDS_TEMPLATE}.json")),
        CI_BUILDS_POLICY,
    )
    .unwrap();
    let regions: Vec<String> = regions.iter().map(|r| format!("{r:?}")).collect();
    let mut config = format!("regions = [{}]\n{head}\n", regions.join(", "));
    config.push_str(&format!(
        "[[match]]\ntemplate = \"{CI_BUILDS_TEMPLATE}\"\nnames = [\"team-1/*\"]\n"
    ));
    for prefix in ["ROOT", "team-a", "team-b"] {
        config.push_str(&format!(
            "[[creation_template]]\nprefix = \"{prefix}\"\ntemplate = \"{CI_BUILDS_TEMPLATE}\"\n"
        ));
    }
    std::fs::write(dir.path().join("ecr-fleet.toml"), config).unwrap();
    dir
}

/// Seeds the caller's us-east-1: `team-a` with an outdated policy, on push only, and settings
/// of its own; `team-b` already as configured; `ops`, which the config does not name.
async fn seed(cfg: &SdkConfig) -> CreationTemplate {
    let team_a = with_other_settings("team-a", OUTDATED_POLICY);
    templates::create(cfg, &team_a).await;
    templates::create(
        cfg,
        &CreationTemplate::with_lifecycle_policy("team-b", CI_BUILDS_POLICY),
    )
    .await;
    templates::create(
        cfg,
        &CreationTemplate::with_lifecycle_policy("ops", OUTDATED_POLICY),
    )
    .await;
    team_a
}

/// moto behind the emulating proxy, with [`seed`]'s templates in the caller's us-east-1 and
/// a [`workspace`] there.
struct Seeded {
    proxy: FaultProxy,
    cfg: SdkConfig,
    dir: tempfile::TempDir,
    /// `team-a` as seeded.
    team_a: CreationTemplate,
    /// Dropped last: the proxy forwards to it.
    _moto: Moto,
}

async fn seeded() -> Seeded {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let cfg = aws::sdk_config(&proxy.url(), "us-east-1").await;
    let team_a = seed(&cfg).await;
    Seeded {
        proxy,
        cfg,
        dir: workspace(&["us-east-1"], ""),
        team_a,
        _moto: moto,
    }
}

fn run(args: &[&str], proxy: &FaultProxy, dir: &Path) -> crate::support::cli::CliOutput {
    let mut all = args.to_vec();
    all.extend(["--output", "json", "--no-progress"]);
    ecr_fleet(&all, &proxy.url(), dir)
}

/// `prefix → outcome` of the report's creation templates, in report order.
fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["creation_templates"]
        .as_array()
        .expect("creation_templates")
        .iter()
        .map(|t| {
            (
                t["prefix"].as_str().unwrap().to_string(),
                t["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn template_writes(proxy: &FaultProxy) -> u64 {
    proxy.count("ecr:CreateRepositoryCreationTemplate")
        + proxy.count("ecr:UpdateRepositoryCreationTemplate")
        + proxy.count("ecr:DeleteRepositoryCreationTemplate")
}

#[tokio::test]
async fn plan_apply_rerun_audit_and_restore_creation_templates() {
    let Seeded {
        proxy,
        cfg,
        dir,
        team_a,
        _moto,
    } = seeded().await;
    let ops_before = templates::get(&cfg, "ops").await.unwrap();
    proxy.reset_counts();

    // plan: one read, every outcome, nothing written; pending changes exit 3.
    let plan = run(&["plan"], &proxy, dir.path());
    plan.assert_code(3);
    let report = plan.json();
    assert_eq!(
        outcomes(&report),
        pairs(&[
            ("ROOT", "create"),
            ("ops", "unmanaged"),
            ("team-a", "update"),
            ("team-b", "unchanged"),
        ])
    );
    let summary = &report["summary"]["creation_templates"];
    assert_eq!(summary["total"], 4);
    assert_eq!(summary["outcomes"]["create"], 1);
    assert_eq!(summary["outcomes"]["update"], 1);
    assert_eq!(summary["outcomes"]["unchanged"], 1);
    assert_eq!(summary["outcomes"]["unmanaged"], 1);
    assert_eq!(summary["applied"], 0);
    let op = "ecr:DescribeRepositoryCreationTemplates";
    assert_eq!(report["summary"]["api_calls"][op], 1);
    assert_eq!(proxy.count(op), 1, "one read per account-region");
    assert_eq!(template_writes(&proxy), 0);
    let rows = report["creation_templates"].as_array().unwrap();
    assert!(rows[2]["diff"]
        .as_str()
        .unwrap()
        .contains("-appliedFor: [CREATE_ON_PUSH]"));
    assert!(rows[1]["diff"].is_null() && rows[1]["template"].is_null());
    assert_eq!(rows[0]["account_id"], MANAGEMENT_ACCOUNT_ID);

    // audit: no ROOT template yet, and team-a's is outdated: a region finding, exit 3.
    let audit = run(&["audit"], &proxy, dir.path());
    audit.assert_code(3);
    let report = audit.json();
    assert_eq!(
        report["region_findings"][0]["finding"],
        "no_creation_template"
    );
    assert_eq!(report["summary"]["findings"]["no_creation_template"], 1);

    // apply: creates ROOT, updates team-a's policy and appliedFor only, leaves ops alone.
    let apply = run(&["apply", "--yes"], &proxy, dir.path());
    apply.assert_code(0);
    let report = apply.json();
    assert_eq!(report["summary"]["creation_templates"]["applied"], 2);
    assert_eq!(proxy.count("ecr:CreateRepositoryCreationTemplate"), 1);
    assert_eq!(proxy.count("ecr:UpdateRepositoryCreationTemplate"), 1);
    assert_eq!(proxy.count("ecr:DeleteRepositoryCreationTemplate"), 0);
    let root = templates::get(&cfg, "ROOT").await.expect("ROOT created");
    assert!(ecr_lifecycle::semantically_equal(
        root.lifecycle_policy.as_deref().unwrap(),
        CI_BUILDS_POLICY
    ));
    assert_eq!(root.applied_for, ALL_APPLIED_FOR);
    assert_eq!(root.description.as_deref(), Some("managed by ecr-fleet"));
    let held = templates::get(&cfg, "team-a").await.unwrap();
    let mut applied_for = held.applied_for.clone();
    applied_for.sort();
    assert_eq!(
        settings(&CreationTemplate {
            applied_for,
            ..held.clone()
        }),
        CreationTemplate {
            lifecycle_policy: Some(CI_BUILDS_POLICY.into()),
            applied_for: ALL_APPLIED_FOR.iter().map(|s| s.to_string()).collect(),
            ..team_a.clone()
        },
        "tags, description, mutability, encryption, repository policy and role kept"
    );
    assert_eq!(
        settings(&templates::get(&cfg, "ops").await.unwrap()),
        settings(&ops_before),
        "unmanaged: untouched"
    );
    // The journal holds each template's intent (with what was there) before its outcome.
    let journal = report["backup_file"].as_str().expect("journal").to_string();
    let records: Vec<Value> = std::fs::read_to_string(dir.path().join(&journal))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let intent = |prefix: &str| {
        records
            .iter()
            .position(|r| r["record"] == "template_intent" && r["prefix"] == prefix)
            .unwrap_or_else(|| panic!("no intent for {prefix}"))
    };
    let outcome = |prefix: &str| {
        records
            .iter()
            .position(|r| r["record"] == "template_outcome" && r["prefix"] == prefix)
            .unwrap()
    };
    assert!(intent("ROOT") < outcome("ROOT") && intent("team-a") < outcome("team-a"));
    assert!(records[intent("ROOT")]["previous"].is_null());
    let previous = &records[intent("team-a")]["previous"];
    assert_eq!(previous["lifecycle_policy"], OUTDATED_POLICY);
    assert_eq!(
        previous["applied_for"],
        serde_json::json!(["CREATE_ON_PUSH"])
    );

    // A second run changes nothing and writes nothing; plan and audit are clean.
    proxy.reset_counts();
    let again = run(&["apply", "--yes"], &proxy, dir.path());
    again.assert_code(0);
    let report = again.json();
    assert_eq!(
        outcomes(&report),
        pairs(&[
            ("ROOT", "unchanged"),
            ("ops", "unmanaged"),
            ("team-a", "unchanged"),
            ("team-b", "unchanged"),
        ])
    );
    assert!(report.get("backup_file").is_none(), "no write, no journal");
    assert_eq!(template_writes(&proxy), 0);
    run(&["plan"], &proxy, dir.path()).assert_code(0);
    let audit = run(&["audit"], &proxy, dir.path());
    audit.assert_code(0);
    assert!(audit.json().get("region_findings").is_none());

    // restore: team-a gets its policy and appliedFor back (the rest still kept), ROOT is
    // deleted, the others are not touched.
    let restore = run(
        &["restore", "--backup", &journal, "--yes"],
        &proxy,
        dir.path(),
    );
    restore.assert_code(0);
    let report = restore.json();
    assert_eq!(
        outcomes(&report),
        pairs(&[("ROOT", "update"), ("team-a", "update")])
    );
    assert_eq!(report["summary"]["creation_templates"]["applied"], 2);
    assert!(
        templates::get(&cfg, "ROOT").await.is_none(),
        "created, so deleted"
    );
    assert_eq!(
        settings(&templates::get(&cfg, "team-a").await.unwrap()),
        settings(&team_a),
        "exactly as seeded"
    );
    assert!(templates::get(&cfg, "team-b").await.is_some());
    assert!(templates::get(&cfg, "ops").await.is_some());
    // Restoring twice finds everything as before: nothing to do.
    proxy.reset_counts();
    let twice = run(
        &["restore", "--backup", &journal, "--yes"],
        &proxy,
        dir.path(),
    );
    twice.assert_code(0);
    assert_eq!(
        outcomes(&twice.json()),
        pairs(&[("ROOT", "unchanged"), ("team-a", "unchanged")])
    );
    assert_eq!(template_writes(&proxy), 0);
}

#[tokio::test]
async fn restore_leaves_a_template_changed_since_the_apply_alone() {
    let seeded = seeded().await;
    let (proxy, cfg, dir) = (&seeded.proxy, &seeded.cfg, &seeded.dir);
    let apply = run(&["apply", "--yes"], proxy, dir.path());
    apply.assert_code(0);
    let journal = apply.json()["backup_file"].as_str().unwrap().to_string();
    // Someone changes team-a after the apply.
    let changed = CreationTemplate {
        lifecycle_policy: Some(OUTDATED_POLICY.into()),
        applied_for: vec!["REPLICATION".into()],
        ..templates::get(cfg, "team-a").await.unwrap()
    };
    proxy.creation_templates(|t| t.put(MANAGEMENT_ACCOUNT_ID, "us-east-1", changed.clone()));
    let restore = run(
        &["restore", "--backup", &journal, "--yes"],
        proxy,
        dir.path(),
    );
    restore.assert_code(1);
    let report = restore.json();
    let rows = report["creation_templates"].as_array().unwrap();
    assert_eq!(rows[1]["prefix"], "team-a");
    assert_eq!(rows[1]["outcome"], "error");
    assert!(rows[1]["error"].as_str().unwrap().contains("conflict"));
    assert_eq!(
        settings(&templates::get(cfg, "team-a").await.unwrap()),
        settings(&changed),
        "left alone"
    );
    // ROOT, still as the apply wrote it, was restored (deleted).
    assert_eq!(rows[0]["outcome"], "update");
    assert!(templates::get(cfg, "ROOT").await.is_none());
}

#[tokio::test]
async fn a_failed_template_read_is_an_error_there_and_the_other_region_goes_on() {
    let moto = Moto::start();
    // The first DescribeRepositoryCreationTemplates is throttled; one attempt per call.
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            throttle: [("ecr:DescribeRepositoryCreationTemplates".to_string(), 1)].into(),
            ..FaultRules::default()
        },
    );
    let dir = workspace(
        &["us-east-1", "eu-west-1"],
        "[execution]\nmax_attempts = 1\nconcurrency = 1\n",
    );
    let apply = run(&["apply", "--yes"], &proxy, dir.path());
    apply.assert_code(1);
    let report = apply.json();
    let rows = report["creation_templates"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "three prefixes in each region");
    let failed: Vec<&Value> = rows.iter().filter(|r| r["outcome"] == "error").collect();
    let written: Vec<&Value> = rows.iter().filter(|r| r["applied"] == true).collect();
    assert_eq!((failed.len(), written.len()), (3, 3), "{rows:?}");
    assert!(failed
        .iter()
        .all(|r| r["region"] == failed[0]["region"] && r["error"].is_string()));
    assert!(written.iter().all(|r| r["region"] != failed[0]["region"]));
    assert_eq!(
        report["summary"]["creation_templates"]["outcomes"]["error"],
        3
    );
    assert_eq!(proxy.count("ecr:CreateRepositoryCreationTemplate"), 3);
}

#[tokio::test]
async fn interactive_apply_writes_templates_after_the_confirmation() {
    let seeded = seeded().await;
    let (proxy, cfg, dir) = (&seeded.proxy, &seeded.cfg, &seeded.dir);
    let apply = crate::support::cli::Cli::new(&proxy.url(), dir.path()).run_on_terminal(
        &["apply", "--no-progress", "--report", "report.json"],
        "yes\n",
    );
    assert_eq!(apply.code, 0, "{}", apply.stdout);
    assert!(
        apply
            .stdout
            .contains("Write 0 lifecycle polic(ies) and 2 creation template(s)?"),
        "{}",
        apply.stdout
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["summary"]["creation_templates"]["applied"], 2);
    // Each template was read again after the confirmation, before its write.
    assert_eq!(
        proxy.count("ecr:DescribeRepositoryCreationTemplates"),
        1 + 2
    );
    assert!(templates::get(cfg, "ROOT").await.is_some());
    let team_a = templates::get(cfg, "team-a").await.unwrap();
    assert_eq!(team_a.lifecycle_policy.as_deref(), Some(CI_BUILDS_POLICY));
}
