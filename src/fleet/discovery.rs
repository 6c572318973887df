//! Which accounts a run visits and with which credentials: the caller's own account uses the
//! caller's credentials, every other account the spoke role.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_sdk_ecr::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_organizations::types::{AccountState, AccountStatus};
use futures::StreamExt;

use crate::aws::{sdk_standard_retry, Aws, AwsError};
use crate::config::{AccountSource, AccountsConfig};
use crate::model::Skipped;

/// Who is running ecr-fleet.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
    pub arn: String,
    pub partition: String,
}

/// An account the run will visit.
#[derive(Debug, Clone)]
pub struct AccountAccess {
    pub account_id: String,
    /// Credentials of the assumed spoke role; `None` means the caller's own credentials.
    pub credentials: Option<SharedCredentialsProvider>,
}

#[derive(Debug, Default)]
pub struct Discovery {
    pub accounts: Vec<AccountAccess>,
    /// Organization members that are not ACTIVE (suspended, pending closure...): left out.
    pub inactive_accounts: usize,
    /// Accounts that could not be entered (AssumeRole failed).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{}", caller_text(.0))]
    Caller(AwsError),
    #[error("cannot list the organization's accounts: {error}{}", parent.as_deref().map(|p| format!(" (parent {p})")).unwrap_or_default())]
    Organization {
        error: AwsError,
        parent: Option<String>,
    },
}

/// A credentials problem is the whole story (where the chain looked, what to do); any other
/// error is told as a failed call.
fn caller_text(e: &AwsError) -> String {
    match e.kind {
        crate::aws::ErrorKind::Credentials => e.detail.clone(),
        _ => format!("cannot identify the caller: {e}"),
    }
}

/// Attempts at the caller check (`sts:GetCallerIdentity`).
const CALLER_CHECK_ATTEMPTS: u32 = 3;

pub async fn caller(aws: &Aws, sts_region: Option<&str>) -> Result<Caller, DiscoveryError> {
    let out = aws
        .sts(sts_region)
        .get_caller_identity()
        // The run's first call: an endpoint or a network that is not there is told in a
        // second or so, not after the whole retry budget (half a minute).
        .customize()
        .config_override(
            aws_sdk_sts::config::Builder::default()
                .retry_config(sdk_standard_retry(CALLER_CHECK_ATTEMPTS)),
        )
        .send()
        .await
        .map_err(|e| {
            DiscoveryError::Caller(AwsError::from_sdk(
                "sts:GetCallerIdentity",
                &e,
                &aws.endpoint("sts", sts_region.unwrap_or("us-east-1")),
            ))
        })?;
    let arn = out.arn().unwrap_or_default().to_string();
    let account_id = out.account().unwrap_or_default().to_string();
    let partition = arn
        .split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
        .to_string();
    Ok(Caller {
        account_id,
        arn,
        partition,
    })
}

/// Home region of the global Organizations endpoint for a partition.
fn organizations_region(partition: &str) -> &'static str {
    match partition {
        "aws-us-gov" => "us-gov-west-1",
        "aws-cn" => "cn-northwest-1",
        _ => "us-east-1",
    }
}

pub fn role_arn(partition: &str, account_id: &str, role_name: &str) -> String {
    format!("arn:{partition}:iam::{account_id}:role/{role_name}")
}

/// The accounts a run visits, before any of them is entered.
#[derive(Debug, Default)]
pub struct AccountSelection {
    pub ids: Vec<String>,
    /// Organization members that are not ACTIVE (suspended, pending closure...): left out.
    pub inactive_accounts: usize,
    /// `--accounts` ids the run will not visit.
    pub skipped: Vec<Skipped>,
}

/// Resolve the account list. `only` narrows the run to these account ids (`--accounts`).
pub async fn select_accounts(
    aws: &Aws,
    caller: &Caller,
    cfg: &AccountsConfig,
    only: Option<&[String]>,
) -> Result<AccountSelection, DiscoveryError> {
    let mut selection = AccountSelection::default();
    let (mut ids, mut inactive): (Vec<String>, Vec<String>) = match &cfg.source {
        AccountSource::Current => (vec![caller.account_id.clone()], Vec::new()),
        AccountSource::List(ids) => (ids.clone(), Vec::new()),
        AccountSource::Organization {
            organizational_units,
        } => organization_accounts(aws, caller, organizational_units).await?,
    };
    let excluded: BTreeSet<&str> = cfg.exclude.iter().map(String::as_str).collect();
    ids.retain(|id| !excluded.contains(id.as_str()));
    inactive.retain(|id| !excluded.contains(id.as_str()));
    // Sharding first: a wanted account of another shard is that shard's business, so a
    // mistyped id is reported once, by its own shard, and shard reports never overlap.
    if let Some(shard) = cfg.shard {
        ids.retain(|id| shard.keeps(id));
        inactive.retain(|id| shard.keeps(id));
    }
    let only: Option<Vec<String>> = only.map(|o| {
        o.iter()
            .filter(|id| cfg.shard.is_none_or(|s| s.keeps(id)))
            .cloned()
            .collect()
    });
    if let Some(only) = only.as_deref() {
        // An account asked for by name that the run will not visit is reported, not ignored:
        // a mistyped id must not pass as an empty, successful run.
        for wanted in only {
            if ids.contains(wanted) || inactive.contains(wanted) {
                continue;
            }
            let why = if excluded.contains(wanted.as_str()) {
                "excluded by accounts.exclude"
            } else {
                "not among the accounts of the configured source (organization, OUs or ids)"
            };
            selection.skipped.push(Skipped {
                account_id: wanted.clone(),
                region: None,
                error: format!("--accounts names an account that is not part of this run: {why}"),
            });
        }
        ids.retain(|id| only.contains(id));
        inactive.retain(|id| only.contains(id));
    }
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids.sort();
    inactive.sort();
    inactive.dedup();
    selection.inactive_accounts = inactive.len();
    selection.ids = ids;
    Ok(selection)
}

/// Enter one account: the caller's own credentials for its own account, the spoke role
/// otherwise. An account that cannot be entered is a skipped target.
pub async fn enter(
    aws: &Aws,
    caller: &Caller,
    cfg: &AccountsConfig,
    sts_region: Option<&str>,
    account_id: &str,
) -> Result<AccountAccess, Skipped> {
    enter_checked(aws, caller, cfg, sts_region, account_id)
        .await
        .map_err(|failure| Skipped {
            account_id: account_id.to_string(),
            region: None,
            error: failure.to_string(),
        })
}

/// Why the spoke role of an account could not be assumed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error} (role {role_arn})")]
pub struct AssumeFailure {
    pub role_arn: String,
    pub error: AwsError,
}

/// [`enter`], keeping the error of AssumeRole (`doctor` names a fix from its kind).
pub async fn enter_checked(
    aws: &Aws,
    caller: &Caller,
    cfg: &AccountsConfig,
    sts_region: Option<&str>,
    account_id: &str,
) -> Result<AccountAccess, AssumeFailure> {
    if account_id == caller.account_id {
        return Ok(AccountAccess {
            account_id: account_id.to_string(),
            credentials: None,
        });
    }
    let endpoint = aws.endpoint("sts", sts_region.unwrap_or("us-east-1"));
    enter_account(&aws.sts(sts_region), &endpoint, caller, cfg, account_id).await
}

/// Resolve the account list, then enter every account (restore, which has no streaming).
pub async fn discover(
    aws: &Aws,
    caller: &Caller,
    cfg: &AccountsConfig,
    only: Option<&[String]>,
    sts_region: Option<&str>,
    concurrency: usize,
) -> Result<Discovery, DiscoveryError> {
    let selection = select_accounts(aws, caller, cfg, only).await?;
    let mut discovery = Discovery {
        inactive_accounts: selection.inactive_accounts,
        skipped: selection.skipped,
        ..Discovery::default()
    };
    let results: Vec<Result<AccountAccess, Skipped>> = futures::stream::iter(selection.ids)
        .map(|id| async move { enter(aws, caller, cfg, sts_region, &id).await })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    for r in results {
        match r {
            Ok(a) => discovery.accounts.push(a),
            Err(s) => discovery.skipped.push(s),
        }
    }
    Ok(discovery)
}

/// The spoke role of one account. The first session is taken up front (so an account that
/// cannot be entered is skipped before any ECR call) and reused by every client of the
/// account; a new one is taken when the current one nears its expiry, so a long run never
/// outlives its credentials.
///
/// Why not aws-config's `AssumeRoleProvider`: it does not cache, and each client's identity
/// cache would call AssumeRole again after the up-front check, one more call per account;
/// here the up-front session is the one the clients use, and [`Session`] refreshes it once
/// for all of them.
#[derive(Debug)]
struct SpokeRole {
    sts: aws_sdk_sts::Client,
    endpoint: String,
    role_arn: String,
    session_name: String,
    external_id: Option<String>,
    duration_seconds: Option<i32>,
    session: Session,
}

/// How long before expiry a session is replaced.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// One account's current credentials, refreshed single-flight: callers that find them near
/// expiry wait on one refresh instead of each calling AssumeRole.
#[derive(Debug, Default)]
struct Session(tokio::sync::Mutex<Option<Credentials>>);

impl Session {
    async fn get_or_refresh<F, Fut, E>(&self, refresh: F) -> Result<Credentials, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Credentials, E>>,
    {
        // Held across the refresh: the next caller waits and then finds fresh credentials.
        let mut current = self.0.lock().await;
        let fresh_until = SystemTime::now() + REFRESH_BEFORE_EXPIRY;
        if let Some(c) = current
            .as_ref()
            .filter(|c| c.expiry().is_none_or(|e| e > fresh_until))
        {
            return Ok(c.clone());
        }
        let c = refresh().await?;
        *current = Some(c.clone());
        Ok(c)
    }
}

impl SpokeRole {
    async fn assume(&self) -> Result<Credentials, AssumeFailure> {
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.clone())
            .set_duration_seconds(self.duration_seconds)
            .send()
            .await
            .map_err(|e| AssumeFailure {
                role_arn: self.role_arn.clone(),
                error: AwsError::from_sdk("sts:AssumeRole", &e, &self.endpoint),
            })?;
        let c = out.credentials().ok_or_else(|| AssumeFailure {
            role_arn: self.role_arn.clone(),
            error: AwsError {
                operation: "sts:AssumeRole",
                kind: crate::aws::ErrorKind::Other,
                code: None,
                detail: "no credentials in the response".to_string(),
            },
        })?;
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            SystemTime::try_from(*c.expiration()).ok(),
            "ecr-fleet-spoke-role",
        ))
    }
}

impl ProvideCredentials for SpokeRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.session
                .get_or_refresh(|| async {
                    self.assume()
                        .await
                        .map_err(|f| CredentialsError::provider_error(f.to_string()))
                })
                .await
        })
    }
}

async fn enter_account(
    sts: &aws_sdk_sts::Client,
    sts_endpoint: &str,
    caller: &Caller,
    cfg: &AccountsConfig,
    account_id: &str,
) -> Result<AccountAccess, AssumeFailure> {
    let role = SpokeRole {
        sts: sts.clone(),
        endpoint: sts_endpoint.to_string(),
        role_arn: role_arn(&caller.partition, account_id, &cfg.role_name),
        session_name: cfg.session_name.clone(),
        external_id: cfg.external_id.clone(),
        duration_seconds: cfg.session_duration_seconds,
        session: Session::default(),
    };
    role.session.get_or_refresh(|| role.assume()).await?;
    tracing::debug!(account = %account_id, role = %role.role_arn, "assumed spoke role");
    Ok(AccountAccess {
        account_id: account_id.to_string(),
        credentials: Some(SharedCredentialsProvider::new(role)),
    })
}

fn is_active(account: &aws_sdk_organizations::types::Account) -> bool {
    // `State` supersedes the older `Status`; an emulator or older API may send only one of them.
    match (account.state(), account.status()) {
        (Some(state), _) => *state == AccountState::Active,
        (None, Some(status)) => *status == AccountStatus::Active,
        (None, None) => true,
    }
}

/// Active and inactive member ids of the whole organization or of the given OU subtrees.
async fn organization_accounts(
    aws: &Aws,
    caller: &Caller,
    organizational_units: &[String],
) -> Result<(Vec<String>, Vec<String>), DiscoveryError> {
    let org = aws.organizations(organizations_region(&caller.partition));
    let endpoint = aws.endpoint("organizations", organizations_region(&caller.partition));
    let mut active = Vec::new();
    let mut inactive = Vec::new();
    let mut note = |account: &aws_sdk_organizations::types::Account| {
        if let Some(id) = account.id() {
            if is_active(account) {
                active.push(id.to_string());
            } else {
                tracing::info!(account = %id, "account is not ACTIVE: left out");
                inactive.push(id.to_string());
            }
        }
    };
    if organizational_units.is_empty() {
        let mut pages = org.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| DiscoveryError::Organization {
                error: AwsError::from_sdk("organizations:ListAccounts", &e, &endpoint),
                parent: None,
            })?;
            page.accounts().iter().for_each(&mut note);
        }
        return Ok((active, inactive));
    }
    // Walk each OU subtree breadth-first.
    let mut queue: VecDeque<String> = organizational_units.iter().cloned().collect();
    let mut visited = BTreeSet::new();
    while let Some(parent) = queue.pop_front() {
        if !visited.insert(parent.clone()) {
            continue;
        }
        let mut pages = org
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| DiscoveryError::Organization {
                error: AwsError::from_sdk("organizations:ListAccountsForParent", &e, &endpoint),
                parent: Some(parent.clone()),
            })?;
            page.accounts().iter().for_each(&mut note);
        }
        let mut pages = org
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| DiscoveryError::Organization {
                error: AwsError::from_sdk(
                    "organizations:ListOrganizationalUnitsForParent",
                    &e,
                    &endpoint,
                ),
                parent: Some(parent.clone()),
            })?;
            queue.extend(
                page.organizational_units()
                    .iter()
                    .filter_map(|ou| ou.id().map(str::to_string)),
            );
        }
    }
    Ok((active, inactive))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_follows_the_partition() {
        assert_eq!(
            role_arn("aws-us-gov", "111111111111", "EcrFleetSpoke"),
            "arn:aws-us-gov:iam::111111111111:role/EcrFleetSpoke"
        );
        assert_eq!(
            role_arn("aws", "111111111111", "platform/EcrFleetSpoke"),
            "arn:aws:iam::111111111111:role/platform/EcrFleetSpoke"
        );
    }

    #[test]
    fn organizations_endpoint_region_per_partition() {
        assert_eq!(organizations_region("aws"), "us-east-1");
        assert_eq!(organizations_region("aws-cn"), "cn-northwest-1");
        assert_eq!(organizations_region("aws-us-gov"), "us-gov-west-1");
    }

    fn session_expiring_in(secs: u64) -> Credentials {
        Credentials::new(
            "key",
            "secret",
            None,
            Some(SystemTime::now() + Duration::from_secs(secs)),
            "test",
        )
    }

    #[tokio::test]
    async fn callers_near_expiry_share_one_refresh() {
        let session = Session::default();
        *session.0.lock().await = Some(session_expiring_in(60));
        let refreshes = std::sync::atomic::AtomicUsize::new(0);
        let calls = (0..20).map(|_| {
            session.get_or_refresh(|| async {
                refreshes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, String>(session_expiring_in(3600))
            })
        });
        let got = futures::future::join_all(calls).await;
        assert!(got.iter().all(|c| c.is_ok()));
        assert_eq!(refreshes.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn fresh_credentials_are_reused_and_a_failed_refresh_is_retried() {
        let session = Session::default();
        let failed: Result<Credentials, String> = session
            .get_or_refresh(|| async { Err("denied".into()) })
            .await;
        assert_eq!(failed.unwrap_err(), "denied");
        let first = session
            .get_or_refresh(|| async { Ok::<_, String>(session_expiring_in(3600)) })
            .await
            .unwrap();
        let again = session
            .get_or_refresh(|| async { Err::<Credentials, String>("not called".into()) })
            .await
            .unwrap();
        assert_eq!(first.access_key_id(), again.access_key_id());
    }
}
