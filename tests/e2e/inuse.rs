//! In use, unused images, whole-organization audit and enabled regions, end to end: ECS and
//! Lambda from moto, Inspector coverage, ListRegions, Lambda digests and image times from the
//! proxy's emulation (moto lacks them).

use std::collections::HashMap;

use aws_config::SdkConfig;
use serde_json::Value;

use crate::support::aws;
use crate::support::cli::{ecr_fleet, row};
use crate::support::fixtures::{keep_one_ci_workspace, KEEP_ONE_CI};
use crate::support::moto::Moto;
use crate::support::proxy::emulate::{Coverage, Emulation};
use crate::support::proxy::{FaultProxy, FaultRules};

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A workspace managing `team-*` with keep-one-ci across the organization; `extra` goes
/// before the `[[match]]` (e.g. `[safety]`), `regions` is the TOML value of `regions`.
fn workspace(regions: &str, extra: &str) -> tempfile::TempDir {
    keep_one_ci_workspace(
        &format!("regions = {regions}\n[accounts]\nsource = \"organization\"\n{extra}"),
        "team-*",
    )
}

fn uri(account: &str, repo: &str, reference: &str) -> String {
    format!("{account}.dkr.ecr.us-east-1.amazonaws.com/{repo}{reference}")
}

/// Pushes ci-1, ci-2, ci-3 (pushed 30, 20 and 10 days ago through the proxy's image times);
/// returns their digests. keep-one-ci expires ci-1 and ci-2.
async fn push_ci_builds(
    cfg: &SdkConfig,
    repo: &str,
    times: &mut HashMap<String, (Option<i64>, Option<i64>)>,
) -> Vec<String> {
    let mut digests = Vec::new();
    for (i, tag) in ["ci-1", "ci-2", "ci-3"].iter().enumerate() {
        let d = aws::push_image(cfg, repo, Some(tag), &format!("{repo}-{tag}")).await;
        times.insert(d.clone(), (Some(now() - (30 - 10 * i as i64) * DAY), None));
        digests.push(d);
    }
    digests
}

async fn ecs_service(cfg: &SdkConfig, cluster: &str, service: &str, image: &str) {
    let ecs = aws_sdk_ecs::Client::new(cfg);
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .expect("CreateCluster");
    ecs.register_task_definition()
        .family(service)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name(service)
                .image(image)
                .memory(128)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(service)
        .desired_count(1)
        .send()
        .await
        .expect("CreateService");
}

/// Creates an IAM role in the account behind `cfg` (moto's Lambda wants the execution role to
/// exist). The SDK crates of this project do not include IAM, so this is IAM's query API by
/// hand; moto reads the account from the access key and does not check the signature.
async fn create_iam_role(endpoint: &str, cfg: &SdkConfig, name: &str) {
    use aws_credential_types::provider::ProvideCredentials;
    let creds = cfg
        .credentials_provider()
        .expect("credentials")
        .provide_credentials()
        .await
        .expect("credentials");
    let trust = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={trust}"
    );
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        (
            "authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
                creds.access_key_id()
            ),
        ),
    ];
    if let Some(token) = creds.session_token() {
        headers.push(("x-amz-security-token".to_string(), token.to_string()));
    }
    let request = ecr_fleet_sim::http::Request {
        method: "POST".into(),
        target: "/".into(),
        headers,
        body: body.into_bytes(),
    };
    let answer =
        ecr_fleet_sim::http::forward(&request, endpoint.trim_start_matches("http://")).await;
    assert_eq!(
        answer.status,
        200,
        "CreateRole: {}",
        String::from_utf8_lossy(&answer.body)
    );
}

async fn lambda_function(cfg: &SdkConfig, account: &str, name: &str, image: &str) {
    aws_sdk_lambda::Client::new(cfg)
        .create_function()
        .function_name(name)
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .role(format!("arn:aws:iam::{account}:role/lambda-runner"))
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(image)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "CreateFunction: {}",
                aws_sdk_lambda::error::DisplayErrorContext(e)
            )
        });
}

/// Pushes an image pushed `pushed_days` ago and last pulled `pulled_days` ago (the proxy's
/// image times); returns its digest.
async fn push_at(
    cfg: &SdkConfig,
    times: &mut HashMap<String, (Option<i64>, Option<i64>)>,
    repo: &str,
    tag: Option<&str>,
    seed: &str,
    pushed_days: i64,
    pulled_days: Option<i64>,
) -> String {
    let d = aws::push_image(cfg, repo, tag, seed).await;
    let t = now();
    times.insert(
        d.clone(),
        (
            Some(t - pushed_days * DAY),
            pulled_days.map(|p| t - p * DAY),
        ),
    );
    d
}

fn digests_of(protected: &Value) -> Vec<&str> {
    let mut d: Vec<&str> = protected
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["image_digest"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default();
    d.sort();
    d
}

/// The headline case: a template would expire an image that an ECS service in another
/// account runs; the repository is blocked and the consumer named. Lambda (by the digest it
/// resolved, not the tag) and Inspector coverage protect the same way.
#[tokio::test]
async fn images_run_in_other_accounts_block_and_name_their_consumers() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    let (owner, runner) = (&members[0], &members[1]);
    let owner_cfg = aws::member_config(&moto.url(), "us-east-1", owner).await;
    let runner_cfg = aws::member_config(&moto.url(), "us-east-1", runner).await;
    let mut times = HashMap::new();
    for repo in ["team-1/web", "team-1/fn", "team-1/scan", "team-1/idle"] {
        aws::create_repo(&owner_cfg, repo, &[]).await;
    }
    let web = push_ci_builds(&owner_cfg, "team-1/web", &mut times).await;
    let func = push_ci_builds(&owner_cfg, "team-1/fn", &mut times).await;
    let scan = push_ci_builds(&owner_cfg, "team-1/scan", &mut times).await;
    push_ci_builds(&owner_cfg, "team-1/idle", &mut times).await;

    // The runner account's service runs web:ci-1 by tag.
    ecs_service(
        &runner_cfg,
        "prod",
        "web",
        &uri(owner, "team-1/web", ":ci-1"),
    )
    .await;
    // Its function was deployed from fn:ci-3, which then resolved to ci-2's image (the tag
    // moved later): the digest protects ci-2, and the tag must not protect ci-3's image.
    let fn_uri = uri(owner, "team-1/fn", ":ci-3");
    create_iam_role(&moto.url(), &runner_cfg, "lambda-runner").await;
    lambda_function(&runner_cfg, runner, "thumbnailer", &fn_uri).await;
    // Inspector saw scan's ci-1 image in use by two tasks.
    let emulation = Emulation {
        lambda_digests: HashMap::from([(fn_uri.clone(), func[1].clone())]),
        coverage: vec![Coverage {
            account_id: owner.clone(),
            region: "us-east-1".into(),
            repository: "team-1/scan".into(),
            digest: scan[0].clone(),
            tags: vec!["ci-1".into()],
            in_use_count: 2,
            last_in_use_at: Some(now() - 3600),
        }],
        image_times: times,
        ..Emulation::default()
    };
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            emulation,
            ..FaultRules::default()
        },
    );
    let dir = workspace(
        "[\"us-east-1\"]",
        "[safety]\nin_use = [\"ecs\", \"lambda\", \"inspector\"]\n",
    );

    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(3);
    let report = plan.json();

    let web_row = row(&report, "team-1/web");
    assert_eq!(web_row["outcome"], "blocked", "{web_row}");
    assert_eq!(web_row["account_id"], owner.as_str());
    let protected = &web_row["protected_images"];
    assert_eq!(digests_of(protected), [web[0].as_str()], "{protected}");
    let consumer = &protected[0]["consumers"][0];
    assert_eq!(consumer["source"], "ecs");
    assert_eq!(consumer["account_id"], runner.as_str());
    assert_eq!(consumer["region"], "us-east-1");
    assert_eq!(consumer["name"], "prod/web");
    assert_eq!(
        protected[0]["reason"],
        format!("in use by ecs {runner} us-east-1 prod/web")
    );

    let fn_row = row(&report, "team-1/fn");
    assert_eq!(fn_row["outcome"], "blocked", "{fn_row}");
    assert_eq!(digests_of(&fn_row["protected_images"]), [func[1].as_str()]);
    let consumer = &fn_row["protected_images"][0]["consumers"][0];
    assert_eq!(consumer["source"], "lambda");
    assert_eq!(consumer["name"], "thumbnailer");

    let scan_row = row(&report, "team-1/scan");
    assert_eq!(scan_row["outcome"], "blocked", "{scan_row}");
    assert_eq!(
        digests_of(&scan_row["protected_images"]),
        [scan[0].as_str()]
    );
    let consumer = &scan_row["protected_images"][0]["consumers"][0];
    assert_eq!(consumer["source"], "inspector");
    assert_eq!(consumer["account_id"], owner.as_str());
    assert!(
        consumer["name"]
            .as_str()
            .unwrap()
            .starts_with("in use by 2 task(s)"),
        "{consumer}"
    );

    // Nothing runs idle's images: the template may expire them.
    assert_eq!(row(&report, "team-1/idle")["outcome"], "create");
    assert_eq!(report["summary"]["outcomes"]["blocked"], 3);
    assert!(report["skipped"].as_array().unwrap().is_empty());
    // Every visited account-region was asked, with exactly the documented read actions.
    let calls = &report["summary"]["api_calls"];
    let accounts = report["summary"]["accounts"].as_u64().unwrap();
    assert_eq!(accounts, 3, "management account and two members");
    for op in [
        "ecs:ListClusters",
        "lambda:ListFunctions",
        "inspector2:ListCoverage",
    ] {
        assert_eq!(calls[op], accounts, "{op}: {calls}");
    }
    assert_eq!(calls["ecs:DescribeTaskDefinition"], 1);
    assert_eq!(calls["lambda:GetFunction"], 1);
    assert_eq!(proxy.count("lambda:GetFunction"), 1);
    let used: Vec<&String> = calls
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| {
            !k.starts_with("ecr:")
                && !k.starts_with("tagging:")
                && !k.starts_with("sts:")
                && !k.starts_with("organizations:")
        })
        .collect();
    let allowed = [
        "ecs:ListClusters",
        "ecs:ListServices",
        "ecs:DescribeServices",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:DescribeTaskDefinition",
        "lambda:ListFunctions",
        "lambda:GetFunction",
        "inspector2:ListCoverage",
    ];
    for op in used {
        assert!(
            allowed.contains(&op.as_str()),
            "{op} is not a documented action"
        );
    }

    // apply writes idle and refuses the three blocked repositories (exit 1).
    let apply = ecr_fleet(
        &["apply", "--yes", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    apply.assert_code(1);
    let report = apply.json();
    assert_eq!(row(&report, "team-1/idle")["applied"], true);
    assert_eq!(aws::get_policy(&owner_cfg, "team-1/web").await, None);
    assert_eq!(
        aws::get_policy(&owner_cfg, "team-1/idle").await.as_deref(),
        Some(KEEP_ONE_CI)
    );

    // The table names the consumer too.
    let table = ecr_fleet(&["plan", "--no-progress"], &proxy.url(), dir.path());
    table.assert_code(3);
    assert!(
        table
            .stdout
            .contains(&format!("in use by ecs {runner} us-east-1 prod/web")),
        "{}",
        table.stdout
    );
}

/// Consumers that cannot be read make the index incomplete: whatever the template would
/// remove may be in use, so it is blocked, and the run says what failed (exit 1 on apply).
#[tokio::test]
async fn an_unreadable_in_use_source_blocks_rather_than_guesses() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 1).await;
    let cfg = aws::member_config(&moto.url(), "us-east-1", &members[0]).await;
    aws::create_repo(&cfg, "team-1/web", &[]).await;
    let mut times = HashMap::new();
    push_ci_builds(&cfg, "team-1/web", &mut times).await;
    let mut throttle = HashMap::new();
    // More throttling than the retries absorb, for one account-region's ListClusters.
    throttle.insert("ecs:ListClusters".to_string(), 40);
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            throttle,
            emulation: Emulation {
                image_times: times,
                ..Emulation::default()
            },
            ..FaultRules::default()
        },
    );
    let dir = workspace(
        "[\"us-east-1\"]",
        "[safety]\nin_use = [\"ecs\"]\n[execution]\nmax_attempts = 2\n",
    );
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(1);
    let report = plan.json();
    let web = row(&report, "team-1/web");
    assert_eq!(web["outcome"], "blocked", "{web}");
    assert_eq!(web["protected_images"].as_array().unwrap().len(), 2);
    assert!(
        web["protected_images"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("may be in use: consumers of ecs "),
        "{web}"
    );
    let skipped = report["skipped"].as_array().unwrap();
    assert!(!skipped.is_empty());
    assert!(
        skipped[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("in-use index (ecs): ecs:ListClusters"),
        "{skipped:?}"
    );
}

/// `audit --images`: unused-image findings with counts, bytes and cost, in-use images left
/// out, biggest savings first in Markdown; and a whole-organization audit that reads
/// unmatched repositories too, which plan leaves unread.
#[tokio::test]
async fn audit_reports_unused_images_across_the_organization() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    let (a, b) = (&members[0], &members[1]);
    let a_cfg = aws::member_config(&moto.url(), "us-east-1", a).await;
    let b_cfg = aws::member_config(&moto.url(), "us-east-1", b).await;
    let mut times: HashMap<String, (Option<i64>, Option<i64>)> = HashMap::new();
    aws::create_repo(&a_cfg, "team-1/api", &[]).await;
    aws::create_repo(&a_cfg, "scratch/old", &[]).await;
    aws::create_repo(&b_cfg, "team-2/batch", &[]).await;
    // team-1/api: never pulled and old (tagged), pulled long ago, pulled recently, untagged
    // and old, and an old never-pulled image that a service in b runs.
    push_at(
        &a_cfg,
        &mut times,
        "team-1/api",
        Some("v1"),
        "api-v1",
        200,
        None,
    )
    .await;
    push_at(
        &a_cfg,
        &mut times,
        "team-1/api",
        Some("v2"),
        "api-v2",
        300,
        Some(120),
    )
    .await;
    push_at(
        &a_cfg,
        &mut times,
        "team-1/api",
        Some("v3"),
        "api-v3",
        300,
        Some(5),
    )
    .await;
    push_at(
        &a_cfg,
        &mut times,
        "team-1/api",
        None,
        "api-untagged",
        150,
        None,
    )
    .await;
    push_at(
        &a_cfg,
        &mut times,
        "team-1/api",
        Some("v0"),
        "api-v0",
        400,
        None,
    )
    .await;
    // scratch/old (unmatched, no policy): two old never-pulled untagged images.
    push_at(&a_cfg, &mut times, "scratch/old", None, "old-1", 100, None).await;
    push_at(&a_cfg, &mut times, "scratch/old", None, "old-2", 100, None).await;
    // team-2/batch: young images only.
    push_at(
        &b_cfg,
        &mut times,
        "team-2/batch",
        Some("v1"),
        "batch-v1",
        3,
        None,
    )
    .await;
    ecs_service(&b_cfg, "prod", "api", &uri(a, "team-1/api", ":v0")).await;

    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            emulation: Emulation {
                image_times: times,
                ..Emulation::default()
            },
            ..FaultRules::default()
        },
    );
    let dir = workspace(
        "[\"us-east-1\"]",
        "[safety]\nin_use = [\"ecs\"]\n[audit]\nunused_after_days = 90\nprice_per_gb_month = 0.10\n",
    );
    let audit = ecr_fleet(
        &["audit", "--images", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    audit.assert_code(3);
    let report = audit.json();
    let image_bytes = {
        let api = row(&report, "team-1/api");
        api["impact"]["bytes"].as_u64().unwrap() / 5
    };
    assert!(image_bytes > 0);

    let api = row(&report, "team-1/api");
    let u = &api["unused"];
    assert_eq!(u["never_pulled"]["images"], 2, "{u}"); // v1 and the untagged one; v0 runs
    assert_eq!(u["not_pulled"]["images"], 1, "{u}"); // v2
    assert_eq!(u["untagged"]["images"], 1, "{u}");
    assert_eq!(u["total"]["images"], 3, "{u}");
    assert_eq!(u["total"]["bytes"], 3 * image_bytes);
    assert_eq!(u["in_use_excluded"], 1, "{u}");
    let findings: Vec<&str> = api["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        findings,
        [
            "no_policy",
            "unused_never_pulled",
            "unused_not_pulled",
            "unused_untagged"
        ]
    );

    // The unmatched repository is read in a whole-organization audit.
    let old = row(&report, "scratch/old");
    assert_eq!(old["outcome"], "unmatched");
    let findings: Vec<&str> = old["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        findings,
        ["no_policy", "unused_never_pulled", "unused_untagged"]
    );
    assert_eq!(old["unused"]["total"]["images"], 2);
    assert!(old.get("impact").is_none(), "no template, no impact: {old}");

    let batch = row(&report, "team-2/batch");
    assert_eq!(batch["unused"]["total"]["images"], 0);

    let fleet = &report["summary"]["unused"];
    assert_eq!(fleet["repositories"], 3);
    assert_eq!(fleet["unused_after_days"], 90);
    assert_eq!(fleet["total"]["images"], 5);
    assert_eq!(fleet["never_pulled"]["images"], 4);
    assert_eq!(fleet["in_use_excluded"], 1);
    let gib = 1024.0 * 1024.0 * 1024.0;
    let cost = (5 * image_bytes) as f64 / gib * 0.10;
    assert!(
        (fleet["total"]["monthly_cost_usd"].as_f64().unwrap() - (cost * 100.0).round() / 100.0)
            .abs()
            < 0.011,
        "{fleet}"
    );
    assert_eq!(report["summary"]["findings"]["unused_never_pulled"], 2);
    assert_eq!(report["summary"]["findings"]["no_policy"], 3);

    // plan leaves unmatched repositories unread: one policy read per managed repository.
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(3);
    let plan = plan.json();
    assert_eq!(plan["summary"]["api_calls"]["ecr:GetLifecyclePolicy"], 2);
    assert!(row(&plan, "scratch/old").get("findings").is_none());
    assert_eq!(report["summary"]["api_calls"]["ecr:GetLifecyclePolicy"], 3);

    // Markdown: the biggest saving first (api holds 3 unused images, scratch/old 2).
    let md = ecr_fleet(
        &["audit", "--images", "--output", "markdown", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    md.assert_code(3);
    let text = &md.stdout;
    assert!(text.contains("## Unused images"), "{text}");
    let api_at = text.find("| `team-1/api` | 3 |").expect(text);
    let old_at = text.find("| `scratch/old` | 2 |").expect(text);
    assert!(api_at < old_at, "{text}");
    assert!(!text.contains("| `team-2/batch` | 0 |"), "{text}");
}

/// `regions = "enabled"` visits each account's enabled regions; a listed region an account
/// has not enabled is counted in `disabled_regions`, not skipped and not a failure.
#[tokio::test]
async fn enabled_regions_per_account_and_disabled_listed_regions() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    let (plain, opted) = (&members[0], &members[1]);
    let opted_cfg = aws::member_config(&moto.url(), "af-south-1", opted).await;
    aws::create_repo(&opted_cfg, "team-1/cape", &[]).await;
    let plain_cfg = aws::member_config(&moto.url(), "eu-north-1", plain).await;
    aws::create_repo(&plain_cfg, "team-1/north", &[]).await;
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            emulation: Emulation {
                opt_in: HashMap::from([(opted.clone(), vec!["af-south-1".to_string()])]),
                ..Emulation::default()
            },
            ..FaultRules::default()
        },
    );

    let dir = workspace("\"enabled\"", "");
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    plan.assert_code(3);
    let report = plan.json();
    // 17 default regions everywhere, plus af-south-1 where it is enabled.
    assert_eq!(report["summary"]["regions"], 18);
    assert_eq!(report["summary"]["api_calls"]["account:ListRegions"], 3);
    // The accounts entered for region discovery are reused: one role session per member.
    assert_eq!(report["summary"]["api_calls"]["sts:AssumeRole"], 2);
    assert_eq!(
        report["summary"]["api_calls"]["ecr:DescribeRepositories"],
        3 * 17 + 1
    );
    assert_eq!(row(&report, "team-1/cape")["region"], "af-south-1");
    assert_eq!(row(&report, "team-1/north")["region"], "eu-north-1");
    assert_eq!(report["summary"]["disabled_regions"], 0);

    // The same by flag, over a config that lists one region.
    let listed = workspace("[\"us-east-1\"]", "");
    let by_flag = ecr_fleet(
        &[
            "plan",
            "--regions",
            "enabled",
            "--output",
            "json",
            "--no-progress",
        ],
        &proxy.url(),
        listed.path(),
    );
    by_flag.assert_code(3);
    assert_eq!(by_flag.json()["summary"]["regions"], 18);

    // Listed explicitly: af-south-1 is disabled in the management account and in `plain`.
    let explicit = workspace("[\"us-east-1\", \"af-south-1\"]", "");
    let plan = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        explicit.path(),
    );
    plan.assert_code(3);
    let report = plan.json();
    assert_eq!(report["summary"]["disabled_regions"], 2);
    let disabled: Vec<(&str, &str)> = report["disabled_regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["account_id"].as_str().unwrap(),
                d["region"].as_str().unwrap(),
            )
        })
        .collect();
    let mut want = vec![
        (aws::MANAGEMENT_ACCOUNT_ID, "af-south-1"),
        (plain.as_str(), "af-south-1"),
    ];
    want.sort();
    assert_eq!(disabled, want);
    assert!(report["skipped"].as_array().unwrap().is_empty());
    assert_eq!(
        report["summary"]["api_calls"]["ecr:DescribeRepositories"],
        3 + 1
    );
    assert_eq!(row(&report, "team-1/cape")["outcome"], "create");
    let table = ecr_fleet(&["plan", "--no-progress"], &proxy.url(), explicit.path());
    assert!(
        table.stdout.contains("2 region(s) not enabled"),
        "{}",
        table.stdout
    );

    // Default regions only: no ListRegions call at all (no new permission needed).
    let plain_run = ecr_fleet(
        &["plan", "--output", "json", "--no-progress"],
        &proxy.url(),
        listed.path(),
    );
    // Nothing in us-east-1: nothing pending.
    plain_run.assert_code(0);
    assert!(plain_run.json()["summary"]["api_calls"]
        .get("account:ListRegions")
        .is_none());

    // Mixing the keyword with region names is a usage error.
    let bad = ecr_fleet(
        &["plan", "--regions", "enabled,us-east-1"],
        &proxy.url(),
        listed.path(),
    );
    bad.assert_code(2);
    assert!(bad.stderr.contains("--regions"), "{}", bad.stderr);
}

/// The unused-image audit of a seeded fleet: the benchmark's mix of 60 repositories (three
/// members, two regions, ten each), every one given four images (tagged and never pulled for
/// 200 days, pulled 100 days ago, untagged for 120 days, fresh), and services in the next
/// member account running v1 of every fifth repository. Prints the Markdown and the totals:
/// `bash scripts/test.sh --test e2e --run-ignored only unused_image_audit_of_a_seeded_fleet --no-capture`
#[tokio::test]
#[ignore = "example output; run with --run-ignored only and --no-capture"]
async fn unused_image_audit_of_a_seeded_fleet() {
    use crate::support::fixtures::{fleet_config, write_fleet_workspace, FLEET_REGIONS};
    let moto = Moto::start();
    let spec = aws::FleetSpec::new(3, &FLEET_REGIONS, 10);
    let fleet = aws::seed_fleet(&moto.url(), &spec).await;
    let mut times = HashMap::new();
    let mut in_use = 0;
    let mut serial = 0;
    let mut sizes = HashMap::new();
    for (k, member) in fleet.members.iter().enumerate() {
        let runner = &fleet.members[(k + 1) % fleet.members.len()];
        for region in &fleet.regions {
            let cfg = aws::member_config(&moto.url(), region, member).await;
            let runner_cfg = aws::member_config(&moto.url(), region, runner).await;
            let repos: Vec<&aws::SeededRepo> = fleet
                .repos
                .iter()
                .filter(|r| &r.account_id == member && &r.region == region)
                .collect();
            for (i, repo) in repos.iter().enumerate() {
                let name = repo.name.as_str();
                // push_image derives digests from the first characters of the seed: keep
                // them unique.
                serial += 1;
                let seed = format!("{serial:05}");
                // Sizes from 200 MiB to 1.4 GiB, so repositories differ in what they cost.
                let mib = 200 * (1 + (serial % 7) as u64);
                for (tag, suffix, pushed, pulled, share) in [
                    (Some("v1"), "a", 200, None, 4),
                    (Some("v2"), "b", 150, Some(100), 3),
                    (None, "c", 120, None, 2),
                    (Some("v3"), "d", 5, Some(1), 4),
                ] {
                    let seed = format!("{seed}{suffix}");
                    let d = push_at(&cfg, &mut times, name, tag, &seed, pushed, pulled).await;
                    sizes.insert(d, mib * share / 4 * 1024 * 1024);
                }
                if i % 5 == 0 && repo.kind != aws::RepoKind::Exempt {
                    let image = format!("{member}.dkr.ecr.{region}.amazonaws.com/{name}:v1");
                    let service = format!("svc-{member}-{i}");
                    ecs_service(&runner_cfg, &format!("prod-{i}"), &service, &image).await;
                    in_use += 1;
                }
            }
        }
    }
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            emulation: Emulation {
                image_times: times,
                image_sizes: sizes,
                ..Emulation::default()
            },
            ..FaultRules::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    write_fleet_workspace(dir.path(), &FLEET_REGIONS);
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        fleet_config(&FLEET_REGIONS).replace(
            "[[match]]",
            "[safety]\nin_use = [\"ecs\"]\n\n[audit]\nunused_after_days = 90\nprice_per_gb_month = 0.10\n\n[[match]]",
        ),
    )
    .unwrap();
    let audit = ecr_fleet(
        &["audit", "--images", "--output", "json", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    audit.assert_code(3);
    let report = audit.json();
    let examined = fleet
        .active_repos()
        .filter(|r| r.kind != aws::RepoKind::Exempt)
        .count() as u64;
    let u = &report["summary"]["unused"];
    assert_eq!(u["repositories"], examined);
    assert_eq!(u["in_use_excluded"], in_use);
    assert_eq!(u["total"]["images"], 3 * examined - in_use);
    assert_eq!(u["never_pulled"]["images"], 2 * examined - in_use);
    assert_eq!(u["not_pulled"]["images"], examined);
    assert_eq!(u["untagged"]["images"], examined);
    let md = ecr_fleet(
        &["audit", "--images", "--output", "markdown", "--no-progress"],
        &proxy.url(),
        dir.path(),
    );
    md.assert_code(3);
    let section = md
        .stdout
        .split("## Unused images")
        .nth(1)
        .expect("unused section");
    // One row per repository with unused images, biggest first (by bytes; the size column).
    let rows: Vec<&str> = section
        .split("Biggest savings first:")
        .nth(1)
        .expect("per-repository table")
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with("| "))
        .collect();
    assert_eq!(rows.len() as u64, examined);
    let unused_in = |row: &str| -> f64 {
        let cell = row.split(" | ").nth(4).unwrap();
        let (n, unit) = cell.split_once(' ').unwrap();
        n.parse::<f64>().unwrap() * if unit == "GiB" { 1024.0 } else { 1.0 }
    };
    assert!(
        rows.windows(2).all(|w| unused_in(w[0]) >= unused_in(w[1])),
        "{rows:#?}"
    );
    let section: String = section.lines().take(20).collect::<Vec<_>>().join("\n");
    println!("## Unused images{section}\n...\n\nsummary.unused = {u}");
    println!(
        "api_calls = {}\nelapsed: {:.1}s",
        report["summary"]["api_calls"],
        audit.elapsed.as_secs_f64()
    );
}
