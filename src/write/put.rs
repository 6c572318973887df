//! One write: re-check the exception tag (and the policy, after a pause), journal the intent,
//! put the template, journal the outcome.

use std::sync::Arc;

use ecr_lifecycle::semantically_equal;

use super::journal::{Journal, JournalRecord, WriteResult};
use super::INTERRUPTED;
use crate::aws::ecr::{read_policy, read_tags_in};
use crate::aws::{AwsError, CallClass, ErrorKind, Slot, Target};
use crate::config::templates::Template;
use crate::config::Config;
use crate::model::{Outcome, RepoResult};

/// What to read again just before a write.
#[derive(Debug, Clone, Copy)]
pub struct Recheck {
    /// The exception tag (always, unless the tags were read one by one moments ago).
    pub tags: bool,
    /// The policy, when time passed since it was read (an interactive confirmation).
    pub policy: bool,
}

/// Write one row's template. The row's outcome and error say what happened; the journal holds
/// an intent before the call and an outcome after it.
pub async fn write_row(
    row: &mut RepoResult,
    template: &Template,
    target: &Target,
    journal: &Arc<Journal>,
    recheck: Recheck,
    config: &Config,
) {
    if target.calls.stop().is_set() {
        row.error = Some(INTERRUPTED.to_string());
        return;
    }
    // The write's slot comes first: its re-check of the tag rides on it, at the write pace,
    // right before the put, instead of in a burst of reads ahead of writes that wait for
    // their turn (or behind the account-region's queue of policy reads).
    let slot = target.calls.take_slot(CallClass::Write).await;
    if recheck.tags {
        let arn = target.repository_arn(&row.repository);
        match read_tags_in(target, &arn, Slot::riding(CallClass::Read)).await {
            Ok(tags) if config.exception.exempts(&tags) => {
                tracing::info!(repository = %row.repository, "exception tag found just before the write: left alone");
                row.outcome = Outcome::Excluded;
                row.diff = None;
                return;
            }
            Ok(_) => {}
            Err(e) => return not_written(row, e),
        }
    }
    if recheck.policy {
        // The journal holds what the plan saw; write only if that is still what is there.
        let now = match read_policy(target, &row.repository).await {
            Ok(now) => now,
            Err(e) => return not_written(row, e),
        };
        if !same_policy(now.as_deref(), row.current_policy.as_deref()) {
            if now
                .as_deref()
                .is_some_and(|n| semantically_equal(n, &template.text))
            {
                row.outcome = Outcome::Unchanged;
                row.diff = None;
            } else {
                row.outcome = Outcome::Error;
                row.error = Some(
                    "conflict: the policy changed since the plan; not written (plan again)"
                        .to_string(),
                );
            }
            return;
        }
    }
    let intent = JournalRecord::Intent {
        account_id: row.account_id.clone(),
        region: row.region.clone(),
        repository: row.repository.clone(),
        template: template.name.clone(),
        previous_policy: row.current_policy.clone(),
        new_policy: template.text.clone(),
    };
    if let Err(e) = journal.append(intent, true).await {
        row.outcome = Outcome::Error;
        row.error = Some(format!("not written: {e}"));
        return;
    }
    let put = target
        .calls
        .call_in(slot, "ecr:PutLifecyclePolicy", || {
            target
                .ecr
                .put_lifecycle_policy()
                .repository_name(&row.repository)
                .lifecycle_policy_text(&template.text)
                .send()
        })
        .await;
    let (result, error_code) = match &put {
        Ok(_) => (WriteResult::Written, None),
        Err(e) if e.kind == ErrorKind::Interrupted => (WriteResult::NotWritten, None),
        Err(e) => (WriteResult::Failed, e.code.clone()),
    };
    let outcome = JournalRecord::Outcome {
        account_id: row.account_id.clone(),
        region: row.region.clone(),
        repository: row.repository.clone(),
        result,
        error_code,
    };
    if let Err(e) = journal.append(outcome, false).await {
        // The intent is on disk; restore will look at the repository to learn the rest.
        tracing::warn!(error = %e, "outcome not recorded in the journal");
    }
    match put {
        Ok(_) => {
            row.applied = true;
            // A blocked repository written with --allow-unsafe is reported as the change it
            // was; its protected images stay listed.
            if row.outcome == Outcome::Blocked {
                row.outcome = if row.current_policy.is_none() {
                    Outcome::Create
                } else {
                    Outcome::Update
                };
            }
        }
        Err(e) => not_written(row, e),
    }
}

fn not_written(row: &mut RepoResult, e: AwsError) {
    match e.kind {
        ErrorKind::Interrupted => row.error = Some(INTERRUPTED.to_string()),
        ErrorKind::RepositoryNotFound => {
            row.outcome = Outcome::Gone;
            row.diff = None;
        }
        _ => {
            row.outcome = Outcome::Error;
            row.error = Some(format!("not written: {e}"));
        }
    }
}

pub(super) fn same_policy(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => semantically_equal(a, b),
        _ => false,
    }
}
