//! The commands: wiring config, discovery, inventory, planner, writer and views together.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use futures::StreamExt;
use jiff::{Timestamp, Unit};

use crate::apply::{self, Journal, JournalRecord, JOURNAL_VERSION};
use crate::aws::{Aws, RunLimits, Stop};
use crate::cli::{
    ApplyArgs, Cli, Command, GlobalArgs, OutputFormat, PreviewArgs, PreviewFormat, RestoreArgs,
    RunArgs, ValidateArgs,
};
use crate::config::{
    check_account_id, check_region, Config, NameGlob, RegionSelection, DEFAULT_CONFIG_FILE,
    REGIONS_ENABLED,
};
use crate::discovery;
use crate::inventory::{ImagesMode, InventoryOptions};
use crate::pipeline::{self, FleetRun, StreamingWrites};
use crate::plan::{self, PlanOptions};
use crate::prepass::{self, Prepass, PrepassInput};
use crate::progress::{Progress, ProgressMode};
use crate::report::{Report, Summary, SCHEMA_VERSION};
use crate::templates::load_template_file;

/// How a command ended; maps one-to-one to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Nothing pending, or every change applied.
    Success = 0,
    /// The run finished but some accounts, regions or repositories failed.
    Failure = 1,
    /// Invalid input or usage; nothing was changed.
    Invalid = 2,
    /// plan/audit: changes pending or findings.
    Pending = 3,
}

/// Why a command could not run to the end.
#[derive(Debug)]
pub enum Fatal {
    /// Bad input: exit 2, before any AWS call.
    Input(anyhow::Error),
    /// The run could not proceed (no credentials, organization unreadable...): exit 1.
    Run(anyhow::Error),
}

impl Fatal {
    pub fn status(&self) -> ExitStatus {
        match self {
            Fatal::Input(_) => ExitStatus::Invalid,
            Fatal::Run(_) => ExitStatus::Failure,
        }
    }

    pub fn error(&self) -> &anyhow::Error {
        match self {
            Fatal::Input(e) | Fatal::Run(e) => e,
        }
    }
}

fn input(e: impl Into<anyhow::Error>) -> Fatal {
    Fatal::Input(e.into())
}

pub async fn run(cli: Cli) -> Result<ExitStatus, Fatal> {
    let g = &cli.global;
    match &cli.command {
        Command::Plan(args) => fleet(FleetCommand::Plan, args, None, g).await,
        Command::Audit(args) => fleet(FleetCommand::Audit, args, None, g).await,
        Command::Apply(args) => fleet(FleetCommand::Apply, &args.run, Some(args), g).await,
        Command::Validate(args) => validate(args),
        Command::Preview(args) => preview(args),
        Command::Restore(args) => restore(args, g).await,
        Command::Report(crate::cli::ReportCommand::Merge(args)) => crate::merge::run(args),
        Command::Completions(args) => crate::help::run_completions(args),
        Command::Man(args) => crate::help::run_man(args),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FleetCommand {
    Plan,
    Apply,
    Audit,
}

impl FleetCommand {
    fn name(self) -> &'static str {
        match self {
            FleetCommand::Plan => "plan",
            FleetCommand::Apply => "apply",
            FleetCommand::Audit => "audit",
        }
    }
}

fn now() -> Timestamp {
    Timestamp::now()
        .round(Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
}

/// `--config FILE`, else `ecr-fleet.toml` if present, else the built-in default.
fn load_config(explicit: Option<&Path>) -> Result<Config, Fatal> {
    let config = load_config_file(explicit)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

fn load_config_file(explicit: Option<&Path>) -> Result<Config, Fatal> {
    match explicit {
        Some(path) => Config::load(path).map_err(input),
        None => {
            let default = Path::new(DEFAULT_CONFIG_FILE);
            if default.exists() {
                Config::load(default).map_err(input)
            } else {
                // Said once the account is known (crate::builtin).
                Ok(Config::builtin(Vec::new()))
            }
        }
    }
}

/// Check the narrowing options before any AWS call.
struct Narrowing {
    accounts: Option<Vec<String>>,
    regions: Vec<String>,
    /// `--regions enabled`.
    regions_enabled: bool,
    repositories: Option<NameGlob>,
}

fn narrowing(args: &RunArgs) -> Result<Narrowing, Fatal> {
    for id in &args.accounts {
        check_account_id(id).map_err(|m| input(anyhow!("--accounts: {m}")))?;
    }
    let regions_enabled = args.regions.iter().any(|r| r == REGIONS_ENABLED);
    if regions_enabled && args.regions.len() > 1 {
        return Err(input(anyhow!(
            "--regions: \"{REGIONS_ENABLED}\" stands alone (every enabled region); do not list regions with it"
        )));
    }
    for r in args.regions.iter().filter(|_| !regions_enabled) {
        check_region(r).map_err(|m| input(anyhow!("--regions: {m}")))?;
    }
    let repositories = args
        .repositories
        .as_deref()
        .map(NameGlob::new)
        .transpose()
        .map_err(|m| input(anyhow!("--repositories: {m}")))?;
    Ok(Narrowing {
        accounts: (!args.accounts.is_empty()).then(|| args.accounts.clone()),
        regions: if regions_enabled {
            Vec::new()
        } else {
            args.regions.clone()
        },
        regions_enabled,
        repositories,
    })
}

/// The run's region selection: `--regions` replaces the config's.
fn region_selection(
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
            "no region: set `regions` in the config, pass --regions, or set AWS_REGION"
        )));
    };
    let mut seen = BTreeSet::new();
    regions.retain(|r| seen.insert(r.clone()));
    Ok(regions)
}

fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

/// Print the view, then write `--report`. Returns false when the report file could not be
/// written: the run's result is still on stdout, and the caller exits 1.
fn emit(report: &Report, output: OutputFormat, show_all: bool, report_file: Option<&Path>) -> bool {
    {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        // A closed pipe (`| head`) is not an error worth a non-zero exit.
        let _ = if output == OutputFormat::Json {
            report.write_json(&mut out)
        } else {
            out.write_all(report.render(output, show_all).as_bytes())
        };
        let _ = out.flush();
    }
    let written = |path: &Path| -> std::io::Result<()> {
        report.write_json(std::io::BufWriter::new(std::fs::File::create(path)?))
    };
    match report_file.map(|path| (path, written(path))) {
        Some((path, Err(e))) => {
            eprintln!("error: {}: cannot write report: {e}", path.display());
            false
        }
        _ => true,
    }
}

/// Catch unusable output paths before any AWS call, not after the work is done.
fn check_output_paths(report: Option<&Path>, backup: Option<&Path>) -> Result<(), Fatal> {
    if let Some(path) = report {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(input(anyhow!(
                "--report: {}: directory {} does not exist",
                path.display(),
                dir.display()
            )));
        }
    }
    if let Some(path) = backup.filter(|p| p.exists()) {
        return Err(input(anyhow!(
            "--backup: {} already exists; a backup is never overwritten",
            path.display()
        )));
    }
    Ok(())
}

/// Ctrl-C or SIGTERM (what CodeBuild sends on stop or timeout): no new call starts, calls in
/// flight finish (writes are journaled), the report is printed. A second signal quits at once.
fn watch_signals(stop: Stop) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut received = 0;
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            let got = match term.as_mut() {
                Some(term) => tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok(),
                    r = term.recv() => r.is_some(),
                },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got {
                return;
            }
            received += 1;
            if received > 1 {
                std::process::exit(130);
            }
            stop.set();
            eprintln!(
                "ecr-fleet: interrupted: finishing the calls in flight, starting no new one \
                 (signal again to quit at once; every write started is in the journal)"
            );
        }
    })
}

/// Stops the signal watcher when the command ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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

async fn fleet(
    command: FleetCommand,
    args: &RunArgs,
    apply_args: Option<&ApplyArgs>,
    g: &GlobalArgs,
) -> Result<ExitStatus, Fatal> {
    let started = now();
    let config = load_config(args.config.as_deref())?;
    let narrow = narrowing(args)?;
    let mut config = config;
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
        args.report.as_deref(),
        apply_args.and_then(|a| a.backup.as_deref()),
    )?;
    crate::junit::check_path(args.junit.as_deref()).map_err(Fatal::Input)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if command == FleetCommand::Apply && !yes && !interactive {
        return Err(input(anyhow!(
            "apply needs --yes when it cannot ask for confirmation (no terminal); nothing was changed"
        )));
    }
    if command == FleetCommand::Apply {
        let explicit = apply_args.is_some_and(|a| a.use_builtin_default);
        crate::builtin::check_apply(&config, yes, explicit).map_err(Fatal::Input)?;
    }
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
    crate::builtin::warn_if_builtin(&config, &caller.account_id, &regions);
    let selection =
        discovery::select_accounts(&aws, &caller, &config.accounts, narrow.accounts.as_deref())
            .await
            .map_err(|e| Fatal::Run(e.into()))?;

    // Region discovery and the in-use index come first, over every account: no repository is
    // decided (or written) before the index is complete.
    let prepass = if Prepass::needed(&config, &region_selection) {
        let home = sts_region.unwrap_or(prepass::home_region(&caller.partition));
        let progress = Progress::new(
            mode,
            "regions and in use",
            "accounts",
            selection.ids.len() as u64,
        );
        let pass = prepass::run(
            &PrepassInput {
                aws: &aws,
                config: &config,
                caller: &caller,
                sts_region,
                selection: &region_selection,
                home,
                now: started,
                stop: &stop,
            },
            &selection.ids,
            &progress,
        )
        .await;
        progress.finish();
        Some(pass)
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
            .unwrap_or_else(|| apply::default_journal_path(&config.backup_dir, started));
        Journal::new(path, journal_header(&config, started))
    });
    // `apply --yes` writes while it reads; interactive apply plans, asks, then writes.
    let streaming = apply_args.filter(|a| a.yes).map(|a| StreamingWrites {
        journal: journal.clone().expect("apply has a journal"),
        allow_unsafe: a.allow_unsafe,
    });
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
            read_unmatched: command == FleetCommand::Audit,
        },
        plan: PlanOptions {
            now: started,
            findings: command == FleetCommand::Audit,
            in_use: prepass.as_ref().and_then(|p| p.in_use.as_ref()),
        },
        limits: RunLimits::new(&config.execution, aws.stats.clone(), stop.clone()),
        writes: streaming,
        // Interactive apply writes after the confirmation, from what the plan read.
        confirm_writes: apply_args.filter(|a| !a.yes).map(|a| a.allow_unsafe),
        prepass: prepass.as_ref(),
    };
    let accounts_in_scope = selection.ids.len() as u64;
    let target_count = match &prepass {
        Some(p) => p.targets(&selection.ids, &regions),
        None => accounts_in_scope * regions.len() as u64,
    };
    // Regions actually visited (with region discovery, they differ per account).
    let regions_visited = match prepass.as_ref().and_then(|p| p.regions.as_ref()) {
        Some(map) => map.values().flatten().collect::<BTreeSet<_>>().len(),
        None => regions.len(),
    };
    let progress = Progress::new(mode, command.name(), "account-regions", target_count);
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
        command: command.name().to_string(),
        started_at: started.to_string(),
        finished_at: String::new(),
        summary: Summary {
            // Accounts that could not be entered count; so do mistyped `--accounts` ids.
            accounts: accounts_in_scope + named_but_absent,
            inactive_accounts: selection.inactive_accounts as u64,
            regions: regions_visited as u64,
            price_per_gb_month: config.price_per_gb_month,
            unused_after_days: config.unused_after_days,
            ..Summary::default()
        },
        repositories: output.rows,
        skipped,
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
    let reported = emit(&report, args.output, args.all, args.report.as_deref());
    let reported = crate::junit::write_file(&report, args.junit.as_deref()) && reported;

    Ok(match command {
        _ if report.has_failures() || !reported || stop.is_set() => ExitStatus::Failure,
        FleetCommand::Apply if report.has_pending() => ExitStatus::Failure,
        FleetCommand::Apply => ExitStatus::Success,
        FleetCommand::Audit if report.has_pending() || report.has_findings() => ExitStatus::Pending,
        FleetCommand::Plan if report.has_pending() => ExitStatus::Pending,
        _ => ExitStatus::Success,
    })
}

/// Interactive apply: show the plan, ask, then write (re-reading tags and policy first).
async fn confirm_and_write(
    report: &mut Report,
    config: &Config,
    targets: &HashMap<(String, String), crate::aws::Target>,
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
    if writes == 0 {
        return Ok(());
    }
    eprintln!("{}", crate::report::render_table(report, args.all));
    if !confirm(&format!("Write {writes} lifecycle polic(ies)?")) {
        return Err(input(anyhow!("apply cancelled; nothing was written")));
    }
    let progress = Progress::new(mode, "apply", "writes", writes as u64);
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

fn validate(args: &ValidateArgs) -> Result<ExitStatus, Fatal> {
    let mut failed = 0usize;
    if let Some(path) = &args.config {
        let config = Config::load(path).map_err(input)?;
        for w in &config.warnings {
            eprintln!("warning: {w}");
        }
        let templates: Vec<&str> = config.used_templates();
        println!(
            "{}: ok ({} [[match]] entr{}, template(s): {}; regions: {})",
            path.display(),
            config.matches.len(),
            if config.matches.len() == 1 {
                "y"
            } else {
                "ies"
            },
            templates.join(", "),
            if config.regions_enabled {
                "every enabled region".to_string()
            } else if config.regions.is_empty() {
                "from the environment".to_string()
            } else {
                config.regions.join(", ")
            }
        );
    }
    for path in &args.policy {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("policy");
        match load_template_file(path, name) {
            Ok(t) => println!("{}: ok ({} rule(s))", path.display(), t.policy.rules.len()),
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    if failed > 0 {
        return Err(input(anyhow!(
            "{failed} of {} policy file(s) invalid",
            args.policy.len()
        )));
    }
    Ok(ExitStatus::Success)
}

fn preview(args: &PreviewArgs) -> Result<ExitStatus, Fatal> {
    let name = args
        .policy
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy");
    let template = load_template_file(&args.policy, name).map_err(input)?;
    let text = std::fs::read_to_string(&args.images)
        .with_context(|| format!("{}: cannot read images", args.images.display()))
        .map_err(Fatal::Input)?;
    let images = ecr_lifecycle::parse_images(&text)
        .map_err(|e| input(anyhow!("{}: {e}", args.images.display())))?;
    let at = match &args.now {
        Some(t) => t
            .parse::<Timestamp>()
            .map_err(|e| input(anyhow!("--now: {t:?} is not an RFC 3339 time: {e}")))?,
        None => Timestamp::now(),
    };
    let actions = ecr_lifecycle::evaluate(&template.policy, &images, at);
    match args.output {
        PreviewFormat::Json => {
            let value = ecr_lifecycle::preview_json(&images, &actions);
            println!(
                "{}",
                serde_json::to_string_pretty(&value).expect("preview serializes")
            );
        }
        PreviewFormat::Table => print!(
            "{}",
            crate::report::render_preview_table(&images, &actions, at)
        ),
    }
    Ok(ExitStatus::Success)
}

async fn restore(args: &RestoreArgs, g: &GlobalArgs) -> Result<ExitStatus, Fatal> {
    let started = now();
    let backup = apply::read_backup(&args.backup).map_err(input)?;
    let config = load_config(args.config.as_deref())?;
    check_output_paths(args.report.as_deref(), None)?;
    crate::junit::check_path(args.junit.as_deref()).map_err(Fatal::Input)?;
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes && !interactive {
        return Err(input(anyhow!(
            "restore needs --yes when it cannot ask for confirmation (no terminal); nothing was changed"
        )));
    }
    if !args.yes
        && !confirm(&format!(
            "Restore {} repositories from {}?",
            backup.entries.len(),
            args.backup.display()
        ))
    {
        return Err(input(anyhow!("restore cancelled; nothing was written")));
    }
    let stop = Stop::default();
    let _signals = AbortOnDrop(watch_signals(stop.clone()));
    let aws = Aws::load(&config.execution).await;
    let first_region = backup.entries.first().map(|e| e.entry.region.as_str());
    let caller = discovery::caller(&aws, first_region)
        .await
        .map_err(|e| Fatal::Run(e.into()))?;
    let accounts: Vec<String> = backup
        .entries
        .iter()
        .map(|e| e.entry.account_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut accounts_config = config.accounts.clone();
    accounts_config.source = crate::config::AccountSource::List(accounts);
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
    for e in &backup.entries {
        let key = (e.entry.account_id.clone(), e.entry.region.clone());
        if targets.contains_key(&key) {
            continue;
        }
        if let Some(account) = discovered
            .accounts
            .iter()
            .find(|a| a.account_id == e.entry.account_id)
        {
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
    let progress = Progress::new(mode, "restore", "repositories", backup.entries.len() as u64);
    // Entries run side by side; each account-region's call gate keeps its share.
    let mut rows: Vec<plan::RepoResult> = futures::stream::iter(&backup.entries)
        .map(|e| {
            let target = targets.get(&(e.entry.account_id.clone(), e.entry.region.clone()));
            let progress = &progress;
            async move {
                let row = match target {
                    Some(target) => apply::restore_entry(e, target).await,
                    // Every entry gets a row: one that could not be tried says so.
                    None => {
                        let mut row = plan::RepoResult::new(
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
    let regions: BTreeSet<&str> = backup
        .entries
        .iter()
        .map(|e| e.entry.region.as_str())
        .collect();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        command: "restore".to_string(),
        started_at: started.to_string(),
        finished_at: now().to_string(),
        summary: Summary {
            accounts: (discovered.accounts.len() + discovered.skipped.len()) as u64,
            regions: regions.len() as u64,
            api_calls: aws.stats.calls(),
            api_retries: aws.stats.retries(),
            ..Summary::default()
        },
        repositories: rows,
        skipped: discovered.skipped.clone(),
        disabled_regions: Vec::new(),
        notices: Vec::new(),
        backup_file: Some(args.backup.display().to_string()),
        shard: None,
    };
    report.tally();
    let reported = emit(&report, args.output, true, args.report.as_deref());
    let reported = crate::junit::write_file(&report, args.junit.as_deref()) && reported;
    Ok(if report.has_failures() || !reported || stop.is_set() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
