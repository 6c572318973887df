//! Fleet benchmarks: ecr-fleet against Cloud Custodian's c7n-org and a plain boto3 loop on
//! the same seeded moto fleet, under several load scenarios; and ecr-fleet alone on a large
//! synthetic fleet. Ignored by default. Run them with
//!
//! ```text
//! bash scripts/test.sh --test e2e --run-ignored only fleet_benchmark --no-capture
//! bash scripts/test.sh --test e2e --run-ignored only scale_benchmark --no-capture
//! ```
//!
//! `fleet_benchmark` seeds moto with `ECR_FLEET_BENCH_ACCOUNTS` member accounts (default
//! 20) plus `ECR_FLEET_BENCH_SUSPENDED` closed ones (default 1) x 2 regions x
//! `ECR_FLEET_BENCH_REPOS` repositories (default 50), mixed as `support::aws::RepoKind`
//! documents. Every tool talks to moto through one `FaultProxy`, which counts the requests
//! per operation, injects the scenario's faults and records the writes per repository.
//! Scenarios (`ECR_FLEET_BENCH_SCENARIOS`, comma-separated, default all):
//!
//! | name       | faults                                                                      |
//! |------------|-----------------------------------------------------------------------------|
//! | `plain`    | none                                                                        |
//! | `latency`  | `ECR_FLEET_BENCH_LATENCY_MS` (20) added to every call                       |
//! | `throttle` | `ECR_FLEET_BENCH_THROTTLE_PERCENT` (30) % of ECR and tagging calls throttled |
//! | `quotas`   | token buckets per account-region: reads 20/s, puts 5/s, tag pages 5/s       |
//! | `quotas-latency` | both: the quotas, with every call taking `ECR_FLEET_BENCH_LATENCY_MS` |
//!
//! moto runs through `scripts/bench/moto_server.py`, its own server with the per-request
//! routing memoized (about 1.6x the requests per second); `ECR_FLEET_BENCH_MOTO=stock`
//! runs the stock `moto_server`.
//!
//! Tools (`ECR_FLEET_BENCH_TOOLS`, default `ecr-fleet,c7n-org,boto3`): ecr-fleet runs
//! `plan`, `apply --yes` and a converged re-run (`apply --yes` again); c7n-org runs a
//! policy that puts the same template on the same repositories (name glob, exemption tag
//! absent; c7n's `set-lifecycle` writes without comparing); `scripts/bench/boto3_loop.py`
//! reads and puts where different. c7n-org and boto3 come from `.venv-bench`, made by
//! `scripts/bench-setup.sh` (run here unless `ECR_FLEET_BENCH_VENV` names a ready one).
//! Between tools the fleet is put back as seeded.
//!
//! Per scenario it prints wall time, the ratio to c7n-org's, requests per operation as the
//! proxy saw them, throttled answers, writes, redundant writes and wrong policies (read back
//! from moto after each apply), and the API-call targets of ecr-fleet's apply and converged
//! re-run computed from the fleet. It never asserts on time: moto is the bottleneck and its
//! speed varies from run to run; compare timings only within one run.
//!
//! `ECR_FLEET_BENCH_BIN` runs another ecr-fleet binary (an optimized build),
//! `ECR_FLEET_BENCH_EXECUTION` adds `[execution]` settings to its config, and
//! `ECR_FLEET_BENCH_STDERR` names a directory that keeps each step's stderr and report (and,
//! on the synthetic server, every answer it gave: `scripts/bench/answers.py` reads them).
//!
//! `scale_benchmark` runs against the synthetic server (`ecr_fleet_sim`) with
//! `ECR_FLEET_BENCH_SYNTH_ACCOUNTS` (20) x 2 regions x `ECR_FLEET_BENCH_SYNTH_REPOS` (500)
//! repositories, under `ECR_FLEET_BENCH_SYNTH_SCENARIOS` (default `plain`), and reports
//! repositories per second and the peak resident memory of the ecr-fleet process too. It
//! runs ecr-fleet alone unless `ECR_FLEET_BENCH_SYNTH_TOOLS` adds `c7n-org` and `boto3`:
//! the synthetic server is far cheaper than moto, so there the ratios measure the tools,
//! not the emulator. Each tool gets a fresh fleet from the same seed.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::aws::{self, Fleet, FleetSpec, RepoKind, Verification, OUTCOMES};
use crate::support::cli::{Cli, CliOutput};
use crate::support::faults::{LoadRules, Quotas};
use crate::support::fixtures::{
    write_fleet_workspace, CI_BUILDS_POLICY, CI_BUILDS_TEMPLATE, EXEMPT_TAG, FLEET_REGIONS,
    MANAGEMENT_ACCOUNT_ID, MATCHED_NAMES_GLOB, SPOKE_ROLE_NAME,
};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules, RepoKey};
use crate::support::synth::{SynthFleet, SynthSpec};

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------
// Scenarios and targets.

/// The tools a benchmark runs, from `variable` (comma-separated).
fn bench_tools(variable: &str, default: &str) -> Vec<String> {
    let tools = env_list(variable, default);
    for tool in &tools {
        assert!(
            ["ecr-fleet", "c7n-org", "boto3"].contains(&tool.as_str()),
            "unknown tool {tool:?} in {variable}: ecr-fleet, c7n-org, boto3"
        );
    }
    tools
}

struct Scenario {
    name: String,
    load: LoadRules,
}

fn scenario(name: &str) -> Scenario {
    let seed = env_usize("ECR_FLEET_BENCH_SEED", 1) as u64;
    let latency = || Duration::from_millis(env_usize("ECR_FLEET_BENCH_LATENCY_MS", 20) as u64);
    let load = match name {
        "plain" => LoadRules::default(),
        "latency" => LoadRules::latency(latency()),
        "throttle" => LoadRules::random_throttle(
            env_usize("ECR_FLEET_BENCH_THROTTLE_PERCENT", 30) as f64,
            seed,
        ),
        "quotas" => LoadRules::quotas(Quotas::default()),
        // Calls queue at the concurrency caps as they do against ECR, where a call takes tens
        // of milliseconds: which calls go first there decides when writes start.
        "quotas-latency" => LoadRules {
            latency: Some(latency()),
            ..LoadRules::quotas(Quotas::default())
        },
        other => panic!(
            "unknown benchmark scenario {other:?}: plain, latency, throttle, quotas, quotas-latency"
        ),
    };
    Scenario {
        name: name.to_string(),
        load,
    }
}

/// The issue's API-call targets for apply and for a converged re-run on `fleet`:
/// 1.05 x (listing pages + tag pages + one GetLifecyclePolicy per managed repository +
/// two calls per write + one AssumeRole per member account + 2), the re-run without the
/// writes. Every active account-region is visited, the management account's too.
fn api_targets(fleet: &Fleet) -> (u64, u64) {
    let mut per_target: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for account in fleet
        .members
        .iter()
        .map(String::as_str)
        .chain([MANAGEMENT_ACCOUNT_ID])
    {
        for region in &fleet.regions {
            per_target.insert((account, region), (0, 0));
        }
    }
    let (mut managed, mut writes) = (0u64, 0u64);
    for repo in fleet.active_repos() {
        let entry = per_target
            .entry((&repo.account_id, &repo.region))
            .or_default();
        entry.0 += 1;
        entry.1 += 1; // every seeded repository carries a tag
        match repo.kind {
            RepoKind::Missing | RepoKind::Outdated => {
                managed += 1;
                writes += 1;
            }
            RepoKind::Current => managed += 1,
            RepoKind::Exempt | RepoKind::Unmatched => {}
        }
    }
    let pages = |n: u64, size: u64| n.div_ceil(size).max(1);
    let listing: u64 = per_target.values().map(|(n, _)| pages(*n, 1000)).sum();
    let tag_pages: u64 = per_target.values().map(|(_, t)| pages(*t, 100)).sum();
    let base = listing + tag_pages + managed + fleet.members.len() as u64 + 2;
    let target = |calls: u64| (calls as f64 * 1.05).round() as u64;
    (target(base + 2 * writes), target(base))
}

// ---------------------------------------------------------------------------------------
// One measured step.

struct Row {
    tool: &'static str,
    step: &'static str,
    output: CliOutput,
    counts: BTreeMap<String, u64>,
    throttled: BTreeMap<String, u64>,
    check: Option<Verification>,
    /// API-call target of this step, when the issue sets one.
    target: Option<u64>,
    /// Total of the report's `summary.api_calls` (ecr-fleet only).
    reported_calls: Option<u64>,
    peak_rss_kib: Option<u64>,
}

impl Row {
    fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    fn throttled_total(&self) -> u64 {
        self.throttled.values().sum()
    }
}

/// The counters a step reads from the server it ran against.
trait Counters {
    fn reset(&self);
    fn counts(&self) -> BTreeMap<String, u64>;
    fn throttled(&self) -> BTreeMap<String, u64>;
    fn writes(&self) -> BTreeMap<RepoKey, u32>;
    /// The step's answers, one line each (`seconds operation account region throttled`), if
    /// the server keeps them.
    fn answers(&self) -> Option<String> {
        None
    }
}

impl Counters for FaultProxy {
    fn reset(&self) {
        self.reset_counts();
    }
    fn counts(&self) -> BTreeMap<String, u64> {
        FaultProxy::counts(self)
    }
    fn throttled(&self) -> BTreeMap<String, u64> {
        FaultProxy::throttled(self)
    }
    fn writes(&self) -> BTreeMap<RepoKey, u32> {
        FaultProxy::writes(self)
    }
}

/// Writes per repository of the synthetic fleet since the last reset.
struct SynthCounters<'a> {
    synth: &'a SynthFleet,
    before: std::cell::RefCell<BTreeMap<RepoKey, u32>>,
}

impl Counters for SynthCounters<'_> {
    fn reset(&self) {
        self.synth.reset_counts();
        *self.before.borrow_mut() = self.synth.writes();
    }
    fn counts(&self) -> BTreeMap<String, u64> {
        self.synth.counts()
    }
    fn throttled(&self) -> BTreeMap<String, u64> {
        self.synth.throttled()
    }
    fn writes(&self) -> BTreeMap<RepoKey, u32> {
        let before = self.before.borrow();
        self.synth
            .writes()
            .into_iter()
            .filter_map(|(k, n)| {
                let n = n - before.get(&k).copied().unwrap_or(0);
                (n > 0).then_some((k, n))
            })
            .collect()
    }
    fn answers(&self) -> Option<String> {
        let mut lines = String::from("seconds\toperation\taccount\tregion\tthrottled\n");
        for a in self.synth.take_answers() {
            let at = a.at.as_secs_f64();
            let (op, account, region) = (&a.operation, &a.account, &a.region);
            lines += &format!("{at:.6}\t{op}\t{account}\t{region}\t{}\n", a.throttled);
        }
        Some(lines)
    }
}

/// Runs `command`, sampling its peak resident memory (VmHWM) while it runs.
fn run_measured(mut child: std::process::Child, began: Instant) -> (CliOutput, Option<u64>) {
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = None;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    break;
                };
                let hwm = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                if hwm.is_some() {
                    peak = peak.max(hwm);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    // Drain the pipes while it runs (a large report does not fit in a pipe).
    let _ = child.stdin.take();
    let output = Cli::wait(child, began);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (output, sampler.join().unwrap_or(None))
}

// ---------------------------------------------------------------------------------------
// The tools.

struct Workspace {
    dir: tempfile::TempDir,
    config: PathBuf,
    venv: Option<PathBuf>,
}

impl Workspace {
    fn new(fleet: &Fleet, python_tools: bool) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let config = write_fleet_workspace(dir.path(), &FLEET_REGIONS);
        // `ECR_FLEET_BENCH_EXECUTION="concurrency = 8"` measures other [execution] settings.
        if let Some(execution) = std::env::var_os("ECR_FLEET_BENCH_EXECUTION") {
            let mut text = std::fs::read_to_string(&config).unwrap();
            text.push_str(&format!("\n[execution]\n{}\n", execution.to_string_lossy()));
            std::fs::write(&config, text).unwrap();
        }
        let venv = python_tools.then(bench_venv);
        let ws = Workspace { dir, config, venv };
        if python_tools {
            ws.write_c7n_files(fleet);
        }
        ws
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The c7n-org accounts file (every active account, management included, as
    /// ecr-fleet's `source = "organization"` visits them) and the policy.
    fn write_c7n_files(&self, fleet: &Fleet) {
        let accounts: Vec<Value> = fleet
            .members
            .iter()
            .map(String::as_str)
            .chain([MANAGEMENT_ACCOUNT_ID])
            .map(|id| {
                json!({
                    "account_id": id,
                    "name": format!("account-{id}"),
                    "role": format!("arn:aws:iam::{id}:role/{SPOKE_ROLE_NAME}"),
                    "regions": FLEET_REGIONS,
                })
            })
            .collect();
        // JSON is YAML: c7n reads both files with a YAML loader.
        std::fs::write(
            self.path().join("accounts.yml"),
            serde_json::to_string_pretty(&json!({ "accounts": accounts })).unwrap(),
        )
        .unwrap();
        let template: Value = serde_json::from_str(CI_BUILDS_POLICY).unwrap();
        let policy = json!({"policies": [{
            "name": "ecr-lifecycle",
            "resource": "aws.ecr",
            "filters": [
                {"type": "value", "key": "repositoryName", "op": "glob", "value": MATCHED_NAMES_GLOB},
                {format!("tag:{EXEMPT_TAG}"): "absent"},
            ],
            "actions": [{"type": "set-lifecycle", "rules": template["rules"]}],
        }]});
        std::fs::write(
            self.path().join("c7n-policy.yml"),
            serde_json::to_string_pretty(&policy).unwrap(),
        )
        .unwrap();
        std::fs::write(
            self.path().join(format!("{CI_BUILDS_TEMPLATE}.json")),
            CI_BUILDS_POLICY,
        )
        .unwrap();
    }

    fn ecr_fleet(&self, endpoint: &str, args: &[&str]) -> (CliOutput, Option<u64>) {
        let config = self.config.to_str().unwrap();
        let mut all = vec![args[0], "--config", config];
        all.extend(&args[1..]);
        all.extend(["--output", "json", "--no-progress"]);
        let began = Instant::now();
        let child = Cli::new(endpoint, self.path()).spawn(&all);
        run_measured(child, began)
    }

    fn python_tool(&self, endpoint: &str, program: &Path, args: &[OsString]) -> CliOutput {
        let missing = self.path().join(".no-aws-config-here");
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .args(args)
            .current_dir(self.path())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", &missing)
            .env("AWS_SHARED_CREDENTIALS_FILE", &missing)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let began = Instant::now();
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        Cli::wait(child, began)
    }

    fn c7n_org(&self, endpoint: &str) -> CliOutput {
        let venv = self.venv.as_ref().expect("benchmark virtualenv");
        let out = self.path().join("c7n-out");
        let _ = std::fs::remove_dir_all(&out);
        let mut args: Vec<OsString> = ["run", "-c", "accounts.yml", "-u", "c7n-policy.yml"]
            .iter()
            .map(OsString::from)
            .collect();
        args.extend(["-s".into(), out.into_os_string()]);
        // No resource cache: every run must read what the fleet holds now.
        args.extend(["--cache-period".into(), "0".into()]);
        for region in FLEET_REGIONS {
            args.extend(["-r".into(), region.into()]);
        }
        self.python_tool(endpoint, &venv.join("bin/c7n-org"), &args)
    }

    fn boto3_loop(&self, endpoint: &str) -> CliOutput {
        let venv = self.venv.as_ref().expect("benchmark virtualenv");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/boto3_loop.py");
        let mut args: Vec<OsString> = vec![
            script.into_os_string(),
            "--template".into(),
            format!("{CI_BUILDS_TEMPLATE}.json").into(),
            "--names".into(),
            MATCHED_NAMES_GLOB.into(),
            "--role-name".into(),
            SPOKE_ROLE_NAME.into(),
            "--exempt-tag".into(),
            EXEMPT_TAG.into(),
        ];
        for region in FLEET_REGIONS {
            args.extend(["--regions".into(), region.into()]);
        }
        self.python_tool(endpoint, &venv.join("bin/python"), &args)
    }
}

/// The benchmark's virtualenv: `ECR_FLEET_BENCH_VENV`, else what `scripts/bench-setup.sh`
/// prepares (and prints).
fn bench_venv() -> PathBuf {
    if let Some(venv) = std::env::var_os("ECR_FLEET_BENCH_VENV").filter(|v| !v.is_empty()) {
        let venv = PathBuf::from(venv);
        if venv.join("bin/c7n-org").is_file() {
            return venv;
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-setup.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}); run it by hand, or leave c7n-org and boto3 out with \
         ECR_FLEET_BENCH_TOOLS=ecr-fleet",
        script.display(),
        output.status
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn reported_calls(output: &CliOutput) -> Option<u64> {
    let report: Value = serde_json::from_str(&output.stdout).ok()?;
    report["summary"]["api_calls"]
        .as_object()
        .map(|calls| calls.values().filter_map(Value::as_u64).sum())
}

/// Runs the three ecr-fleet steps of a scenario, verifying after each apply.
fn ecr_fleet_steps(
    ws: &Workspace,
    endpoint: &str,
    counters: &dyn Counters,
    targets: (u64, u64),
    read_back: &mut dyn FnMut() -> BTreeMap<RepoKey, Option<String>>,
    fleet: &Fleet,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (step, args, target) in [
        ("plan", &["plan"][..], None),
        ("apply", &["apply", "--yes"][..], Some(targets.0)),
        ("re-run", &["apply", "--yes"][..], Some(targets.1)),
    ] {
        counters.reset();
        let (output, peak) = ws.ecr_fleet(endpoint, args);
        // To see what the run logged (with RUST_LOG) and reported, keep its stderr and stdout,
        // and the server's answers where it keeps them.
        if let Some(dir) = std::env::var_os("ECR_FLEET_BENCH_STDERR") {
            let answers = counters.answers();
            let files = [
                ("log", Some(&output.stderr)),
                ("json", Some(&output.stdout)),
            ]
            .into_iter()
            .chain([("answers.tsv", answers.as_ref())]);
            for (extension, text) in files {
                let Some(text) = text else { continue };
                let path = Path::new(&dir).join(format!("{step}.{extension}"));
                std::fs::write(&path, text)
                    .unwrap_or_else(|e| panic!("ECR_FLEET_BENCH_STDERR: {}: {e}", path.display()));
            }
        }
        let writes = counters.writes();
        let check = (step != "plan").then(|| fleet.verify(&read_back(), &writes));
        eprintln!(
            "  ecr-fleet {step}: exit {} in {} s",
            output.code,
            secs(output.elapsed)
        );
        rows.push(Row {
            tool: "ecr-fleet",
            step,
            reported_calls: reported_calls(&output),
            counts: counters.counts(),
            throttled: counters.throttled(),
            check: check.or_else(|| {
                // plan writes nothing; record that as its check.
                Some(Verification {
                    writes: writes.values().map(|n| u64::from(*n)).sum(),
                    ..Verification::default()
                })
            }),
            target,
            peak_rss_kib: peak,
            output,
        });
    }
    rows
}

/// The steps of one tool: ecr-fleet's plan, apply and re-run, or the apply of c7n-org or
/// the boto3 loop, each verified after it.
fn tool_steps(
    ws: &Workspace,
    tool: &str,
    endpoint: &str,
    counters: &dyn Counters,
    read_back: &mut dyn FnMut() -> BTreeMap<RepoKey, Option<String>>,
    fleet: &Fleet,
) -> Vec<Row> {
    if tool == "ecr-fleet" {
        let targets = api_targets(fleet);
        return ecr_fleet_steps(ws, endpoint, counters, targets, read_back, fleet);
    }
    counters.reset();
    let (name, output) = match tool {
        "c7n-org" => ("c7n-org", ws.c7n_org(endpoint)),
        "boto3" => ("boto3", ws.boto3_loop(endpoint)),
        other => panic!("not a tool of the benchmark: {other}"),
    };
    eprintln!(
        "  {name}: exit {} in {} s",
        output.code,
        secs(output.elapsed)
    );
    let writes = counters.writes();
    vec![Row {
        tool: name,
        step: "apply",
        reported_calls: None,
        counts: counters.counts(),
        throttled: counters.throttled(),
        check: Some(fleet.verify(&read_back(), &writes)),
        target: None,
        peak_rss_kib: None,
        output,
    }]
}

// ---------------------------------------------------------------------------------------
// Printing.

fn print_scenario(title: &str, rows: &[Row], targets: (u64, u64)) {
    let c7n = rows
        .iter()
        .find(|r| r.tool == "c7n-org")
        .map(|r| r.output.elapsed.as_secs_f64());
    println!("\n=== {title}");
    println!(
        "{:<10} {:<7} {:>4} {:>8} {:>7} {:>7} {:>7} {:>9} {:>6} {:>9} {:>6} {:>7} {:>8}",
        "tool",
        "step",
        "exit",
        "wall s",
        "vs c7n",
        "calls",
        "target",
        "throttled",
        "writes",
        "redundant",
        "wrong",
        "touched",
        "rss MiB"
    );
    for row in rows {
        let ratio = c7n.map_or("-".into(), |c| {
            format!("{:.2}x", row.output.elapsed.as_secs_f64() / c)
        });
        let (writes, redundant, wrong, touched) = match &row.check {
            Some(c) => (
                c.writes.to_string(),
                c.redundant_writes.to_string(),
                c.wrong.len().to_string(),
                c.touched.len().to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<10} {:<7} {:>4} {:>8} {:>7} {:>7} {:>7} {:>9} {:>6} {:>9} {:>6} {:>7} {:>8}",
            row.tool,
            row.step,
            row.output.code,
            secs(row.output.elapsed),
            ratio,
            row.total(),
            row.target.map_or("-".into(), |t| t.to_string()),
            row.throttled_total(),
            writes,
            redundant,
            wrong,
            touched,
            row.peak_rss_kib
                .map_or("-".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
        );
    }
    println!(
        "targets: apply <= {} calls, converged re-run <= {} calls and 0 writes",
        targets.0, targets.1
    );

    let ops: BTreeSet<&String> = rows.iter().flat_map(|r| r.counts.keys()).collect();
    print!("\n{:<40}", "requests per operation (throttled)");
    for row in rows {
        print!(" {:>17}", format!("{} {}", row.tool, row.step));
    }
    println!();
    for op in ops {
        print!("{op:<40}");
        for row in rows {
            let n = row.counts.get(op).copied().unwrap_or(0);
            let t = row.throttled.get(op).copied().unwrap_or(0);
            let cell = if t > 0 {
                format!("{n} ({t})")
            } else {
                n.to_string()
            };
            print!(" {cell:>17}");
        }
        println!();
    }
    print!("{:<40}", "ecr-fleet's own summary.api_calls");
    for row in rows {
        print!(
            " {:>17}",
            row.reported_calls.map_or("-".into(), |n| n.to_string())
        );
    }
    println!();
    for row in rows {
        if row.output.code != 0 && row.output.code != 3 {
            let tail: String = row
                .output
                .stderr
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n    ");
            println!(
                "note: {} {} exited {}; stderr ends:\n    {tail}",
                row.tool, row.step, row.output.code
            );
        }
        if let Some(check) = &row.check {
            for what in check.wrong.iter().take(3) {
                println!("note: {} {}: wrong policy on {what}", row.tool, row.step);
            }
            for what in check.touched.iter().take(3) {
                println!("note: {} {}: touched {what}", row.tool, row.step);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The benchmarks.

#[test]
#[ignore = "benchmark; run: bash scripts/test.sh --test e2e --run-ignored only fleet_benchmark --no-capture"]
fn fleet_benchmark() {
    let members = env_usize("ECR_FLEET_BENCH_ACCOUNTS", 20);
    let suspended = env_usize("ECR_FLEET_BENCH_SUSPENDED", 1);
    let repos = env_usize("ECR_FLEET_BENCH_REPOS", 50);
    let scenarios: Vec<Scenario> =
        env_list("ECR_FLEET_BENCH_SCENARIOS", "plain,latency,throttle,quotas")
            .iter()
            .map(|s| scenario(s))
            .collect();
    let tools = bench_tools("ECR_FLEET_BENCH_TOOLS", "ecr-fleet,c7n-org,boto3");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // moto's per-request routing costs about a third of its time; `stock` measures with it.
    let stock_moto = std::env::var("ECR_FLEET_BENCH_MOTO").is_ok_and(|v| v == "stock");
    let moto = if stock_moto {
        Moto::start()
    } else {
        Moto::start_with_memoized_routing()
    };
    let mut spec = FleetSpec::new(members, &FLEET_REGIONS, repos);
    spec.suspended_members = suspended;
    let fleet = runtime.block_on(aws::seed_fleet(&moto.url(), &spec));
    let expected = fleet.expected_outcomes();
    let targets = api_targets(&fleet);
    println!(
        "\nfleet benchmark: {members} member accounts (+{suspended} suspended) x {} regions x \
         {repos} repositories = {} active repositories; plan must find {expected:?}",
        FLEET_REGIONS.len(),
        fleet.active_repos().count()
    );
    println!(
        "moto ({}) start {} s; seeding {} s ({} requests, {:.0} per second)",
        if stock_moto {
            "stock server"
        } else {
            "routing memoized, scripts/bench/moto_server.py"
        },
        secs(moto.startup_time()),
        secs(fleet.elapsed),
        fleet.api_calls,
        fleet.api_calls as f64 / fleet.elapsed.as_secs_f64()
    );

    let python_tools = tools.iter().any(|t| t != "ecr-fleet");
    let ws = Workspace::new(&fleet, python_tools);
    // Tags never change here, so the GetResources emulation may keep its snapshots; taking
    // them all now keeps their upstream reads out of every measured run.
    let proxy = FaultProxy::start(
        &moto.url(),
        FaultRules {
            cache_tag_snapshots: true,
            ..FaultRules::default()
        },
    );
    let endpoint = proxy.url();
    let tagged = runtime.block_on(aws::get_resources_everywhere(&endpoint, &fleet));
    assert_eq!(
        tagged,
        fleet.active_repos().count(),
        "every seeded repository is tagged: GetResources must list each"
    );
    let moto_url = moto.url();
    let mut read_back = || runtime.block_on(aws::read_policies(&moto_url, &fleet));

    let mut problems = Vec::new();
    for scenario in &scenarios {
        eprintln!("scenario {}: {}", scenario.name, scenario.load.describe());
        proxy.set_rules(FaultRules {
            load: scenario.load.clone(),
            cache_tag_snapshots: true,
            ..FaultRules::default()
        });
        let mut rows = Vec::new();
        for tool in &tools {
            let tool_rows = tool_steps(&ws, tool, &endpoint, &proxy, &mut read_back, &fleet);
            // Back to the seeded fleet for the next tool.
            let now = read_back();
            runtime.block_on(aws::restore_seeded_policies(&moto.url(), &fleet, &now));
            rows.extend(tool_rows);
        }
        print_scenario(
            &format!("{} ({})", scenario.name, scenario.load.describe()),
            &rows,
            targets,
        );
        problems.extend(ecr_fleet_problems(&scenario.name, &rows, &expected));
    }
    assert!(
        problems.is_empty(),
        "ecr-fleet did not converge the fleet:\n{}",
        problems.join("\n")
    );
}

/// What is wrong with ecr-fleet's rows of a scenario: outcomes of the plan, policies
/// after apply, writes of the re-run. Correctness only, never time.
fn ecr_fleet_problems(
    scenario: &str,
    rows: &[Row],
    expected: &BTreeMap<String, u64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for row in rows.iter().filter(|r| r.tool == "ecr-fleet") {
        let at = format!("{scenario}: ecr-fleet {}", row.step);
        let want_code = if row.step == "plan" { 3 } else { 0 };
        if row.output.code != want_code {
            problems.push(format!(
                "{at}: exit {} (expected {want_code})",
                row.output.code
            ));
        }
        let check = row.check.as_ref().expect("ecr-fleet rows are checked");
        if row.step == "plan" {
            if let Ok(report) = serde_json::from_str::<Value>(&row.output.stdout) {
                for outcome in OUTCOMES {
                    let got = report["summary"]["outcomes"][outcome].as_u64().unwrap_or(0);
                    if got != expected[outcome] {
                        problems.push(format!(
                            "{at}: {got} {outcome} (expected {})",
                            expected[outcome]
                        ));
                    }
                }
            }
            if check.writes > 0 {
                problems.push(format!("{at}: {} writes", check.writes));
            }
            continue;
        }
        if !check.correct() {
            problems.push(format!(
                "{at}: {} wrong policies, {} touched",
                check.wrong.len(),
                check.touched.len()
            ));
        }
        if check.redundant_writes > 0 {
            problems.push(format!("{at}: {} redundant writes", check.redundant_writes));
        }
        if row.step == "re-run" && check.writes > 0 {
            problems.push(format!("{at}: {} writes", check.writes));
        }
    }
    problems
}

#[test]
#[ignore = "benchmark; run: bash scripts/test.sh --test e2e --run-ignored only scale_benchmark --no-capture"]
fn scale_benchmark() {
    let members = env_usize("ECR_FLEET_BENCH_SYNTH_ACCOUNTS", 20);
    let repos = env_usize("ECR_FLEET_BENCH_SYNTH_REPOS", 500);
    let scenarios: Vec<Scenario> = env_list("ECR_FLEET_BENCH_SYNTH_SCENARIOS", "plain")
        .iter()
        .map(|s| scenario(s))
        .collect();
    let mut spec = SynthSpec::new(members, &FLEET_REGIONS, repos);
    spec.suspended_members = 1;
    spec.seed = env_usize("ECR_FLEET_BENCH_SEED", 1) as u64;

    if cfg!(debug_assertions) {
        println!(
            "\nnote: a debug build; for the throughput and memory of a release, add --release \
             (bash scripts/test.sh --release --test e2e --run-ignored only scale_benchmark --no-capture)"
        );
    }
    let tools = bench_tools("ECR_FLEET_BENCH_SYNTH_TOOLS", "ecr-fleet");
    let mut problems = Vec::new();
    for scenario in &scenarios {
        spec.load = scenario.load.clone();
        eprintln!("scenario {}: {}", scenario.name, scenario.load.describe());
        let mut rows = Vec::new();
        let mut fleet = None;
        for tool in &tools {
            // A fresh fleet, from the same seed, per scenario and tool: one apply must not
            // converge the next.
            let synth = SynthFleet::start(&spec);
            if std::env::var_os("ECR_FLEET_BENCH_STDERR").is_some() {
                synth.record_answers();
            }
            let this = synth.fleet().clone();
            let counters = SynthCounters {
                synth: &synth,
                before: Default::default(),
            };
            let mut read_back = || synth.policies();
            let ws = Workspace::new(&this, tool != "ecr-fleet");
            if fleet.is_none() {
                println!(
                    "\nsynthetic fleet benchmark: {members} member accounts (+1 suspended) x {} \
                     regions x {repos} repositories = {} active repositories (generated in {} \
                     s); plan must find {:?}",
                    FLEET_REGIONS.len(),
                    this.active_repos().count(),
                    secs(this.elapsed),
                    this.expected_outcomes()
                );
            }
            let cpu_before = synth.cpu_time();
            let tool_rows = tool_steps(&ws, tool, &synth.url(), &counters, &mut read_back, &this);
            let served: u64 = tool_rows.iter().map(Row::total).sum();
            if let (Some(before), Some(after)) = (cpu_before, synth.cpu_time()) {
                let cpu = after.saturating_sub(before);
                println!(
                    "synthetic server, {tool}: {served} requests in {} s of its own CPU ({:.0} us \
                     per request)",
                    secs(cpu),
                    cpu.as_secs_f64() * 1e6 / served.max(1) as f64
                );
            }
            rows.extend(tool_rows);
            fleet.get_or_insert(this);
        }
        let Some(fleet) = fleet else { continue };
        let targets = api_targets(&fleet);
        let active = fleet.active_repos().count();
        print_scenario(
            &format!("synthetic {} ({})", scenario.name, scenario.load.describe()),
            &rows,
            targets,
        );
        for row in &rows {
            println!(
                "{} {}: {:.0} repositories per second, {:.0} requests per second, peak RSS {}",
                row.tool,
                row.step,
                active as f64 / row.output.elapsed.as_secs_f64(),
                row.total() as f64 / row.output.elapsed.as_secs_f64(),
                row.peak_rss_kib
                    .map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
            );
        }
        problems.extend(ecr_fleet_problems(
            &format!("synthetic {}", scenario.name),
            &rows,
            &fleet.expected_outcomes(),
        ));
    }
    assert!(
        problems.is_empty(),
        "ecr-fleet did not converge the fleet:\n{}",
        problems.join("\n")
    );
}
