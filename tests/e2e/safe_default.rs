//! The safe default without a config file: plan says so on stderr naming the account and
//! region; `apply --yes` refuses before any AWS request unless `--use-builtin-default`; and
//! `ECR_FLEET_CONFIG` names the config when `--config` is not given.

use crate::support::aws::{self, MANAGEMENT_ACCOUNT_ID};
use crate::support::cli::{ecr_fleet, Cli};
use crate::support::fixtures::{CI_BUILDS_POLICY, CI_BUILDS_TEMPLATE};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};

const REGION: &str = "us-east-1";
const REPO: &str = "team/api";

/// moto with one repository without a policy in the caller's own account, behind the
/// counting proxy.
async fn one_repository() -> (Moto, FaultProxy) {
    let moto = Moto::start();
    let cfg = aws::sdk_config(&moto.url(), REGION).await;
    aws::create_repo(&cfg, REPO, &[]).await;
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    (moto, proxy)
}

fn builtin_text() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/untagged-cleanup.json"),
    )
    .unwrap()
}

#[tokio::test]
async fn without_a_config_plan_warns_and_apply_yes_refuses_without_a_request() {
    let (moto, proxy) = one_repository().await;
    let empty = tempfile::tempdir().unwrap();

    // plan: the built-in default on the caller's account, said at the default log level.
    let plan = ecr_fleet(&["plan", "--output", "json"], &proxy.url(), empty.path());
    plan.assert_code(3);
    assert_eq!(
        plan.json()["repositories"][0]["template"],
        "untagged-cleanup"
    );
    let warning = plan
        .stderr
        .lines()
        .find(|l| l.contains("no config file found"))
        .unwrap_or_else(|| panic!("no warning on stderr:\n{}", plan.stderr));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("account {MANAGEMENT_ACCOUNT_ID}")),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("region(s) {REGION}")),
        "{warning}"
    );
    assert!(warning.contains("ECR_FLEET_CONFIG"), "{warning}");

    // apply --yes: refused, exit 2, and not one request reaches AWS.
    proxy.reset_counts();
    let apply = ecr_fleet(&["apply", "--yes"], &proxy.url(), empty.path());
    apply.assert_code(2);
    assert!(
        apply.stderr.contains("no config file found"),
        "{}",
        apply.stderr
    );
    assert!(
        apply.stderr.contains("--use-builtin-default"),
        "{}",
        apply.stderr
    );
    assert!(
        apply.stderr.contains("nothing was changed"),
        "{}",
        apply.stderr
    );
    assert_eq!(proxy.total(), 0, "{:?}", proxy.counts());
    let cfg = aws::sdk_config(&moto.url(), REGION).await;
    assert_eq!(aws::get_policy(&cfg, REPO).await, None);

    // Asked for by name, the built-in default is written (and still announced).
    let apply = ecr_fleet(
        &[
            "apply",
            "--yes",
            "--use-builtin-default",
            "--output",
            "json",
        ],
        &proxy.url(),
        empty.path(),
    );
    apply.assert_code(0);
    assert_eq!(apply.json()["summary"]["applied"], 1);
    assert!(
        apply.stderr.contains("no config file found"),
        "{}",
        apply.stderr
    );
    assert_eq!(aws::get_policy(&cfg, REPO).await, Some(builtin_text()));
}

/// A workspace whose config sends every repository to the ci-builds template.
fn workspace(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join(format!("policies/{CI_BUILDS_TEMPLATE}.json")),
        CI_BUILDS_POLICY,
    )
    .unwrap();
    let config = dir.join("team.toml");
    std::fs::write(
        &config,
        format!(
            "regions = [\"{REGION}\"]\n[[match]]\ntemplate = \"{CI_BUILDS_TEMPLATE}\"\nnames = [\"*\"]\n"
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn ecr_fleet_config_names_the_config_and_lifts_the_refusal() {
    let (moto, proxy) = one_repository().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let config = workspace(elsewhere.path());
    let cwd = tempfile::tempdir().unwrap();
    let cli = Cli::new(&proxy.url(), cwd.path()).env("ECR_FLEET_CONFIG", &config);

    let apply = cli.run(&["apply", "--yes", "--output", "json", "--no-progress"]);
    apply.assert_code(0);
    let report = apply.json();
    assert_eq!(report["repositories"][0]["template"], CI_BUILDS_TEMPLATE);
    assert_eq!(report["summary"]["applied"], 1);
    assert!(
        !apply.stderr.contains("no config file found"),
        "{}",
        apply.stderr
    );
    let cfg = aws::sdk_config(&moto.url(), REGION).await;
    assert_eq!(
        aws::get_policy(&cfg, REPO).await.as_deref(),
        Some(CI_BUILDS_POLICY)
    );

    // --use-builtin-default beside a config file is a contradiction: exit 2, no request.
    proxy.reset_counts();
    let out = cli.run(&["apply", "--yes", "--use-builtin-default"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("a config file is in use"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("team.toml"), "{}", out.stderr);
    assert_eq!(proxy.total(), 0, "{:?}", proxy.counts());

    // --config wins over the environment.
    let out = cli.run(&["plan", "--config", "missing.toml"]);
    out.assert_code(2);
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
}
