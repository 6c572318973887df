//! The HTML view against moto: the page states the numbers of the JSON report of the same run
//! and carries nothing from elsewhere (`--html FILE` of plan, apply, audit and restore is
//! checked beside JUnit in `junit`); a `--junit` or `--html` file in a missing directory is
//! refused before any AWS call, one that cannot be written makes exit 1.

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
pub fn assert_states_the_report(html: &str, report: &Value) {
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

pub fn read_html(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Two member accounts of 10 repositories in one region behind a fault proxy, a workspace
/// for them, and `--accounts` naming both and a mistyped id (a skipped target).
pub async fn two_accounts_and_a_mistyped_one(
) -> (Moto, FaultProxy, tempfile::TempDir, Vec<String>, String) {
    let moto = Moto::start();
    let fleet = aws::seed_fleet(&moto.url(), &FleetSpec::new(2, &FLEET_REGIONS[..1], 10)).await;
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS[..1]);
    let accounts = format!("{},{},999999999999", fleet.members[0], fleet.members[1]);
    (moto, proxy, dir, fleet.members, accounts)
}

#[tokio::test]
async fn output_html_lists_accounts_and_skipped_targets() {
    let (_moto, proxy, dir, members, accounts) = two_accounts_and_a_mistyped_one().await;
    let plan = ecr_fleet(
        &[
            "plan",
            "--output",
            "html",
            "--report",
            "plan.json",
            "--accounts",
            &accounts,
        ],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(1);
    let html = &plan.stdout;
    let report: Value = serde_json::from_str(&read_html(&dir.path().join("plan.json"))).unwrap();
    assert_states_the_report(html, &report);
    assert_eq!(stated(html, "outcome-create"), "6");
    assert!(
        html.contains("<td>999999999999</td><td>all regions</td>"),
        "{html}"
    );
    assert!(
        html.contains("not part of this run"),
        "the skipped target's error"
    );
    for account in &members {
        assert!(
            html.contains(&format!("<title>{account}: 3 create</title>")),
            "{html}"
        );
    }
}

#[test]
fn view_files_in_a_missing_directory_are_refused_and_an_unwritable_one_exits_1() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS[..1]);
    for flag in ["--junit", "--html"] {
        let out = ecr_fleet(
            &["plan", flag, "no/such/dir/plan.out", "--no-progress"],
            &proxy.url(),
            dir.path(),
        );
        out.assert_code(2);
        let says = format!("{flag}: no/such/dir/plan.out: directory no/such/dir does not exist");
        assert!(out.stderr.contains(&says), "{}", out.stderr);
        assert_eq!(proxy.total(), 0, "{:?}", proxy.counts());
    }

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
