//! The commands: wiring config, discovery, inventory, planner, writer and views together.

use std::collections::BTreeSet;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use futures::StreamExt;
use jiff::{Timestamp, Unit};

use crate::apply::{self, Backup, Clients, TargetClient, BACKUP_VERSION};
use crate::aws::Aws;
use crate::cli::{
    ApplyArgs, Cli, Command, GlobalArgs, OutputFormat, PreviewArgs, PreviewFormat, RestoreArgs,
    RunArgs, ValidateArgs,
};
use crate::config::{
    check_account_id, check_region, Config, InUseSource, NameGlob, RegionSelection,
    DEFAULT_CONFIG_FILE, REGIONS_ENABLED,
};
use crate::discovery::{self, AccountAccess};
use crate::inuse::{self, InUseIndex};
use crate::inventory::{inventory_target, ImagesMode, InventoryOptions, Limiter};
use crate::plan::{self, Outcome, PlanOptions, RepoFacts};
use crate::progress::{Progress, ProgressMode};
use crate::regions::{self, DisabledRegion};
use crate::report::{Report, Skipped, Summary, SCHEMA_VERSION};
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
                tracing::info!(
                    "no {DEFAULT_CONFIG_FILE}: using the built-in default on the current account"
                );
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

fn render(report: &Report, output: OutputFormat, show_all: bool) -> String {
    match output {
        OutputFormat::Table => crate::report::render_table(report, show_all),
        OutputFormat::Json => report.to_json(),
        OutputFormat::Markdown => crate::report::render_markdown(report),
    }
}

/// Print the view, then write `--report`. Returns false when the report file could not be
/// written: the run's result is still on stdout, and the caller exits 1.
fn emit(report: &Report, output: OutputFormat, show_all: bool, report_file: Option<&Path>) -> bool {
    let text = render(report, output, show_all);
    {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a non-zero exit.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    match report_file.map(|path| (path, std::fs::write(path, report.to_json()))) {
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

struct Inventory {
    facts: Vec<RepoFacts>,
    skipped: Vec<Skipped>,
    clients: Clients,
}

/// Every account-region a run visits, after region discovery.
type Targets<'a> = Vec<(&'a AccountAccess, String)>;

async fn inventory_fleet(
    aws: &Aws,
    config: &Config,
    targets: &Targets<'_>,
    partition: &str,
    options: &InventoryOptions,
    mode: ProgressMode,
) -> Inventory {
    let global = Limiter::global(config.execution.concurrency);
    let targets: Vec<(&AccountAccess, &String)> = targets.iter().map(|(a, r)| (*a, r)).collect();
    let progress = Progress::new(mode, "inventory", "account-regions", targets.len() as u64);
    let on_repo = || progress.item();
    let results: Vec<_> = futures::stream::iter(targets)
        .map(|(account, region)| {
            let global = &global;
            let progress = &progress;
            let on_repo = &on_repo;
            async move {
                let client = aws.ecr(&account.account_id, region, account.credentials.as_ref());
                let limiter = Limiter::for_target(global, config.execution.per_region_concurrency);
                let result = inventory_target(
                    &client,
                    &account.account_id,
                    region,
                    config,
                    options,
                    &limiter,
                    on_repo,
                )
                .await;
                progress.step();
                (
                    account.account_id.clone(),
                    region.clone(),
                    client,
                    limiter,
                    result,
                )
            }
        })
        // Targets run side by side; the limiter caps the calls actually in flight.
        .buffer_unordered(config.execution.concurrency.max(1))
        .collect()
        .await;
    progress.finish();
    let mut inv = Inventory {
        facts: Vec::new(),
        skipped: Vec::new(),
        clients: Clients::new(),
    };
    for (account_id, region, client, limiter, result) in results {
        match result {
            Ok(facts) => {
                inv.facts.extend(facts);
                inv.clients.insert(
                    (account_id, region),
                    TargetClient {
                        client,
                        limiter,
                        partition: partition.to_string(),
                    },
                );
            }
            Err(error) => inv.skipped.push(Skipped {
                account_id,
                region: Some(region),
                error,
            }),
        }
    }
    inv.skipped
        .sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    inv
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
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if command == FleetCommand::Apply && !yes && !interactive {
        return Err(input(anyhow!(
            "apply needs --yes when it cannot ask for confirmation (no terminal); nothing was changed"
        )));
    }
    let mode = ProgressMode::detect(g.quiet, g.no_progress);

    let aws = Aws::load(&config.execution).await;
    let selection = region_selection(&narrow, &config, &aws)?;
    // STS, Organizations and the Account API are answered from one region: the first listed,
    // else the SDK's.
    let home = match &selection {
        RegionSelection::Listed(r) => r.first().cloned(),
        RegionSelection::Enabled => aws.default_region(),
    };
    let caller = discovery::caller(&aws, home.as_deref())
        .await
        .map_err(|e| Fatal::Run(e.into()))?;
    tracing::info!(account = %caller.account_id, arn = %caller.arn, "caller");
    let discovered = discovery::discover(
        &aws,
        &caller,
        &config.accounts,
        narrow.accounts.as_deref(),
        home.as_deref(),
        config.execution.concurrency,
    )
    .await
    .map_err(|e| Fatal::Run(e.into()))?;
    let home = home.unwrap_or_else(|| discovery_home_region(&caller.partition).to_string());
    let visit = visit_regions(&aws, &config, &discovered.accounts, &selection, &home).await;
    let regions: BTreeSet<&str> = visit.targets.iter().map(|(_, r)| r.as_str()).collect();
    let regions_count = regions.len();

    // The in-use index is complete before any repository is decided: a consumer in the last
    // account-region may protect an image of the first, and apply writes a repository as soon
    // as its decision is known.
    let in_use = if config.safety.in_use.is_empty() {
        None
    } else {
        Some(collect_in_use(&aws, &config, &visit.targets, started, mode).await)
    };

    let images = if args.images {
        ImagesMode::AllManaged
    } else if config.safety.is_enabled() {
        ImagesMode::Changing
    } else {
        ImagesMode::None
    };
    let options = InventoryOptions {
        repositories: narrow.repositories.clone(),
        images,
        page_size: 1000,
        // A whole-organization audit: unmatched repositories are read too (plan and apply
        // leave them alone and unread).
        read_unmatched: command == FleetCommand::Audit,
    };
    let mut inv = inventory_fleet(
        &aws,
        &config,
        &visit.targets,
        &caller.partition,
        &options,
        mode,
    )
    .await;
    let rows = plan::plan(
        std::mem::take(&mut inv.facts),
        &config,
        PlanOptions {
            now: started,
            findings: command == FleetCommand::Audit,
            in_use: in_use.as_ref(),
        },
    );
    let mut skipped = discovered.skipped.clone();
    skipped.extend(visit.skipped);
    if let Some(index) = &in_use {
        skipped.extend(in_use_failures(index));
    }
    skipped.append(&mut inv.skipped);
    skipped.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        command: command.name().to_string(),
        started_at: started.to_string(),
        finished_at: String::new(),
        summary: Summary {
            accounts: (discovered.accounts.len() + discovered.skipped.len()) as u64,
            inactive_accounts: discovered.inactive_accounts as u64,
            regions: regions_count as u64,
            price_per_gb_month: config.price_per_gb_month,
            unused_after_days: config.unused_after_days,
            ..Summary::default()
        },
        repositories: rows,
        skipped,
        disabled_regions: visit.disabled,
        backup_file: None,
    };

    if let Some(a) = apply_args {
        // The confirmation shows the plan with what it cost so far.
        report.summary.api_calls = aws.stats.calls();
        report.summary.api_retries = aws.stats.retries();
        apply_phase(
            &mut report,
            &config,
            &inv.clients,
            a,
            args,
            interactive,
            mode,
            started,
        )
        .await?;
    }

    report.finished_at = now().to_string();
    report.summary.api_calls = aws.stats.calls();
    report.summary.api_retries = aws.stats.retries();
    report.tally();
    let reported = emit(&report, args.output, args.all, args.report.as_deref());

    Ok(match command {
        _ if report.has_failures() || !reported => ExitStatus::Failure,
        FleetCommand::Apply if report.has_pending() => ExitStatus::Failure,
        FleetCommand::Apply => ExitStatus::Success,
        FleetCommand::Audit if report.has_pending() || report.has_findings() => ExitStatus::Pending,
        FleetCommand::Plan if report.has_pending() => ExitStatus::Pending,
        _ => ExitStatus::Success,
    })
}

/// Where region discovery asks the Account API when no region is configured or set.
fn discovery_home_region(partition: &str) -> &'static str {
    match partition {
        "aws-cn" => "cn-northwest-1",
        "aws-us-gov" => "us-gov-west-1",
        _ => "us-east-1",
    }
}

/// The account-regions to visit, the listed regions some account has not enabled, and the
/// accounts whose enabled regions could not be listed.
struct Visit<'a> {
    targets: Targets<'a>,
    disabled: Vec<DisabledRegion>,
    skipped: Vec<Skipped>,
}

async fn visit_regions<'a>(
    aws: &Aws,
    config: &Config,
    accounts: &'a [AccountAccess],
    selection: &RegionSelection,
    home: &str,
) -> Visit<'a> {
    let listed = match selection {
        RegionSelection::Listed(r) => Some(r.as_slice()),
        RegionSelection::Enabled => None,
    };
    // Only an opt-in region can be disabled: a run over default regions asks nothing more.
    let ask = listed.is_none_or(|l| l.iter().any(|r| regions::may_be_disabled(r)));
    // Per account: its enabled regions, or why they could not be listed; `None`: not asked.
    type Answer<'b> = (&'b AccountAccess, Option<Result<BTreeSet<String>, String>>);
    let answers: Vec<Answer> = futures::stream::iter(accounts)
        .map(|account| async move {
            if !ask {
                return (account, None);
            }
            let client = aws.account(home, account.credentials.as_ref());
            (account, Some(regions::enabled_regions(&client).await))
        })
        .buffered(config.execution.concurrency.max(1))
        .collect()
        .await;
    let mut visit = Visit {
        targets: Vec::new(),
        disabled: Vec::new(),
        skipped: Vec::new(),
    };
    for (account, answer) in answers {
        match (listed, answer) {
            (Some(listed), None) => {
                visit
                    .targets
                    .extend(listed.iter().map(|r| (account, r.clone())));
            }
            (Some(listed), Some(Ok(enabled))) => {
                let (regions, disabled) = regions::split_listed(listed, &enabled);
                visit
                    .targets
                    .extend(regions.into_iter().map(|r| (account, r)));
                visit
                    .disabled
                    .extend(disabled.into_iter().map(|region| DisabledRegion {
                        account_id: account.account_id.clone(),
                        region,
                    }));
            }
            (Some(listed), Some(Err(e))) => {
                // Not knowing the opt-in status is no reason to skip: visit, and let a region
                // that really is disabled fail as it did before.
                tracing::warn!(account = %account.account_id, "cannot list enabled regions, visiting every listed region: {e}");
                visit
                    .targets
                    .extend(listed.iter().map(|r| (account, r.clone())));
            }
            (None, Some(Ok(enabled))) => {
                visit
                    .targets
                    .extend(enabled.into_iter().map(|r| (account, r)));
            }
            (None, Some(Err(error))) => visit.skipped.push(Skipped {
                account_id: account.account_id.clone(),
                region: None,
                error,
            }),
            (None, None) => unreachable!("enabled regions are always asked for"),
        }
    }
    visit.disabled.sort();
    visit
}

/// First pass of a run with `[safety] in_use`: the consumers of every visited account-region.
async fn collect_in_use(
    aws: &Aws,
    config: &Config,
    targets: &Targets<'_>,
    now: Timestamp,
    mode: ProgressMode,
) -> InUseIndex {
    let global = Limiter::global(config.execution.concurrency);
    let progress = Progress::new(mode, "in use", "account-regions", targets.len() as u64);
    let sources = &config.safety.in_use;
    let parts: Vec<InUseIndex> = futures::stream::iter(targets)
        .map(|(account, region)| {
            let global = &global;
            let progress = &progress;
            async move {
                let creds = account.credentials.as_ref();
                let id = &account.account_id;
                let clients = inuse::TargetClients {
                    account_id: id.clone(),
                    region: region.clone(),
                    ecs: sources
                        .contains(&InUseSource::Ecs)
                        .then(|| aws.ecs(id, region, creds)),
                    lambda: sources
                        .contains(&InUseSource::Lambda)
                        .then(|| aws.lambda(id, region, creds)),
                    inspector: sources
                        .contains(&InUseSource::Inspector)
                        .then(|| aws.inspector2(id, region, creds)),
                };
                let limiter = Limiter::for_target(global, config.execution.per_region_concurrency);
                let part = inuse::collect_target(&clients, &limiter, now).await;
                progress.step();
                part
            }
        })
        .buffer_unordered(config.execution.concurrency.max(1))
        .collect()
        .await;
    progress.finish();
    let mut index = InUseIndex::default();
    for part in parts {
        index.merge(part);
    }
    index.incomplete.sort();
    tracing::info!(
        references = index.references(),
        incomplete = index.incomplete.len(),
        "in-use index"
    );
    index
}

/// Account-regions whose consumers could not be read: reported as skipped (the run failed in
/// part), while the repositories they might protect are blocked.
fn in_use_failures(index: &InUseIndex) -> Vec<Skipped> {
    index
        .incomplete
        .iter()
        .map(|line| {
            // `source account region: error`
            let mut parts = line.splitn(3, ' ');
            let (source, account, rest) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let (region, error) = rest.split_once(": ").unwrap_or((rest, ""));
            Skipped {
                account_id: account.to_string(),
                region: Some(region.to_string()),
                error: format!("in-use index ({source}): {error}"),
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn apply_phase(
    report: &mut Report,
    config: &Config,
    clients: &Clients,
    a: &ApplyArgs,
    args: &RunArgs,
    interactive: bool,
    mode: ProgressMode,
    started: Timestamp,
) -> Result<(), Fatal> {
    report.tally();
    let writes: Vec<&plan::RepoResult> = report
        .repositories
        .iter()
        .filter(|r| r.outcome.is_write() || (a.allow_unsafe && r.outcome == Outcome::Blocked))
        .collect();
    if writes.is_empty() {
        return Ok(());
    }
    let entries = apply::backup_entries(config, &writes);
    if !a.yes && interactive {
        eprintln!("{}", crate::report::render_table(report, args.all));
        if !confirm(&format!("Write {} lifecycle polic(ies)?", entries.len())) {
            return Err(input(anyhow!("apply cancelled; nothing was written")));
        }
    }
    let path = a
        .backup
        .clone()
        .unwrap_or_else(|| apply::default_backup_path(&config.backup_dir, started));
    let backup = Backup {
        backup_version: BACKUP_VERSION,
        created_at: started.to_string(),
        entries,
    };
    apply::write_backup(&path, &backup)
        .map_err(|e| Fatal::Run(anyhow!("{e}; nothing was written")))?;
    tracing::info!(path = %path.display(), entries = backup.entries.len(), "backup written");
    report.backup_file = Some(path.display().to_string());
    let progress = Progress::new(mode, "apply", "writes", backup.entries.len() as u64);
    // Ctrl-C from here on: finish the writes in flight, start no new one, print the report.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let stop = stop.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
                eprintln!(
                    "ecr-fleet: interrupted: finishing the writes in flight, starting no new one \
                     (Ctrl-C again to quit at once; the backup is already written)"
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        }
    });
    apply::apply_rows(
        &mut report.repositories,
        config,
        clients,
        a.allow_unsafe,
        &progress,
        &stop,
    )
    .await;
    watcher.abort();
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
        PreviewFormat::Table => {
            let mut table = comfy_table::Table::new();
            table
                .load_style(comfy_table::presets::UTF8_BORDERS_ONLY)
                .set_header(vec!["DIGEST", "TAGS", "PUSHED", "ACTION", "RULE"]);
            for a in &actions {
                let img = &images[a.index];
                table.add_row(vec![
                    img.digest.clone(),
                    img.tags.join(","),
                    img.pushed_at.to_string(),
                    format!("{:?}", a.action).to_lowercase(),
                    a.rule_priority.to_string(),
                ]);
            }
            let totals = ecr_lifecycle::impact(&images, &actions);
            if !actions.is_empty() {
                println!("{table}");
            }
            println!(
                "{} of {} images affected: {} expire ({}), {} transition to archive ({}); as of {at}",
                actions.len(),
                images.len(),
                totals.expiring_images,
                crate::report::human_bytes(totals.expiring_bytes),
                totals.transitioning_images,
                crate::report::human_bytes(totals.transitioning_bytes)
            );
        }
    }
    Ok(ExitStatus::Success)
}

async fn restore(args: &RestoreArgs, g: &GlobalArgs) -> Result<ExitStatus, Fatal> {
    let started = now();
    let backup = apply::read_backup(&args.backup).map_err(input)?;
    let config = load_config(args.config.as_deref())?;
    check_output_paths(args.report.as_deref(), None)?;
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
    let aws = Aws::load(&config.execution).await;
    let first_region = backup.entries.first().map(|e| e.region.as_str());
    let caller = discovery::caller(&aws, first_region)
        .await
        .map_err(|e| Fatal::Run(e.into()))?;
    let accounts: Vec<String> = backup
        .entries
        .iter()
        .map(|e| e.account_id.clone())
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
    let global = Limiter::global(config.execution.concurrency);
    let mut clients = Clients::new();
    for e in &backup.entries {
        let key = (e.account_id.clone(), e.region.clone());
        if clients.contains_key(&key) {
            continue;
        }
        if let Some(account) = discovered
            .accounts
            .iter()
            .find(|a| a.account_id == e.account_id)
        {
            clients.insert(
                key,
                TargetClient {
                    client: aws.ecr(&e.account_id, &e.region, account.credentials.as_ref()),
                    limiter: Limiter::for_target(&global, config.execution.per_region_concurrency),
                    partition: caller.partition.clone(),
                },
            );
        }
    }
    let mode = ProgressMode::detect(g.quiet, g.no_progress);
    let progress = Progress::new(mode, "restore", "repositories", backup.entries.len() as u64);
    let rows: Vec<plan::RepoResult> = futures::stream::iter(&backup.entries)
        .filter_map(|e| {
            let target = clients
                .get(&(e.account_id.clone(), e.region.clone()))
                .cloned();
            let progress = &progress;
            async move {
                let row = match target {
                    Some(target) => apply::restore_entry(e, &target).await,
                    // Every entry gets a row: one that could not be tried says so.
                    None => {
                        let mut row = plan::RepoResult::new(
                            &e.account_id,
                            &e.region,
                            &e.repository,
                            Some(e.template.clone()),
                        );
                        row.error = Some(
                            "not restored: the account could not be entered (see skipped)".into(),
                        );
                        row
                    }
                };
                progress.step();
                Some(row)
            }
        })
        .collect()
        .await;
    progress.finish();
    let mut rows = rows;
    rows.sort_by(|a, b| a.key().cmp(&b.key()));
    let regions: BTreeSet<&str> = backup.entries.iter().map(|e| e.region.as_str()).collect();
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
        backup_file: Some(args.backup.display().to_string()),
    };
    report.tally();
    let reported = emit(&report, args.output, true, args.report.as_deref());
    Ok(if report.has_failures() || !reported {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
