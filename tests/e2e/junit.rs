//! `--output junit` and `--junit FILE` against moto (and `--html FILE` beside them, checked in
//! `html`), read back with junitparser (an
//! independent JUnit reader, as CI report tools are) and checked against the JSON report of
//! the same run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::html::{assert_states_the_report, read_html, two_accounts_and_a_mistyped_one};
use crate::support::cli::ecr_fleet;
use crate::support::junit::{case_kind, parse_junit};

/// What the JUnit view must say about one report row.
fn expected_kind(command: &str, row: &Value) -> &'static str {
    let outcome = row["outcome"].as_str().unwrap();
    let applied = row["applied"].as_bool().unwrap();
    let findings = row["findings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f != "exempt"));
    let fails = match outcome {
        "error" | "blocked" => true,
        "create" | "update" if command == "plan" || command == "audit" => true,
        "create" | "update" => !applied,
        _ => false,
    } || (command == "audit" && findings);
    match outcome {
        _ if fails => "failure",
        "excluded" | "unmatched" => "skipped",
        _ => "passed",
    }
}

/// Checks the parsed JUnit document against the JSON report of the same run: one suite per
/// account-region (plus one per skipped target), one case per repository with the right
/// result, and counts that add up at every level.
pub fn assert_matches_report(junit: &Value, report: &Value) {
    let command = report["command"].as_str().unwrap();
    assert_eq!(junit["tag"], "testsuites");
    assert_eq!(junit["name"], format!("ecr-fleet {command}"));

    let mut want: BTreeMap<String, BTreeMap<String, &'static str>> = BTreeMap::new();
    for row in report["repositories"].as_array().unwrap() {
        let suite = format!(
            "{}/{}",
            row["account_id"].as_str().unwrap(),
            row["region"].as_str().unwrap()
        );
        want.entry(suite).or_default().insert(
            row["repository"].as_str().unwrap().to_string(),
            expected_kind(command, row),
        );
    }
    // Creation templates: a case per template, and one per account-region finding (audit).
    let suite_of = |row: &Value| {
        format!(
            "{}/{}",
            row["account_id"].as_str().unwrap(),
            row["region"].as_str().unwrap()
        )
    };
    for t in report["creation_templates"].as_array().unwrap() {
        let kind = match t["outcome"].as_str().unwrap() {
            "error" => "failure",
            "create" | "update" if command == "plan" || command == "audit" => "failure",
            "create" | "update" if !t["applied"].as_bool().unwrap() => "failure",
            "unmanaged" => "skipped",
            _ => "passed",
        };
        want.entry(suite_of(t)).or_default().insert(
            format!("creation template {}", t["prefix"].as_str().unwrap()),
            kind,
        );
    }
    for f in report["region_findings"].as_array().into_iter().flatten() {
        want.entry(suite_of(f))
            .or_default()
            .insert("creation templates".to_string(), "failure");
    }
    for s in report["skipped"].as_array().unwrap() {
        let target = match s["region"].as_str() {
            Some(region) => format!("{}/{region}", s["account_id"].as_str().unwrap()),
            None => s["account_id"].as_str().unwrap().to_string(),
        };
        want.entry(target.clone())
            .or_default()
            .insert(target, "error");
    }

    let mut got: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for suite in junit["suites"].as_array().unwrap() {
        let name = suite["name"].as_str().unwrap().to_string();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let cases = got.entry(name.clone()).or_default();
        for case in suite["cases"].as_array().unwrap() {
            assert_eq!(case["classname"], name, "{case}");
            let kind = case_kind(case);
            *counts.entry(kind).or_default() += 1;
            let previous =
                cases.insert(case["name"].as_str().unwrap().to_string(), kind.to_string());
            assert!(previous.is_none(), "one case per repository: {case}");
        }
        // The counts the writer put in the attributes agree with the cases.
        for (attr, kind) in [
            ("failures", "failure"),
            ("errors", "error"),
            ("skipped", "skipped"),
        ] {
            assert_eq!(
                suite[attr],
                counts.get(kind).copied().unwrap_or(0),
                "{name} {attr}"
            );
            *totals.entry(attr).or_default() += counts.get(kind).copied().unwrap_or(0);
        }
        assert_eq!(suite["tests"], cases.len() as u64, "{name}");
        *totals.entry("tests").or_default() += cases.len() as u64;
        assert_eq!(
            suite["properties"]["account_id"],
            name.split('/').next().unwrap()
        );
    }
    for attr in ["tests", "failures", "errors", "skipped"] {
        assert_eq!(
            junit[attr],
            totals.get(attr).copied().unwrap_or(0),
            "root {attr}"
        );
    }
    let got: BTreeMap<String, BTreeMap<String, &str>> = got
        .iter()
        .map(|(s, cases)| {
            (
                s.clone(),
                cases.iter().map(|(c, k)| (c.clone(), k.as_str())).collect(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn junit_and_html_of_plan_apply_audit_and_restore_agree_with_the_report() {
    // A mistyped account id among the accounts: a skipped target, which JUnit shows as an error.
    let (_moto, proxy, dir, _, accounts) = two_accounts_and_a_mistyped_one().await;
    let junit_file = dir.path().join("plan.xml");

    // plan: the JUnit view on stdout, the JSON report and a second JUnit file beside it.
    let plan = ecr_fleet(
        &[
            "plan",
            "--output",
            "junit",
            "--report",
            "plan.json",
            "--junit",
            "plan-file.xml",
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
    assert!(plan.stdout.starts_with("<?xml"), "{}", plan.stdout);
    std::fs::write(&junit_file, &plan.stdout).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("plan-file.xml")).unwrap(),
        plan.stdout,
        "--junit FILE holds the same document as --output junit"
    );
    let report = read(&dir.path().join("plan.json"));
    let junit = parse_junit(&junit_file);
    assert_matches_report(&junit, &report);
    assert_states_the_report(&read_html(&dir.path().join("plan.html")), &report);
    // Per account-region: 3 create + 2 update fail, 3 unchanged pass, 1 excluded and
    // 1 unmatched are skipped; the mistyped account is one error.
    assert_eq!(
        (junit["tests"].as_u64(), junit["failures"].as_u64()),
        (Some(2 * 10 + 1), Some(2 * 5))
    );
    assert_eq!(
        (junit["errors"].as_u64(), junit["skipped"].as_u64()),
        (Some(1), Some(2 * 2))
    );
    let bogus = junit["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "999999999999")
        .expect("a suite for the skipped account");
    let message = bogus["cases"][0]["results"][0]["message"].as_str().unwrap();
    assert!(message.contains("not part of this run"), "{message}");
    // A failed case carries the diff for the reader of the CI report.
    let create = junit["suites"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["results"][0]["type"] == "create")
        .expect("a create case");
    assert!(
        create["results"][0]["text"]
            .as_str()
            .unwrap()
            .contains("rulePriority"),
        "{create}"
    );

    // apply: what it wrote passes; left-alone repositories stay skipped.
    let apply = ecr_fleet(
        &[
            "apply",
            "--yes",
            "--output",
            "json",
            "--junit",
            "apply.xml",
            "--html",
            "apply.html",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    apply.assert_code(0);
    let report = apply.json();
    let junit = parse_junit(&dir.path().join("apply.xml"));
    assert_matches_report(&junit, &report);
    let html = read_html(&dir.path().join("apply.html"));
    assert_states_the_report(&html, &report);
    assert!(
        html.contains(report["backup_file"].as_str().unwrap()),
        "names the journal"
    );
    assert_eq!(junit["failures"], 0);
    assert_eq!(junit["errors"], 0);
    assert_eq!(report["summary"]["applied"], 2 * 5);
    let backup = report["backup_file"].as_str().unwrap().to_string();

    // audit after the apply: findings other than exempt fail, judged row by row.
    let audit = ecr_fleet(
        &[
            "audit",
            "--images",
            "--output",
            "junit",
            "--report",
            "audit.json",
            "--html",
            "audit.html",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    std::fs::write(dir.path().join("audit.xml"), &audit.stdout).unwrap();
    let report = read(&dir.path().join("audit.json"));
    let junit = parse_junit(&dir.path().join("audit.xml"));
    assert_matches_report(&junit, &report);
    let html = read_html(&dir.path().join("audit.html"));
    assert_states_the_report(&html, &report);
    assert!(
        html.contains("<h2>Monthly savings</h2>"),
        "audit --images: {html}"
    );
    let with_findings = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["findings"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f != "exempt"))
        })
        .count() as u64;
    // moto's account-regions have no creation template: each is a `no_creation_template`.
    let region_findings = report["region_findings"]
        .as_array()
        .map_or(0, |f| f.len() as u64);
    assert!(region_findings > 0, "{report}");
    assert_eq!(junit["failures"], with_findings + region_findings);
    assert_eq!(
        audit.code,
        if with_findings + region_findings > 0 {
            3
        } else {
            0
        },
        "{}",
        audit.stderr
    );
    let kinds: BTreeSet<&str> = junit["suites"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["cases"].as_array().unwrap())
        .map(case_kind)
        .collect();
    assert!(kinds.contains("passed"), "{kinds:?}");

    // restore: every entry put back passes, in the same shape.
    let restore = ecr_fleet(
        &[
            "restore",
            "--backup",
            &backup,
            "--yes",
            "--output",
            "json",
            "--junit",
            "restore.xml",
            "--html",
            "restore.html",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    restore.assert_code(0);
    let report = restore.json();
    let junit = parse_junit(&dir.path().join("restore.xml"));
    assert_matches_report(&junit, &report);
    assert_states_the_report(&read_html(&dir.path().join("restore.html")), &report);
    assert_eq!(junit["name"], "ecr-fleet restore");
    assert_eq!(junit["tests"], 2 * 5);
    assert_eq!(
        (junit["failures"].as_u64(), junit["errors"].as_u64()),
        (Some(0), Some(0))
    );
}
