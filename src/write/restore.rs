//! Restore: undo the writes of an earlier apply, one journal entry at a time, only where the
//! repository still holds what that apply wrote.

use super::journal::{Recorded, RestoreEntry};
use ecr_lifecycle::semantically_equal;

use super::put::same_policy;
use crate::aws::ecr::read_policy;
use crate::aws::{CallClass, ErrorKind, Target};
use crate::model::{Outcome, RepoResult};

pub async fn restore_entry(restore: &RestoreEntry, target: &Target) -> RepoResult {
    let entry = &restore.entry;
    let mut row = RepoResult::new(
        &entry.account_id,
        &entry.region,
        &entry.repository,
        Some(entry.template.clone()),
    );
    if restore.recorded == Recorded::NotWritten {
        // The journal says this write failed or never started: nothing to undo.
        row.outcome = Outcome::Unchanged;
        return row;
    }
    let current = match read_policy(target, &entry.repository).await {
        Ok(c) => c,
        Err(e) if e.kind == ErrorKind::RepositoryNotFound => {
            row.outcome = Outcome::Gone;
            return row;
        }
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    // An intent without an outcome whose repository still holds the previous policy was
    // never written: `unchanged`, like a restore that already happened.
    if same_policy(current.as_deref(), entry.previous_policy.as_deref()) {
        row.outcome = Outcome::Unchanged;
        return row;
    }
    let holds_written = current
        .as_deref()
        .is_some_and(|c| semantically_equal(c, &entry.written_policy));
    if !holds_written {
        row.error = Some(
            "conflict: the repository's policy changed since the apply that wrote this backup; left alone".to_string(),
        );
        return row;
    }
    // Both directions are an `update` of the repository's policy; a created policy is deleted.
    row.outcome = Outcome::Update;
    row.diff = Some(
        crate::decide::diff::labelled_diff(
            current.as_deref(),
            entry.previous_policy.as_deref(),
            "previous",
        )
        .into(),
    );
    let result = match &entry.previous_policy {
        Some(previous) => target
            .calls
            .call(CallClass::Write, "ecr:PutLifecyclePolicy", || {
                target
                    .ecr
                    .put_lifecycle_policy()
                    .repository_name(&entry.repository)
                    .lifecycle_policy_text(previous)
                    .send()
            })
            .await
            .map(|_| ()),
        // Apply created this policy: restoring means removing it.
        None => match target
            .calls
            .call(CallClass::Write, "ecr:DeleteLifecyclePolicy", || {
                target
                    .ecr
                    .delete_lifecycle_policy()
                    .repository_name(&entry.repository)
                    .send()
            })
            .await
        {
            Err(e) if e.kind == ErrorKind::PolicyNotFound => Ok(()),
            other => other.map(|_| ()),
        },
    };
    match result {
        Ok(()) => row.applied = true,
        Err(e) if e.kind == ErrorKind::RepositoryNotFound => {
            row.outcome = Outcome::Gone;
            row.diff = None;
        }
        Err(e) => {
            row.outcome = Outcome::Error;
            row.error = Some(e.to_string());
        }
    }
    row
}
