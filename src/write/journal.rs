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
        });
    }
    let mut entries: Vec<RestoreEntry> = Vec::new();
    let mut lines_of_entries: Vec<usize> = Vec::new();
    let mut index = std::collections::HashMap::new();
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
                if index.insert(key, entries.len()).is_some() {
                    return Err(BackupError::Entry {
                        path: shown,
                        at: format!("line {line_no}"),
                        field: "repository",
                        message: "a second intent for the same repository".into(),
                    });
                }
                lines_of_entries.push(line_no);
                entries.push(RestoreEntry {
                    entry: BackupEntry {
                        account_id,
                        region,
                        repository,
                        template,
                        previous_policy,
                        written_policy: new_policy,
                    },
                    recorded: Recorded::Unknown,
                });
            }
            JournalRecord::Outcome {
                account_id,
                region,
                repository,
                result,
                ..
            } => {
                let Some(&i) = index.get(&(account_id, region, repository)) else {
                    return Err(BackupError::Entry {
                        path: shown,
                        at: format!("line {line_no}"),
                        field: "repository",
                        message: "an outcome without an intent before it".into(),
                    });
                };
                entries[i].recorded = match result {
                    WriteResult::Written => Recorded::Written,
                    WriteResult::Failed | WriteResult::NotWritten => Recorded::NotWritten,
                };
            }
        }
    }
    check_entries(&entries, |i| format!("line {}", lines_of_entries[i])).map_err(
        |(at, field, message)| BackupError::Entry {
            path: shown.clone(),
            at,
            field,
            message,
        },
    )?;
    Ok(BackupFile {
        version: JOURNAL_VERSION,
        entries,
    })
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
mod tests {
    use super::*;

    fn header() -> JournalRecord {
        JournalRecord::Run {
            backup_version: JOURNAL_VERSION,
            ecr_fleet_version: "0.2.0".into(),
            started_at: "2026-11-22T10:00:09Z".into(),
            command_line: vec!["ecr-fleet".into(), "apply".into(), "--yes".into()],
            role_name: "EcrFleetSpoke".into(),
            session_name: "ecr-fleet".into(),
            external_id_used: false,
        }
    }

    fn intent(repo: &str) -> JournalRecord {
        JournalRecord::Intent {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            repository: repo.into(),
            template: "standard".into(),
            previous_policy: None,
            new_policy: "{}".into(),
        }
    }

    fn outcome(repo: &str, result: WriteResult) -> JournalRecord {
        JournalRecord::Outcome {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            repository: repo.into(),
            result,
            error_code: None,
        }
    }

    #[tokio::test]
    async fn journal_is_created_at_the_first_record_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_journal_path(dir.path(), "2026-11-22T10:00:09Z".parse().unwrap());
        assert!(path.ends_with("ecr-fleet-journal-20261122T100009Z.jsonl"));
        let journal = Journal::new(path.clone(), header());
        assert!(journal.created().is_none());
        assert!(!path.exists(), "nothing recorded, no file");
        journal.append(intent("written"), true).await.unwrap();
        journal
            .append(outcome("written", WriteResult::Written), false)
            .await
            .unwrap();
        journal.append(intent("failed"), true).await.unwrap();
        journal
            .append(outcome("failed", WriteResult::Failed), false)
            .await
            .unwrap();
        journal.append(intent("killed"), true).await.unwrap();
        assert_eq!(journal.created(), Some(path.as_path()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 6);
        assert!(text.lines().next().unwrap().contains(r#""record":"run""#));

        let read = read_backup(&path).unwrap();
        assert_eq!(read.version, JOURNAL_VERSION);
        let recorded: Vec<(&str, Recorded)> = read
            .entries
            .iter()
            .map(|e| (e.entry.repository.as_str(), e.recorded))
            .collect();
        assert_eq!(
            recorded,
            [
                ("written", Recorded::Written),
                ("failed", Recorded::NotWritten),
                ("killed", Recorded::Unknown)
            ]
        );
        // Never written over: a second journal at the same path fails at its first record.
        let again = Journal::new(path.clone(), header());
        assert!(matches!(
            again.append(intent("x"), true).await,
            Err(BackupError::Write { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_intents_share_syncs_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let journal = Journal::new(path.clone(), header());
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let journal = journal.clone();
                tokio::spawn(async move { journal.append(intent(&format!("r{i}")), true).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let read = read_backup(&path).unwrap();
        assert_eq!(read.entries.len(), 64);
        let on_disk = journal.synced.lock().unwrap().as_ref().unwrap().1;
        assert_eq!(on_disk, 64, "the last sync covers every record");
    }

    #[test]
    fn a_cut_last_line_is_ignored_but_a_cut_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let full = format!("{}{}", line(&header()), line(&intent("a")));
        std::fs::write(&path, format!("{full}{{\"record\":\"outc")).unwrap();
        assert_eq!(read_backup(&path).unwrap().entries.len(), 1);
        std::fs::write(&path, format!("{full}{{\"record\n{}", line(&intent("b")))).unwrap();
        let err = read_backup(&path).unwrap_err().to_string();
        assert!(err.contains("j.jsonl:3:"), "{err}");
    }

    #[test]
    fn version_1_backups_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(
            &path,
            r#"{"backup_version": 1, "created_at": "x", "entries": [{"account_id":"111111111111","region":"us-east-1","repository":"a","template":"t","previous_policy":null,"written_policy":"{}"}]}"#,
        )
        .unwrap();
        let read = read_backup(&path).unwrap();
        assert_eq!(read.version, BACKUP_VERSION_V1);
        assert_eq!(read.entries[0].recorded, Recorded::Written);
        assert_eq!(read.entries[0].entry.repository, "a");
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
        // Journals: errors name the line.
        std::fs::write(
            &path,
            format!(
                "{}{}",
                line(&header()),
                line(&outcome("a", WriteResult::Written))
            ),
        )
        .unwrap();
        let err = read_backup(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 2.repository: an outcome without an intent"),
            "{err}"
        );
        std::fs::write(&path, line(&intent("a"))).unwrap();
        let err = read_backup(&path).unwrap_err().to_string();
        assert!(err.contains("b.json:1:1"), "{err}");
        std::fs::write(
            &path,
            format!(
                "{}{}",
                line(&header()),
                line(&intent("a")).replace("111111111111", "12")
            ),
        )
        .unwrap();
        let err = read_backup(&path).unwrap_err().to_string();
        assert!(err.contains("line 2.account_id"), "{err}");
    }
}
