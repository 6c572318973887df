//! `--output html` and `--html FILE` against moto: the page states the numbers of the JSON
//! report of the same run, carries nothing from elsewhere, and an unusable file is refused
//! before any AWS call (or, when it cannot be written after the run, makes the exit 1).

use std::path::Path;

use serde_json::Value;

use crate::support::aws::{self, FleetSpec};
use crate::support::cli::ecr_fleet;
use crate::support::fixtures::{write_fleet_workspace, FLEET_REGIONS};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};

/// The text of the element with this id (`id="accounts">2<`).
fn stated<'a>(html: &'a str, id: &str) -> &'a str {
    let open = format!("id=\"{id}\">");
    let at = html
        .find(&open)
        .unwrap_or_else(|| panic!("the page states no {id}"))
        + open.len();
    html[at..].split('<').next().unwrap()
}

/// Every count the page states is the JSON report's.
fn assert_states_the_report(html: &str, report: &Value) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    for banned in ["<script", "<link", "<img", "src=", "href=", "url("] {
        assert!(!html.contains(banned), "{banned}");
    }
    let summary = &report["summary"];
    for (outcome, n) in summary["outcomes"].as_object().unwrap() {
        assert_eq!(stated(html, &format!("outcome-{outcome}")), n.to_string());
    }
    for key in ["accounts", "regions", "repositories", "skipped"] {
        assert_eq!(stated(html, key), summary[key].to_string(), "{key}");
    }
    let calls: u64 = summary["api_calls"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(stated(html, "api-calls"), calls.to_string());
    if report["command"] != "plan" && report["command"] != "audit" {
        assert_eq!(stated(html, "applied"), summary["applied"].to_string());
    }
    if let Some(n) = summary.get("repositories_with_findings") {
        assert_eq!(stated(html, "with-findings"), n.to_string());
    }
    if let Some(findings) = summary.get("findings").and_then(Value::as_object) {
        for (f, n) in findings {
            assert_eq!(stated(html, &format!("finding-{f}")), n.to_string(), "{f}");
        }
    }
    if let Some(saving) = summary["impact"]["monthly_saving_usd"].as_f64() {
        assert_eq!(stated(html, "saving"), format!("{saving:.2}"));
    }
    let attention = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            ["create", "update", "blocked", "error"].contains(&r["outcome"].as_str().unwrap())
                || r["findings"].as_array().is_some_and(|f| !f.is_empty())
        })
        .count();
    assert_eq!(stated(html, "attention"), attention.to_string());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn html_of_plan_apply_audit_and_restore_states_the_reports_counts() {
    let moto = Moto::start();
    let spec = FleetSpec::new(2, &FLEET_REGIONS[..1], 10);
    let fleet = aws::seed_fleet(&moto.url(), &spec).await;
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS[..1]);
    // A mistyped account id: a skipped target, listed with its error.
    let accounts = format!("{},{},999999999999", fleet.members[0], fleet.members[1]);

    let plan = ecr_fleet(
        &[
            "plan",
            "--output",
            "json",
            "--html",
            "plan.html",
            "--accounts",
            &accounts,
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(1);
    let report = plan.json();
    let html = read(&dir.path().join("plan.html"));
    assert_states_the_report(&html, &report);
    assert_eq!(stated(&html, "outcome-create"), "6");
    assert_eq!(stated(&html, "skipped"), "1");
    assert!(
        html.contains("999999999999"),
        "the skipped account is listed"
    );
    assert!(html.contains("not part of this run"), "with its error");
    // Each account has a bar; each segment says what it counts.
    for account in &fleet.members {
        assert!(
            html.contains(&format!("<title>{account}: 3 create</title>")),
            "{html}"
        );
    }

    // apply: the page on stdout, the JSON report beside it.
    let apply = ecr_fleet(
        &[
            "apply",
            "--yes",
            "--output",
            "html",
            "--report",
            "apply.json",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    apply.assert_code(0);
    let report: Value = serde_json::from_str(&read(&dir.path().join("apply.json"))).unwrap();
    assert_states_the_report(&apply.stdout, &report);
    assert_eq!(stated(&apply.stdout, "applied"), "10");
    let backup = report["backup_file"].as_str().unwrap().to_string();
    assert!(apply.stdout.contains(&backup), "the page names the journal");

    let audit = ecr_fleet(
        &[
            "audit",
            "--images",
            "--output",
            "json",
            "--html",
            "audit.html",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    let report = audit.json();
    let html = read(&dir.path().join("audit.html"));
    assert_states_the_report(&html, &report);
    assert!(html.contains("<h2>Monthly savings</h2>"), "{html}");

    let restore = ecr_fleet(
        &[
            "restore",
            "--backup",
            &backup,
            "--yes",
            "--output",
            "json",
            "--html",
            "restore.html",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    restore.assert_code(0);
    let html = read(&dir.path().join("restore.html"));
    assert_states_the_report(&html, &restore.json());
    assert!(html.contains("<h1>ecr-fleet restore</h1>"), "{html}");
}

#[test]
fn html_file_in_a_missing_directory_is_refused_and_an_unwritable_one_exits_1() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS[..1]);
    let out = ecr_fleet(
        &["plan", "--html", "no/such/dir/plan.html", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("--html: no/such/dir/plan.html: directory no/such/dir does not exist"),
        "{}",
        out.stderr
    );
    assert_eq!(proxy.total(), 0, "{:?}", proxy.counts());

    // A directory where the file should go: the run finishes, the file cannot be written.
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    let out = ecr_fleet(
        &["plan", "--html", "taken", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(1);
    assert!(
        out.stderr.contains("taken: cannot write --html file"),
        "{}",
        out.stderr
    );
}
