//! The repository creation template emulation, through the real AWS SDK, in the fault
//! proxy (in front of moto, which has no such API) and in the synthetic server; and the
//! demo organization, planned by the built binary.

use aws_config::SdkConfig;
use ecr_fleet_sim::demo::DemoSpec;
use ecr_fleet_sim::generate::UNMANAGED_PREFIX;

use crate::support::aws::{self, OUTCOMES};
use crate::support::cli::plan_json;
use crate::support::fixtures::{CI_BUILDS_POLICY, OUTDATED_POLICY};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};
use crate::support::synth::{member_id, SynthFleet, SynthSpec};
use crate::support::templates::{self, settings, with_other_settings, CreationTemplate};

fn ecr(cfg: &SdkConfig) -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::config::Builder::from(cfg)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    )
}

/// The error code of a failed call.
fn code<E, R>(result: Result<impl Sized, aws_sdk_ecr::error::SdkError<E, R>>) -> String
where
    E: aws_sdk_ecr::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => "no error".into(),
        Err(e) => e
            .as_service_error()
            .and_then(|e| e.code())
            .unwrap_or("not a service error")
            .to_string(),
    }
}

/// The error code of a CreateRepositoryCreationTemplate of `prefix` for `applied_for`.
async fn create_code(client: &aws_sdk_ecr::Client, prefix: &str, applied_for: &[&str]) -> String {
    let applied_for = applied_for.iter().map(|a| (*a).into()).collect();
    let answer = client
        .create_repository_creation_template()
        .prefix(prefix)
        .set_applied_for(Some(applied_for))
        .send()
        .await;
    code(answer)
}

/// Runs the whole API against one account-region (`cfg`, with no template yet) and checks
/// that `elsewhere` (another account or region) sees none of it. Returns the settings the
/// update had to keep, as read back.
async fn check_template_api(
    cfg: &SdkConfig,
    account: &str,
    elsewhere: &SdkConfig,
) -> CreationTemplate {
    let client = ecr(cfg);
    assert!(templates::list(cfg, 100).await.is_empty());

    templates::create(
        cfg,
        &CreationTemplate::with_lifecycle_policy("ROOT", OUTDATED_POLICY),
    )
    .await;
    let root = templates::get(cfg, "ROOT").await.expect("ROOT created");
    assert_eq!(root.lifecycle_policy.as_deref(), Some(OUTDATED_POLICY));
    assert_eq!(
        root.applied_for,
        ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE", "REPLICATION"]
    );
    assert_eq!(
        root.image_tag_mutability.as_deref(),
        Some("MUTABLE"),
        "ECR's default"
    );
    assert!(root.created_at.is_some() && root.updated_at.is_some());
    assert_eq!(
        create_code(&client, "ROOT", &["REPLICATION"]).await,
        "TemplateAlreadyExistsException"
    );

    // An update sends only the lifecycle policy and appliedFor; the rest stays.
    let seeded = with_other_settings("team-a", OUTDATED_POLICY);
    templates::create(cfg, &seeded).await;
    let updated = client
        .update_repository_creation_template()
        .prefix("team-a")
        .lifecycle_policy(CI_BUILDS_POLICY)
        .applied_for("CREATE_ON_PUSH".into())
        .applied_for("REPLICATION".into())
        .send()
        .await
        .expect("update");
    assert_eq!(updated.registry_id(), Some(account));
    let held = templates::get(cfg, "team-a").await.unwrap();
    let expected = CreationTemplate {
        lifecycle_policy: Some(CI_BUILDS_POLICY.into()),
        applied_for: vec!["CREATE_ON_PUSH".into(), "REPLICATION".into()],
        ..seeded.clone()
    };
    assert_eq!(settings(&held), expected);
    assert!(held.updated_at >= held.created_at);

    // The documented errors.
    assert_eq!(
        create_code(&client, "Team A", &["REPLICATION"]).await,
        "ValidationException"
    );
    assert_eq!(
        create_code(&client, "team-c", &[]).await,
        "ValidationException"
    );
    assert_eq!(
        create_code(&client, "team-c", &["ON_PUSH"]).await,
        "ValidationException"
    );
    let bad_policy = client
        .update_repository_creation_template()
        .prefix("team-a")
        .lifecycle_policy("not a policy")
        .send()
        .await;
    assert_eq!(code(bad_policy), "InvalidParameterException");
    let missing = client
        .update_repository_creation_template()
        .prefix("nobody")
        .lifecycle_policy(CI_BUILDS_POLICY)
        .send()
        .await;
    assert_eq!(code(missing), "TemplateNotFoundException");

    // Pages and the prefixes filter.
    templates::create(
        cfg,
        &CreationTemplate::with_lifecycle_policy("team-b", CI_BUILDS_POLICY),
    )
    .await;
    let prefixes: Vec<String> = templates::list(cfg, 1)
        .await
        .into_iter()
        .map(|t| t.prefix)
        .collect();
    assert_eq!(
        prefixes,
        ["ROOT", "team-a", "team-b"],
        "one per page, by prefix"
    );
    let filtered = client
        .describe_repository_creation_templates()
        .prefixes("team-b")
        .prefixes("nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.registry_id(), Some(account));
    assert_eq!(filtered.repository_creation_templates().len(), 1);
    assert!(
        templates::list(elsewhere, 100).await.is_empty(),
        "per account and region"
    );

    let deleted = client
        .delete_repository_creation_template()
        .prefix("team-b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted
            .repository_creation_template()
            .and_then(|t| t.prefix()),
        Some("team-b")
    );
    let twice = client
        .delete_repository_creation_template()
        .prefix("team-b")
        .send()
        .await;
    assert_eq!(code(twice), "TemplateNotFoundException");
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_emulates_repository_creation_templates() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let account = &members[0];
    let cfg = aws::member_config(&proxy.url(), "us-east-1", account).await;
    let other_account = aws::member_config(&proxy.url(), "us-east-1", &members[1]).await;
    let held = check_template_api(&cfg, account, &other_account).await;
    assert_eq!(
        proxy
            .creation_templates(|t| t.get(account, "us-east-1", "team-a"))
            .map(|t| settings(&t)),
        Some(settings(&held)),
        "the proxy holds what the SDK reads"
    );
    let other_region = aws::member_config(&proxy.url(), "eu-west-1", account).await;
    assert!(templates::list(&other_region, 100).await.is_empty());

    // Seeded directly, read through the SDK.
    let seeded = with_other_settings("team-z", CI_BUILDS_POLICY);
    proxy.creation_templates(|t| t.put(&members[1], "us-east-1", seeded.clone()));
    let read = templates::get(&other_account, "team-z").await.unwrap();
    assert_eq!(settings(&read), seeded);
    // Answered by the proxy, counted as client requests like any other.
    assert_eq!(proxy.count("ecr:CreateRepositoryCreationTemplate"), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_server_emulates_repository_creation_templates() {
    let synth = SynthFleet::start(&SynthSpec::new(2, &["us-east-1", "eu-west-1"], 5));
    let account = member_id(0);
    let cfg = aws::member_config(&synth.url(), "eu-west-1", &account).await;
    let other_region = aws::member_config(&synth.url(), "us-east-1", &account).await;
    let held = check_template_api(&cfg, &account, &other_region).await;
    assert_eq!(
        synth
            .creation_templates(|t| t.get(&account, "eu-west-1", "team-a"))
            .map(|t| settings(&t)),
        Some(settings(&held))
    );

    // The demo organization holds templates in two accounts of three.
    let demo = DemoSpec::default().start();
    for (k, expected) in [
        (0, vec![]),
        (1, vec!["ROOT", UNMANAGED_PREFIX]),
        (2, vec!["ROOT"]),
    ] {
        let cfg = aws::member_config(&demo.url(), "us-east-1", &member_id(k)).await;
        let prefixes: Vec<String> = templates::list(&cfg, 100)
            .await
            .into_iter()
            .map(|t| t.prefix)
            .collect();
        assert_eq!(prefixes, expected, "account {k}");
    }
}

#[test]
fn the_demo_organization_shows_every_outcome() {
    let spec = DemoSpec::default();
    let synth = spec.start();
    let dir = tempfile::tempdir().unwrap();
    let config = spec.config().write_to(dir.path(), false).unwrap();
    let plan = plan_json(&config, &synth.url(), dir.path());
    let report = plan.json();
    let summary = &report["summary"];
    for outcome in OUTCOMES.iter().filter(|o| **o != "error") {
        assert!(
            summary["outcomes"][outcome].as_u64().unwrap_or(0) > 0,
            "{outcome}: {summary}"
        );
    }
    assert_eq!(summary["outcomes"]["error"], 0, "{summary}");
    assert_eq!(summary["inactive_accounts"], 1, "{summary}");
    let blocked = report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "blocked")
        .count();
    assert_eq!(
        blocked, spec.accounts,
        "one in-use image per active account"
    );
    plan.assert_code(3);
    assert!(
        synth.count("lambda:GetFunction") > 0,
        "{:?}",
        synth.counts()
    );
    assert!(synth.count("ecr:DescribeImages") > 0);
}
