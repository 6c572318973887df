//! Running the built `ecr-fleet` binary against an endpoint, isolated from the host's AWS
//! setup: every `AWS_*` variable of the host is removed, the config and credentials files
//! point at a file that does not exist, and the instance metadata service is disabled, so
//! nothing but what the test sets can reach the SDK.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of the `ecr-fleet` binary that cargo built for these tests, or `ECR_FLEET_BENCH_BIN`
/// when set: benchmarks measure an optimized build that way (the test profile is unoptimized).
pub fn binary() -> PathBuf {
    match std::env::var_os("ECR_FLEET_BENCH_BIN").filter(|b| !b.is_empty()) {
        Some(bin) => PathBuf::from(bin),
        None => PathBuf::from(env!("CARGO_BIN_EXE_ecr-fleet")),
    }
}

/// The published schema of the JSON report, relative to the package root.
pub const REPORT_SCHEMA: &str = "docs/report.schema.json";

/// The report schema, compiled on first use. Panics if it is not valid JSON Schema 2020-12.
pub fn report_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(REPORT_SCHEMA);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {REPORT_SCHEMA}: {e}"));
        let schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{REPORT_SCHEMA} is not JSON: {e}"));
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{REPORT_SCHEMA} does not compile: {e}"))
    })
}

/// Every way `report` fails the report schema, one `instance path: message` line each
/// (`(root)` for the top-level object); empty when it conforms.
pub fn report_schema_errors(report: &Value) -> Vec<String> {
    report_validator()
        .iter_errors(report)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() { "(root)" } else { &path };
            format!("{path}: {e}")
        })
        .collect()
}

/// What a run printed and how it ended.
#[derive(Clone, Debug)]
pub struct CliOutput {
    /// Exit code; a process killed by a signal gets 128 + the signal's number, as in a shell.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl CliOutput {
    /// Stdout parsed as JSON (the report of `--output json`); panics showing both streams.
    /// A value with a `schema_version` field is a report and must match
    /// `docs/report.schema.json`; other JSON (the `preview` output) is returned unchecked.
    pub fn json(&self) -> Value {
        let value: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}); exit code {}\n--- stdout\n{}\n--- stderr\n{}",
                self.code, self.stdout, self.stderr
            )
        });
        if value.get("schema_version").is_some() {
            let problems = report_schema_errors(&value);
            assert!(
                problems.is_empty(),
                "the report does not match docs/report.schema.json:\n{}\n--- stdout\n{}",
                problems.join("\n"),
                self.stdout
            );
        }
        value
    }

    /// Panics, showing both streams, unless the run exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &CliOutput {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A run of `ecr-fleet` with extra environment, for tests that need more than
/// [`ecr_fleet`] gives.
#[derive(Clone, Debug)]
pub struct Cli {
    endpoint: String,
    cwd: PathBuf,
    env: Vec<(OsString, OsString)>,
    /// Variables removed from the run's environment, after the settings above.
    removed: Vec<OsString>,
}

impl Cli {
    pub fn new(endpoint: &str, cwd: &Path) -> Cli {
        Cli {
            endpoint: endpoint.to_string(),
            cwd: cwd.to_path_buf(),
            env: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// Sets (or overrides) one environment variable of the run, e.g. `AWS_REGION`.
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Cli {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Removes one environment variable from the run (even one this runner sets itself, such
    /// as the static test credentials or the region).
    pub fn without(mut self, name: impl Into<OsString>) -> Cli {
        self.removed.push(name.into());
        self
    }

    pub fn run(&self, args: &[&str]) -> CliOutput {
        let began = Instant::now();
        Cli::wait(self.spawn(args), began)
    }

    /// Start the run without waiting (stdout and stderr piped), for tests that signal it.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()))
    }

    /// Start a run, wait until `ready()` says it got far enough (at most 60 s), send it
    /// `signal` (`INT`, `TERM`), and collect it.
    pub fn run_and_signal(
        &self,
        args: &[&str],
        signal: &str,
        ready: impl Fn() -> bool,
    ) -> CliOutput {
        let began = Instant::now();
        let child = self.spawn(args);
        while !ready() {
            assert!(
                began.elapsed().as_secs() < 60,
                "the run never got to the point of the signal"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        Cli::wait(child, began)
    }

    /// Collect a spawned run like [`Cli::run`] does.
    pub fn wait(child: std::process::Child, began: Instant) -> CliOutput {
        let output = child.wait_with_output().expect("wait for ecr-fleet");
        CliOutput {
            code: exit_code(output.status),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: began.elapsed(),
        }
    }

    /// Run on a pseudo-terminal (util-linux `script`), typing `input` at the prompt: the
    /// interactive paths (confirmation) of apply and restore. stdout and stderr both arrive
    /// in `stdout`, as on a terminal.
    pub fn run_on_terminal(&self, args: &[&str], input: &str) -> CliOutput {
        use std::io::Write as _;
        let began = Instant::now();
        let line = std::iter::once(binary().display().to_string())
            .chain(args.iter().map(|a| a.to_string()))
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = self.command_for("script");
        command.args(["-qefc", &line, "/dev/null"]);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux script runs");
        {
            let mut stdin = child.stdin.take().expect("stdin piped");
            // The prompt comes after the plan: give the run time to reach it.
            std::thread::sleep(std::time::Duration::from_millis(200));
            stdin
                .write_all(input.as_bytes())
                .expect("type at the prompt");
            // Keep stdin open until the run ends, or `script` hangs up the terminal.
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(120));
                drop(stdin);
            });
        }
        Cli::wait(child, began)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.command_for(&binary().display().to_string());
        command.args(args);
        command
    }

    fn command_for(&self, program: &str) -> Command {
        let missing = self.cwd.join(".no-aws-config-here");
        let mut command = Command::new(program);
        command.current_dir(&self.cwd);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &missing)
            .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
            .env("NO_COLOR", "1")
            // The host's config file must not leak into a test either.
            .env_remove("ECR_FLEET_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        for name in &self.removed {
            command.env_remove(name);
        }
        command
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    -1
}

/// Runs `ecr-fleet args...` in `cwd` with the AWS endpoint `endpoint` (moto or a proxy),
/// static credentials `testing`/`testing`, region us-east-1, `NO_COLOR=1` and no stdin.
pub fn ecr_fleet(args: &[&str], endpoint: &str, cwd: &Path) -> CliOutput {
    Cli::new(endpoint, cwd).run(args)
}

/// `apply --yes` of the workspace `config`, with the JSON report on stdout and no progress.
pub fn apply_json(config: &Path, endpoint: &str, cwd: &Path) -> CliOutput {
    let config = config.to_str().expect("a UTF-8 path");
    ecr_fleet(
        &[
            "apply",
            "--config",
            config,
            "--yes",
            "--output",
            "json",
            "--no-progress",
        ],
        endpoint,
        cwd,
    )
}

/// `plan` of the workspace `config`, with the JSON report on stdout and no progress.
pub fn plan_json(config: &Path, endpoint: &str, cwd: &Path) -> CliOutput {
    let config = config.to_str().expect("a UTF-8 path");
    ecr_fleet(
        &[
            "plan",
            "--config",
            config,
            "--output",
            "json",
            "--no-progress",
        ],
        endpoint,
        cwd,
    )
}

/// The row of `repo` in a report (panics naming it when absent).
pub fn row<'a>(report: &'a Value, repo: &str) -> &'a Value {
    report["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repo)
        .unwrap_or_else(|| panic!("{repo} not in report"))
}
