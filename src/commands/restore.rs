//! `restore`: undo an earlier apply from its journal.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;

use anyhow::anyhow;
use futures::StreamExt;

use super::{
    check_output_paths, confirm, emit, input, load_config, now, output_files, watch_signals,
    AbortOnDrop,
};
use crate::aws::{Aws, RunLimits, Stop};
use crate::cli::{GlobalArgs, RestoreArgs};
use crate::config::AccountSource;
use crate::exit::{ExitStatus, Fatal};
use crate::fleet::discovery;
use crate::model::{CreationTemplateResult, RepoResult};
use crate::progress::{Progress, ProgressMode};
use crate::report::{Command, Report, Summary, SCHEMA_VERSION};
use crate::write::creation::restore_template;
use crate::write::journal::read_backup;
use crate::write::restore::restore_entry;

pub async fn run(args: &RestoreArgs, g: &GlobalArgs) -> Result<ExitStatus, Fatal> {
    let started = now();
    let backup = read_backup(&args.backup).map_err(input)?;
    let config = load_config(args.config.as_deref())?;
    let files = output_files(&args.view);
    check_output_paths(files, None)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes && !interactive {
        return Err(input(anyhow!(
            "restore needs --yes when it cannot ask for confirmation (no terminal); nothing was changed"
        )));
    }
    if !args.yes
        && !confirm(&format!(
            "Restore {} repositories and {} creation template(s) from {}?",
            backup.entries.len(),
            backup.templates.len(),
            args.backup.display()
        ))
    {
        return Err(input(anyhow!("restore cancelled; nothing was written")));
    }
    let stop = Stop::default();
    let _signals = AbortOnDrop(watch_signals(stop.clone()));
    let aws = Aws::load(&config.execution).await;
    // Every account-region the journal names, repositories and creation templates alike.
    let places: BTreeSet<(String, String)> = backup
        .entries
        .iter()
        .map(|e| (e.entry.account_id.clone(), e.entry.region.clone()))
        .chain(
            backup
                .templates
                .iter()
                .map(|t| (t.account_id.clone(), t.region.clone())),
        )
        .collect();
    let first_region = backup
        .entries
        .first()
        .map(|e| e.entry.region.as_str())
        .or(backup.templates.first().map(|t| t.region.as_str()));
    let caller = discovery::caller(&aws, first_region)
        .await
        .map_err(|e| Fatal::Run(e.into()))?;
    let accounts: Vec<String> = places
        .iter()
        .map(|(account, _)| account.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut accounts_config = config.accounts.clone();
    accounts_config.source = AccountSource::List(accounts);
    accounts_config.exclude.clear();
    let discovered = discovery::discover(
        &aws,
        &caller,
        &accounts_config,
        None,
        first_region,
        config.execution.concurrency,
    )
    .await
    .map_err(|e| Fatal::Run(e.into()))?;
    let limits = RunLimits::new(&config.execution, aws.stats.clone(), stop.clone());
    let mut targets = HashMap::new();
    for key in places {
        if let Some(account) = discovered.accounts.iter().find(|a| a.account_id == key.0) {
            let target = aws.target(
                &key.0,
                &key.1,
                &caller.partition,
                account.credentials.as_ref(),
                &limits,
            );
            targets.insert(key, target);
        }
    }
    let mode = ProgressMode::detect(g.quiet, g.no_progress);
    let progress = Progress::new(
        mode,
        "restore",
        "entries",
        (backup.entries.len() + backup.templates.len()) as u64,
    );
    // Creation templates first: a handful per account-region.
    let mut templates: Vec<CreationTemplateResult> = futures::stream::iter(&backup.templates)
        .map(|t| {
            let target = targets.get(&(t.account_id.clone(), t.region.clone()));
            let progress = &progress;
            async move {
                let row = match target {
                    Some(target) => restore_template(t, target).await,
                    None => {
                        let mut row = CreationTemplateResult::new(
                            &t.account_id,
                            &t.region,
                            &t.prefix,
                            Some(t.template.clone()),
                        );
                        row.error = Some(
                            "not restored: the account could not be entered (see skipped)".into(),
                        );
                        row
                    }
                };
                progress.step();
                row
            }
        })
        .buffer_unordered(config.execution.concurrency.max(1))
        .collect()
        .await;
    templates.sort_by(|a, b| a.key().cmp(&b.key()));
    // Entries run side by side; each account-region's call gate keeps its share.
    let mut rows: Vec<RepoResult> = futures::stream::iter(&backup.entries)
        .map(|e| {
            let target = targets.get(&(e.entry.account_id.clone(), e.entry.region.clone()));
            let progress = &progress;
            async move {
                let row = match target {
                    Some(target) => restore_entry(e, target).await,
                    // Every entry gets a row: one that could not be tried says so.
                    None => {
                        let mut row = RepoResult::new(
                            &e.entry.account_id,
                            &e.entry.region,
                            &e.entry.repository,
                            Some(e.entry.template.clone()),
                        );
                        row.error = Some(
                            "not restored: the account could not be entered (see skipped)".into(),
                        );
                        row
                    }
                };
                progress.step();
                row
            }
        })
        .buffer_unordered(config.execution.concurrency.max(1) * 4)
        .collect()
        .await;
    progress.finish();
    rows.sort_by(|a, b| a.key().cmp(&b.key()));
    let regions = backup
        .entries
        .iter()
        .map(|e| e.entry.region.clone())
        .chain(backup.templates.iter().map(|t| t.region.clone()))
        .collect();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        command: Command::Restore,
        started_at: started.to_string(),
        finished_at: now().to_string(),
        summary: Summary {
            accounts: (discovered.accounts.len() + discovered.skipped.len()) as u64,
            api_calls: aws.stats.calls(),
            api_retries: aws.stats.retries(),
            ..Summary::default()
        },
        repositories: rows,
        creation_templates: templates,
        region_findings: Vec::new(),
        skipped: discovered.skipped.clone(),
        regions,
        disabled_regions: Vec::new(),
        notices: Vec::new(),
        backup_file: Some(args.backup.display().to_string()),
        shard: None,
    };
    report.tally();
    let reported = emit(&report, args.view.output.into(), true, files);
    Ok(if report.has_failures() || !reported || stop.is_set() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
