//! `plan`, `apply` and `audit`: one fleet run (discovery, the first pass, inventory, plan,
//! writes) and its report.

use std::collections::{BTreeSet, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::anyhow;
use jiff::Timestamp;

use super::{
    check_output_paths, confirm, emit, input, load_config, now, output_files, watch_signals,
    AbortOnDrop,
};
use crate::aws::{Aws, RunLimits, Stop, Target};
use crate::cli::{ApplyArgs, GlobalArgs, RunArgs};
use crate::config::{
    check_account_id, check_region, Config, NameGlob, RegionSelection, REGIONS_ENABLED,
};
use crate::decide::plan::PlanOptions;
use crate::exit::{ExitStatus, Fatal};
use crate::fleet::discovery;
use crate::fleet::inventory::{ImagesMode, InventoryOptions};
use crate::fleet::pipeline::{self, FleetRun, WriteMode};
use crate::fleet::prepass::{self, Prepass, PrepassInput};
use crate::progress::{Progress, ProgressMode};
use crate::report::{Command, Report, Summary, SCHEMA_VERSION};
use crate::write::journal::{self, Journal, JournalRecord, JOURNAL_VERSION};

/// Check the narrowing options before any AWS call.
pub(super) struct Narrowing {
    pub(super) accounts: Option<Vec<String>>,
    regions: Vec<String>,
    /// `--regions enabled`.
    regions_enabled: bool,
    repositories: Option<NameGlob>,
}

fn narrowing(args: &RunArgs) -> Result<Narrowing, Fatal> {
    narrow(&args.accounts, &args.regions, args.repositories.as_deref())
}

/// `--accounts`, `--regions` and `--repositories`, checked.
pub(super) fn narrow(
    accounts: &[String],
    regions: &[String],
    repositories: Option<&str>,
) -> Result<Narrowing, Fatal> {
    for id in accounts {
        check_account_id(id).map_err(|m| input(anyhow!("--accounts: {m}")))?;
    }
    let regions_enabled = regions.iter().any(|r| r == REGIONS_ENABLED);
    if regions_enabled && regions.len() > 1 {
        return Err(input(anyhow!(
            "--regions: \"{REGIONS_ENABLED}\" stands alone (every enabled region); do not list regions with it"
        )));
    }
    for r in regions.iter().filter(|_| !regions_enabled) {
        check_region(r).map_err(|m| input(anyhow!("--regions: {m}")))?;
    }
    let repositories = repositories
        .map(NameGlob::new)
        .transpose()
        .map_err(|m| input(anyhow!("--repositories: {m}")))?;
    Ok(Narrowing {
        accounts: (!accounts.is_empty()).then(|| accounts.to_vec()),
        regions: if regions_enabled {
            Vec::new()
        } else {
            regions.to_vec()
        },
        regions_enabled,
        repositories,
    })
}

/// The run's region selection: `--regions` replaces the config's.
pub(super) fn region_selection(
    narrow: &Narrowing,
    config: &Config,
    aws: &Aws,
) -> Result<RegionSelection, Fatal> {
    if narrow.regions_enabled || (narrow.regions.is_empty() && config.regions_enabled) {
        return Ok(RegionSelection::Enabled);
    }
    resolve_regions(&narrow.regions, config, aws).map(RegionSelection::Listed)
}

fn resolve_regions(narrow: &[String], config: &Config, aws: &Aws) -> Result<Vec<String>, Fatal> {
    let mut regions: Vec<String> = if !narrow.is_empty() {
        narrow.to_vec()
    } else if !config.regions.is_empty() {
        config.regions.clone()
    } else if let Some(r) = aws.default_region() {
        vec![r]
    } else {
        return Err(input(anyhow!(
            "no AWS region: none in the config (`regions`), on the command line (--regions), \
             in AWS_REGION or in the profile (`region` in ~/.aws/config); set one, e.g. \
             `export AWS_REGION=us-east-1` or `aws configure set region us-east-1`"
        )));
    };
    let mut seen = BTreeSet::new();
    regions.retain(|r| seen.insert(r.clone()));
    Ok(regions)
}

/// The journal's first line: this run and the access settings restore needs (never secrets).
fn journal_header(config: &Config, started: Timestamp) -> JournalRecord {
    JournalRecord::Run {
        backup_version: JOURNAL_VERSION,
        ecr_fleet_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started.to_string(),
        command_line: std::env::args().collect(),
        role_name: config.accounts.role_name.clone(),
        session_name: config.accounts.session_name.clone(),
        external_id_used: config.accounts.external_id.is_some(),
    }
}

pub async fn run(
    command: Command,
    args: &RunArgs,
    apply_args: Option<&ApplyArgs>,
    g: &GlobalArgs,
) -> Result<ExitStatus, Fatal> {
    let started = now();
    let (config, narrow) = checked_input(command, args, apply_args)?;
    let yes = apply_args.is_some_and(|a| a.yes);
    let mode = ProgressMode::detect(g.quiet, g.no_progress);
    let stop = Stop::default();
    let _signals = AbortOnDrop(watch_signals(stop.clone()));

    let aws = Aws::load(&config.execution).await;
    let region_selection = region_selection(&narrow, &config, &aws)?;
    let (regions, default_region) = match &region_selection {
        RegionSelection::Listed(r) => (r.clone(), None),
        RegionSelection::Enabled => (Vec::new(), aws.default_region()),
    };
    let sts_region = regions
        .first()
        .map(String::as_str)
        .or(default_region.as_deref());
    let caller = discovery::caller(&aws, sts_region)
        .await
        .map_err(|e| Fatal::Run(e.into()))?;
    tracing::info!(account = %caller.account_id, arn = %caller.arn, "caller");
    crate::config::builtin::warn_if_builtin(&config, &caller.account_id, &regions);
    let selection =
        discovery::select_accounts(&aws, &caller, &config.accounts, narrow.accounts.as_deref())
            .await
            .map_err(|e| Fatal::Run(e.into()))?;

    // Region discovery and the in-use index come first, over every account: no repository is
    // decided (or written) before the index is complete.
    let prepass = if Prepass::needed(&config, &region_selection) {
        let input = PrepassInput {
            aws: &aws,
            config: &config,
            caller: &caller,
            sts_region,
            selection: &region_selection,
            home: sts_region.unwrap_or(prepass::home_region(&caller.partition)),
            now: started,
            stop: &stop,
        };
        Some(first_pass(&input, &selection.ids, mode).await)
    } else {
        None
    };

    let images = if args.images {
        ImagesMode::AllManaged
    } else if config.safety.is_enabled() {
        ImagesMode::Changing
    } else {
        ImagesMode::None
    };
    let journal = apply_args.map(|a| {
        let path = a
            .backup
            .clone()
            .unwrap_or_else(|| journal::default_journal_path(&config.backup_dir, started));
        Journal::new(path, journal_header(&config, started))
    });
    // `apply --yes` writes while it reads; interactive apply plans, asks, then writes.
    let writes = match (apply_args, &journal) {
        (Some(a), Some(journal)) if a.yes => WriteMode::Streaming {
            journal: journal.clone(),
            allow_unsafe: a.allow_unsafe,
        },
        (Some(a), _) => WriteMode::AfterConfirmation {
            allow_unsafe: a.allow_unsafe,
        },
        (None, _) => WriteMode::None,
    };
    let run = FleetRun {
        aws: &aws,
        config: &config,
        caller: &caller,
        sts_region,
        regions: &regions,
        inventory: InventoryOptions {
            repositories: narrow.repositories.clone(),
            images,
            page_size: 1000,
            // A whole-organization audit: unmatched repositories are read too (plan and apply
            // leave them alone and unread).
            read_unmatched: command == Command::Audit,
        },
        plan: PlanOptions {
            now: started,
            findings: command == Command::Audit,
            in_use: prepass.as_ref().and_then(|p| p.in_use.as_ref()),
        },
        limits: RunLimits::new(&config.execution, aws.stats.clone(), stop.clone()),
        writes,
        prepass: prepass.as_ref(),
    };
    let accounts_in_scope = selection.ids.len() as u64;
    let target_count = match &prepass {
        Some(p) => p.targets(&selection.ids, &regions),
        None => accounts_in_scope * regions.len() as u64,
    };
    // Regions actually visited (with region discovery, they differ per account).
    let regions_visited: Vec<String> = match prepass.as_ref().and_then(|p| p.regions.as_ref()) {
        Some(map) => map.values().flatten().cloned().collect(),
        None => regions.clone(),
    };
    let progress = Progress::new(mode, command.as_str(), "account-regions", target_count);
    let output = run.run(selection.ids, &progress).await;
    progress.finish();
    let named_but_absent = selection.skipped.len() as u64;
    let mut skipped = selection.skipped;
    skipped.extend(output.skipped);
    let mut disabled_regions = Vec::new();
    if let Some(p) = prepass {
        skipped.extend(p.skipped);
        disabled_regions = p.disabled;
    }
    skipped.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        command,
        started_at: started.to_string(),
        finished_at: String::new(),
        summary: Summary {
            // Accounts that could not be entered count; so do mistyped `--accounts` ids.
            accounts: accounts_in_scope + named_but_absent,
            inactive_accounts: selection.inactive_accounts as u64,
            price_per_gb_month: config.price_per_gb_month,
            unused_after_days: config.unused_after_days,
            ..Summary::default()
        },
        repositories: output.rows,
        creation_templates: output.templates,
        region_findings: output.region_findings,
        skipped,
        regions: regions_visited,
        disabled_regions,
        notices: output.notices,
        backup_file: None,
        shard: args.shard.map(|s| s.to_string()),
    };

    if let (Some(a), Some(journal), false) = (apply_args, &journal, yes) {
        // The confirmation shows the plan with what it cost so far.
        report.summary.api_calls = aws.stats.calls();
        report.summary.api_retries = aws.stats.retries();
        confirm_and_write(
            &mut report,
            &config,
            &output.targets,
            journal,
            a,
            args,
            mode,
        )
        .await?;
    }
    if let Some(path) = journal.as_ref().and_then(|j| j.created()) {
        report.backup_file = Some(path.display().to_string());
    }

    report.finished_at = now().to_string();
    report.summary.api_calls = aws.stats.calls();
    report.summary.api_retries = aws.stats.retries();
    report.tally();
    let reported = emit(
        &report,
        args.view.output.into(),
        args.all,
        output_files(&args.view),
    );
    Ok(exit_status(&report, reported && !stop.is_set()))
}

/// The config with the command line's overrides, and the narrowing, checked before any AWS
/// call; bad input exits 2 here.
fn checked_input(
    command: Command,
    args: &RunArgs,
    apply_args: Option<&ApplyArgs>,
) -> Result<(Config, Narrowing), Fatal> {
    let mut config = load_config(args.config.as_deref())?;
    let narrow = narrowing(args)?;
    config.accounts.shard = args.shard;
    if let Some(price) = args.price_per_gb_month {
        if !price.is_finite() || price < 0.0 {
            return Err(input(anyhow!(
                "--price-per-gb-month: must be a non-negative number"
            )));
        }
        config.price_per_gb_month = price;
    }
    let yes = apply_args.is_some_and(|a| a.yes);
    check_output_paths(
        output_files(&args.view),
        apply_args.and_then(|a| a.backup.as_deref()),
    )?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if command == Command::Apply && !yes && !interactive {
        return Err(input(anyhow!(
            "apply needs --yes when it cannot ask for confirmation (no terminal); nothing was changed"
        )));
    }
    if command == Command::Apply {
        let explicit = apply_args.is_some_and(|a| a.use_builtin_default);
        crate::config::builtin::check_apply(&config, yes, explicit).map_err(Fatal::Input)?;
    }
    Ok((config, narrow))
}

/// The first pass over every account (enabled regions, the in-use index), with its progress.
async fn first_pass(input: &PrepassInput<'_>, ids: &[String], mode: ProgressMode) -> Prepass {
    let progress = Progress::new(mode, "regions and in use", "accounts", ids.len() as u64);
    let pass = prepass::run(input, ids, &progress).await;
    progress.finish();
    pass
}

/// The exit status of a finished run; `complete` is false when the run was interrupted or a
/// report file could not be written.
fn exit_status(report: &Report, complete: bool) -> ExitStatus {
    match report.command {
        _ if report.has_failures() || !complete => ExitStatus::Failure,
        Command::Apply if report.has_pending() => ExitStatus::Failure,
        Command::Apply => ExitStatus::Success,
        Command::Audit if report.has_pending() || report.has_findings() => ExitStatus::Pending,
        Command::Plan if report.has_pending() => ExitStatus::Pending,
        _ => ExitStatus::Success,
    }
}

/// Interactive apply: show the plan, ask, then write (re-reading tags and policy first).
async fn confirm_and_write(
    report: &mut Report,
    config: &Config,
    targets: &HashMap<(String, String), Target>,
    journal: &Arc<Journal>,
    a: &ApplyArgs,
    args: &RunArgs,
    mode: ProgressMode,
) -> Result<(), Fatal> {
    report.tally();
    let writes = report
        .repositories
        .iter()
        .filter(|r| pipeline::wants_write(r, a.allow_unsafe))
        .count();
    let template_writes = report
        .creation_templates
        .iter()
        .filter(|t| t.outcome.is_write())
        .count();
    if writes + template_writes == 0 {
        return Ok(());
    }
    eprintln!("{}", crate::report::table::render(report, args.all));
    if !confirm(&format!(
        "Write {writes} lifecycle polic(ies) and {template_writes} creation template(s)?"
    )) {
        return Err(input(anyhow!("apply cancelled; nothing was written")));
    }
    let progress = Progress::new(mode, "apply", "writes", (writes + template_writes) as u64);
    crate::fleet::creation::write_planned(
        &mut report.creation_templates,
        config,
        targets,
        journal,
        &progress,
    )
    .await;
    pipeline::write_planned(
        &mut report.repositories,
        config,
        targets,
        journal,
        a.allow_unsafe,
        &progress,
    )
    .await;
    progress.finish();
    Ok(())
}
