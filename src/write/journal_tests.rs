//! Tests of the journal: writing, group commit, reading back every version.

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

fn template_intent(prefix: &str, previous: Option<TemplateSettings>) -> JournalRecord {
    JournalRecord::TemplateIntent {
        account_id: "111111111111".into(),
        region: "us-east-1".into(),
        prefix: prefix.into(),
        template: "standard".into(),
        previous,
        new_policy: "{}".into(),
        new_applied_for: vec!["CREATE_ON_PUSH".into(), "REPLICATION".into()],
    }
}

fn template_outcome(prefix: &str, result: WriteResult) -> JournalRecord {
    JournalRecord::TemplateOutcome {
        account_id: "111111111111".into(),
        region: "us-east-1".into(),
        prefix: prefix.into(),
        result,
        error_code: None,
    }
}

#[tokio::test]
async fn creation_template_records_are_read_back_beside_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let journal = Journal::new(path.clone(), header());
    let previous = TemplateSettings {
        lifecycle_policy: Some("{\"rules\":[]}".into()),
        applied_for: vec!["REPLICATION".into()],
    };
    journal.append(intent("repo"), true).await.unwrap();
    journal
        .append(template_intent("team-a", Some(previous.clone())), true)
        .await
        .unwrap();
    journal
        .append(template_outcome("team-a", WriteResult::Written), false)
        .await
        .unwrap();
    journal
        .append(template_intent("ROOT", None), true)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""record":"template_intent""#), "{text}");
    let read = read_backup(&path).unwrap();
    assert_eq!(read.version, JOURNAL_VERSION);
    assert_eq!(read.entries.len(), 1);
    let got: Vec<(&str, Recorded, bool)> = read
        .templates
        .iter()
        .map(|t| (t.prefix.as_str(), t.recorded, t.previous.is_some()))
        .collect();
    assert_eq!(
        got,
        [
            ("team-a", Recorded::Written, true),
            ("ROOT", Recorded::Unknown, false)
        ]
    );
    assert_eq!(read.templates[0].previous, Some(previous));
    assert_eq!(
        read.templates[0].written.applied_for,
        ["CREATE_ON_PUSH", "REPLICATION"]
    );
}

#[test]
fn journals_without_template_records_still_read_and_bad_ones_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    // A journal of release 0.2: repository records only.
    std::fs::write(
        &path,
        format!(
            "{}{}{}",
            line(&header()),
            line(&intent("a")),
            line(&outcome("a", WriteResult::Written))
        ),
    )
    .unwrap();
    let read = read_backup(&path).unwrap();
    assert_eq!((read.entries.len(), read.templates.len()), (1, 0));
    for (record, want) in [
        (
            template_outcome("ROOT", WriteResult::Written),
            "line 2.prefix: an outcome without an intent",
        ),
        (
            template_intent("Not A Prefix", None),
            "line 2.prefix: \"Not A Prefix\" is not a creation template prefix",
        ),
    ] {
        std::fs::write(&path, format!("{}{}", line(&header()), line(&record))).unwrap();
        let err = read_backup(&path).unwrap_err().to_string();
        assert!(err.contains(want), "{err}");
    }
    let twice = line(&template_intent("ROOT", None));
    std::fs::write(&path, format!("{}{twice}{twice}", line(&header()))).unwrap();
    let err = read_backup(&path).unwrap_err().to_string();
    assert!(err.contains("line 3.prefix: a second intent"), "{err}");
    let bad_for = line(&template_intent("ROOT", None)).replace("REPLICATION", "SOMETIMES");
    std::fs::write(&path, format!("{}{bad_for}", line(&header()))).unwrap();
    let err = read_backup(&path).unwrap_err().to_string();
    assert!(
        err.contains("line 2.new_applied_for: unknown appliedFor value \"SOMETIMES\""),
        "{err}"
    );
}
