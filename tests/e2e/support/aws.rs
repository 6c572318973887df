//! Seeding and inspecting the emulated AWS with the real SDK, pointed at an endpoint
//! (moto, or a [`super::proxy::FaultProxy`] in front of it).
//!
//! Credentials are static (`testing`/`testing`), which moto maps to the management account
//! 123456789012. Member accounts are reached by assuming `EcrFleetSpoke` in them, as the
//! tool does. Helpers panic with the SDK's full error context: they are test setup.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecr::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_ecr::error::{DisplayErrorContext, SdkError};
use aws_sdk_ecr::types::Tag;
use aws_sdk_organizations::types::OrganizationFeatureSet;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use futures::StreamExt;

use super::fixtures::SPOKE_ROLE_NAME;
pub use ecr_fleet_sim::fleet::{
    repo_of_kind, Fleet, RepoKey, RepoKind, SeededRepo, Verification, OUTCOMES,
};

pub use super::fixtures::MANAGEMENT_ACCOUNT_ID;

/// Region of the global services (Organizations) and of the helpers' defaults.
pub const HOME_REGION: &str = "us-east-1";

fn fail(what: &str, error: impl std::error::Error) -> ! {
    panic!("{what}: {}", DisplayErrorContext(error))
}

/// SDK config with the given credentials; retries as the SDK's standard mode (3 attempts)
/// but with a short first backoff so fault tests stay quick.
pub fn config_with_credentials(
    endpoint: &str,
    region: &str,
    credentials: Credentials,
) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(50)),
        )
        .build()
}

/// SDK config of the management account (static `testing` credentials). Nothing is read
/// from the environment or from `~/.aws`.
pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "ecr-fleet-tests");
    config_with_credentials(endpoint, region, credentials)
}

/// SDK config of a member account: assumes `arn:aws:iam::<account_id>:role/EcrFleetSpoke`
/// from the management account and uses the temporary credentials it returns.
pub async fn member_config(endpoint: &str, region: &str, account_id: &str) -> SdkConfig {
    try_member_config(endpoint, region, account_id)
        .await
        .unwrap_or_else(|e| fail(&format!("AssumeRole into {account_id}"), e))
}

/// [`member_config`], returning AssumeRole's error instead of panicking.
pub async fn try_member_config(
    endpoint: &str,
    region: &str,
    account_id: &str,
) -> Result<SdkConfig, SdkError<AssumeRoleError>> {
    let sts = aws_sdk_sts::Client::new(&sdk_config(endpoint, region).await);
    let answer = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account_id}:role/{SPOKE_ROLE_NAME}"))
        .role_session_name("ecr-fleet-tests")
        .send()
        .await?;
    let issued = answer
        .credentials()
        .expect("AssumeRole answered without credentials");
    let credentials = Credentials::new(
        issued.access_key_id(),
        issued.secret_access_key(),
        Some(issued.session_token().to_string()),
        None,
        "ecr-fleet-tests-assumed",
    );
    Ok(config_with_credentials(endpoint, region, credentials))
}

/// Account id behind a config (STS GetCallerIdentity).
pub async fn caller_account(cfg: &SdkConfig) -> String {
    let answer = aws_sdk_sts::Client::new(cfg)
        .get_caller_identity()
        .send()
        .await
        .unwrap_or_else(|e| fail("GetCallerIdentity", e));
    answer.account().unwrap_or_default().to_string()
}

// ---------------------------------------------------------------------------------------
// Organizations (always as the management account).

async fn organizations(endpoint: &str) -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::new(&sdk_config(endpoint, HOME_REGION).await)
}

/// Creates the organization (all features) and `members` member accounts; returns the
/// members' ids in creation order (the management account is not among them).
pub async fn create_organization_with_members(endpoint: &str, members: usize) -> Vec<String> {
    organizations(endpoint)
        .await
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap_or_else(|e| fail("CreateOrganization", e));
    create_member_accounts(endpoint, members).await
}

/// Adds `count` member accounts to the existing organization; returns their ids.
pub async fn create_member_accounts(endpoint: &str, count: usize) -> Vec<String> {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let org = organizations(endpoint).await;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let answer = org
            .create_account()
            .account_name(format!("member-{serial:03}"))
            .email(format!("member-{serial:03}@example.com"))
            .send()
            .await
            .unwrap_or_else(|e| fail("CreateAccount", e));
        let id = answer
            .create_account_status()
            .and_then(|s| s.account_id())
            .expect("CreateAccount answered without an account id");
        ids.push(id.to_string());
    }
    ids
}

/// Closes a member account (moto marks it SUSPENDED at once).
pub async fn close_account(endpoint: &str, account_id: &str) {
    organizations(endpoint)
        .await
        .close_account()
        .account_id(account_id)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("CloseAccount {account_id}"), e));
}

/// Id of the organization's root (`r-...`).
pub async fn root_id(endpoint: &str) -> String {
    let answer = organizations(endpoint)
        .await
        .list_roots()
        .send()
        .await
        .unwrap_or_else(|e| fail("ListRoots", e));
    answer
        .roots()
        .first()
        .and_then(|root| root.id())
        .expect("the organization has no root")
        .to_string()
}

/// Creates an organizational unit under `parent_id` (a root or another OU); returns its id.
pub async fn create_ou(endpoint: &str, parent_id: &str, name: &str) -> String {
    let answer = organizations(endpoint)
        .await
        .create_organizational_unit()
        .parent_id(parent_id)
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("CreateOrganizationalUnit {name}"), e));
    answer
        .organizational_unit()
        .and_then(|ou| ou.id())
        .expect("CreateOrganizationalUnit answered without an id")
        .to_string()
}

/// Moves an account from wherever it is to the OU (or root) `destination_id`.
pub async fn move_account(endpoint: &str, account_id: &str, destination_id: &str) {
    let org = organizations(endpoint).await;
    let parents = org
        .list_parents()
        .child_id(account_id)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("ListParents {account_id}"), e));
    let source = parents
        .parents()
        .first()
        .and_then(|p| p.id())
        .expect("account without a parent")
        .to_string();
    org.move_account()
        .account_id(account_id)
        .source_parent_id(source)
        .destination_parent_id(destination_id)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("MoveAccount {account_id}"), e));
}

// ---------------------------------------------------------------------------------------
// ECR (in whatever account and region `cfg` designates).

/// Creates a repository carrying `tags` (key, value).
pub async fn create_repo(cfg: &SdkConfig, name: &str, tags: &[(&str, &str)]) {
    create_repo_with(&aws_sdk_ecr::Client::new(cfg), name, tags).await
}

async fn create_repo_with(ecr: &aws_sdk_ecr::Client, name: &str, tags: &[(&str, &str)]) {
    let tags = tags
        .iter()
        .map(|(key, value)| Tag::builder().key(*key).value(*value).build().expect("tag"))
        .collect::<Vec<_>>();
    ecr.create_repository()
        .repository_name(name)
        .set_tags((!tags.is_empty()).then_some(tags))
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("CreateRepository {name}"), e));
}

/// Adds `tags` to an existing repository.
pub async fn tag_repo(cfg: &SdkConfig, name: &str, tags: &[(&str, &str)]) {
    let ecr = aws_sdk_ecr::Client::new(cfg);
    let arn = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("DescribeRepositories {name}"), e))
        .repositories()
        .first()
        .and_then(|r| r.repository_arn())
        .expect("repository arn")
        .to_string();
    let tags = tags
        .iter()
        .map(|(key, value)| Tag::builder().key(*key).value(*value).build().expect("tag"))
        .collect::<Vec<_>>();
    ecr.tag_resource()
        .resource_arn(arn)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("TagResource {name}"), e));
}

/// Tags of a repository, sorted by key.
pub async fn repo_tags(cfg: &SdkConfig, name: &str) -> BTreeMap<String, String> {
    let ecr = aws_sdk_ecr::Client::new(cfg);
    let repo = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("DescribeRepositories {name}"), e));
    let arn = repo
        .repositories()
        .first()
        .and_then(|r| r.repository_arn())
        .expect("repository without ARN")
        .to_string();
    let tags = ecr
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("ListTagsForResource {name}"), e));
    tags.tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// Writes a repository's lifecycle policy.
pub async fn put_policy(cfg: &SdkConfig, repo: &str, text: &str) {
    put_policy_with(&aws_sdk_ecr::Client::new(cfg), repo, text).await
}

async fn put_policy_with(ecr: &aws_sdk_ecr::Client, repo: &str, text: &str) {
    ecr.put_lifecycle_policy()
        .repository_name(repo)
        .lifecycle_policy_text(text)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("PutLifecyclePolicy {repo}"), e));
}

/// A repository's lifecycle policy text, byte for byte; `None` when it has none.
pub async fn get_policy(cfg: &SdkConfig, repo: &str) -> Option<String> {
    match aws_sdk_ecr::Client::new(cfg)
        .get_lifecycle_policy()
        .repository_name(repo)
        .send()
        .await
    {
        Ok(answer) => answer.lifecycle_policy_text().map(str::to_string),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_lifecycle_policy_not_found_exception()) =>
        {
            None
        }
        Err(e) => fail(&format!("GetLifecyclePolicy {repo}"), e),
    }
}

/// Names of every repository, sorted (DescribeRepositories, all pages).
/// Push a synthetic single-layer image (unique digests per `seed`) with an optional tag.
pub async fn push_image(cfg: &SdkConfig, repo: &str, tag: Option<&str>, seed: &str) -> String {
    let digest = |what: &str| {
        // Unique, well-formed sha256 digests without a hashing dependency.
        let mut hex = String::new();
        for (i, b) in format!("{what}:{seed}")
            .bytes()
            .cycle()
            .take(32)
            .enumerate()
        {
            hex.push_str(&format!("{:02x}", b.wrapping_add(i as u8)));
        }
        format!("sha256:{hex}")
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1024, "digest": digest("config")},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 5_000_000, "digest": digest("layer")}]
    });
    put_manifest(cfg, repo, tag, &manifest.to_string(), None).await
}

/// Push a multi-architecture index listing `children` (digests of images already pushed).
pub async fn push_index(
    cfg: &SdkConfig,
    repo: &str,
    tag: Option<&str>,
    children: &[String],
) -> String {
    let media_type = "application/vnd.oci.image.index.v1+json";
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": children.iter().map(|d| serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 500, "digest": d,
            "platform": {"architecture": "amd64", "os": "linux"}
        })).collect::<Vec<_>>()
    });
    put_manifest(cfg, repo, tag, &manifest.to_string(), Some(media_type)).await
}

/// PutImage; returns the image digest.
async fn put_manifest(
    cfg: &SdkConfig,
    repo: &str,
    tag: Option<&str>,
    manifest: &str,
    media_type: Option<&str>,
) -> String {
    let out = aws_sdk_ecr::Client::new(cfg)
        .put_image()
        .repository_name(repo)
        .image_manifest(manifest)
        .set_image_manifest_media_type(media_type.map(str::to_string))
        .set_image_tag(tag.map(str::to_string))
        .send()
        .await
        .unwrap_or_else(|e| fail("PutImage", e));
    out.image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .unwrap_or_default()
        .to_string()
}

pub async fn list_repo_names(cfg: &SdkConfig) -> Vec<String> {
    let mut pages = aws_sdk_ecr::Client::new(cfg)
        .describe_repositories()
        .into_paginator()
        .items()
        .send();
    let mut names = Vec::new();
    while let Some(repo) = pages.next().await {
        let repo = repo.unwrap_or_else(|e| fail("DescribeRepositories", e));
        names.push(repo.repository_name().unwrap_or_default().to_string());
    }
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------
// A whole fleet, for the benchmark and for tests that need volume.

/// What to seed.
#[derive(Clone, Debug)]
pub struct FleetSpec {
    /// Active member accounts.
    pub members: usize,
    /// Further members that get repositories too, then are closed (SUSPENDED): a run must
    /// leave them out and count them as `inactive_accounts`.
    pub suspended_members: usize,
    pub regions: Vec<String>,
    /// Repositories per account and region, mixed as [`RepoKind`] documents.
    pub repos_per_region: usize,
    /// Requests in flight at once; moto is the bottleneck, more does not help.
    pub concurrency: usize,
}

impl FleetSpec {
    pub fn new(members: usize, regions: &[&str], repos_per_region: usize) -> FleetSpec {
        FleetSpec {
            members,
            suspended_members: 0,
            regions: regions.iter().map(|r| r.to_string()).collect(),
            repos_per_region,
            concurrency: 16,
        }
    }
}

/// Tags as (key, value).
type Tags = Vec<(String, String)>;

fn seeded_repo(account_id: &str, region: &str, i: usize) -> (SeededRepo, Tags) {
    repo_of_kind(account_id, region, i, RepoKind::for_index(i))
}

/// Seeds a fresh moto (no organization yet) with an organization of
/// `spec.members + spec.suspended_members` member accounts and, in each of them and each
/// region, `spec.repos_per_region` repositories mixed as [`RepoKind`] documents. Requests
/// run concurrently, at most `spec.concurrency` at a time. The management account gets no
/// repositories.
pub async fn seed_fleet(endpoint: &str, spec: &FleetSpec) -> Fleet {
    let began = Instant::now();
    let calls = AtomicUsize::new(0);
    let all =
        create_organization_with_members(endpoint, spec.members + spec.suspended_members).await;
    calls.fetch_add(1 + all.len(), Ordering::Relaxed);
    let (members, suspended) = all.split_at(spec.members);

    // One assumed-role config per account and region.
    let targets: Vec<(String, String)> = all
        .iter()
        .flat_map(|a| spec.regions.iter().map(move |r| (a.clone(), r.clone())))
        .collect();
    let configs: Vec<(String, String, SdkConfig)> = futures::stream::iter(targets)
        .map(|(account, region)| async move {
            let cfg = member_config(endpoint, &region, &account).await;
            (account, region, cfg)
        })
        .buffer_unordered(spec.concurrency)
        .collect()
        .await;
    calls.fetch_add(configs.len(), Ordering::Relaxed);

    // One client per account and region: a client per request would set up a new HTTP
    // client (and connections) every time, which costs more CPU than the request itself.
    let work: Vec<(aws_sdk_ecr::Client, SeededRepo, Tags)> = configs
        .iter()
        .flat_map(|(account, region, cfg)| {
            let ecr = aws_sdk_ecr::Client::new(cfg);
            (0..spec.repos_per_region).map(move |i| {
                let (repo, tags) = seeded_repo(account, region, i);
                (ecr.clone(), repo, tags)
            })
        })
        .collect();
    let calls_ref = &calls;
    let mut repos: Vec<SeededRepo> = futures::stream::iter(work)
        .map(|(ecr, repo, tags)| async move {
            let tags: Vec<(&str, &str)> =
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            create_repo_with(&ecr, &repo.name, &tags).await;
            calls_ref.fetch_add(1, Ordering::Relaxed);
            if let Some(policy) = &repo.policy {
                put_policy_with(&ecr, &repo.name, policy).await;
                calls_ref.fetch_add(1, Ordering::Relaxed);
            }
            repo
        })
        .buffer_unordered(spec.concurrency)
        .collect()
        .await;

    for account in suspended {
        close_account(endpoint, account).await;
        calls.fetch_add(1, Ordering::Relaxed);
    }
    for repo in &mut repos {
        repo.active = !suspended.contains(&repo.account_id);
    }
    repos.sort_by(|a, b| {
        (&a.account_id, &a.region, &a.name).cmp(&(&b.account_id, &b.region, &b.name))
    });
    Fleet {
        members: members.to_vec(),
        suspended: suspended.to_vec(),
        regions: spec.regions.clone(),
        repos,
        api_calls: calls.into_inner(),
        elapsed: began.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------
// Checking a fleet after a run, and putting it back as seeded.

/// Member configs per (account, region) of the active accounts.
async fn member_configs(endpoint: &str, fleet: &Fleet) -> BTreeMap<(String, String), SdkConfig> {
    let targets: Vec<(String, String)> = fleet
        .members
        .iter()
        .flat_map(|a| fleet.regions.iter().map(move |r| (a.clone(), r.clone())))
        .collect();
    futures::stream::iter(targets)
        .map(|(account, region)| async move {
            let cfg = member_config(endpoint, &region, &account).await;
            ((account, region), cfg)
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// The policy text every active repository holds now (straight from `endpoint`).
pub async fn read_policies(endpoint: &str, fleet: &Fleet) -> BTreeMap<RepoKey, Option<String>> {
    let configs = member_configs(endpoint, fleet).await;
    let clients: BTreeMap<(String, String), aws_sdk_ecr::Client> = configs
        .iter()
        .map(|(k, cfg)| (k.clone(), aws_sdk_ecr::Client::new(cfg)))
        .collect();
    let clients = &clients;
    futures::stream::iter(fleet.active_repos())
        .map(|repo| async move {
            let ecr = &clients[&(repo.account_id.clone(), repo.region.clone())];
            let text = match ecr
                .get_lifecycle_policy()
                .repository_name(&repo.name)
                .send()
                .await
            {
                Ok(answer) => answer.lifecycle_policy_text().map(str::to_string),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_lifecycle_policy_not_found_exception()) =>
                {
                    None
                }
                Err(e) => fail(&format!("GetLifecyclePolicy {}", repo.name), e),
            };
            (
                (
                    repo.account_id.clone(),
                    repo.region.clone(),
                    repo.name.clone(),
                ),
                text,
            )
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Puts back the seeded policy (or none) on every active repository whose policy in
/// `current` differs from it; returns how many it changed.
pub async fn restore_seeded_policies(
    endpoint: &str,
    fleet: &Fleet,
    current: &BTreeMap<RepoKey, Option<String>>,
) -> usize {
    let configs = member_configs(endpoint, fleet).await;
    let clients: BTreeMap<(String, String), aws_sdk_ecr::Client> = configs
        .iter()
        .map(|(k, cfg)| (k.clone(), aws_sdk_ecr::Client::new(cfg)))
        .collect();
    let clients = &clients;
    let changed: Vec<&SeededRepo> = fleet
        .active_repos()
        .filter(|repo| {
            let key = (
                repo.account_id.clone(),
                repo.region.clone(),
                repo.name.clone(),
            );
            current.get(&key) != Some(&repo.policy)
        })
        .collect();
    let count = changed.len();
    futures::stream::iter(changed)
        .map(|repo| async move {
            let ecr = &clients[&(repo.account_id.clone(), repo.region.clone())];
            match &repo.policy {
                Some(text) => put_policy_with(ecr, &repo.name, text).await,
                None => {
                    if let Err(e) = ecr
                        .delete_lifecycle_policy()
                        .repository_name(&repo.name)
                        .send()
                        .await
                    {
                        if !e
                            .as_service_error()
                            .is_some_and(|e| e.is_lifecycle_policy_not_found_exception())
                        {
                            fail(&format!("DeleteLifecyclePolicy {}", repo.name), e);
                        }
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    count
}

/// Reads the tags of every active account-region of `fleet` (the management account's too)
/// with the tagging API's GetResources for `ecr:repository`, all pages; returns the number
/// of tagged repositories found.
pub async fn get_resources_everywhere(endpoint: &str, fleet: &Fleet) -> usize {
    let mut found = 0;
    for account in fleet
        .members
        .iter()
        .map(String::as_str)
        .chain([MANAGEMENT_ACCOUNT_ID])
    {
        for region in &fleet.regions {
            let cfg = if account == MANAGEMENT_ACCOUNT_ID {
                sdk_config(endpoint, region).await
            } else {
                member_config(endpoint, region, account).await
            };
            let mut pages = aws_sdk_resourcegroupstagging::Client::new(&cfg)
                .get_resources()
                .resource_type_filters("ecr:repository")
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.unwrap_or_else(|e| fail("GetResources", e));
                found += page.resource_tag_mapping_list().len();
            }
        }
    }
    found
}
