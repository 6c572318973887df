//! The streaming run. Nothing waits for everything: an account's inventory starts as soon as
//! its role is assumed, each repository is planned as soon as it is read (its images are
//! evaluated there and dropped), and `apply --yes` writes it right away, from the same policy
//! read. Interactive apply instead collects the plan, asks, then writes with [`write_planned`].

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use super::discovery::{self, Caller};
use super::inventory::{bulk_tags, inspect_repository, list_repositories, InventoryOptions};
use super::prepass::Prepass;
use crate::aws::{Aws, AwsError, ErrorKind, RunLimits, Target};
use crate::config::Config;
use crate::decide::plan::{plan_one, PlanOptions};
use crate::model::{Notice, Outcome, RepoResult, Skipped};
use crate::progress::Progress;
use crate::write::journal::Journal;
use crate::write::put::{write_row, Recheck};

/// Repositories of one account-region in progress at once; the call gate bounds the calls.
const REPOSITORIES_IN_FLIGHT: usize = 64;

/// Whether and when a run writes.
#[derive(Debug, Clone)]
pub enum WriteMode {
    /// `plan`, `audit`: nothing is written, and nothing read outlives its account-region, so
    /// memory stays flat on large fleets.
    None,
    /// `apply --yes`: each row is written as soon as it is decided, from the policy just read.
    Streaming {
        journal: Arc<Journal>,
        allow_unsafe: bool,
    },
    /// Interactive `apply`: the account-regions' clients and the policies read are kept for
    /// the writes after the confirmation ([`write_planned`]).
    AfterConfirmation { allow_unsafe: bool },
}

/// Everything a run needs to visit the fleet.
pub struct FleetRun<'a> {
    pub aws: &'a Aws,
    pub config: &'a Config,
    pub caller: &'a Caller,
    pub sts_region: Option<&'a str>,
    pub regions: &'a [String],
    pub inventory: InventoryOptions,
    pub plan: PlanOptions<'a>,
    pub limits: RunLimits,
    pub writes: WriteMode,
    /// Accounts already entered and their regions (region discovery, in-use index).
    pub prepass: Option<&'a Prepass>,
}

#[derive(Default)]
pub struct FleetOutput {
    pub rows: Vec<RepoResult>,
    pub skipped: Vec<Skipped>,
    pub notices: Vec<Notice>,
    /// The account-regions that were listed, for writes after a confirmation.
    pub targets: HashMap<(String, String), Target>,
}

enum TargetOutcome {
    Done {
        rows: Vec<RepoResult>,
        notice: Option<Notice>,
        target: Option<Target>,
    },
    Skipped(Skipped),
}

impl FleetRun<'_> {
    /// Visit `accounts` x `regions`.
    pub async fn run(&self, accounts: Vec<String>, progress: &Progress) -> FleetOutput {
        let mut out = futures::stream::iter(accounts)
            .map(|account_id| async move {
                let regions = match self.prepass {
                    Some(p) => p.regions_of(&account_id, self.regions),
                    None => self.regions,
                };
                if self.limits.stop.is_set() {
                    for _ in regions {
                        progress.step();
                    }
                    return vec![TargetOutcome::Skipped(Skipped {
                        account_id,
                        region: None,
                        error: "not visited: interrupted".to_string(),
                    })];
                }
                let entered = match self.prepass.and_then(|p| p.entered.get(&account_id)) {
                    Some(entered) => entered.clone(),
                    None => {
                        discovery::enter(
                            self.aws,
                            self.caller,
                            &self.config.accounts,
                            self.sts_region,
                            &account_id,
                        )
                        .await
                    }
                };
                let access = match entered {
                    Ok(a) => a,
                    Err(skipped) => {
                        for _ in regions {
                            progress.step();
                        }
                        return vec![TargetOutcome::Skipped(skipped)];
                    }
                };
                futures::future::join_all(regions.iter().map(|region| {
                    let target = self.aws.target(
                        &account_id,
                        region,
                        &self.caller.partition,
                        access.credentials.as_ref(),
                        &self.limits,
                    );
                    async move {
                        let outcome = self.visit(target, progress).await;
                        progress.step();
                        outcome
                    }
                }))
                .await
            })
            // Accounts are entered side by side; the call gate caps what is in flight.
            .buffer_unordered(self.config.execution.concurrency.max(1))
            // Rows join the output as each account is done: no second copy of the fleet.
            .fold(FleetOutput::default(), |mut out, outcomes| async move {
                for outcome in outcomes {
                    match outcome {
                        TargetOutcome::Done {
                            rows,
                            notice,
                            target,
                        } => {
                            out.rows.extend(rows);
                            out.notices.extend(notice);
                            if let Some(target) = target {
                                out.targets.insert(
                                    (target.account_id.clone(), target.region.clone()),
                                    target,
                                );
                            }
                        }
                        TargetOutcome::Skipped(s) => out.skipped.push(s),
                    }
                }
                out
            })
            .await;
        // Keys are unique: an in-place sort needs no buffer the size of the fleet.
        out.rows.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
        out.skipped
            .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        out.notices
            .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        out
    }

    async fn visit(&self, target: Target, progress: &Progress) -> TargetOutcome {
        let skipped = |error: AwsError| {
            TargetOutcome::Skipped(Skipped {
                account_id: target.account_id.clone(),
                region: Some(target.region.clone()),
                error: error.to_string(),
            })
        };
        let listed = match list_repositories(&target, &self.inventory).await {
            Ok(l) => l,
            Err(e) => return skipped(e),
        };
        tracing::debug!(account = %target.account_id, region = %target.region, repositories = listed.len(), "listed");
        let mut notice = None;
        let index = if listed.is_empty() {
            None
        } else {
            match bulk_tags(&target).await {
                Ok(index) => Some(index),
                Err(e) if e.kind == ErrorKind::Interrupted => return skipped(e),
                Err(e) => {
                    tracing::warn!(account = %target.account_id, region = %target.region, error = %e, "tagging API unavailable: reading tags one repository at a time");
                    notice = Some(Notice {
                        account_id: target.account_id.clone(),
                        region: target.region.clone(),
                        message: format!(
                            "tags read one repository at a time (ecr:ListTagsForResource): {e}"
                        ),
                    });
                    None
                }
            }
        };
        let bulk = index.is_some();
        let rows = futures::stream::iter(&listed)
            .map(|repo| {
                let tags = index
                    .as_ref()
                    .map(|i| i.get(&repo.arn).cloned().unwrap_or_default());
                let target = &target;
                async move {
                    let facts =
                        inspect_repository(target, repo, tags, self.config, &self.inventory).await;
                    let mut row = plan_one(facts, self.config, self.plan);
                    let keep_policy = match &self.writes {
                        WriteMode::Streaming {
                            journal,
                            allow_unsafe,
                        } => {
                            if wants_write(&row, *allow_unsafe) {
                                // The tagging API is eventually consistent: the exception tag
                                // is read again before the write; the policy was read just now.
                                let recheck = Recheck {
                                    tags: bulk,
                                    policy: false,
                                };
                                write(&mut row, self.config, target, journal, recheck).await;
                            }
                            false
                        }
                        // The policy read is needed again only for a write still to come.
                        WriteMode::AfterConfirmation { allow_unsafe } => {
                            wants_write(&row, *allow_unsafe)
                        }
                        WriteMode::None => false,
                    };
                    if !keep_policy {
                        row.current_policy = None;
                    }
                    progress.item();
                    row
                }
            })
            .buffer_unordered(REPOSITORIES_IN_FLIGHT)
            .collect()
            .await;
        TargetOutcome::Done {
            rows,
            notice,
            target: matches!(self.writes, WriteMode::AfterConfirmation { .. }).then_some(target),
        }
    }
}

/// A row `apply` writes: a change, or a blocked one when `--allow-unsafe` says so.
pub fn wants_write(row: &RepoResult, allow_unsafe: bool) -> bool {
    row.outcome.is_write() || (allow_unsafe && row.outcome == Outcome::Blocked)
}

async fn write(
    row: &mut RepoResult,
    config: &Config,
    target: &Target,
    journal: &Arc<Journal>,
    recheck: Recheck,
) {
    match row
        .template
        .as_deref()
        .and_then(|t| config.templates.get(t))
    {
        Some(template) => write_row(row, template, target, journal, recheck, config).await,
        None => {
            row.outcome = Outcome::Error;
            row.error = Some("template not loaded".to_string());
        }
    }
}

/// Writes after an interactive confirmation: tags and policy are read again first, since
/// time passed since the plan.
pub async fn write_planned(
    rows: &mut [RepoResult],
    config: &Config,
    targets: &HashMap<(String, String), Target>,
    journal: &Arc<Journal>,
    allow_unsafe: bool,
    progress: &Progress,
) {
    let work: Vec<&mut RepoResult> = rows
        .iter_mut()
        .filter(|r| wants_write(r, allow_unsafe))
        .collect();
    futures::stream::iter(work)
        .for_each_concurrent(None, |row| async move {
            match targets.get(&(row.account_id.clone(), row.region.clone())) {
                Some(target) => {
                    let recheck = Recheck {
                        tags: true,
                        policy: true,
                    };
                    write(row, config, target, journal, recheck).await;
                }
                None => {
                    row.outcome = Outcome::Error;
                    row.error = Some("no client for this account-region".to_string());
                }
            }
            progress.step();
        })
        .await;
}
