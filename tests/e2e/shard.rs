//! `--shard K/N` and `report merge` against a moto organization: N shards cover every account
//! exactly once, and their merged report is the unsharded run's report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use crate::html::{assert_states_the_report, read_html};
use crate::junit::assert_matches_report;
use crate::support::aws::{self, FleetSpec, MANAGEMENT_ACCOUNT_ID};
use crate::support::cli::ecr_fleet;
use crate::support::fixtures::{keep_one_ci_workspace, write_fleet_workspace, FLEET_REGIONS};
use crate::support::junit::parse_junit;
use crate::support::moto::Moto;
use crate::support::proxy::emulate::Emulation;
use crate::support::proxy::{FaultProxy, FaultRules};

const SHARDS: u64 = 3;

fn accounts_of(report: &Value) -> BTreeSet<String> {
    report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["account_id"].as_str().unwrap().to_string())
        .collect()
}

/// The report without what a merge cannot reproduce, as documented: timing and API cost.
fn comparable(report: &Value) -> Value {
    let mut r = report.clone();
    let o = r.as_object_mut().unwrap();
    o.remove("started_at");
    o.remove("finished_at");
    let s = o["summary"].as_object_mut().unwrap();
    s.remove("api_calls");
    s.remove("api_retries");
    r
}

fn shard_of(account_id: &str) -> u64 {
    account_id.parse::<u64>().unwrap() % SHARDS + 1
}

#[tokio::test]
async fn shards_cover_every_account_once_and_merge_into_the_unsharded_report() {
    let moto = Moto::start();
    let mut spec = FleetSpec::new(6, &FLEET_REGIONS, 5);
    spec.suspended_members = 2;
    let fleet = aws::seed_fleet(&moto.url(), &spec).await;
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS);

    let full = ecr_fleet(
        &[
            "plan",
            "--output",
            "json",
            "--report",
            "full.json",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    full.assert_code(3);
    let full = full.json();
    assert_eq!(
        full["summary"]["accounts"],
        6 + 1,
        "members and the management account"
    );
    assert_eq!(full["summary"]["inactive_accounts"], 2);
    assert!(full.get("shard").is_none());

    let mut files = Vec::new();
    let mut covered: BTreeMap<String, u64> = BTreeMap::new();
    let mut accounts = 0;
    let mut inactive = 0;
    for k in 1..=SHARDS {
        let file = format!("shard-{k}.json");
        let out = ecr_fleet(
            &[
                "plan",
                "--shard",
                &format!("{k}/{SHARDS}"),
                "--output",
                "json",
                "--report",
                &file,
                "--no-progress",
            ],
            &proxy.url(),
            dir.path(),
        );
        let report = out.json();
        assert_eq!(report["shard"], format!("{k}/{SHARDS}"));
        let pending = report["summary"]["outcomes"]["create"].as_u64().unwrap() > 0;
        out.assert_code(if pending { 3 } else { 0 });
        for account in accounts_of(&report) {
            assert_eq!(shard_of(&account), k, "{account} is not shard {k}'s");
            assert!(
                covered.insert(account.clone(), k).is_none(),
                "{account} in two shards"
            );
        }
        // Every member of this shard, and only those, is counted: active or not.
        let members = fleet.members.iter().filter(|a| shard_of(a) == k).count()
            + usize::from(shard_of(MANAGEMENT_ACCOUNT_ID) == k);
        let suspended = fleet.suspended.iter().filter(|a| shard_of(a) == k).count();
        assert_eq!(report["summary"]["accounts"], members as u64, "shard {k}");
        assert_eq!(
            report["summary"]["inactive_accounts"], suspended as u64,
            "shard {k}"
        );
        accounts += report["summary"]["accounts"].as_u64().unwrap();
        inactive += report["summary"]["inactive_accounts"].as_u64().unwrap();
        files.push(file);
    }
    // Exactly once: every member with repositories, in the shard its id names.
    let members: BTreeSet<String> = fleet.members.iter().cloned().collect();
    assert_eq!(covered.keys().cloned().collect::<BTreeSet<_>>(), members);
    assert_eq!(accounts, 7);
    assert_eq!(inactive, 2);

    let mut args = vec!["report", "merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--report", "merged.json"]);
    args.extend(["--html", "merged.html", "--junit", "merged.xml"]);
    let merged = ecr_fleet(&args, &proxy.url(), dir.path());
    merged.assert_code(0);
    let merged_json = merged.json();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("merged.json")).unwrap(),
        merged.stdout
    );
    assert_eq!(comparable(&merged_json), comparable(&full));
    // The views of the merged report are the organization's: every count the page states and
    // every testcase is the merged report's, which is the unsharded run's.
    assert_states_the_report(&read_html(&dir.path().join("merged.html")), &merged_json);
    let junit = parse_junit(&dir.path().join("merged.xml"));
    assert_matches_report(&junit, &merged_json);
    // Any view on stdout, as a run prints it.
    args.truncate(2 + files.len());
    args.extend(["--output", "markdown"]);
    let markdown = ecr_fleet(&args, &proxy.url(), dir.path());
    markdown.assert_code(0);
    assert!(
        markdown.stdout.starts_with("# ecr-fleet plan\n"),
        "{}",
        markdown.stdout
    );
    let pending = full["summary"]["outcomes"]["create"].as_u64().unwrap();
    assert!(pending > 0);
    assert!(
        markdown.stdout.contains(&format!("| create | {pending} |")),
        "{}",
        markdown.stdout
    );
    // What differs, as documented: each shard lists the organization once.
    assert_eq!(
        merged_json["summary"]["api_calls"]["organizations:ListAccounts"],
        SHARDS
            * full["summary"]["api_calls"]["organizations:ListAccounts"]
                .as_u64()
                .unwrap()
    );
    // The merged report keeps the unsharded report's key order, so the two diff cleanly.
    let full_text = std::fs::read_to_string(dir.path().join("full.json")).unwrap();
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim_start().strip_prefix('"'))
            .filter_map(|l| l.split_once("\":").map(|(k, _)| k.to_string()))
            .collect()
    };
    assert_eq!(keys(&merged.stdout), keys(&full_text));

    // Overlapping inputs: the unsharded report covers every shard's account-regions.
    let out = ecr_fleet(
        &["report", "merge", "full.json", &files[0], &files[1]],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(2);
    assert!(out.stderr.contains("overlap"), "{}", out.stderr);
    assert!(
        out.stderr.contains("in full.json and shard-"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    // The same shard twice.
    let out = ecr_fleet(
        &["report", "merge", &files[0], &files[0]],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("shard 1/3 in shard-1.json and shard-1.json"),
        "{}",
        out.stderr
    );

    // Different commands.
    let audit = ecr_fleet(
        &[
            "audit",
            "--shard",
            "2/3",
            "--report",
            "audit-2.json",
            "--no-progress",
        ],
        &proxy.url(),
        dir.path(),
    );
    assert!(audit.code == 0 || audit.code == 3, "{}", audit.stderr);
    let out = ecr_fleet(
        &["report", "merge", &files[0], "audit-2.json", &files[2]],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(2);
    assert!(
        out.stderr
            .contains(r#"command: "plan" in shard-1.json, "audit" in audit-2.json"#),
        "{}",
        out.stderr
    );

    // A mistyped --accounts id is reported by the one shard its number falls in, so the
    // shards' reports still merge.
    let mut typo_files = Vec::new();
    for k in 1..=SHARDS {
        let file = format!("typo-{k}.json");
        let out = ecr_fleet(
            &[
                "plan",
                "--shard",
                &format!("{k}/{SHARDS}"),
                "--accounts",
                "999999999999",
                "--output",
                "json",
                "--report",
                &file,
                "--no-progress",
            ],
            &proxy.url(),
            dir.path(),
        );
        let report = out.json();
        let owner = k == shard_of("999999999999");
        out.assert_code(if owner { 1 } else { 0 });
        assert_eq!(
            report["skipped"].as_array().unwrap().len(),
            usize::from(owner),
            "shard {k}"
        );
        typo_files.push(file);
    }
    let mut args = vec!["report", "merge"];
    args.extend(typo_files.iter().map(String::as_str));
    let merged = ecr_fleet(&args, &proxy.url(), dir.path());
    merged.assert_code(0);
    assert_eq!(merged.json()["skipped"][0]["account_id"], "999999999999");
}

/// With `regions = "enabled"`, shards whose accounts enabled different opt-in regions visit
/// different regions; the merged report counts their union, as the unsharded run does.
#[tokio::test]
async fn shards_visiting_different_regions_merge_into_the_unsharded_report() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    let opted = [(&members[0], "af-south-1"), (&members[1], "eu-south-1")];
    for (account, region) in opted {
        let cfg = aws::member_config(&moto.url(), region, account).await;
        aws::create_repo(&cfg, &format!("team-1/{region}"), &[]).await;
    }
    // A shard count that puts the two members in different shards.
    let shards = (2..)
        .find(|n| shard_in(&members[0], *n) != shard_in(&members[1], *n))
        .unwrap();
    let opt_in = opted.map(|(a, r)| (a.clone(), vec![r.to_string()]));
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            emulation: Emulation {
                opt_in: HashMap::from(opt_in),
                ..Emulation::default()
            },
            ..FaultRules::default()
        },
    );
    let dir = keep_one_ci_workspace(
        "regions = \"enabled\"\n[accounts]\nsource = \"organization\"\n",
        "team-*",
    );
    let run = |args: &[&str]| ecr_fleet(args, &proxy.url(), dir.path());

    let full = run(&["plan", "--output", "json", "--no-progress"]);
    full.assert_code(3);
    let full = full.json();
    // 17 default regions, and each member's own opt-in region.
    assert_eq!(full["summary"]["regions"], 19);
    let mut files = Vec::new();
    for k in 1..=shards {
        let file = format!("shard-{k}.json");
        let shard = format!("{k}/{shards}");
        let out = run(&[
            "plan",
            "--shard",
            &shard,
            "--report",
            &file,
            "--no-progress",
        ]);
        assert!(out.code == 0 || out.code == 3, "{}", out.stderr);
        files.push(file);
    }
    let mut args = vec!["report", "merge"];
    args.extend(files.iter().map(String::as_str));
    let merged = run(&args);
    merged.assert_code(0);
    let merged = merged.json();
    assert_eq!(
        merged["summary"]["regions"], 19,
        "the union, not a sum or a maximum"
    );
    assert_eq!(comparable(&merged), comparable(&full));
}

fn shard_in(account_id: &str, shards: u64) -> u64 {
    account_id.parse::<u64>().unwrap() % shards
}

#[test]
fn an_invalid_shard_is_refused_before_any_aws_call() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS);
    for (shard, why) in [
        ("0/3", "K must be between 1 and N"),
        ("4/3", "K must be between 1 and N"),
        ("1/0", "N must be at least 1"),
        ("1-3", "not K/N"),
    ] {
        let out = ecr_fleet(&["plan", "--shard", shard], &proxy.url(), dir.path());
        out.assert_code(2);
        assert!(out.stderr.contains(why), "{shard}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("'{shard}'")),
            "{shard}: {}",
            out.stderr
        );
    }
    assert_eq!(proxy.total(), 0, "{:?}", proxy.counts());
}
