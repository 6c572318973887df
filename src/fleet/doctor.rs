//! `doctor`: what a run needs, checked without writing anything, one row per check. The
//! caller's credentials, the account listing, the spoke role of each account, the enabled
//! regions when asked, then every read (and, with `--write-access`, every write) of each
//! account-region (see [`super::probe`]), concurrently within the run's caps.

use futures::StreamExt;

use super::discovery::{self, AccountAccess, AssumeFailure, Caller, DiscoveryError};
use super::probe::{self, Grantee, ProbeOptions};
use super::regions;
use crate::aws::{Aws, ErrorKind, RunLimits, Stop};
use crate::config::{AccountSource, Config, RegionSelection};
use crate::model::{Check, CheckStatus};

pub struct DoctorInput<'a> {
    pub aws: &'a Aws,
    pub config: &'a Config,
    /// `--accounts`.
    pub only: Option<&'a [String]>,
    pub selection: &'a RegionSelection,
    pub sts_region: Option<&'a str>,
    /// Region of the Account API (ListRegions).
    pub home: &'a str,
    pub options: ProbeOptions,
}

/// Every check, in order: credentials, accounts, then per account and region.
pub async fn run(input: &DoctorInput<'_>) -> Vec<Check> {
    let DoctorInput {
        aws,
        config,
        only,
        sts_region,
        ..
    } = *input;
    let mut rows = Vec::new();
    let caller = match discovery::caller(aws, sts_region).await {
        Ok(caller) => caller,
        Err(e) => {
            rows.push(caller_failed(&e));
            return rows;
        }
    };
    rows.push(
        Check::new("credentials", "sts:GetCallerIdentity", CheckStatus::Pass)
            .at(&caller.account_id, None)
            .detail(format!("caller {}", caller.arn)),
    );
    let accounts = match discovery::select_accounts(aws, &caller, &config.accounts, only).await {
        Ok(s) => s,
        Err(e) => {
            rows.push(listing_failed(&e));
            return rows;
        }
    };
    let (action, source) = listing_source(config);
    rows.push(
        Check::new("accounts", action, CheckStatus::Pass).detail(format!(
            "{} account(s) to visit ({source}){}",
            accounts.ids.len(),
            match accounts.inactive_accounts {
                0 => String::new(),
                n => format!(", {n} not ACTIVE left out"),
            }
        )),
    );
    for s in &accounts.skipped {
        rows.push(
            Check::new("accounts", action, CheckStatus::Fail)
                .at(&s.account_id, None)
                .failed(
                    s.error.clone(),
                    "remove the id from --accounts, or add the account to the configured source",
                ),
        );
    }

    let concurrency = config.execution.concurrency.max(1);
    let entered: Vec<Entered> = futures::stream::iter(&accounts.ids)
        .map(|id| enter(input, &caller, id))
        .buffered(concurrency)
        .collect()
        .await;
    let limits = RunLimits::new(&config.execution, aws.stats.clone(), Stop::default());
    let mut targets = Vec::new();
    for account in entered {
        rows.extend(account.rows);
        if let Some(access) = account.access {
            let id = &account.id;
            targets.extend(
                account
                    .regions
                    .into_iter()
                    .map(|r| (id.clone(), r, access.clone())),
            );
        }
    }
    let options = &input.options;
    let probed: Vec<Vec<Check>> = futures::stream::iter(targets)
        .map(|(id, region, access)| {
            let limits = &limits;
            let caller = &caller;
            async move {
                let credentials = access.credentials.as_ref();
                let target = aws.target(&id, &region, &caller.partition, credentials, limits);
                let grantee = match credentials {
                    Some(_) => Grantee::SpokeRole,
                    None => Grantee::Caller,
                };
                probe::account_region(aws, &target, credentials, grantee, options).await
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    rows.extend(probed.into_iter().flatten());
    rows
}

/// The first row when the caller cannot be identified.
fn caller_failed(e: &DiscoveryError) -> Check {
    let row = Check::new("credentials", "sts:GetCallerIdentity", CheckStatus::Fail);
    let DiscoveryError::Caller(error) = e else {
        return row.failed(e.to_string(), "see the error");
    };
    let fix = match error.kind {
        ErrorKind::Credentials => {
            "configure credentials: `aws configure sso` once, then AWS_PROFILE=NAME; or `aws sso \
             login` when the session expired"
                .to_string()
        }
        ErrorKind::AccessDenied => "the credentials were refused (expired or revoked): refresh \
                                    them (`aws sso login`) or use another profile"
            .to_string(),
        ErrorKind::Transient | ErrorKind::Throttling => format!(
            "AWS STS did not answer: check the network, the proxy settings and \
             AWS_ENDPOINT_URL ({})",
            error.detail
        ),
        _ => "see the error".to_string(),
    };
    row.failed(error.detail.clone(), fix)
}

fn listing_source(config: &Config) -> (&'static str, &'static str) {
    match &config.accounts.source {
        AccountSource::Current => ("sts:GetCallerIdentity", "the caller's own account"),
        AccountSource::List(_) => ("accounts.list", "the configured list"),
        AccountSource::Organization {
            organizational_units,
        } if organizational_units.is_empty() => ("organizations:ListAccounts", "organization"),
        AccountSource::Organization { .. } => (
            "organizations:ListAccountsForParent",
            "organizational units",
        ),
    }
}

fn listing_failed(e: &DiscoveryError) -> Check {
    let error = match e {
        DiscoveryError::Organization { error, .. } | DiscoveryError::Caller(error) => error,
    };
    let fix = match error.kind {
        ErrorKind::AccessDenied => format!(
            "add {} to the caller's policy (docs/iam/hub-policy.json); the caller must be in the \
             management account or a delegated administrator account of the organization",
            error.operation
        ),
        _ => probe::fix_for(error, Grantee::Caller),
    };
    let parent = match e {
        DiscoveryError::Organization {
            parent: Some(p), ..
        } => format!(" (parent {p})"),
        _ => String::new(),
    };
    Check::new("accounts", error.operation, CheckStatus::Fail)
        .failed(format!("{}{parent}", error.detail), fix)
}

/// One account after its spoke role and regions checks.
struct Entered {
    id: String,
    rows: Vec<Check>,
    /// `None` when the account could not be entered.
    access: Option<AccountAccess>,
    /// The regions to check in it.
    regions: Vec<String>,
}

/// Enter one account: its spoke role row, its regions row, and the regions to visit.
async fn enter(input: &DoctorInput<'_>, caller: &Caller, id: &str) -> Entered {
    let entered = |rows, access, regions| Entered {
        id: id.to_string(),
        rows,
        access,
        regions,
    };
    let DoctorInput {
        aws,
        config,
        selection,
        sts_region,
        home,
        ..
    } = *input;
    let accounts = &config.accounts;
    let mut rows = Vec::new();
    let role = discovery::role_arn(&caller.partition, id, &accounts.role_name);
    let access = match discovery::enter_checked(aws, caller, accounts, sts_region, id).await {
        Ok(access) if access.credentials.is_none() => {
            rows.push(
                Check::new("spoke role", "sts:AssumeRole", CheckStatus::Skip)
                    .at(id, None)
                    .detail("the caller's own account: its own credentials are used"),
            );
            access
        }
        Ok(access) => {
            rows.push(
                Check::new("spoke role", "sts:AssumeRole", CheckStatus::Pass)
                    .at(id, None)
                    .detail(format!(
                        "{role} (session duration {}, external id {})",
                        accounts
                            .session_duration_seconds
                            .map_or("the role's default".to_string(), |s| format!("{s} s")),
                        if accounts.external_id.is_some() {
                            "given"
                        } else {
                            "none"
                        }
                    )),
            );
            access
        }
        Err(failure) => {
            rows.push(
                Check::new("spoke role", "sts:AssumeRole", CheckStatus::Fail)
                    .at(id, None)
                    .failed(
                        format!("{} (role {})", failure.error.detail, failure.role_arn),
                        assume_fix(&failure, caller, config),
                    ),
            );
            return entered(rows, None, Vec::new());
        }
    };
    let listed = match selection {
        RegionSelection::Listed(r) => Some(r.as_slice()),
        RegionSelection::Enabled => None,
    };
    let ask = listed.is_none_or(|l| l.iter().any(|r| regions::may_be_disabled(r)));
    if !ask {
        return entered(rows, Some(access), listed.unwrap_or(&[]).to_vec());
    }
    let client = aws.account(home, access.credentials.as_ref());
    let grantee = match access.credentials {
        Some(_) => Grantee::SpokeRole,
        None => Grantee::Caller,
    };
    let visit = match regions::enabled_regions(&client, &aws.endpoint("account", home)).await {
        Ok(enabled) => {
            let visit: Vec<String> = match listed {
                Some(listed) => {
                    let (visit, disabled) = regions::split_listed(listed, &enabled);
                    for region in disabled {
                        rows.push(
                            Check::new("regions", "account:ListRegions", CheckStatus::Skip)
                                .at(id, Some(&region))
                                .detail("not enabled in this account: a run leaves it out"),
                        );
                    }
                    visit
                }
                None => enabled.into_iter().collect(),
            };
            rows.push(
                Check::new("regions", "account:ListRegions", CheckStatus::Pass)
                    .at(id, None)
                    .detail(format!("{} region(s) to visit", visit.len())),
            );
            visit
        }
        Err(error) => {
            rows.push(
                Check::new("regions", "account:ListRegions", CheckStatus::Fail)
                    .at(id, None)
                    .failed(error.to_string(), probe::fix_for(&error, grantee)),
            );
            // A listed region is still visited when the opt-in status is unknown.
            listed.unwrap_or(&[]).to_vec()
        }
    };
    entered(rows, Some(access), visit)
}

/// What to change when the spoke role cannot be assumed.
fn assume_fix(failure: &AssumeFailure, caller: &Caller, config: &Config) -> String {
    let accounts = &config.accounts;
    let text = failure.error.detail.to_ascii_lowercase();
    if text.contains("durationseconds") || text.contains("duration") {
        return format!(
            "lower [accounts] session_duration_seconds ({}) to at most the role's maximum \
             session duration, or raise MaxSessionDuration of {}",
            accounts
                .session_duration_seconds
                .map_or("unset".to_string(), |s| s.to_string()),
            failure.role_arn
        );
    }
    match failure.error.kind {
        ErrorKind::AccessDenied => format!(
            "the spoke role's trust policy does not trust {} or the external id differs \
             ([accounts] external_id {}); also check that {} exists in the account (the \
             StackSet deployed there) and that the caller may sts:AssumeRole it \
             (docs/iam/spoke-trust.json, docs/iam/hub-policy.json)",
            caller.arn,
            if accounts.external_id.is_some() {
                "is set"
            } else {
                "is not set"
            },
            failure.role_arn
        ),
        _ => probe::fix_for(&failure.error, Grantee::Caller),
    }
}
