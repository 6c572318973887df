//! The commands, one file each: they resolve the command line and the config into what the
//! layers below take, run them, and print the report. `run` dispatches a parsed command line.

use std::io::{BufRead, BufWriter, Write as _};
use std::path::Path;

use anyhow::anyhow;
use jiff::{Timestamp, Unit};

use crate::aws::Stop;
use crate::cli::{Cli, Command, OutputFormat, ReportCommand};
use crate::config::{Config, DEFAULT_CONFIG_FILE};
use crate::exit::{ExitStatus, Fatal};
use crate::report::{Command as RunCommand, Report, View};

mod demo;
mod docs;
mod doctor;
mod fleet;
mod merge;
mod preview;
mod restore;
mod validate;

pub use docs::{completions, man};

pub async fn run(cli: Cli) -> Result<ExitStatus, Fatal> {
    let g = &cli.global;
    match &cli.command {
        Command::Plan(args) => fleet::run(RunCommand::Plan, args, None, g).await,
        Command::Audit(args) => fleet::run(RunCommand::Audit, args, None, g).await,
        Command::Apply(args) => fleet::run(RunCommand::Apply, &args.run, Some(args), g).await,
        Command::Demo(args) => demo::run(args, g).await,
        Command::Doctor(args) => doctor::run(args).await,
        Command::Validate(args) => validate::run(args),
        Command::Preview(args) => preview::run(args),
        Command::Restore(args) => restore::run(args, g).await,
        Command::Report(ReportCommand::Merge(args)) => merge::run(args),
        Command::Completions(args) => docs::run_completions(args),
        Command::Man(args) => docs::run_man(args),
    }
}

/// The report files `--report`, `--junit` and `--html` name.
pub(crate) fn output_files(view: &crate::cli::ViewArgs) -> OutputFiles<'_> {
    OutputFiles {
        report: view.report.as_deref(),
        junit: view.junit.as_deref(),
        html: view.html.as_deref(),
    }
}

/// A bad-input error: exit 2, nothing changed.
pub(crate) fn input(e: impl Into<anyhow::Error>) -> Fatal {
    Fatal::Input(e.into())
}

impl From<OutputFormat> for View {
    fn from(f: OutputFormat) -> View {
        match f {
            OutputFormat::Table => View::Table,
            OutputFormat::Json => View::Json,
            OutputFormat::Markdown => View::Markdown,
            OutputFormat::Junit => View::Junit,
            OutputFormat::Html => View::Html,
        }
    }
}

pub(crate) fn now() -> Timestamp {
    Timestamp::now()
        .round(Unit::Second)
        .unwrap_or_else(|_| Timestamp::now())
}

/// `--config FILE`, else `ecr-fleet.toml` if present, else the built-in default.
pub(crate) fn load_config(explicit: Option<&Path>) -> Result<Config, Fatal> {
    let config = load_config_file(explicit)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

pub(crate) fn load_config_file(explicit: Option<&Path>) -> Result<Config, Fatal> {
    match explicit {
        Some(path) => Config::load(path).map_err(input),
        None => {
            let default = Path::new(DEFAULT_CONFIG_FILE);
            if default.exists() {
                Config::load(default).map_err(input)
            } else {
                // Said once the account is known (config::builtin).
                Ok(Config::builtin(Vec::new()))
            }
        }
    }
}

pub(crate) fn confirm(prompt: &str) -> bool {
    eprint!("{prompt} Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

/// The files a run writes beside the view on stdout: `--report` (JSON), `--junit`, `--html`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OutputFiles<'a> {
    pub report: Option<&'a Path>,
    pub junit: Option<&'a Path>,
    pub html: Option<&'a Path>,
}

impl OutputFiles<'_> {
    /// Each file with its flag and view.
    fn each(&self) -> impl Iterator<Item = (&'static str, View, &Path)> {
        [
            ("--report", View::Json, self.report),
            ("--junit", View::Junit, self.junit),
            ("--html", View::Html, self.html),
        ]
        .into_iter()
        .filter_map(|(flag, view, path)| path.map(|p| (flag, view, p)))
    }
}

/// Print the view, then write the output files. Returns false when one could not be written:
/// the run's result is still on stdout, and the caller exits 1.
pub(crate) fn emit(report: &Report, output: View, show_all: bool, files: OutputFiles) -> bool {
    {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        // A closed pipe (`| head`) is not an error worth a non-zero exit.
        let _ = if output == View::Json {
            report.write_json(&mut out)
        } else {
            out.write_all(report.render(output, show_all).as_bytes())
        };
        let _ = out.flush();
    }
    let mut written = true;
    for (flag, view, path) in files.each() {
        let result = match view {
            View::Json => {
                std::fs::File::create(path).and_then(|f| report.write_json(BufWriter::new(f)))
            }
            _ => std::fs::write(path, report.render(view, show_all)),
        };
        if let Err(e) = result {
            eprintln!("error: {}: cannot write {flag} file: {e}", path.display());
            written = false;
        }
    }
    written
}

/// Catch unusable output paths before any AWS call, not after the work is done: each output
/// file's directory exists, and the backup file does not.
pub(crate) fn check_output_paths(files: OutputFiles, backup: Option<&Path>) -> Result<(), Fatal> {
    for (flag, _, path) in files.each() {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(input(anyhow!(
                "{flag}: {}: directory {} does not exist",
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
pub(crate) fn watch_signals(stop: Stop) -> tokio::task::JoinHandle<()> {
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
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
