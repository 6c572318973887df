//! The command line (clap): flags, subcommands and their help. Only `commands` sees these
//! types; the layers below take plain values.

pub mod help;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::config::CONFIG_ENV;

#[derive(Debug, Parser)]
#[command(
    name = "ecr-fleet",
    version = crate::VERSION,
    about = "Put the right Amazon ECR lifecycle policy on every repository of an AWS Organization, and prove it",
    long_about = None,
    after_help = help::main_after_help()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr, no progress.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// No progress bar or progress lines.
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Discover, inventory, match and diff (read-only); print what `apply` would change.
    #[command(after_help = help::PLAN_EXAMPLES)]
    Plan(RunArgs),
    /// The same plan, then write every create/update (asks for confirmation unless --yes).
    #[command(after_help = help::APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// The plan plus content findings per repository (read-only); --images adds image impact.
    #[command(after_help = help::AUDIT_EXAMPLES)]
    Audit(RunArgs),
    /// Run plan, apply, audit or restore against a simulated organization: no AWS account needed.
    #[command(after_help = help::DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Check, without writing anything, what a run needs: credentials, accounts, roles, permissions.
    #[command(after_help = help::DOCTOR_EXAMPLES)]
    Doctor(DoctorArgs),
    /// Check a config and its templates, or lifecycle policy files, offline.
    Validate(ValidateArgs),
    /// Evaluate a policy offline against a repository's images, like ECR's lifecycle preview.
    Preview(PreviewArgs),
    /// Put back the policies an earlier apply replaced (and delete the ones it created).
    #[command(after_help = help::RESTORE_EXAMPLES)]
    Restore(RestoreArgs),
    /// Work with JSON reports: `report merge` joins the reports of a sharded run.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = help::COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command with --dir.
    #[command(after_help = help::MAN_EXAMPLES)]
    Man(ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Join the JSON reports of the shards of one run into one report (JSON on stdout, or
    /// any view with --output).
    #[command(after_help = help::MERGE_EXAMPLES)]
    Merge(MergeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// JSON reports (`--report` or `--output json`) of the shards of one run.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// View of the merged report printed on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,
    /// In the table view, also list unchanged repositories.
    #[arg(long)]
    pub all: bool,
    /// Also write the merged JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write the JUnit XML view of the merged report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the HTML view of the merged report to FILE: the whole organization on one page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to generate the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write ecr-fleet.1 and one ecr-fleet-<command>.1 per command into this directory
    /// instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people, with grouped diffs.
    Table,
    /// The JSON report (the same as --report writes).
    Json,
    /// Markdown, for a pull request or a job summary.
    Markdown,
    /// JUnit XML, for CI test report tools (CodeBuild report groups and the like).
    Junit,
    /// One self-contained HTML page (inline CSS and SVG charts), to open offline or from S3.
    Html,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Config file [default: ecr-fleet.toml if present, else the built-in default on the current account]
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub view: ViewArgs,
    /// Only the accounts of shard K of N: those whose id, as a number, is K-1 modulo N.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::model::Shard>,
    /// Only these account ids (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub accounts: Vec<String>,
    /// Only these regions (comma-separated or repeated), or `enabled` for every region enabled
    /// in each account; replaces the config's list.
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub regions: Vec<String>,
    /// Only repositories whose name matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub repositories: Option<String>,
    /// Describe the images of managed repositories and report what the templates would expire
    /// or archive (and, for audit, what the current policies do).
    #[arg(long)]
    pub images: bool,
    /// In the table view, also list unchanged repositories.
    #[arg(long)]
    pub all: bool,
    /// USD per GB-month for the estimated saving with --images (overrides [audit] price_per_gb_month).
    #[arg(long, value_name = "USD")]
    pub price_per_gb_month: Option<f64>,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also write repositories the [safety] settings block.
    #[arg(long)]
    pub allow_unsafe: bool,
    /// The write-ahead journal of this apply: each policy it replaces, recorded before the write [default: <backup_dir>/ecr-fleet-journal-<time>.jsonl]
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Write the built-in default template without a config file (otherwise `apply --yes`
    /// refuses to run when no config file is found).
    #[arg(long)]
    pub use_builtin_default: bool,
}

/// What `demo` runs against the simulated organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoCommand {
    Plan,
    /// Writes into the simulated organization only (no confirmation asked).
    Apply,
    /// With --images: content findings, what the template would expire, unused images.
    Audit,
    /// An apply, then the restore of its journal.
    Restore,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// The command to run against the simulated organization.
    #[arg(value_enum, default_value_t = DemoCommand::Plan)]
    pub command: DemoCommand,
    /// Active member accounts (a suspended one is added).
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=500))]
    pub accounts: u16,
    /// Regions per account (us-east-1, eu-west-1, then others).
    #[arg(long, default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=8))]
    pub regions: u16,
    /// Repositories per account-region.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub repos: u16,
    /// Seed of the generated organization (the same seed, the same organization).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Add this latency to every call, in milliseconds.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub latency: Option<u64>,
    /// Throttle this share of ECR and tagging calls at random (0 to 100).
    #[arg(long, value_name = "PERCENT")]
    pub throttle: Option<f64>,
    /// Enforce per account-region quotas: reads 20/s, puts 5/s, tag pages 5/s.
    #[arg(long)]
    pub quotas: bool,
    /// View printed on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write the HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// Config file [default: ecr-fleet.toml if present, else the built-in default on the current account]
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// Only these account ids (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub accounts: Vec<String>,
    /// Only these regions (comma-separated or repeated), or `enabled`; replaces the config's list.
    #[arg(long, value_delimiter = ',', value_name = "REGIONS")]
    pub regions: Vec<String>,
    /// Also prove that the writes of apply and restore are allowed, without changing anything
    /// (each is tried on a repository that does not exist).
    #[arg(long)]
    pub write_access: bool,
    #[arg(long, value_enum, default_value_t = PreviewFormat::Table)]
    pub output: PreviewFormat,
}

#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["config", "policy"]))]
pub struct ValidateArgs {
    /// Check this config file and every template it uses.
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// Check these lifecycle policy documents against the full ECR grammar.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub policy: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreviewFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct PreviewArgs {
    /// The lifecycle policy document.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The output of `aws ecr describe-images --output json`.
    #[arg(long, value_name = "FILE")]
    pub images: PathBuf,
    /// Evaluate as of this time (RFC 3339) [default: now]
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    #[arg(long, value_enum, default_value_t = PreviewFormat::Table)]
    pub output: PreviewFormat,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// Config file, for the spoke role settings [default: ecr-fleet.toml if present]
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
    /// A backup file written by `apply`.
    #[arg(long, value_name = "FILE")]
    pub backup: PathBuf,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub view: ViewArgs,
}

/// The view printed on stdout and the report files written beside it (plan, apply, audit,
/// restore).
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// View printed on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Also write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write the JUnit XML view to FILE (whatever --output is).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the HTML view to FILE (whatever --output is).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}
