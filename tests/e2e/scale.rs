//! 0.2 engine behaviour end to end: the tagging API and its fallback, SIGTERM and `kill -9`
//! with the write-ahead journal, restore from the journal of a run that was killed, and
//! apply under quotas and under other clients' throttling.

use std::path::Path;

use serde_json::Value;

use crate::support::aws;
use crate::support::cli::{apply_json, ecr_fleet, row, Cli};
use crate::support::faults::{LoadRules, Quotas};
use crate::support::fixtures::FLEET_REGIONS;
use crate::support::fixtures::{
    write_fleet_workspace, CI_BUILDS_POLICY, EXEMPT_TAG, OUTDATED_POLICY,
};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};
use crate::support::synth::{SynthFleet, SynthSpec};

fn journal(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn team_workspace(source: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        format!(
            "regions = [\"us-east-1\"]\n{extra}\n[accounts]\nsource = \"{source}\"\n\
             [[match]]\ntemplate = \"ci-builds\"\n\
             names = [\"team-1/*\"]\n[[match]]\ntemplate = \"ci-builds\"\n\
             tags = {{ \"lifecycle-class\" = [\"ci\"] }}\n"
        ),
    )
    .unwrap();
    dir
}

/// Tags come from GetResources in pages; where it is denied, one ListTagsForResource per
/// repository, with a notice in the report; outcomes are the same either way.
#[tokio::test]
async fn tags_come_in_bulk_and_fall_back_per_repository_when_the_tagging_api_is_denied() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    for member in &members {
        let cfg = aws::member_config(&moto.url(), "us-east-1", member).await;
        aws::create_repo(&cfg, "team-1/api", &[]).await;
        aws::create_repo(&cfg, "team-1/exempt", &[(EXEMPT_TAG, "true")]).await;
        aws::create_repo(&cfg, "other/by-tag", &[("lifecycle-class", "ci")]).await;
        aws::create_repo(&cfg, "other/unmatched", &[("team", "x")]).await;
    }
    let denied = members[1].clone();
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            deny_get_resources: [denied.clone()].into(),
            ..FaultRules::default()
        },
    );
    let dir = team_workspace("organization", "");
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(3);
    let report = plan.json();
    for member in &members {
        let outcome = |repo: &str| {
            report["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["account_id"] == member.as_str() && r["repository"] == repo)
                .unwrap_or_else(|| panic!("{member} {repo}"))["outcome"]
                .clone()
        };
        assert_eq!(outcome("team-1/api"), "create", "{member}");
        assert_eq!(outcome("team-1/exempt"), "excluded", "{member}");
        assert_eq!(outcome("other/by-tag"), "create", "{member}");
        assert_eq!(outcome("other/unmatched"), "unmatched", "{member}");
    }
    // One tag page per account-region that allows it; per-repository reads elsewhere.
    assert_eq!(report["summary"]["api_calls"]["tagging:GetResources"], 2);
    assert_eq!(report["summary"]["api_calls"]["ecr:ListTagsForResource"], 4);
    let notices = report["notices"].as_array().expect("notices");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["account_id"], denied.as_str());
    let message = notices[0]["message"].as_str().unwrap();
    assert!(
        message.contains("tagging:GetResources: AccessDeniedException"),
        "{message}"
    );
    // The table view says so too.
    let table = ecr_fleet(&["plan", "--no-progress"], &proxy.url(), dir.path());
    assert!(table.stdout.contains("notices:"), "{}", table.stdout);
    assert!(
        table.stdout.contains("tags read one repository at a time"),
        "{}",
        table.stdout
    );
}

/// SIGTERM (CodeBuild's stop) during apply: writes in flight finish and are journaled, no
/// new one starts, the report is printed, exit 1; restore undoes exactly what was written.
#[tokio::test]
async fn sigterm_during_apply_journals_every_write_and_restore_undoes_them() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    for i in 0..8 {
        aws::create_repo(&mgmt, &format!("team-1/service-{i}"), &[]).await;
    }
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules::slow_puts(std::time::Duration::from_millis(700)),
    );
    let dir = team_workspace("current", "[execution]\nper_region_concurrency = 1\n");
    // SIGTERM once the first write is under way.
    let out = Cli::new(&proxy.url(), dir.path()).run_and_signal(
        &[
            "apply",
            "--yes",
            "--output",
            "json",
            "--backup",
            "journal.jsonl",
            "--report",
            "report.json",
        ],
        "TERM",
        || proxy.count("ecr:PutLifecyclePolicy") > 0,
    );
    out.assert_code(1);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
    let report = out.json();
    // The report file is written as well.
    assert!(dir.path().join("report.json").exists());
    let rows = report["repositories"].as_array().unwrap();
    let written: Vec<&str> = rows
        .iter()
        .filter(|r| r["applied"] == true)
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    assert!(
        !written.is_empty(),
        "the write in flight completes: {report}"
    );
    assert!(written.len() < 8, "later writes are not started: {report}");
    assert_eq!(
        proxy.count("ecr:PutLifecyclePolicy") as usize,
        written.len(),
        "no write started after the signal"
    );
    // Every write made has an intent and a `written` outcome; nothing else was written.
    let records = journal(&dir.path().join("journal.jsonl"));
    assert_eq!(records[0]["record"], "run");
    let intents: Vec<&str> = records
        .iter()
        .filter(|r| r["record"] == "intent")
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    let outcomes_written: Vec<&str> = records
        .iter()
        .filter(|r| r["record"] == "outcome" && r["result"] == "written")
        .map(|r| r["repository"].as_str().unwrap())
        .collect();
    let mut sorted = written.clone();
    sorted.sort();
    let mut w = outcomes_written.clone();
    w.sort();
    assert_eq!(w, sorted);
    // Writes queued when the signal came had their intent on disk already: each has a
    // `not_written` outcome, so restore knows there is nothing to undo there.
    for repo in &intents {
        let result = records
            .iter()
            .find(|r| r["record"] == "outcome" && r["repository"] == *repo)
            .unwrap_or_else(|| panic!("no outcome for {repo}"))["result"]
            .as_str()
            .unwrap();
        let expected = if written.contains(repo) {
            "written"
        } else {
            "not_written"
        };
        assert_eq!(result, expected, "{repo}");
    }

    // restore from the journal puts every written repository back to no policy.
    let restore = ecr_fleet(
        &[
            "restore",
            "--backup",
            "journal.jsonl",
            "--yes",
            "--output",
            "json",
        ],
        &proxy.url(),
        dir.path(),
    );
    restore.assert_code(0);
    assert_eq!(restore.json()["summary"]["applied"], written.len());
    for i in 0..8 {
        let name = format!("team-1/service-{i}");
        assert_eq!(aws::get_policy(&mgmt, &name).await, None, "{name}");
    }
}

/// A run killed between an intent and its outcome: restore looks at the repository, restores
/// one that holds the new policy and reports one that still holds the previous one as
/// `unchanged`, not as a conflict.
#[tokio::test]
async fn restore_of_a_killed_run_looks_at_each_repository() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    aws::create_repo(&mgmt, "team-1/written", &[]).await;
    aws::create_repo(&mgmt, "team-1/not-written", &[]).await;
    aws::put_policy(&mgmt, "team-1/written", CI_BUILDS_POLICY).await;
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    let intent = |repo: &str| {
        serde_json::json!({"record": "intent", "account_id": "123456789012",
            "region": "us-east-1", "repository": repo, "template": "ci-builds",
            "previous_policy": null, "new_policy": CI_BUILDS_POLICY})
        .to_string()
    };
    let header = serde_json::json!({"record": "run", "backup_version": 2,
        "ecr_fleet_version": "0.2.0", "started_at": "2026-11-25T10:00:00Z",
        "command_line": ["ecr-fleet", "apply", "--yes"], "role_name": "EcrFleetSpoke",
        "session_name": "ecr-fleet", "external_id_used": false});
    std::fs::write(
        dir.path().join("killed.jsonl"),
        format!(
            "{header}\n{}\n{}\n",
            intent("team-1/written"),
            intent("team-1/not-written")
        ),
    )
    .unwrap();
    let restore = ecr_fleet(
        &[
            "restore",
            "--backup",
            "killed.jsonl",
            "--yes",
            "--output",
            "json",
        ],
        &moto.url(),
        dir.path(),
    );
    restore.assert_code(0);
    let report = restore.json();
    assert_eq!(row(&report, "team-1/written")["outcome"], "update");
    assert_eq!(row(&report, "team-1/written")["applied"], true);
    assert_eq!(row(&report, "team-1/not-written")["outcome"], "unchanged");
    assert!(row(&report, "team-1/not-written")["error"].is_null());
    assert_eq!(aws::get_policy(&mgmt, "team-1/written").await, None);
    assert_eq!(aws::get_policy(&mgmt, "team-1/not-written").await, None);
}

/// An endpoint that cannot be reached is named, with the cause and no debug dump.
#[test]
fn an_unreachable_endpoint_is_named_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    // Nothing listens on the discard port of the loopback interface.
    let out = ecr_fleet(&["plan"], "http://127.0.0.1:9", dir.path());
    out.assert_code(1);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {}", out.stderr));
    assert!(
        line.contains("sts:GetCallerIdentity: cannot reach http://127.0.0.1:9: "),
        "{line}"
    );
    assert!(line.contains("onnection refused"), "{line}");
    assert!(!line.contains('{') && !line.contains("Some("), "{line}");
}

/// `kill -9` in the middle of apply: nothing runs on the way out, yet every repository whose
/// policy was replaced has its intent (with the previous policy) in the journal, and restore
/// puts each one back.
#[tokio::test]
async fn kill_9_during_apply_leaves_a_journal_restore_undoes_every_write_from() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    let names: Vec<String> = (0..12).map(|i| format!("team-1/service-{i:02}")).collect();
    for (i, name) in names.iter().enumerate() {
        aws::create_repo(&mgmt, name, &[]).await;
        // Half of them had a policy before: restore must bring that text back, not just
        // delete.
        if i.is_multiple_of(2) {
            aws::put_policy(&mgmt, name, OUTDATED_POLICY).await;
        }
    }
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules::slow_puts(std::time::Duration::from_millis(300)),
    );
    let dir = team_workspace("current", "[execution]\nper_region_concurrency = 2\n");
    let out = Cli::new(&proxy.url(), dir.path()).run_and_signal(
        &[
            "apply",
            "--yes",
            "--output",
            "json",
            "--backup",
            "journal.jsonl",
        ],
        "KILL",
        || proxy.count("ecr:PutLifecyclePolicy") >= 3,
    );
    assert_eq!(out.code, 137, "killed by SIGKILL: {}", out.stderr);
    // Puts the proxy had already taken still reach moto; let them land.
    std::thread::sleep(std::time::Duration::from_millis(800));

    let mut written = Vec::new();
    for name in &names {
        if aws::get_policy(&mgmt, name).await.as_deref() == Some(CI_BUILDS_POLICY) {
            written.push(name.clone());
        }
    }
    assert!(!written.is_empty(), "some writes were made before the kill");
    assert!(
        written.len() < names.len(),
        "the kill came before the end: {written:?}"
    );
    let records = journal(&dir.path().join("journal.jsonl"));
    assert_eq!(records[0]["record"], "run");
    for name in &written {
        let intent = records
            .iter()
            .find(|r| r["record"] == "intent" && r["repository"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} was written without an intent on disk"));
        let index: usize = name[name.len() - 2..].parse().unwrap();
        let previous = if index.is_multiple_of(2) {
            Value::from(OUTDATED_POLICY)
        } else {
            Value::Null
        };
        assert_eq!(intent["previous_policy"], previous, "{name}");
    }

    let restore = ecr_fleet(
        &[
            "restore",
            "--backup",
            "journal.jsonl",
            "--yes",
            "--output",
            "json",
        ],
        &moto.url(),
        dir.path(),
    );
    restore.assert_code(0);
    for (i, name) in names.iter().enumerate() {
        let now = aws::get_policy(&mgmt, name).await;
        let expected = i.is_multiple_of(2).then_some(OUTDATED_POLICY);
        assert_eq!(now.as_deref(), expected, "{name} after restore");
    }
}

/// `apply --yes` on a synthetic fleet under `load`: every policy right, each written once,
/// no error. Returns (calls answered, throttled).
fn apply_under(load: LoadRules) -> (u64, u64) {
    let synth = SynthFleet::start(&SynthSpec::new(4, &FLEET_REGIONS, 30));
    let fleet = synth.fleet().clone();
    let expected = fleet.expected_outcomes();
    synth.set_load(load);
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet_workspace(dir.path(), &FLEET_REGIONS);
    let apply = apply_json(&config, &synth.url(), dir.path());
    apply.assert_code(0);
    let outcomes = &apply.json()["summary"]["outcomes"];
    assert_eq!(outcomes["error"], 0, "{outcomes}");
    assert_eq!(outcomes["create"].as_u64(), Some(expected["create"]));
    assert_eq!(outcomes["update"].as_u64(), Some(expected["update"]));
    let check = fleet.verify(&synth.policies(), &synth.writes());
    assert!(check.correct(), "{check:?}");
    assert_eq!(check.redundant_writes, 0, "{check:?}");
    let throttled: u64 = synth.throttled().values().sum();
    (synth.total(), throttled)
}

#[test]
fn apply_meets_quotas_with_few_throttles() {
    // Per account-region: reads 20/s, puts 5/s, tag pages 5/s, a second of burst.
    let (calls, throttled) = apply_under(LoadRules::quotas(Quotas::default()));
    // Unpaced, about 60% of this fleet's calls are throttled; paced, 20 to 24%. With about
    // 15 writes per account-region, learning the quota (a flood of 16 throttles in 20
    // answers in the first account-region of a class, a few throttles in each other one
    // until the run's pool knows) is a large share of few calls; the benchmark's 4,000
    // repositories see 4 to 7%. A slower machine only makes fewer calls go over.
    println!("{throttled} of {calls} calls throttled");
    assert!(
        throttled * 3 <= calls,
        "{throttled} of {calls} calls throttled"
    );
}

#[test]
fn apply_rides_out_other_clients_throttling() {
    let (calls, throttled) = apply_under(LoadRules::random_throttle(30.0, 11));
    // The load was there: about 30% of ECR and tagging calls throttled, and retried.
    assert!(
        throttled * 5 >= calls,
        "{throttled} of {calls} calls throttled"
    );
}
