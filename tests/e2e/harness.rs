//! Tests of the test infrastructure itself, with the SDK only (no ecr-fleet binary): if
//! these fail, the end-to-end tests of the tool cannot be trusted.

use std::collections::{HashMap, HashSet};
use std::net::TcpStream;

use aws_sdk_ecr::error::ProvideErrorMetadata;

use crate::support::aws::{self, FleetSpec, RepoKind};
use crate::support::fixtures::{CI_BUILDS_POLICY, EXEMPT_TAG, OUTDATED_POLICY};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};

#[test]
fn moto_starts_answers_and_stops() {
    let moto = Moto::start();
    let port = moto.port();
    assert!(moto.url().ends_with(&format!(":{port}")));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    moto.reset();
    drop(moto);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "moto still listens on {port} after drop"
    );
}

#[tokio::test]
async fn accounts_and_regions_are_isolated() {
    let moto = Moto::start();
    let url = moto.url();
    let members = aws::create_organization_with_members(&url, 2).await;
    let (a, b) = (&members[0], &members[1]);

    let a_east = aws::member_config(&url, "us-east-1", a).await;
    let a_west = aws::member_config(&url, "eu-west-1", a).await;
    let b_east = aws::member_config(&url, "us-east-1", b).await;
    let management = aws::sdk_config(&url, "us-east-1").await;
    assert_eq!(&aws::caller_account(&a_east).await, a);
    assert_eq!(&aws::caller_account(&b_east).await, b);
    assert_eq!(
        aws::caller_account(&management).await,
        aws::MANAGEMENT_ACCOUNT_ID
    );

    aws::create_repo(&a_east, "team-a/api", &[(EXEMPT_TAG, "true")]).await;
    aws::create_repo(&a_west, "team-a/worker", &[]).await;
    aws::create_repo(&b_east, "team-b/api", &[]).await;
    aws::put_policy(&a_east, "team-a/api", CI_BUILDS_POLICY).await;

    assert_eq!(aws::list_repo_names(&a_east).await, ["team-a/api"]);
    assert_eq!(aws::list_repo_names(&a_west).await, ["team-a/worker"]);
    assert_eq!(aws::list_repo_names(&b_east).await, ["team-b/api"]);
    assert!(aws::list_repo_names(&management).await.is_empty());

    // Policies come back byte for byte; tags given at creation are there.
    assert_eq!(
        aws::get_policy(&a_east, "team-a/api").await.as_deref(),
        Some(CI_BUILDS_POLICY)
    );
    assert_eq!(aws::get_policy(&a_west, "team-a/worker").await, None);
    let tags = aws::repo_tags(&a_east, "team-a/api").await;
    assert_eq!(tags.get(EXEMPT_TAG).map(String::as_str), Some("true"));

    // OU helpers.
    let root = aws::root_id(&url).await;
    let ou = aws::create_ou(&url, &root, "workloads").await;
    aws::move_account(&url, b, &ou).await;
    aws::close_account(&url, a).await;
}

#[tokio::test]
async fn seed_fleet_creates_the_documented_mix() {
    let moto = Moto::start();
    let url = moto.url();
    let mut spec = FleetSpec::new(2, &["us-east-1", "eu-west-1"], 20);
    spec.suspended_members = 1;
    let fleet = aws::seed_fleet(&url, &spec).await;
    assert_eq!(fleet.members.len(), 2);
    assert_eq!(fleet.suspended.len(), 1);
    assert_eq!(fleet.repos.len(), 3 * 2 * 20);

    let expected = fleet.expected_outcomes();
    // 2 active accounts x 2 regions x (6 create, 4 update, 6 unchanged, 2 excluded, 2 unmatched)
    assert_eq!(expected["create"], 24);
    assert_eq!(expected["update"], 16);
    assert_eq!(expected["unchanged"], 24);
    assert_eq!(expected["excluded"], 8);
    assert_eq!(expected["unmatched"], 8);
    assert_eq!(expected["error"], 0);

    // Each account and region holds exactly its own repositories, with the seeded policies.
    for account in fleet.members.iter().chain(&fleet.suspended) {
        for region in &fleet.regions {
            let cfg = aws::member_config(&url, region, account).await;
            let mine: Vec<_> = fleet
                .repos
                .iter()
                .filter(|r| &r.account_id == account && &r.region == region)
                .collect();
            let names: Vec<String> = mine.iter().map(|r| r.name.clone()).collect();
            assert_eq!(
                aws::list_repo_names(&cfg).await,
                names,
                "{account} {region}"
            );
            if account == &fleet.members[0] && region == "us-east-1" {
                for repo in &mine {
                    assert_eq!(
                        aws::get_policy(&cfg, &repo.name).await,
                        repo.policy,
                        "{}",
                        repo.name
                    );
                    let exempt = aws::repo_tags(&cfg, &repo.name)
                        .await
                        .contains_key(EXEMPT_TAG);
                    assert_eq!(exempt, repo.kind == RepoKind::Exempt, "{}", repo.name);
                }
            }
        }
    }
}

#[tokio::test]
async fn proxy_denies_assume_role_for_chosen_account() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    let (denied, allowed) = (&members[0], &members[1]);
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            deny_assume_role: HashSet::from([denied.clone()]),
            ..FaultRules::default()
        },
    );

    let error = aws::try_member_config(&proxy.url(), "us-east-1", denied)
        .await
        .expect_err("AssumeRole into the denied account succeeded");
    assert_eq!(error.code(), Some("AccessDenied"), "{error:?}");
    assert!(
        error
            .message()
            .unwrap_or_default()
            .contains("not authorized"),
        "{error:?}"
    );

    let cfg = aws::member_config(&proxy.url(), "us-east-1", allowed).await;
    assert_eq!(&aws::caller_account(&cfg).await, allowed);
    // AccessDenied is not retried.
    assert_eq!(proxy.count("sts:AssumeRole"), 2);
    assert_eq!(proxy.failures("AssumeRole"), 1);
    assert_eq!(proxy.count("GetCallerIdentity"), 1);
}

#[tokio::test]
async fn proxy_pages_describe_repositories() {
    let moto = Moto::start();
    let direct = aws::sdk_config(&moto.url(), "us-east-1").await;
    let mut names: Vec<String> = (0..10).map(|i| format!("team-{i}/service")).collect();
    names.sort();
    for name in &names {
        aws::create_repo(&direct, name, &[]).await;
    }
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            page_size: Some(3),
            ..FaultRules::default()
        },
    );
    let cfg = aws::sdk_config(&proxy.url(), "us-east-1").await;

    // The paginator follows the proxy's tokens over ceil(10 / 3) = 4 pages.
    assert_eq!(aws::list_repo_names(&cfg).await, names);
    assert_eq!(proxy.count("ecr:DescribeRepositories"), 4);

    // maxResults below the page size wins.
    proxy.reset_counts();
    let ecr = aws_sdk_ecr::Client::new(&cfg);
    let first = ecr
        .describe_repositories()
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(first.repositories().len(), 2);
    let token = first.next_token().expect("more pages").to_string();
    let mut pages = ecr
        .describe_repositories()
        .max_results(2)
        .into_paginator()
        .send();
    let mut sizes = Vec::new();
    while let Some(page) = pages.next().await {
        sizes.push(page.unwrap().repositories().len());
    }
    assert_eq!(sizes, [2, 2, 2, 2, 2]);
    assert_eq!(proxy.count("DescribeRepositories"), 1 + 5);

    // The token is the proxy's own and can be resumed from.
    let rest = ecr
        .describe_repositories()
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.repositories().len(), 3);
    let bad = ecr
        .describe_repositories()
        .next_token("bogus")
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("InvalidParameterException"));

    // Asking for repositories by name is not paged.
    let named = ecr
        .describe_repositories()
        .set_repository_names(Some(names.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(named.repositories().len(), 10);
}

#[tokio::test]
async fn proxy_throttles_then_sdk_retries_succeed() {
    let moto = Moto::start();
    aws::create_organization_with_members(&moto.url(), 1).await;
    let direct = aws::sdk_config(&moto.url(), "us-east-1").await;
    aws::create_repo(&direct, "team-a/api", &[]).await;
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            throttle: HashMap::from([
                ("PutLifecyclePolicy".to_string(), 2),
                ("organizations:ListAccounts".to_string(), 1),
                ("AssumeRole".to_string(), 1),
            ]),
            ..FaultRules::default()
        },
    );
    let cfg = aws::sdk_config(&proxy.url(), "us-east-1").await;

    aws::put_policy(&cfg, "team-a/api", CI_BUILDS_POLICY).await;
    assert_eq!(proxy.count("ecr:PutLifecyclePolicy"), 3);
    assert_eq!(proxy.failures("ecr:PutLifecyclePolicy"), 2);
    assert_eq!(
        aws::get_policy(&direct, "team-a/api").await.as_deref(),
        Some(CI_BUILDS_POLICY)
    );
    // The throttle is used up: the next write goes through at once.
    aws::put_policy(&cfg, "team-a/api", OUTDATED_POLICY).await;
    assert_eq!(proxy.count("PutLifecyclePolicy"), 4);

    let accounts = aws_sdk_organizations::Client::new(&cfg)
        .list_accounts()
        .send()
        .await
        .unwrap();
    assert_eq!(accounts.accounts().len(), 2);
    assert_eq!(proxy.count("organizations:ListAccounts"), 2);

    let member = accounts
        .accounts()
        .iter()
        .filter_map(|a| a.id())
        .find(|id| *id != aws::MANAGEMENT_ACCOUNT_ID)
        .unwrap()
        .to_string();
    aws::member_config(&proxy.url(), "us-east-1", &member).await;
    assert_eq!(proxy.count("sts:AssumeRole"), 2);
}

#[tokio::test]
async fn proxy_fails_put_for_chosen_repository() {
    let moto = Moto::start();
    let direct = aws::sdk_config(&moto.url(), "us-east-1").await;
    aws::create_repo(&direct, "team-a/broken", &[]).await;
    aws::create_repo(&direct, "team-a/fine", &[]).await;
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            fail_put_for_repos: HashSet::from(["team-a/broken".to_string()]),
            ..FaultRules::default()
        },
    );
    let ecr = aws_sdk_ecr::Client::new(&aws::sdk_config(&proxy.url(), "us-east-1").await);

    let error = ecr
        .put_lifecycle_policy()
        .repository_name("team-a/broken")
        .lifecycle_policy_text(CI_BUILDS_POLICY)
        .send()
        .await
        .unwrap_err();
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_server_exception()),
        "{error:?}"
    );
    // A server error is transient to the SDK: all 3 attempts reached the proxy.
    assert_eq!(proxy.count("PutLifecyclePolicy"), 3);
    assert_eq!(aws::get_policy(&direct, "team-a/broken").await, None);

    aws::put_policy(
        &aws::sdk_config(&proxy.url(), "us-east-1").await,
        "team-a/fine",
        CI_BUILDS_POLICY,
    )
    .await;
    assert_eq!(proxy.count("PutLifecyclePolicy"), 4);
    assert_eq!(
        aws::get_policy(&direct, "team-a/fine").await.as_deref(),
        Some(CI_BUILDS_POLICY)
    );
}
