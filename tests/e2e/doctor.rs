//! `doctor` against moto behind the fault proxy: everything passes (exit 0, writes proven
//! without a write), a spoke role that cannot be assumed is named with its fix (exit 1), and
//! a missing permission in one account names account, region, action and fix (exit 1).

use serde_json::Value;

use crate::support::aws::{self, MANAGEMENT_ACCOUNT_ID};
use crate::support::cli::ecr_fleet;
use crate::support::fixtures::write_fleet_workspace;
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};

const REGION: &str = "us-east-1";

/// An organization of two members, each with one repository (no lifecycle policy) in
/// us-east-1, and a workspace whose config visits every account there.
async fn organization() -> (Moto, Vec<String>, tempfile::TempDir) {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    for member in &members {
        let cfg = aws::member_config(&moto.url(), REGION, member).await;
        aws::create_repo(&cfg, "team-a/service-api", &[]).await;
    }
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &[REGION]);
    (moto, members, dir)
}

fn doctor_json(proxy: &FaultProxy, dir: &std::path::Path, code: i32) -> Value {
    let out = ecr_fleet(
        &[
            "doctor",
            "--config",
            "ecr-fleet.toml",
            "--write-access",
            "--output",
            "json",
        ],
        &proxy.url(),
        dir,
    );
    out.assert_code(code);
    let doc: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", out.stdout, out.stderr));
    assert_eq!(doc["schema_version"], 1, "{doc:#}");
    doc
}

fn checks<'a>(doc: &'a Value, status: &str) -> Vec<&'a Value> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .collect()
}

fn has(doc: &Value, account: &str, action: &str, status: &str) -> bool {
    checks(doc, status)
        .iter()
        .any(|c| c["account_id"] == account && c["action"] == action)
}

#[tokio::test]
async fn doctor_passes_on_a_healthy_organization_and_writes_nothing() {
    let (moto, members, dir) = organization().await;
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let doc = doctor_json(&proxy, dir.path(), 0);
    assert!(checks(&doc, "fail").is_empty(), "{doc:#}");
    assert_eq!(doc["summary"]["failed"], 0, "{doc:#}");
    assert!(has(
        &doc,
        MANAGEMENT_ACCOUNT_ID,
        "sts:GetCallerIdentity",
        "pass"
    ));
    for member in &members {
        assert!(has(&doc, member, "sts:AssumeRole", "pass"), "{doc:#}");
        for action in [
            "ecr:DescribeRepositories",
            "tag:GetResources",
            "ecr:ListTagsForResource",
            "ecr:GetLifecyclePolicy",
            "ecr:DescribeRepositoryCreationTemplates",
            "ecr:PutLifecyclePolicy",
            "ecr:DeleteLifecyclePolicy",
        ] {
            assert!(
                has(&doc, member, action, "pass"),
                "{member} {action}: {doc:#}"
            );
        }
    }
    // The management account's own credentials: no role to assume, nothing to read on.
    assert!(has(&doc, MANAGEMENT_ACCOUNT_ID, "sts:AssumeRole", "skip"));
    assert!(has(
        &doc,
        MANAGEMENT_ACCOUNT_ID,
        "ecr:GetLifecyclePolicy",
        "skip"
    ));
    // Write access is proven without a write.
    assert!(proxy.count("ecr:PutLifecyclePolicy") >= 2);
    assert!(proxy.writes().is_empty(), "{:?}", proxy.writes());
    for member in &members {
        let cfg = aws::member_config(&moto.url(), REGION, member).await;
        assert_eq!(aws::list_repo_names(&cfg).await, ["team-a/service-api"]);
        assert_eq!(aws::get_policy(&cfg, "team-a/service-api").await, None);
    }

    // The table says the same, one row per check.
    let out = ecr_fleet(
        &["doctor", "--config", "ecr-fleet.toml"],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(0);
    assert!(
        out.stdout.contains("a run has what it needs"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("ecr:GetLifecyclePolicy"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn doctor_names_the_account_whose_role_cannot_be_assumed() {
    let (moto, members, dir) = organization().await;
    let denied = &members[0];
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            deny_assume_role: [denied.clone()].into(),
            ..FaultRules::default()
        },
    );
    let doc = doctor_json(&proxy, dir.path(), 1);
    let failures = checks(&doc, "fail");
    assert_eq!(failures.len(), 1, "{doc:#}");
    let row = failures[0];
    assert_eq!(row["account_id"], denied.as_str());
    assert_eq!(row["action"], "sts:AssumeRole");
    assert!(
        row["error"].as_str().unwrap().contains("AccessDenied"),
        "{row:#}"
    );
    let fix = row["fix"].as_str().unwrap();
    assert!(fix.contains("trust policy does not trust"), "{fix}");
    assert!(fix.contains("external id"), "{fix}");
    // The other member is checked as usual.
    assert!(
        has(&doc, &members[1], "ecr:GetLifecyclePolicy", "pass"),
        "{doc:#}"
    );

    let out = ecr_fleet(
        &["doctor", "--config", "ecr-fleet.toml"],
        &proxy.url(),
        dir.path(),
    );
    out.assert_code(1);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL "))
        .unwrap_or_else(|| panic!("no failure line:\n{}", out.stdout));
    assert!(
        line.starts_with(&format!("FAIL {denied} - sts:AssumeRole: ")),
        "{line}"
    );
}

#[tokio::test]
async fn doctor_names_a_missing_permission_with_account_region_action_and_fix() {
    let (moto, members, dir) = organization().await;
    let short = &members[1];
    let mut rules = FaultRules::default();
    rules
        .emulation
        .deny
        .push((short.clone(), "ecr:GetLifecyclePolicy".to_string()));
    let proxy = FaultProxy::start(&moto.url(), rules);
    let doc = doctor_json(&proxy, dir.path(), 1);
    let failures = checks(&doc, "fail");
    assert_eq!(failures.len(), 1, "{doc:#}");
    let row = failures[0];
    assert_eq!(row["account_id"], short.as_str());
    assert_eq!(row["region"], REGION);
    assert_eq!(row["action"], "ecr:GetLifecyclePolicy");
    assert!(
        row["error"]
            .as_str()
            .unwrap()
            .contains("AccessDeniedException"),
        "{row:#}"
    );
    assert!(
        row["fix"].as_str().unwrap().starts_with(
            "add ecr:GetLifecyclePolicy to the spoke role's policy (docs/iam/spoke-policy.json)"
        ),
        "{row:#}"
    );
    assert!(
        has(&doc, &members[0], "ecr:GetLifecyclePolicy", "pass"),
        "{doc:#}"
    );
    assert_eq!(doc["summary"]["accounts_failing"], 1);
}
