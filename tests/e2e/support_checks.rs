//! The test support itself, through the real AWS SDK: the proxy's GetResources emulation
//! and load faults in front of moto, and the synthetic fleet server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_resourcegroupstagging::types::TagFilter;
use futures::StreamExt;

use crate::support::aws::{self, RepoKind};
use crate::support::cli::{apply_json, plan_json};
use crate::support::faults::{LoadRules, Quotas};
use crate::support::fixtures::{write_fleet_workspace, FLEET_REGIONS, MANAGEMENT_ACCOUNT_ID};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};
use crate::support::synth::{SynthFleet, SynthSpec};

/// Every page of GetResources for ECR repositories: (ARN, tags) and the number of pages.
async fn tagged_repositories(
    cfg: &aws_config::SdkConfig,
    per_page: i32,
    filter: Option<TagFilter>,
) -> Result<(BTreeMap<String, BTreeMap<String, String>>, usize), String> {
    let client = aws_sdk_resourcegroupstagging::Client::new(cfg);
    let mut pages = client
        .get_resources()
        .resource_type_filters("ecr:repository")
        .resources_per_page(per_page)
        .set_tag_filters(filter.map(|f| vec![f]))
        .into_paginator()
        .send();
    let mut found = BTreeMap::new();
    let mut count = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "{}",
                aws_sdk_resourcegroupstagging::error::DisplayErrorContext(e)
            )
        })?;
        count += 1;
        for mapping in page.resource_tag_mapping_list() {
            let tags = mapping
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            found.insert(mapping.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok((found, count))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_emulates_get_resources_for_ecr_repositories() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 2).await;
    let (first, second) = (&members[0], &members[1]);
    let cfg = aws::member_config(&moto.url(), "us-east-1", first).await;
    for i in 0..5 {
        aws::create_repo(
            &cfg,
            &format!("app/tagged-{i}"),
            &[("team", &format!("t{}", i % 2))],
        )
        .await;
    }
    aws::create_repo(&cfg, "app/untagged", &[]).await;
    // Another region and another account must not leak in.
    let other_region = aws::member_config(&moto.url(), "eu-west-1", first).await;
    aws::create_repo(&other_region, "elsewhere/region", &[("team", "t0")]).await;
    let other_account = aws::member_config(&moto.url(), "us-east-1", second).await;
    aws::create_repo(&other_account, "elsewhere/account", &[("team", "t0")]).await;

    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let via_proxy = aws::member_config(&proxy.url(), "us-east-1", first).await;
    proxy.reset_counts();

    let (found, pages) = tagged_repositories(&via_proxy, 2, None).await.unwrap();
    let names: Vec<&str> = found
        .keys()
        .map(|arn| arn.split_once(":repository/").unwrap().1)
        .collect();
    assert_eq!(
        names,
        [
            "app/tagged-0",
            "app/tagged-1",
            "app/tagged-2",
            "app/tagged-3",
            "app/tagged-4"
        ],
        "tagged repositories of this account and region only, sorted by ARN"
    );
    assert!(found
        .keys()
        .all(|arn| arn.starts_with(&format!("arn:aws:ecr:us-east-1:{first}:repository/"))));
    assert_eq!(
        found.values().next().unwrap(),
        &BTreeMap::from([("team".to_string(), "t0".to_string())])
    );
    assert_eq!(pages, 3, "5 repositories at 2 per page");
    // Only the client's own requests are counted, not the emulation's upstream reads.
    assert_eq!(
        proxy.counts(),
        BTreeMap::from([("tagging:GetResources".to_string(), 3)])
    );

    let team1 = TagFilter::builder().key("team").values("t1").build();
    let (found, _) = tagged_repositories(&via_proxy, 100, Some(team1))
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "tagged-1 and tagged-3: {found:?}");

    // Denied for one account, throttled by quota for all.
    proxy.update_rules(|rules| {
        rules.deny_get_resources.insert(first.clone());
    });
    let denied = tagged_repositories(&via_proxy, 100, None)
        .await
        .unwrap_err();
    assert!(denied.contains("AccessDeniedException"), "{denied}");
    let (found, _) = tagged_repositories(
        &aws::member_config(&proxy.url(), "us-east-1", second).await,
        100,
        None,
    )
    .await
    .unwrap();
    assert_eq!(found.len(), 1, "the other account is not denied");

    // Kept snapshots: a repository tagged later is not seen until the cache is off.
    proxy.set_rules(FaultRules {
        cache_tag_snapshots: true,
        ..FaultRules::default()
    });
    assert_eq!(
        tagged_repositories(&via_proxy, 100, None)
            .await
            .unwrap()
            .0
            .len(),
        5
    );
    aws::create_repo(&cfg, "app/late", &[("team", "t9")]).await;
    assert_eq!(
        tagged_repositories(&via_proxy, 100, None)
            .await
            .unwrap()
            .0
            .len(),
        5
    );
    proxy.set_rules(FaultRules::default());
    assert_eq!(
        tagged_repositories(&via_proxy, 100, None)
            .await
            .unwrap()
            .0
            .len(),
        6
    );

    proxy.set_rules(FaultRules {
        // One page, then one more every 5 s: the next two requests are throttled however
        // slow the machine.
        load: LoadRules::quotas(Quotas {
            tag_pages_per_second: 0.2,
            ..Quotas::default()
        }),
        ..FaultRules::default()
    });
    proxy.reset_counts();
    let raw = aws_sdk_resourcegroupstagging::Client::from_conf(
        aws_sdk_resourcegroupstagging::config::Builder::from(&via_proxy)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let answer = raw
            .get_resources()
            .resource_type_filters("ecr:repository")
            .send()
            .await;
        outcomes.push(
            answer
                .err()
                .and_then(|e| e.into_service_error().meta().code().map(str::to_string)),
        );
    }
    assert_eq!(
        outcomes,
        [
            None,
            Some("ThrottledException".into()),
            Some("ThrottledException".into())
        ],
        "a bucket of one page"
    );
    assert_eq!(proxy.throttled().get("tagging:GetResources"), Some(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_load_faults_throttle_ecr_and_record_writes() {
    let moto = Moto::start();
    let members = aws::create_organization_with_members(&moto.url(), 1).await;
    let account = &members[0];
    let cfg = aws::member_config(&moto.url(), "us-east-1", account).await;
    aws::create_repo(&cfg, "app/one", &[]).await;

    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            load: LoadRules::random_throttle(50.0, 42),
            ..FaultRules::default()
        },
    );
    let via_proxy = aws::member_config(&proxy.url(), "us-east-1", account).await;
    let ecr = aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::config::Builder::from(&via_proxy)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let mut throttled = 0;
    for _ in 0..40 {
        match ecr.describe_repositories().send().await {
            Ok(_) => {}
            Err(e) => {
                let e = e.into_service_error();
                assert_eq!(e.meta().code(), Some("ThrottlingException"), "{e:?}");
                throttled += 1;
            }
        }
    }
    assert!((8..=32).contains(&throttled), "{throttled} of 40 at 50%");
    assert_eq!(
        proxy.throttled().get("ecr:DescribeRepositories"),
        Some(&throttled)
    );
    assert_eq!(proxy.count("sts:AssumeRole"), 1, "STS is never throttled");

    // Latency and writes per repository.
    proxy.set_rules(FaultRules {
        load: LoadRules::latency(Duration::from_millis(100)),
        ..FaultRules::default()
    });
    proxy.reset_counts();
    let began = std::time::Instant::now();
    aws::put_policy(
        &via_proxy,
        "app/one",
        crate::support::fixtures::OUTDATED_POLICY,
    )
    .await;
    aws::put_policy(
        &via_proxy,
        "app/one",
        crate::support::fixtures::OUTDATED_POLICY,
    )
    .await;
    assert!(began.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        proxy.writes(),
        BTreeMap::from([(
            (
                account.clone(),
                "us-east-1".to_string(),
                "app/one".to_string()
            ),
            2
        )])
    );

    // Quotas need the caller's account: the management account's key is resolved once
    // through STS, and its bucket is its own.
    proxy.set_rules(FaultRules {
        load: LoadRules::quotas(Quotas {
            reads_per_second: 0.2,
            ..Quotas::default()
        }),
        ..FaultRules::default()
    });
    proxy.reset_counts();
    let management = aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::config::Builder::from(&aws::sdk_config(&proxy.url(), "us-east-1").await)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let mut answered = (0, 0);
    for _ in 0..3 {
        answered.0 += u32::from(ecr.describe_repositories().send().await.is_ok());
        answered.1 += u32::from(management.describe_repositories().send().await.is_ok());
    }
    assert_eq!(answered, (1, 1), "a bucket of one read per account");
    assert_eq!(proxy.count("sts:GetCallerIdentity"), 0, "not counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_fleet_answers_the_sdk() {
    let mut spec = SynthSpec::new(3, &["us-east-1", "eu-west-1"], 250);
    spec.suspended_members = 1;
    let synth = SynthFleet::start(&spec);
    let fleet = synth.fleet().clone();
    assert_eq!(fleet.repos.len(), 4 * 2 * 250);
    let kinds: BTreeSet<RepoKind> = fleet.repos.iter().map(|r| r.kind).collect();
    assert_eq!(kinds.len(), 5, "every kind drawn: {kinds:?}");

    // Organizations: every account, in pages of 20 at most.
    let mgmt = aws::sdk_config(&synth.url(), "us-east-1").await;
    assert_eq!(aws::caller_account(&mgmt).await, MANAGEMENT_ACCOUNT_ID);
    let org = aws_sdk_organizations::Client::new(&mgmt);
    let mut pages = org.list_accounts().max_results(2).into_paginator().send();
    let mut listed = Vec::new();
    while let Some(page) = pages.next().await {
        for a in page.unwrap().accounts() {
            listed.push((
                a.id().unwrap().to_string(),
                a.status().unwrap().as_str().to_string(),
            ));
        }
    }
    assert_eq!(listed.len(), 5);
    assert_eq!(listed.iter().filter(|(_, s)| s == "SUSPENDED").count(), 1);
    assert_eq!(synth.count("organizations:ListAccounts"), 3);

    // A member: paged listing, tags in bulk and one by one, policies.
    let account = &fleet.members[1];
    let cfg = aws::member_config(&synth.url(), "eu-west-1", account).await;
    assert_eq!(aws::caller_account(&cfg).await, *account);
    synth.reset_counts();
    let names = aws::list_repo_names(&cfg).await;
    let expected: Vec<&str> = fleet
        .repos
        .iter()
        .filter(|r| &r.account_id == account && r.region == "eu-west-1")
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, expected);
    assert_eq!(
        synth.count("ecr:DescribeRepositories"),
        3,
        "100 per page by default"
    );

    let (tagged, pages) = tagged_repositories(&cfg, 100, None).await.unwrap();
    assert_eq!(
        tagged.len(),
        250,
        "every seeded repository carries a team tag"
    );
    assert_eq!(pages, 3);
    let seeded = fleet
        .repos
        .iter()
        .find(|r| &r.account_id == account && r.region == "eu-west-1" && r.kind == RepoKind::Exempt)
        .unwrap();
    let tags = aws::repo_tags(&cfg, &seeded.name).await;
    assert_eq!(
        tags.get("ecr-fleet:exempt").map(String::as_str),
        Some("true")
    );
    assert_eq!(aws::get_policy(&cfg, &seeded.name).await, seeded.policy);
    let missing = fleet
        .repos
        .iter()
        .find(|r| {
            &r.account_id == account && r.region == "eu-west-1" && r.kind == RepoKind::Missing
        })
        .unwrap();
    assert_eq!(aws::get_policy(&cfg, &missing.name).await, None);
    aws::put_policy(
        &cfg,
        &missing.name,
        crate::support::fixtures::CI_BUILDS_POLICY,
    )
    .await;
    let held = synth.repo(account, "eu-west-1", &missing.name).unwrap();
    assert_eq!(held.puts, 1);
    assert_eq!(
        held.policy.as_deref(),
        Some(crate::support::fixtures::CI_BUILDS_POLICY)
    );

    // Gone after listing.
    synth.vanish_after_listing(account, "eu-west-1", &missing.name);
    assert!(aws::list_repo_names(&cfg).await.contains(&missing.name));
    let gone = aws_sdk_ecr::Client::new(&cfg)
        .get_lifecycle_policy()
        .repository_name(&missing.name)
        .send()
        .await
        .unwrap_err();
    assert!(gone
        .into_service_error()
        .is_repository_not_found_exception());
    assert!(!aws::list_repo_names(&cfg).await.contains(&missing.name));

    // Quotas: per account-region buckets, counted per operation.
    // A bucket of 5 that refills one token per 10 s, so a slow machine sees the same.
    synth.set_load(LoadRules::quotas(Quotas {
        reads_per_second: 0.1,
        burst_seconds: 50.0,
        ..Quotas::default()
    }));
    synth.reset_counts();
    let ecr = aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::config::Builder::from(&cfg)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let answers = futures::stream::iter(0..10)
        .map(|_| {
            let ecr = ecr.clone();
            async move { ecr.describe_repositories().send().await.is_ok() }
        })
        .buffer_unordered(10)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(answers.iter().filter(|ok| **ok).count(), 5);
    assert_eq!(synth.throttled().get("ecr:DescribeRepositories"), Some(&5));
}

#[test]
fn ecr_fleet_converges_a_synthetic_fleet() {
    let mut spec = SynthSpec::new(3, &FLEET_REGIONS, 40);
    spec.suspended_members = 1;
    let synth = SynthFleet::start(&spec);
    let fleet = synth.fleet().clone();
    let expected = fleet.expected_outcomes();
    // One repository disappears between its listing and its reads.
    let doomed = fleet
        .active_repos()
        .find(|r| r.kind == RepoKind::Missing)
        .unwrap()
        .clone();
    synth.vanish_after_listing(&doomed.account_id, &doomed.region, &doomed.name);

    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet_workspace(dir.path(), &FLEET_REGIONS);
    let apply = apply_json(&config, &synth.url(), dir.path());
    // A repository deleted during the run is `gone`, not a failure.
    apply.assert_code(0);
    let report = apply.json();
    let outcomes = &report["summary"]["outcomes"];
    assert_eq!(outcomes["gone"], 1, "{outcomes}");
    assert_eq!(outcomes["error"], 0, "{outcomes}");
    let gone = crate::support::cli::row(&report, &doomed.name);
    assert_eq!(gone["outcome"], "gone");
    assert!(gone["error"].is_null(), "{gone}");
    assert_eq!(
        outcomes["create"].as_u64().unwrap() + 1,
        expected["create"],
        "{outcomes}"
    );
    assert_eq!(outcomes["update"].as_u64(), Some(expected["update"]));
    assert_eq!(outcomes["excluded"].as_u64(), Some(expected["excluded"]));
    assert_eq!(report["summary"]["inactive_accounts"].as_u64(), Some(1));

    let mut policies = synth.policies();
    // The vanished repository is neither right nor wrong: leave it out of the check.
    let fleet_now = aws::Fleet {
        repos: fleet
            .repos
            .iter()
            .filter(|r| {
                r.name != doomed.name
                    || r.account_id != doomed.account_id
                    || r.region != doomed.region
            })
            .cloned()
            .collect(),
        ..fleet.clone()
    };
    policies.remove(&(
        doomed.account_id.clone(),
        doomed.region.clone(),
        doomed.name.clone(),
    ));
    let check = fleet_now.verify(&policies, &synth.writes());
    assert!(check.correct(), "{check:?}");
    assert_eq!(check.redundant_writes, 0);
    assert_eq!(
        check.writes,
        expected["create"] + expected["update"] - 1,
        "one write per repository that needed one"
    );
    assert_eq!(synth.count("ecr:PutLifecyclePolicy"), check.writes);
}

#[test]
fn moto_with_memoized_routing_serves_a_fleet_as_moto_does() {
    // The fleet benchmark's moto (scripts/bench/moto_server.py): same answers, cheaper
    // routing. Organizations, STS, ECR and the proxy's GetResources all route through it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let moto = Moto::start_with_memoized_routing();
    let fleet = runtime.block_on(aws::seed_fleet(
        &moto.url(),
        &aws::FleetSpec::new(2, &FLEET_REGIONS, 6),
    ));
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet_workspace(dir.path(), &FLEET_REGIONS);
    let plan = plan_json(&config, &proxy.url(), dir.path());
    plan.assert_code(3);
    let outcomes = &plan.json()["summary"]["outcomes"];
    for (outcome, n) in fleet.expected_outcomes() {
        assert_eq!(
            outcomes[&outcome].as_u64(),
            Some(n),
            "{outcome}: {outcomes}"
        );
    }
    assert!(
        proxy.count("tagging:GetResources") > 0,
        "{:?}",
        proxy.counts()
    );
}
