//! plan / apply / restore end to end: the built binary against moto, through the counting
//! (and, where a test needs it, fault-injecting) proxy.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::Value;

use crate::support::aws::{self, FleetSpec, RepoKind};
use crate::support::cli::{ecr_fleet, row, Cli};
use crate::support::fixtures::{
    write_fleet_workspace, CI_BUILDS_POLICY, EXEMPT_TAG, FLEET_REGIONS, OUTDATED_POLICY,
};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};

/// Outcome of every repository of a report, keyed `account/region/name`.
fn outcomes(report: &Value) -> BTreeMap<String, String> {
    report["repositories"]
        .as_array()
        .expect("repositories array")
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}/{}",
                    r["account_id"].as_str().unwrap(),
                    r["region"].as_str().unwrap(),
                    r["repository"].as_str().unwrap()
                ),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn api_calls(report: &Value, op: &str) -> u64 {
    report["summary"]["api_calls"][op].as_u64().unwrap_or(0)
}

/// A workspace whose config manages `team-1/*` in us-east-1 with the ci-builds template.
fn team_one_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        "regions = [\"us-east-1\"]\n[[match]]\ntemplate = \"ci-builds\"\nnames = [\"team-1/*\"]\n",
    )
    .unwrap();
    dir
}

/// The records of a write-ahead journal (JSON Lines).
fn read_journal(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn semantically_same(a: &str, b: &str) -> bool {
    ecr_lifecycle::semantically_equal(a, b)
}

#[tokio::test]
async fn plan_apply_and_converge_across_accounts_and_regions() {
    let moto = Moto::start();
    let spec = FleetSpec::new(3, &FLEET_REGIONS, 10);
    let fleet = aws::seed_fleet(&moto.url(), &spec).await;
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS);

    // plan: every seeded repository gets the outcome its kind implies; exit 3 = changes pending.
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(3);
    let report = plan.json();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["command"], "plan");
    let got = outcomes(&report);
    let want: BTreeMap<String, String> = fleet
        .active_repos()
        .map(|r| {
            (
                format!("{}/{}/{}", r.account_id, r.region, r.name),
                r.kind.expected_outcome().to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let summary = &report["summary"];
    assert_eq!(summary["accounts"], 4, "3 members + the management account");
    assert_eq!(summary["regions"], 2);
    assert_eq!(summary["outcomes"]["create"], 3 * 2 * 3);
    assert_eq!(summary["outcomes"]["update"], 3 * 2 * 2);
    assert_eq!(summary["outcomes"]["unchanged"], 3 * 2 * 3);
    assert_eq!(summary["outcomes"]["excluded"], 3 * 2);
    assert_eq!(summary["outcomes"]["unmatched"], 3 * 2);
    // Nothing read that the plan cannot use: policies only of managed repositories.
    assert_eq!(api_calls(&report, "ecr:GetLifecyclePolicy"), 3 * 2 * 8);
    assert_eq!(proxy.count("ecr:PutLifecyclePolicy"), 0);
    // The report's own counters agree with what crossed the wire.
    for op in [
        "ecr:ListTagsForResource",
        "ecr:GetLifecyclePolicy",
        "sts:AssumeRole",
    ] {
        assert_eq!(api_calls(&report, op), proxy.count(op), "{op}");
    }
    // Sorted by account, region, name.
    let keys: Vec<&String> = got.keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // Diffs for create and update only.
    for r in report["repositories"].as_array().unwrap() {
        let has_diff = !r["diff"].is_null();
        let writes = matches!(r["outcome"].as_str(), Some("create" | "update"));
        assert_eq!(has_diff, writes, "{r}");
    }

    // apply: writes exactly the create and update repositories, backup first.
    let apply = ecr_fleet(
        &["apply", "--yes", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    apply.assert_code(0);
    let report = apply.json();
    assert_eq!(report["summary"]["applied"], 3 * 2 * 5);
    assert_eq!(proxy.count("ecr:PutLifecyclePolicy"), 3 * 2 * 5);
    let backup_file = report["backup_file"]
        .as_str()
        .expect("backup file named")
        .to_string();
    assert!(backup_file.ends_with(".jsonl"), "{backup_file}");
    let journal = read_journal(&dir.path().join(&backup_file));
    assert_eq!(journal[0]["record"], "run");
    assert_eq!(journal[0]["backup_version"], 2);
    assert_eq!(journal[0]["role_name"], "EcrFleetSpoke");
    assert_eq!(journal[0]["external_id_used"], false);
    let intents: Vec<&Value> = journal.iter().filter(|r| r["record"] == "intent").collect();
    assert_eq!(intents.len(), 3 * 2 * 5);
    // Every intent has a "written" outcome after it.
    for intent in &intents {
        let at = journal.iter().position(|r| r == *intent).unwrap();
        let outcome = journal[at..]
            .iter()
            .find(|r| {
                r["record"] == "outcome"
                    && r["repository"] == intent["repository"]
                    && r["account_id"] == intent["account_id"]
                    && r["region"] == intent["region"]
            })
            .expect("an outcome after the intent");
        assert_eq!(outcome["result"], "written", "{outcome}");
    }
    // The streaming apply reads each policy once and re-reads only the exception tag before
    // a write: tag pages + one GetLifecyclePolicy per managed repository + two calls a write.
    assert_eq!(api_calls(&report, "ecr:GetLifecyclePolicy"), 3 * 2 * 8);
    assert_eq!(api_calls(&report, "ecr:ListTagsForResource"), 3 * 2 * 5);
    assert_eq!(api_calls(&report, "tagging:GetResources"), 3 * 2);

    // Read every policy back from moto.
    for repo in fleet.active_repos() {
        let cfg = aws::member_config(&moto.url(), &repo.region, &repo.account_id).await;
        let now = aws::get_policy(&cfg, &repo.name).await;
        match repo.kind {
            RepoKind::Missing | RepoKind::Outdated => {
                assert_eq!(now.as_deref(), Some(CI_BUILDS_POLICY), "{}", repo.name)
            }
            // Untouched, byte for byte.
            RepoKind::Current | RepoKind::Exempt | RepoKind::Unmatched => {
                assert_eq!(now, repo.policy, "{}", repo.name)
            }
        }
    }
    // The journal holds what was there before.
    for e in &intents {
        let seeded = fleet
            .active_repos()
            .find(|r| {
                r.account_id == e["account_id"]
                    && r.region == e["region"]
                    && r.name == e["repository"]
            })
            .expect("backup entry for a seeded repository");
        assert_eq!(e["previous_policy"].as_str(), seeded.policy.as_deref());
        assert_eq!(e["new_policy"].as_str(), Some(CI_BUILDS_POLICY));
    }

    // Converged: a second apply writes nothing and a plan finds nothing pending.
    proxy.reset_counts();
    let again = ecr_fleet(
        &["apply", "--yes", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    again.assert_code(0);
    assert_eq!(proxy.count("ecr:PutLifecyclePolicy"), 0);
    assert_eq!(again.json()["summary"]["applied"], 0);
    assert!(
        again.json()["backup_file"].is_null(),
        "no backup when nothing is written"
    );
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(0);
    assert_eq!(plan.json()["summary"]["outcomes"]["unchanged"], 3 * 2 * 8);

    // restore puts back exactly what apply replaced, and removes what it created.
    let restore = ecr_fleet(
        &[
            "restore",
            "--backup",
            &backup_file,
            "--yes",
            "--output",
            "json",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    restore.assert_code(0);
    assert_eq!(restore.json()["summary"]["applied"], 3 * 2 * 5);
    for repo in fleet.active_repos() {
        let cfg = aws::member_config(&moto.url(), &repo.region, &repo.account_id).await;
        assert_eq!(
            aws::get_policy(&cfg, &repo.name).await,
            repo.policy,
            "{}",
            repo.name
        );
    }
}

#[tokio::test]
async fn restore_leaves_a_repository_changed_since_the_apply_alone() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 1).await;
    let cfg = aws::member_config(&moto.url(), "us-east-1", &members[0]).await;
    aws::create_repo(&cfg, "team-1/service-1", &[]).await;
    aws::create_repo(&cfg, "team-1/service-2", &[]).await;
    aws::put_policy(&cfg, "team-1/service-2", OUTDATED_POLICY).await;
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    let apply = ecr_fleet(
        &["apply", "--yes", "--output", "json", "--backup", "b.json"],
        &moto.url(),
        dir.path(),
    );
    apply.assert_code(0);
    // Someone edits service-2 after the apply.
    let hand_edit = OUTDATED_POLICY.replace("14", "21");
    aws::put_policy(&cfg, "team-1/service-2", &hand_edit).await;
    let restore = ecr_fleet(
        &["restore", "--backup", "b.json", "--yes", "--output", "json"],
        &moto.url(),
        dir.path(),
    );
    restore.assert_code(1);
    let report = restore.json();
    let conflict = row(&report, "team-1/service-2");
    assert_eq!(conflict["outcome"], "error");
    assert!(conflict["error"].as_str().unwrap().contains("conflict"));
    assert_eq!(
        aws::get_policy(&cfg, "team-1/service-2").await.as_deref(),
        Some(hand_edit.as_str())
    );
    // The other one was restored (its created policy deleted).
    assert_eq!(aws::get_policy(&cfg, "team-1/service-1").await, None);
}

#[tokio::test]
async fn an_equivalent_policy_written_differently_is_unchanged() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    aws::create_repo(&mgmt, "team-1/service-1", &[]).await;
    // Rules in another order, keys in another order, tag lists reordered, spaces everywhere.
    let mut value: Value = serde_json::from_str(CI_BUILDS_POLICY).unwrap();
    let rules = value["rules"].as_array_mut().unwrap();
    rules.reverse();
    for rule in rules.iter_mut() {
        // get_mut: indexing a missing key mutably would insert a null.
        if let Some(list) = rule
            .pointer_mut("/selection/tagPrefixList")
            .and_then(Value::as_array_mut)
        {
            list.reverse();
        }
    }
    let reordered = serde_json::to_string_pretty(&value)
        .unwrap()
        .replace("\n", "\n   ");
    assert!(semantically_same(&reordered, CI_BUILDS_POLICY));
    aws::put_policy(&mgmt, "team-1/service-1", &reordered).await;
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        "regions = [\"us-east-1\"]\n[[match]]\ntemplate = \"ci-builds\"\nnames = [\"team-*/*\"]\n",
    )
    .unwrap();
    let plan = ecr_fleet(&["plan", "--output", "json"], &moto.url(), dir.path());
    plan.assert_code(0);
    assert_eq!(
        outcomes(&plan.json())["123456789012/us-east-1/team-1/service-1"],
        "unchanged"
    );
}

#[tokio::test]
async fn denied_assume_role_skips_that_account_only() {
    let moto = Moto::start();
    let fleet = aws::seed_fleet(&moto.url(), &FleetSpec::new(2, &["us-east-1"], 4)).await;
    let denied = fleet.members[0].clone();
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            deny_assume_role: HashSet::from([denied.clone()]),
            ..FaultRules::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    let plan = ecr_fleet(&["plan", "--output", "json"], &proxy.url(), dir.path());
    plan.assert_code(1);
    let report = plan.json();
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["account_id"], denied.as_str());
    assert!(skipped[0]["region"].is_null());
    assert!(
        skipped[0]["error"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{}",
        skipped[0]
    );
    // The other member was planned in full.
    let other = &fleet.members[1];
    let planned = outcomes(&report)
        .keys()
        .filter(|k| k.starts_with(other.as_str()))
        .count();
    assert_eq!(planned, 4);
    assert!(!outcomes(&report)
        .keys()
        .any(|k| k.starts_with(denied.as_str())));
    // The table view names it too.
    let table = ecr_fleet(&["plan", "--no-progress"], &proxy.url(), dir.path());
    table.assert_code(1);
    assert!(
        table.stdout.contains(&format!(
            "{denied} (all regions): sts:AssumeRole: AccessDenied: "
        )),
        "{}",
        table.stdout
    );
}

#[tokio::test]
async fn describe_repositories_is_paged_through() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    for i in 0..7 {
        aws::create_repo(&mgmt, &format!("team-1/service-{i}"), &[]).await;
    }
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            page_size: Some(2),
            ..FaultRules::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        "regions = [\"us-east-1\"]\n[[match]]\ntemplate = \"ci-builds\"\nnames = [\"*\"]\n",
    )
    .unwrap();
    let plan = ecr_fleet(&["plan", "--output", "json"], &proxy.url(), dir.path());
    plan.assert_code(3);
    let report = plan.json();
    assert_eq!(report["summary"]["repositories"], 7);
    assert_eq!(report["summary"]["outcomes"]["create"], 7);
    assert_eq!(proxy.count("ecr:DescribeRepositories"), 4);
    assert_eq!(api_calls(&report, "ecr:DescribeRepositories"), 4);
}

#[tokio::test]
async fn throttling_is_retried_and_a_failing_write_does_not_stop_the_others() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    for i in 0..5 {
        aws::create_repo(&mgmt, &format!("team-1/service-{i}"), &[]).await;
    }
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            throttle: [("ecr:PutLifecyclePolicy".to_string(), 3)].into(),
            fail_put_for_repos: HashSet::from(["team-1/service-2".to_string()]),
            ..FaultRules::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        "regions = [\"us-east-1\"]\n[execution]\nmax_attempts = 4\nretry_mode = \"standard\"\n\
         [[match]]\ntemplate = \"ci-builds\"\nnames = [\"team-1/*\"]\n",
    )
    .unwrap();
    let apply = ecr_fleet(
        &["apply", "--yes", "--output", "json"],
        &proxy.url(),
        dir.path(),
    );
    apply.assert_code(1);
    let report = apply.json();
    let got = outcomes(&report);
    assert_eq!(got["123456789012/us-east-1/team-1/service-2"], "error");
    let failed = row(&report, "team-1/service-2");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("ServerException"),
        "{failed}"
    );
    assert_eq!(failed["applied"], false);
    assert_eq!(report["summary"]["applied"], 4);
    assert!(report["summary"]["api_retries"].as_u64().unwrap() >= 3);
    for i in [0, 1, 3, 4] {
        let name = format!("team-1/service-{i}");
        assert_eq!(
            aws::get_policy(&mgmt, &name).await.as_deref(),
            Some(CI_BUILDS_POLICY),
            "{name}"
        );
    }
    assert_eq!(aws::get_policy(&mgmt, "team-1/service-2").await, None);
}

#[tokio::test]
async fn organizational_units_inactive_accounts_and_exclusions() {
    let moto = Moto::start();
    let url = moto.url();
    let members = aws::create_organization_with_members(&url, 4).await;
    let root = aws::root_id(&url).await;
    let ou = aws::create_ou(&url, &root, "workloads").await;
    let nested = aws::create_ou(&url, &ou, "prod").await;
    aws::move_account(&url, &members[0], &ou).await;
    aws::move_account(&url, &members[1], &nested).await;
    aws::move_account(&url, &members[2], &nested).await;
    for m in &members {
        let cfg = aws::member_config(&url, "us-east-1", m).await;
        aws::create_repo(&cfg, "team-1/service-1", &[]).await;
    }
    aws::close_account(&url, &members[2]).await;
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        format!(
            "regions = [\"us-east-1\"]\n[accounts]\nsource = \"organization\"\norganizational_units = [\"{ou}\"]\n\
             exclude = [\"{}\"]\n[[match]]\ntemplate = \"ci-builds\"\nnames = [\"*\"]\n",
            members[0]
        ),
    )
    .unwrap();
    let plan = ecr_fleet(&["plan", "--output", "json"], &url, dir.path());
    plan.assert_code(3);
    let report = plan.json();
    // Only members[1]: members[0] excluded, members[2] closed, members[3] outside the OU.
    let accounts: HashSet<&str> = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(accounts, HashSet::from([members[1].as_str()]));
    assert_eq!(report["summary"]["inactive_accounts"], 1);
    assert_eq!(report["summary"]["accounts"], 1);
}

#[tokio::test]
async fn builtin_default_plans_the_current_account_without_a_config() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "eu-west-1").await;
    aws::create_repo(&mgmt, "anything/at-all", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = Cli::new(&moto.url(), dir.path())
        .env("AWS_REGION", "eu-west-1")
        .run(&["plan", "--output", "json", "-vv"]);
    plan.assert_code(3);
    // Logs go to stderr; stdout stays pure JSON.
    let report = plan.json();
    assert!(plan.stderr.contains("caller"), "{}", plan.stderr);
    assert_eq!(report["summary"]["accounts"], 1);
    let row = &report["repositories"][0];
    assert_eq!(row["region"], "eu-west-1");
    assert_eq!(row["template"], "untagged-cleanup");
    assert_eq!(row["outcome"], "create");
    // The human view and the markdown view render the same run.
    let table = Cli::new(&moto.url(), dir.path())
        .env("AWS_REGION", "eu-west-1")
        .run(&["plan"]);
    table.assert_code(3);
    assert!(table.stdout.contains("anything/at-all"), "{}", table.stdout);
    assert!(table.stdout.contains("1 create"), "{}", table.stdout);
    let md = Cli::new(&moto.url(), dir.path())
        .env("AWS_REGION", "eu-west-1")
        .run(&["plan", "--output", "markdown", "--report", "r.json"]);
    md.assert_code(3);
    assert!(md.stdout.contains("| create | 1 |"), "{}", md.stdout);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(saved["summary"]["outcomes"]["create"], 1);
}

/// Bad input exits 2 and makes no AWS call at all.
#[test]
fn bad_input_exits_2_before_any_aws_call() {
    let proxy = FaultProxy::start("http://127.0.0.1:9", FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    let run = |args: &[&str]| ecr_fleet(args, &proxy.url(), dir.path());

    let out = run(&["apply"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);

    let cases: [(&str, &str); 5] = [
        ("bad-key.toml", "regions = [\"us-east-1\"]\nsurprise = 1\n"),
        ("bad-glob.toml", "[[match]]\ntemplate = \"ci-builds\"\nnames = [\"a[\"]\n"),
        ("bad-id.toml", "[accounts]\nsource = \"list\"\nids = [\"1234\"]\n[[match]]\ntemplate = \"ci-builds\"\nnames = [\"*\"]\n"),
        ("no-template.toml", "[[match]]\ntemplate = \"missing\"\nnames = [\"*\"]\n"),
        ("empty-regions.toml", "regions = []\n[[match]]\ntemplate = \"ci-builds\"\nnames = [\"*\"]\n"),
    ];
    for (file, text) in cases {
        std::fs::write(dir.path().join(file), text).unwrap();
        let out = run(&["plan", "--config", file]);
        out.assert_code(2);
        let line = out.stderr.trim();
        assert!(line.starts_with(&format!("error: {file}:")), "{line}");
        assert_eq!(line.lines().count(), 1, "{line}");
    }
    let out = run(&["plan", "--config", "nowhere.toml"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("nowhere.toml: cannot read config"),
        "{}",
        out.stderr
    );
    let out = run(&["plan", "--accounts", "12345"]);
    out.assert_code(2);
    let out = run(&["plan", "--regions", "mars-1"]);
    out.assert_code(2);
    let out = run(&["plan", "--repositories", "[z"]);
    out.assert_code(2);
    let out = run(&["audit", "--price-per-gb-month=-1"]);
    out.assert_code(2);
    std::fs::write(dir.path().join("policies/broken.json"), "{\"rules\": [").unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        "[[match]]\ntemplate = \"broken\"\nnames = [\"*\"]\n",
    )
    .unwrap();
    let out = run(&["plan", "--config", "broken.toml"]);
    out.assert_code(2);
    assert!(out.stderr.contains("broken.json:1:"), "{}", out.stderr);
    let out = run(&["restore", "--backup", "missing.json", "--yes"]);
    out.assert_code(2);
    let out = run(&["frobnicate"]);
    out.assert_code(2);
    assert_eq!(
        proxy.total(),
        0,
        "bad input must not reach AWS: {:?}",
        proxy.counts()
    );
}

#[test]
fn exempt_tag_on_a_repository_is_never_written() {
    // Covered at fleet scale above; here the exception value is configured.
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    rt.block_on(async {
        let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
        aws::create_repo(&mgmt, "team-1/a", &[(EXEMPT_TAG, "true")]).await;
        aws::create_repo(&mgmt, "team-1/b", &[(EXEMPT_TAG, "false")]).await;
    });
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        format!(
            "regions = [\"us-east-1\"]\n[exception]\ntag = \"{EXEMPT_TAG}\"\nvalue = \"true\"\n\
             [[match]]\ntemplate = \"ci-builds\"\nnames = [\"*\"]\n"
        ),
    )
    .unwrap();
    let apply = ecr_fleet(
        &["apply", "--yes", "--output", "json"],
        &moto.url(),
        dir.path(),
    );
    apply.assert_code(0);
    let got = outcomes(&apply.json());
    assert_eq!(got["123456789012/us-east-1/team-1/a"], "excluded");
    assert_eq!(got["123456789012/us-east-1/team-1/b"], "create");
    rt.block_on(async {
        let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
        assert_eq!(aws::get_policy(&mgmt, "team-1/a").await, None);
        assert!(aws::get_policy(&mgmt, "team-1/b").await.is_some());
    });
}

/// The exception tag is read again just before each write: a tag added between the plan and
/// the write wins, and the repository is left alone.
#[tokio::test]
async fn exception_tag_the_tagging_api_does_not_show_yet_stops_the_write() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    aws::create_repo(&mgmt, "team-1/service-1", &[]).await;
    aws::create_repo(&mgmt, "team-1/service-2", &[]).await;
    // The tagging API is eventually consistent: it keeps answering with what it saw first.
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            cache_tag_snapshots: true,
            ..FaultRules::default()
        },
    );
    let dir = team_one_workspace();
    ecr_fleet(&["plan", "--output", "json"], &proxy.url(), dir.path()).assert_code(3);
    // An owner opts service-1 out; GetResources does not show it yet.
    aws::tag_repo(&mgmt, "team-1/service-1", &[(EXEMPT_TAG, "true")]).await;
    let apply = ecr_fleet(
        &["apply", "--yes", "--output", "json"],
        &proxy.url(),
        dir.path(),
    );
    apply.assert_code(0);
    let got = outcomes(&apply.json());
    assert_eq!(got["123456789012/us-east-1/team-1/service-1"], "excluded");
    assert_eq!(got["123456789012/us-east-1/team-1/service-2"], "create");
    assert_eq!(proxy.count("ecr:PutLifecyclePolicy"), 1);
    assert_eq!(aws::get_policy(&mgmt, "team-1/service-1").await, None);
    assert!(aws::get_policy(&mgmt, "team-1/service-2").await.is_some());
}

/// --accounts, --regions and --repositories narrow a run.
#[tokio::test]
async fn narrowing_options_limit_the_run() {
    let moto = Moto::start();
    let fleet = aws::seed_fleet(&moto.url(), &FleetSpec::new(2, &FLEET_REGIONS, 10)).await;
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS);
    let only = fleet.members[1].as_str();
    let plan = ecr_fleet(
        &[
            "plan",
            "--output",
            "json",
            "--accounts",
            only,
            "--regions",
            "eu-west-1",
            "--repositories",
            "team-*/service-[0-4]",
        ],
        &moto.url(),
        dir.path(),
    );
    plan.assert_code(3);
    let report = plan.json();
    let got = outcomes(&report);
    let mut want: Vec<String> = fleet
        .active_repos()
        .filter(|r| r.account_id == only && r.region == "eu-west-1")
        .filter(|r| {
            r.name.starts_with("team-")
                && [
                    "service-0",
                    "service-1",
                    "service-2",
                    "service-3",
                    "service-4",
                ]
                .iter()
                .any(|s| r.name.ends_with(&format!("/{s}")))
        })
        .map(|r| format!("{}/{}/{}", r.account_id, r.region, r.name))
        .collect();
    want.sort();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), want);
    assert_eq!(got.len(), 5);
    assert_eq!(report["summary"]["accounts"], 1);
    assert_eq!(report["summary"]["regions"], 1);
    assert_eq!(api_calls(&report, "sts:AssumeRole"), 1);
}

/// A policy changed by someone else between the plan and the write is not overwritten: the
/// backup would otherwise hold a "previous" policy that was no longer there.
#[tokio::test]
async fn a_policy_changed_after_the_plan_is_a_conflict_not_overwritten() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    aws::create_repo(&mgmt, "team-1/service-1", &[]).await;
    aws::create_repo(&mgmt, "team-1/service-2", &[]).await;
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            policy_after_first_read: [(
                "team-1/service-1".to_string(),
                OUTDATED_POLICY.to_string(),
            )]
            .into(),
            ..FaultRules::default()
        },
    );
    let dir = team_one_workspace();
    // Interactive apply: plan, confirm at the prompt, then re-read and write.
    let apply = Cli::new(&proxy.url(), dir.path()).run_on_terminal(
        &["apply", "--no-progress", "--report", "report.json"],
        "yes\n",
    );
    assert_eq!(apply.code, 1, "{}", apply.stdout);
    assert!(
        apply.stdout.contains("Write 2 lifecycle polic"),
        "{}",
        apply.stdout
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let conflict = row(&report, "team-1/service-1");
    assert_eq!(conflict["outcome"], "error");
    assert_eq!(conflict["applied"], false);
    assert!(
        conflict["error"]
            .as_str()
            .unwrap()
            .contains("changed since the plan"),
        "{conflict}"
    );
    assert_eq!(proxy.count("ecr:PutLifecyclePolicy"), 1);
    assert_eq!(aws::get_policy(&mgmt, "team-1/service-1").await, None);
    assert!(aws::get_policy(&mgmt, "team-1/service-2").await.is_some());
}

/// A mistyped --accounts id is a skipped target (exit 1), never an empty successful run; an
/// unwritable --report path is bad input caught before any AWS call.
#[tokio::test]
async fn mistyped_accounts_and_report_paths_are_reported() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &["us-east-1"]);
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--accounts", "999999999999"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(1);
    let report = plan.json();
    assert_eq!(report["skipped"][0]["account_id"], "999999999999");
    assert!(report["skipped"][0]["error"]
        .as_str()
        .unwrap()
        .contains("not part of this run"));

    proxy.reset_counts();
    let out = ecr_fleet(
        &["plan", "--report", "no/such/dir/r.json"],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(2);
    assert!(out.stderr.contains("--report"), "{}", out.stderr);
    std::fs::write(dir.path().join("taken.json"), "{}").unwrap();
    let out = ecr_fleet(
        &["apply", "--yes", "--backup", "taken.json"],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(2);
    assert!(out.stderr.contains("never overwritten"), "{}", out.stderr);
    assert_eq!(proxy.total(), 0, "{:?}", proxy.counts());
}

/// Ctrl-C during apply: the writes in flight finish, no new one starts, and the report still
/// says what was written and what was not (exit 1).
#[tokio::test]
async fn interrupting_apply_reports_what_was_written() {
    let moto = Moto::start();
    let mgmt = aws::sdk_config(&moto.url(), "us-east-1").await;
    for i in 0..8 {
        aws::create_repo(&mgmt, &format!("team-1/service-{i}"), &[]).await;
    }
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules::slow_puts(std::time::Duration::from_millis(700)),
    );
    let dir = team_one_workspace();
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        "regions = [\"us-east-1\"]\n[execution]\nper_region_concurrency = 1\n\
         [[match]]\ntemplate = \"ci-builds\"\nnames = [\"team-1/*\"]\n",
    )
    .unwrap();
    // Ctrl-C once the first write is under way.
    let out = Cli::new(&proxy.url(), dir.path()).run_and_signal(
        &["apply", "--yes", "--output", "json"],
        "INT",
        || proxy.count("ecr:PutLifecyclePolicy") > 0,
    );
    out.assert_code(1);
    assert!(out.stderr.contains("interrupted"), "{}", out.stderr);
    let report = out.json();
    let rows = report["repositories"].as_array().unwrap();
    let written = rows.iter().filter(|r| r["applied"] == true).count();
    // A repository not written was stopped before its write or, when the stop came first,
    // before its policy read (the run streams: reads and writes interleave); either way the
    // report says it was interrupted.
    let stopped = rows
        .iter()
        .filter(|r| {
            r["error"] == "not written: interrupted"
                || r["error"] == "ecr:GetLifecyclePolicy: not started: interrupted"
        })
        .count();
    assert!(written >= 1, "the write in flight completes: {report}");
    assert!(stopped >= 1, "later calls are not started: {report}");
    assert_eq!(written + stopped, 8, "{report}");
    // Exactly the rows reported as applied hold the template.
    for r in rows {
        let now = aws::get_policy(&mgmt, r["repository"].as_str().unwrap()).await;
        assert_eq!(now.is_some(), r["applied"] == true, "{r}");
    }
    assert!(report["backup_file"].is_string());
}
