//! The write-ahead journal of `apply`: an intent recorded and synced before each write, its
//! outcome after; and reading it back (or a 0.1 backup file) for `restore`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The 0.1 backup: one JSON document written before the first write.
pub const BACKUP_VERSION_V1: u32 = 1;
/// The write-ahead journal: JSON Lines, appended during the run.
pub const JOURNAL_VERSION: u32 = 2;

/// A 0.1 backup file (read only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct BackupV1 {
    backup_version: u32,
    created_at: String,
    entries: Vec<BackupEntry>,
}

/// One write apply made (or may have made), as restore needs it.
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

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum JournalRecord {
    /// The first line: which run wrote this journal, and the access settings restore needs.
    Run {
        backup_version: u32,
        ecr_fleet_version: String,
        started_at: String,
        /// The command line (no secrets are ever passed on it).
        command_line: Vec<String>,
        role_name: String,
        session_name: String,
        external_id_used: bool,
    },
    /// Recorded and synced to disk before the PutLifecyclePolicy call.
    Intent {
        account_id: String,
        region: String,
        repository: String,
        template: String,
        previous_policy: Option<String>,
        new_policy: String,
    },
    /// Recorded after the call.
    Outcome {
        account_id: String,
        region: String,
        repository: String,
        result: WriteResult,
        /// The AWS error code of a failed write.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
    /// Recorded and synced to disk before a CreateRepositoryCreationTemplate or
    /// UpdateRepositoryCreationTemplate call. Journals without these records (earlier
    /// releases) read as before.
    TemplateIntent {
        account_id: String,
        region: String,
        prefix: String,
        template: String,
        /// The template's managed settings before the write; `null`: there was no template.
        previous: Option<TemplateSettings>,
        new_policy: String,
        new_applied_for: Vec<String>,
    },
    /// Recorded after a creation template call.
    TemplateOutcome {
        account_id: String,
        region: String,
        prefix: String,
        result: WriteResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
    },
}

/// The settings of a creation template that apply writes and restore puts back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    /// `null`: the template had no lifecycle policy.
    pub lifecycle_policy: Option<String>,
    pub applied_for: Vec<String>,
}

/// One creation template write apply made (or may have made), as restore needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRestoreEntry {
    pub account_id: String,
    pub region: String,
    pub prefix: String,
    pub template: String,
    /// `None`: apply created the template; restore deletes it.
    pub previous: Option<TemplateSettings>,
    pub written: TemplateSettings,
    pub recorded: Recorded,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WriteResult {
    Written,
    Failed,
    NotWritten,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: cannot write journal: {source}")]
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
    #[error("{path}:{line}:{column}: not a valid ecr-fleet backup or journal: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path}: unsupported backup_version {version} (this ecr-fleet reads {BACKUP_VERSION_V1} and {JOURNAL_VERSION})"
    )]
    Version { path: String, version: u32 },
    #[error("{path}: {at}.{field}: {message}")]
    Entry {
        path: String,
        /// `entries[3]` (version 1) or `line 7` (version 2).
        at: String,
        field: &'static str,
        message: String,
    },
}

pub fn default_journal_path(dir: &Path, now: jiff::Timestamp) -> PathBuf {
    dir.join(format!(
        "ecr-fleet-journal-{}.jsonl",
        now.strftime("%Y%m%dT%H%M%SZ")
    ))
}

/// The write-ahead journal of one apply. The file is created (never over an existing one) at
/// the first intent, so a run that writes nothing leaves no file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    header: JournalRecord,
    /// The file and the number of records written to it.
    file: Mutex<Option<(std::fs::File, u64)>>,
    /// A second handle for syncing, and the number of records known to be on disk. Group
    /// commit: one sync covers every record written before it started, so concurrent intents
    /// share syncs instead of queueing one disk flush each.
    synced: Mutex<Option<(std::fs::File, u64)>>,
}

impl Journal {
    pub fn new(path: PathBuf, header: JournalRecord) -> Arc<Journal> {
        Arc::new(Journal {
            path,
            header,
            file: Mutex::new(None),
            synced: Mutex::new(None),
        })
    }

    /// The file, once something was recorded in it.
    pub fn created(&self) -> Option<&Path> {
        self.file
            .lock()
            .expect("journal lock")
            .is_some()
            .then_some(self.path.as_path())
    }

    fn err(&self, source: std::io::Error) -> BackupError {
        BackupError::Write {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn append_blocking(&self, record: &JournalRecord, sync: bool) -> Result<(), BackupError> {
        let mine = {
            let mut guard = self.file.lock().expect("journal lock");
            if guard.is_none() {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| self.err(e))?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .create_new(true)
                    .open(&self.path)
                    .map_err(|e| self.err(e))?;
                file.write_all(line(&self.header).as_bytes())
                    .map_err(|e| self.err(e))?;
                let syncer = file.try_clone().map_err(|e| self.err(e))?;
                *self.synced.lock().expect("journal lock") = Some((syncer, 0));
                *guard = Some((file, 0));
            }
            let (file, written) = guard.as_mut().expect("opened above");
            file.write_all(line(record).as_bytes())
                .map_err(|e| self.err(e))?;
            *written += 1;
            *written
        };
        if !sync {
            return Ok(());
        }
        let mut synced = self.synced.lock().expect("journal lock");
        let (syncer, on_disk) = synced.as_mut().expect("opened with the file");
        if *on_disk >= mine {
            // A sync that started after this record was written covered it.
            return Ok(());
        }
        let upto = self
            .file
            .lock()
            .expect("journal lock")
            .as_ref()
            .map_or(mine, |(_, written)| *written);
        syncer.sync_data().map_err(|e| self.err(e))?;
        *on_disk = upto;
        Ok(())
    }

    /// Append a record; `sync` waits until it is on disk (intents).
    pub async fn append(
        self: &Arc<Self>,
        record: JournalRecord,
        sync: bool,
    ) -> Result<(), BackupError> {
        let journal = self.clone();
        tokio::task::spawn_blocking(move || journal.append_blocking(&record, sync))
            .await
            .unwrap_or_else(|e| Err(self.err(std::io::Error::other(e))))
    }
}

fn line(record: &JournalRecord) -> String {
    let mut s = serde_json::to_string(record).expect("journal record serializes");
    s.push('\n');
    s
}

/// What restore knows about one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The write was made (version 1 backups list only writes that were about to be made).
    Written,
    /// An intent without an outcome: the run was killed around the call.
    Unknown,
    /// The write failed or was never started: nothing to undo.
    NotWritten,
}

#[derive(Debug, Clone)]
pub struct RestoreEntry {
    pub entry: BackupEntry,
    pub recorded: Recorded,
}

#[derive(Debug, Clone)]
pub struct BackupFile {
    pub version: u32,
    pub entries: Vec<RestoreEntry>,
    /// Creation template writes (journals of release 0.3 and later).
    pub templates: Vec<TemplateRestoreEntry>,
}

/// Read a 0.1 backup (version 1) or a journal (version 2), and check it whole.
pub fn read_backup(path: &Path) -> Result<BackupFile, BackupError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| BackupError::Read {
        path: shown.clone(),
        source,
    })?;
    let parse_error = |line: usize, column: usize, message: String| BackupError::Parse {
        path: shown.clone(),
        line,
        column,
        message,
    };
    let first = text.lines().next().unwrap_or("");
    let is_journal = serde_json::from_str::<serde_json::Value>(first)
        .ok()
        .is_some_and(|v| v.get("record").is_some());
    if !is_journal {
        let backup: BackupV1 = serde_json::from_str(&text)
            .map_err(|e| parse_error(e.line(), e.column(), e.to_string()))?;
        if backup.backup_version != BACKUP_VERSION_V1 {
            return Err(BackupError::Version {
                path: shown,
                version: backup.backup_version,
            });
        }
        let entries: Vec<RestoreEntry> = backup
            .entries
            .into_iter()
            .map(|entry| RestoreEntry {
                entry,
                recorded: Recorded::Written,
            })
            .collect();
        check_entries(&entries, |i| format!("entries[{i}]")).map_err(|(at, field, message)| {
            BackupError::Entry {
                path: shown.clone(),
                at,
                field,
                message,
            }
        })?;
        return Ok(BackupFile {
            version: BACKUP_VERSION_V1,
            entries,
            templates: Vec::new(),
        });
    }
    let mut entries: Opened<(String, String, String), RestoreEntry> = Opened::default();
    let mut templates: Opened<(String, String, String), TemplateRestoreEntry> = Opened::default();
    let entry_error = |line_no: usize, field: &'static str, message: &str| BackupError::Entry {
        path: shown.clone(),
        at: format!("line {line_no}"),
        field,
        message: message.into(),
    };
    let total = text.lines().count();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let record: JournalRecord = match serde_json::from_str(raw) {
            Ok(r) => r,
            // A run killed while appending leaves a cut last line: what came before stands.
            Err(_) if line_no == total && !text.ends_with('\n') => {
                tracing::warn!(path = %shown, line = line_no, "incomplete last journal line ignored");
                break;
            }
            Err(e) => return Err(parse_error(line_no, e.column(), e.to_string())),
        };
        match record {
            JournalRecord::Run { backup_version, .. } => {
                if line_no != 1 {
                    return Err(parse_error(line_no, 1, "a second run record".into()));
                }
                if backup_version != JOURNAL_VERSION {
                    return Err(BackupError::Version {
                        path: shown,
                        version: backup_version,
                    });
                }
            }
            _ if line_no == 1 => {
                return Err(parse_error(
                    1,
                    1,
                    "the first line must be the run record".into(),
                ))
            }
            JournalRecord::Intent {
                account_id,
                region,
                repository,
                template,
                previous_policy,
                new_policy,
            } => {
                let key = (account_id.clone(), region.clone(), repository.clone());
                let entry = RestoreEntry {
                    entry: BackupEntry {
                        account_id,
                        region,
                        repository,
                        template,
                        previous_policy,
                        written_policy: new_policy,
                    },
                    recorded: Recorded::Unknown,
                };
                if !entries.intent(key, line_no, entry) {
                    let message = "a second intent for the same repository";
                    return Err(entry_error(line_no, "repository", message));
                }
            }
            JournalRecord::Outcome {
                account_id,
                region,
                repository,
                result,
                ..
            } => match entries.outcome(&(account_id, region, repository)) {
                Some(entry) => entry.recorded = recorded(result),
                None => {
                    let message = "an outcome without an intent before it";
                    return Err(entry_error(line_no, "repository", message));
                }
            },
            JournalRecord::TemplateIntent {
                account_id,
                region,
                prefix,
                template,
                previous,
                new_policy,
                new_applied_for,
            } => {
                let key = (account_id.clone(), region.clone(), prefix.clone());
                let entry = TemplateRestoreEntry {
                    account_id,
                    region,
                    prefix,
                    template,
                    previous,
                    written: TemplateSettings {
                        lifecycle_policy: Some(new_policy),
                        applied_for: new_applied_for,
                    },
                    recorded: Recorded::Unknown,
                };
                if !templates.intent(key, line_no, entry) {
                    let message = "a second intent for the same creation template";
                    return Err(entry_error(line_no, "prefix", message));
                }
            }
            JournalRecord::TemplateOutcome {
                account_id,
                region,
                prefix,
                result,
                ..
            } => match templates.outcome(&(account_id, region, prefix)) {
                Some(entry) => entry.recorded = recorded(result),
                None => {
                    let message = "an outcome without an intent before it";
                    return Err(entry_error(line_no, "prefix", message));
                }
            },
        }
    }
    let to_entry_error =
        |(at, field, message): (String, &'static str, String)| BackupError::Entry {
            path: shown.clone(),
            at,
            field,
            message,
        };
    check_templates(&templates.items, |i| format!("line {}", templates.lines[i]))
        .map_err(to_entry_error)?;
    check_entries(&entries.items, |i| format!("line {}", entries.lines[i]))
        .map_err(to_entry_error)?;
    Ok(BackupFile {
        version: JOURNAL_VERSION,
        entries: entries.items,
        templates: templates.items,
    })
}

/// The writes of one kind a journal opened, in order: an intent opens one under its key, and
/// its outcome, later, says how it ended.
struct Opened<K, T> {
    items: Vec<T>,
    /// The journal line of each item's intent, for errors.
    lines: Vec<usize>,
    index: std::collections::HashMap<K, usize>,
}

impl<K, T> Default for Opened<K, T> {
    fn default() -> Self {
        Opened {
            items: Vec::new(),
            lines: Vec::new(),
            index: std::collections::HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq, T> Opened<K, T> {
    /// Open `item` under `key`; false when `key` was opened before.
    fn intent(&mut self, key: K, line: usize, item: T) -> bool {
        if self.index.contains_key(&key) {
            return false;
        }
        self.index.insert(key, self.items.len());
        self.items.push(item);
        self.lines.push(line);
        true
    }

    /// The item opened under `key`, to record its outcome.
    fn outcome(&mut self, key: &K) -> Option<&mut T> {
        self.index.get(key).map(|&i| &mut self.items[i])
    }
}

fn recorded(result: WriteResult) -> Recorded {
    match result {
        WriteResult::Written => Recorded::Written,
        WriteResult::Failed | WriteResult::NotWritten => Recorded::NotWritten,
    }
}

/// Creation template entries are checked like repository entries: ids, regions, prefixes and
/// `appliedFor` values, before anything is restored.
fn check_templates(
    entries: &[TemplateRestoreEntry],
    at: impl Fn(usize) -> String,
) -> Result<(), (String, &'static str, String)> {
    use crate::config::creation::{check_prefix, APPLIED_FOR};
    for (i, e) in entries.iter().enumerate() {
        crate::config::check_account_id(&e.account_id).map_err(|m| (at(i), "account_id", m))?;
        crate::config::check_region(&e.region).map_err(|m| (at(i), "region", m))?;
        check_prefix(&e.prefix).map_err(|m| (at(i), "prefix", m))?;
        let values = e
            .previous
            .iter()
            .flat_map(|p| &p.applied_for)
            .map(|v| (v, "previous"))
            .chain(e.written.applied_for.iter().map(|v| (v, "new_applied_for")));
        for (v, field) in values {
            if !APPLIED_FOR.contains(&v.as_str()) {
                return Err((at(i), field, format!("unknown appliedFor value {v:?}")));
            }
        }
    }
    Ok(())
}

/// A backup is input like a config: check it whole before restoring anything from it.
fn check_entries(
    entries: &[RestoreEntry],
    at: impl Fn(usize) -> String,
) -> Result<(), (String, &'static str, String)> {
    let mut seen = std::collections::HashSet::new();
    for (i, RestoreEntry { entry: e, .. }) in entries.iter().enumerate() {
        crate::config::check_account_id(&e.account_id).map_err(|m| (at(i), "account_id", m))?;
        crate::config::check_region(&e.region).map_err(|m| (at(i), "region", m))?;
        if e.repository.is_empty() || e.repository.len() > 256 {
            return Err((
                at(i),
                "repository",
                format!("{:?} is not a repository name", e.repository),
            ));
        }
        if !seen.insert((&e.account_id, &e.region, &e.repository)) {
            return Err((
                at(i),
                "repository",
                "appears twice in this backup".to_string(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
