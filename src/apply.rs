//! Writing: the backup recorded before any write, the concurrent writes themselves, and the
//! restore that undoes an apply from its backup.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use ecr_lifecycle::semantically_equal;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::aws::{describe_error, error_code};
use crate::config::{Config, ExceptionConfig};
use crate::inventory::{read_policy, read_tags, Limiter};
use crate::plan::{Outcome, RepoResult};
use crate::progress::Progress;

pub const BACKUP_VERSION: u32 = 1;

/// The error of a row whose write was not started because the run was interrupted.
const INTERRUPTED: &str = "not written: interrupted";

/// What `apply` is about to replace, written (and flushed to disk) before the first write.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub backup_version: u32,
    pub created_at: String,
    pub entries: Vec<BackupEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BackupEntry {
    pub account_id: String,
    pub region: String,
    pub repository: String,
    pub template: String,
    /// The policy text found before the write; `null` when the repository had none.
    pub previous_policy: Option<String>,
    /// The policy text apply writes.
    pub written_policy: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: cannot write backup: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read backup: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a valid ecr-fleet backup: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path}: unsupported backup_version {version} (this ecr-fleet reads {BACKUP_VERSION})"
    )]
    Version { path: String, version: u32 },
    #[error("{path}: entries[{index}].{field}: {message}")]
    Entry {
        path: String,
        index: usize,
        field: &'static str,
        message: String,
    },
}

pub fn default_backup_path(dir: &Path, now: jiff::Timestamp) -> PathBuf {
    dir.join(format!(
        "ecr-fleet-backup-{}.json",
        now.strftime("%Y%m%dT%H%M%SZ")
    ))
}

/// Write the backup atomically-enough for our purpose: a new file (never overwriting an
/// earlier backup), fully written and synced before returning.
pub fn write_backup(path: &Path, backup: &Backup) -> Result<(), BackupError> {
    let err = |source| BackupError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(err)?;
    let mut text = serde_json::to_string_pretty(backup).expect("backup serializes");
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(())
}

pub fn read_backup(path: &Path) -> Result<Backup, BackupError> {
    let text = std::fs::read_to_string(path).map_err(|source| BackupError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let backup: Backup = serde_json::from_str(&text).map_err(|e| BackupError::Parse {
        path: path.display().to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if backup.backup_version != BACKUP_VERSION {
        return Err(BackupError::Version {
            path: path.display().to_string(),
            version: backup.backup_version,
        });
    }
    check_entries(&backup).map_err(|(index, field, message)| BackupError::Entry {
        path: path.display().to_string(),
        index,
        field,
        message,
    })?;
    Ok(backup)
}

/// A backup is input like a config: check it whole before restoring anything from it.
fn check_entries(backup: &Backup) -> Result<(), (usize, &'static str, String)> {
    let mut seen = std::collections::HashSet::new();
    for (i, e) in backup.entries.iter().enumerate() {
        crate::config::check_account_id(&e.account_id).map_err(|m| (i, "account_id", m))?;
        crate::config::check_region(&e.region).map_err(|m| (i, "region", m))?;
        if e.repository.is_empty() || e.repository.len() > 256 {
            return Err((
                i,
                "repository",
                format!("{:?} is not a repository name", e.repository),
            ));
        }
        if !seen.insert((&e.account_id, &e.region, &e.repository)) {
            return Err((i, "repository", "appears twice in this backup".to_string()));
        }
    }
    Ok(())
}

/// The backup entries for the rows apply will write.
pub fn backup_entries(config: &Config, rows: &[&RepoResult]) -> Vec<BackupEntry> {
    rows.iter()
        .filter_map(|r| {
            let template = config.templates.get(r.template.as_deref()?)?;
            Some(BackupEntry {
                account_id: r.account_id.clone(),
                region: r.region.clone(),
                repository: r.repository.clone(),
                template: template.name.clone(),
                previous_policy: r.current_policy.clone(),
                written_policy: template.text.clone(),
            })
        })
        .collect()
}

/// One account-region's writer: its client and its share of the call limits.
#[derive(Debug, Clone)]
pub struct TargetClient {
    pub client: aws_sdk_ecr::Client,
    pub limiter: Limiter,
    pub partition: String,
}

pub type Clients = HashMap<(String, String), TargetClient>;

fn repository_arn(partition: &str, account_id: &str, region: &str, name: &str) -> String {
    format!("arn:{partition}:ecr:{region}:{account_id}:repository/{name}")
}

/// Write every row that should be written. The exception tag and the policy are read again
/// just before each write (see `write_row`). A failure marks its row as an error; the other
/// writes go on. `stop` (set on Ctrl-C) lets the writes in flight finish and starts no new one;
/// rows not written say so.
pub async fn apply_rows(
    rows: &mut [RepoResult],
    config: &Config,
    clients: &Clients,
    allow_unsafe: bool,
    progress: &Progress,
    stop: &AtomicBool,
) {
    let work: Vec<&mut RepoResult> = rows
        .iter_mut()
        .filter(|r| r.outcome.is_write() || (allow_unsafe && r.outcome == Outcome::Blocked))
        .collect();
    futures::stream::iter(work)
        .for_each_concurrent(None, |row| async move {
            let key = (row.account_id.clone(), row.region.clone());
            match clients.get(&key) {
                Some(target) => write_row(row, config, target, &config.exception, stop).await,
                None => {
                    row.outcome = Outcome::Error;
                    row.error = Some("no client for this account-region".to_string());
                }
            }
            progress.step();
        })
        .await;
}

async fn write_row(
    row: &mut RepoResult,
    config: &Config,
    target: &TargetClient,
    exception: &ExceptionConfig,
    stop: &AtomicBool,
) {
    if stop.load(Ordering::SeqCst) {
        row.error = Some(INTERRUPTED.to_string());
        return;
    }
    let Some(template) = row
        .template
        .as_deref()
        .and_then(|t| config.templates.get(t))
    else {
        row.outcome = Outcome::Error;
        row.error = Some("template not loaded".to_string());
        return;
    };
    let arn = repository_arn(
        &target.partition,
        &row.account_id,
        &row.region,
        &row.repository,
    );
    match read_tags(&target.client, &arn, &target.limiter).await {
        Ok(tags) if exception.exempts(&tags) => {
            tracing::info!(repository = %row.repository, "exception tag appeared since the plan: left alone");
            row.outcome = Outcome::Excluded;
            row.diff = None;
            return;
        }
        Ok(_) => {}
        Err(e) => {
            row.outcome = Outcome::Error;
            row.error = Some(format!("not written: {e}"));
            return;
        }
    }
    // The backup holds what the plan saw; write only if that is still what is there, so the
    // backup never misses a policy someone changed in the meantime.
    let now = match read_policy(&target.client, &row.repository, &target.limiter).await {
        Ok(now) => now,
        Err(e) => {
            row.outcome = Outcome::Error;
            row.error = Some(format!("not written: {e}"));
            return;
        }
    };
    let same_as_planned = match (&now, &row.current_policy) {
        (None, None) => true,
        (Some(a), Some(b)) => semantically_equal(a, b),
        _ => false,
    };
    if !same_as_planned {
        if now
            .as_deref()
            .is_some_and(|n| semantically_equal(n, &template.text))
        {
            row.outcome = Outcome::Unchanged;
            row.diff = None;
        } else {
            row.outcome = Outcome::Error;
            row.error = Some(
                "conflict: the policy changed since the plan; not written (plan again)".to_string(),
            );
        }
        return;
    }
    // Checked again once the call may go: a write waiting for its turn when Ctrl-C comes
    // is not started.
    let put = target
        .limiter
        .run(async {
            if stop.load(Ordering::SeqCst) {
                return None;
            }
            Some(
                target
                    .client
                    .put_lifecycle_policy()
                    .repository_name(&row.repository)
                    .lifecycle_policy_text(&template.text)
                    .send()
                    .await,
            )
        })
        .await;
    let Some(put) = put else {
        row.error = Some(INTERRUPTED.to_string());
        return;
    };
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
        Err(e) => {
            row.outcome = Outcome::Error;
            row.error = Some(format!("ecr:PutLifecyclePolicy: {}", describe_error(&e)));
        }
    }
}

/// Undo one backup entry if the repository still holds what apply wrote.
pub async fn restore_entry(entry: &BackupEntry, target: &TargetClient) -> RepoResult {
    let mut row = RepoResult::new(
        &entry.account_id,
        &entry.region,
        &entry.repository,
        Some(entry.template.clone()),
    );
    let current = match read_policy(&target.client, &entry.repository, &target.limiter).await {
        Ok(c) => c,
        Err(e) => {
            row.error = Some(e);
            return row;
        }
    };
    let holds_written = current
        .as_deref()
        .is_some_and(|c| semantically_equal(c, &entry.written_policy));
    let holds_previous = match (&current, &entry.previous_policy) {
        (None, None) => true,
        (Some(c), Some(p)) => semantically_equal(c, p),
        _ => false,
    };
    if holds_previous {
        row.outcome = Outcome::Unchanged;
        return row;
    }
    if !holds_written {
        row.error = Some(
            "conflict: the repository's policy changed since the apply that wrote this backup; left alone".to_string(),
        );
        return row;
    }
    // Both directions are an `update` of the repository's policy; a created policy is deleted.
    row.outcome = Outcome::Update;
    row.diff = Some(crate::plan::labelled_diff(
        current.as_deref(),
        entry.previous_policy.as_deref(),
        "previous",
    ));
    let result = match &entry.previous_policy {
        Some(previous) => target
            .limiter
            .run(
                target
                    .client
                    .put_lifecycle_policy()
                    .repository_name(&entry.repository)
                    .lifecycle_policy_text(previous)
                    .send(),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("ecr:PutLifecyclePolicy: {}", describe_error(&e))),
        None => {
            // Apply created this policy: restoring means removing it.
            match target
                .limiter
                .run(
                    target
                        .client
                        .delete_lifecycle_policy()
                        .repository_name(&entry.repository)
                        .send(),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if error_code(&e).as_deref() == Some("LifecyclePolicyNotFoundException") => {
                    Ok(())
                }
                Err(e) => Err(format!("ecr:DeleteLifecyclePolicy: {}", describe_error(&e))),
            }
        }
    };
    match result {
        Ok(()) => row.applied = true,
        Err(e) => {
            row.outcome = Outcome::Error;
            row.error = Some(e);
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_round_trips_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_backup_path(dir.path(), "2026-11-22T10:00:09Z".parse().unwrap());
        assert!(path.ends_with("ecr-fleet-backup-20261122T100009Z.json"));
        let backup = Backup {
            backup_version: BACKUP_VERSION,
            created_at: "2026-11-22T10:00:09Z".into(),
            entries: vec![BackupEntry {
                account_id: "111111111111".into(),
                region: "us-east-1".into(),
                repository: "team/api".into(),
                template: "standard".into(),
                previous_policy: None,
                written_policy: "{}".into(),
            }],
        };
        write_backup(&path, &backup).unwrap();
        assert_eq!(read_backup(&path).unwrap(), backup);
        assert!(matches!(
            write_backup(&path, &backup),
            Err(BackupError::Write { .. })
        ));
    }

    #[test]
    fn bad_backup_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(
            &path,
            "{\n  \"backup_version\": 1,\n  \"surprise\": true\n}",
        )
        .unwrap();
        let err = read_backup(&path).unwrap_err().to_string();
        assert!(err.contains("b.json:3:"), "{err}");
        assert!(err.contains("surprise"), "{err}");
        std::fs::write(
            &path,
            r#"{"backup_version": 9, "created_at": "x", "entries": []}"#,
        )
        .unwrap();
        let err = read_backup(&path).unwrap_err().to_string();
        assert!(err.contains("unsupported backup_version 9"), "{err}");
        let entry = |account: &str, region: &str, repo: &str| {
            format!(
                r#"{{"account_id":"{account}","region":"{region}","repository":"{repo}","template":"t","previous_policy":null,"written_policy":"{{}}"}}"#
            )
        };
        let one = entry("111111111111", "us-east-1", "a");
        for (entries, want) in [
            (entry("12", "us-east-1", "a"), "entries[0].account_id"),
            (
                entry("111111111111", "not a region/x", "a"),
                "entries[0].region",
            ),
            (
                entry("111111111111", "us-east-1", ""),
                "entries[0].repository",
            ),
            (
                format!("{one},{one}"),
                "entries[1].repository: appears twice",
            ),
        ] {
            std::fs::write(
                &path,
                format!(r#"{{"backup_version": 1, "created_at": "x", "entries": [{entries}]}}"#),
            )
            .unwrap();
            let err = read_backup(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
