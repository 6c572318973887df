//! `demo`: the real pipeline against a simulated organization. The organization
//! (`ecr-fleet-sim`) is generated from a seed and served on loopback; this process runs the
//! chosen command as a child with the SDK pointed at it, so the run is exactly what a user's
//! run is, with no AWS account, no credentials and no network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context};
use ecr_fleet_sim::demo::DemoSpec;
use ecr_fleet_sim::faults::{LoadRules, Quotas, RandomThrottle};

use super::input;
use crate::cli::{DemoArgs, DemoCommand, GlobalArgs, OutputFormat};
use crate::exit::{ExitStatus, Fatal};

/// The demo's regions, in the order `--regions N` takes them.
const REGIONS: [&str; 8] = [
    "us-east-1",
    "eu-west-1",
    "us-west-2",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ca-central-1",
    "sa-east-1",
];

/// Variables of the user's AWS setup that must not reach the demo's child: it talks to the
/// simulated organization only.
const CLEARED: [&str; 12] = [
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_ORGANIZATIONS",
    "ECR_FLEET_CONFIG",
];

pub async fn run(args: &DemoArgs, g: &GlobalArgs) -> Result<ExitStatus, Fatal> {
    let spec = spec(args)?;
    let args = args.clone();
    let g = (g.verbose, g.quiet, g.no_progress);
    // The simulator and the child process block; keep them off the async workers.
    tokio::task::spawn_blocking(move || run_blocking(&spec, &args, g))
        .await
        .map_err(|e| Fatal::Run(anyhow!("the demo stopped: {e}")))?
}

fn spec(args: &DemoArgs) -> Result<DemoSpec, Fatal> {
    let mut load = LoadRules::default();
    if let Some(ms) = args.latency {
        load.latency = Some(Duration::from_millis(ms));
    }
    if let Some(percent) = args.throttle {
        if !(0.0..=100.0).contains(&percent) {
            return Err(input(anyhow!(
                "--throttle: {percent} is not between 0 and 100"
            )));
        }
        load.random_throttle = Some(RandomThrottle::new(percent, args.seed));
    }
    if args.quotas {
        load.quotas = Some(Quotas::default());
    }
    Ok(DemoSpec {
        accounts: usize::from(args.accounts),
        regions: REGIONS[..usize::from(args.regions)]
            .iter()
            .map(|r| r.to_string())
            .collect(),
        repos_per_region: usize::from(args.repos),
        seed: args.seed,
        load,
    })
}

fn run_blocking(
    spec: &DemoSpec,
    args: &DemoArgs,
    (verbose, quiet, no_progress): (u8, bool, bool),
) -> Result<ExitStatus, Fatal> {
    let dir = Workspace::new().map_err(Fatal::Run)?;
    let config = spec
        .config()
        .write_to(dir.path(), true)
        .with_context(|| format!("{}: cannot write the demo's config", dir.path().display()))
        .map_err(Fatal::Run)?;
    let server = spec.start();
    let url = server.url();
    if !quiet {
        eprintln!(
            "demo: a simulated organization on {url}: {} accounts (and a suspended one), \
             regions {}, {} repositories each; load: {}. No AWS account is used.",
            spec.accounts,
            spec.regions.join(", "),
            spec.repos_per_region,
            spec.load.describe()
        );
    }
    if verbose > 0 {
        eprintln!(
            "demo: its config, removed when the demo ends: {}",
            config.display()
        );
    }
    let mut common: Vec<String> = vec!["--config".into(), config.display().to_string()];
    for _ in 0..verbose {
        common.push("-v".into());
    }
    if quiet {
        common.push("-q".into());
    }
    if no_progress {
        common.push("--no-progress".into());
    }
    let output = output_name(args.output);
    let mut report: Vec<String> = Vec::new();
    if let Some(path) = &args.report {
        report.extend(["--report".into(), path.display().to_string()]);
    }
    if let Some(path) = &args.html {
        report.extend(["--html".into(), path.display().to_string()]);
    }
    let journal = dir.path().join("journal.jsonl").display().to_string();
    let apply_flags = ["--yes".to_string(), "--backup".into(), journal.clone()];
    let restore_flags = ["--yes".to_string(), "--backup".into(), journal];
    // Each step: its arguments, and whether its view is the one the user asked for (the
    // apply before a restore runs with its view not shown).
    let steps: Vec<(Vec<String>, bool)> = match args.command {
        DemoCommand::Plan => vec![(step("plan", &[], &output, &report), true)],
        DemoCommand::Audit => vec![(step("audit", &["--images".into()], &output, &report), true)],
        DemoCommand::Apply => vec![(step("apply", &apply_flags, &output, &report), true)],
        DemoCommand::Restore => vec![
            (step("apply", &apply_flags, "table", &[]), false),
            (step("restore", &restore_flags, &output, &report), true),
        ],
    };
    let mut status = ExitStatus::Success;
    for (step, shown) in steps {
        if !shown && !quiet {
            eprintln!("demo: {} first (its view not shown)", step[0]);
        }
        status = child(&step, &common, &url, dir.path(), shown)?;
        // An apply that leaves blocked repositories exits 1 and still journals its writes.
        if status == ExitStatus::Invalid {
            break;
        }
    }
    server.stop();
    Ok(status)
}

fn step(command: &str, extra: &[String], output: &str, report: &[String]) -> Vec<String> {
    let mut out = vec![command.to_string()];
    out.extend(extra.iter().cloned());
    out.extend(["--output".to_string(), output.to_string()]);
    out.extend(report.iter().cloned());
    out
}

/// The flag value of a view, as clap spells it.
fn output_name(f: OutputFormat) -> String {
    clap::ValueEnum::to_possible_value(&f)
        .map_or_else(|| "table".to_string(), |v| v.get_name().to_string())
}

/// Runs this binary with `args` against the simulated organization at `url`.
fn child(
    args: &[String],
    common: &[String],
    url: &str,
    dir: &Path,
    shown: bool,
) -> Result<ExitStatus, Fatal> {
    let exe = std::env::current_exe()
        .context("cannot find this program to run the demo")
        .map_err(Fatal::Run)?;
    let missing = dir.join("no-aws-config");
    let mut cmd = Command::new(exe);
    cmd.arg(&args[0]).args(common).args(&args[1..]);
    for var in CLEARED {
        cmd.env_remove(var);
    }
    cmd.envs(DemoSpec::environment(url))
        .env("AWS_CONFIG_FILE", &missing)
        .env("AWS_SHARED_CREDENTIALS_FILE", &missing);
    if !shown {
        cmd.stdout(std::process::Stdio::null());
    }
    let status = cmd
        .status()
        .context("cannot start the demo run")
        .map_err(Fatal::Run)?;
    Ok(status
        .code()
        .and_then(ExitStatus::from_code)
        .unwrap_or(ExitStatus::Failure))
}

/// A folder for the demo's config, templates and journal, removed when the demo ends.
struct Workspace(PathBuf);

impl Workspace {
    fn new() -> anyhow::Result<Workspace> {
        let base = std::env::temp_dir().join(format!(
            "ecr-fleet-demo-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_millisecond()
        ));
        std::fs::create_dir_all(&base)
            .with_context(|| format!("{}: cannot create the demo's folder", base.display()))?;
        Ok(Workspace(base))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
