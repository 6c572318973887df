//! Fleet benchmark: plan and apply over a seeded organization, timed, with API call counts.
//!
//! Ignored by default. Run it with
//!
//! ```text
//! bash scripts/test.sh --test e2e --run-ignored only fleet_benchmark --no-capture
//! # or, with moto already installed in .venv:
//! cargo nextest run --test e2e --run-ignored only fleet_benchmark --no-capture
//! cargo test --test e2e fleet_benchmark -- --ignored --nocapture
//! ```
//!
//! Size: `ECR_FLEET_BENCH_ACCOUNTS` member accounts (default 20) plus
//! `ECR_FLEET_BENCH_SUSPENDED` closed ones (default 1), x 2 regions (us-east-1, eu-west-1)
//! x `ECR_FLEET_BENCH_REPOS` repositories (default 50), mixed as `support::aws::RepoKind`
//! documents. The tool talks to moto through a fault-free `FaultProxy`, whose request
//! counts are shown beside the report's own `summary.api_calls`.
//!
//! It checks correctness (exit codes, outcomes, nothing written by the second apply) and
//! prints timings, but never asserts on time: moto is the bottleneck and its speed varies
//! from run to run and machine to machine. Compare timings only within one run or on one
//! machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::aws::{self, FleetSpec, RepoKind, OUTCOMES};
use crate::support::cli::{ecr_fleet, CliOutput};
use crate::support::fixtures::{write_fleet_workspace, CI_BUILDS_POLICY, FLEET_REGIONS};
use crate::support::moto::Moto;
use crate::support::proxy::{FaultProxy, FaultRules};

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

/// One timed run of the tool.
struct Step {
    name: &'static str,
    output: CliOutput,
    report: Value,
    proxy_counts: BTreeMap<String, u64>,
}

impl Step {
    fn summary_u64(&self, path: &[&str]) -> Option<u64> {
        let mut value = &self.report["summary"];
        for key in path {
            value = value.get(key)?;
        }
        value.as_u64()
    }

    fn outcome(&self, outcome: &str) -> u64 {
        self.summary_u64(&["outcomes", outcome]).unwrap_or(0)
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        self.report["summary"]["api_calls"]
            .as_object()
            .map(|calls| {
                calls
                    .iter()
                    .map(|(op, n)| (op.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn applied(&self) -> usize {
        self.report["repositories"]
            .as_array()
            .map(|repos| {
                repos
                    .iter()
                    .filter(|r| r["applied"] == Value::Bool(true))
                    .count()
            })
            .unwrap_or(0)
    }
}

fn run_step(name: &'static str, args: &[&str], proxy: &FaultProxy, cwd: &std::path::Path) -> Step {
    proxy.reset_counts();
    let output = ecr_fleet(args, &proxy.url(), cwd);
    let report = output.json();
    Step {
        name,
        output,
        report,
        proxy_counts: proxy.counts(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn print_tables(steps: &[Step]) {
    println!();
    print!(
        "{:<12} {:>4} {:>8} {:>6}",
        "step", "exit", "wall s", "repos"
    );
    for outcome in OUTCOMES {
        print!(" {:>9}", outcome);
    }
    println!(" {:>8} {:>8}", "applied", "skipped");
    for step in steps {
        print!(
            "{:<12} {:>4} {:>8} {:>6}",
            step.name,
            step.output.code,
            secs(step.output.elapsed),
            step.summary_u64(&["repositories"])
                .map_or("-".into(), |n| n.to_string())
        );
        for outcome in OUTCOMES {
            print!(" {:>9}", step.outcome(outcome));
        }
        println!(
            " {:>8} {:>8}",
            step.applied(),
            step.summary_u64(&["skipped"])
                .map_or("-".into(), |n| n.to_string())
        );
    }

    println!("\nAPI calls: report summary.api_calls / requests seen by the proxy");
    let ops: BTreeSet<String> = steps
        .iter()
        .flat_map(|s| {
            s.api_calls()
                .into_keys()
                .chain(s.proxy_counts.keys().cloned())
        })
        .collect();
    print!("{:<40}", "operation");
    for step in steps {
        print!(" {:>15}", step.name);
    }
    println!();
    let cell = |tool: Option<u64>, proxy: Option<u64>| {
        format!(
            "{}/{}",
            tool.map_or("-".into(), |n| n.to_string()),
            proxy.map_or("-".into(), |n| n.to_string())
        )
    };
    for op in &ops {
        print!("{op:<40}");
        for step in steps {
            let tool = step.api_calls().get(op).copied();
            let proxy = step.proxy_counts.get(op).copied();
            print!(" {:>15}", cell(tool, proxy));
        }
        println!();
    }
    print!("{:<40}", "total");
    for step in steps {
        let tool: u64 = step.api_calls().values().sum();
        let proxy: u64 = step.proxy_counts.values().sum();
        print!(" {:>15}", cell(Some(tool), Some(proxy)));
    }
    println!();
    print!("{:<40}", "requests per second (proxy)");
    for step in steps {
        let proxy: u64 = step.proxy_counts.values().sum();
        print!(
            " {:>15.0}",
            proxy as f64 / step.output.elapsed.as_secs_f64()
        );
    }
    println!("\n");
}

#[test]
#[ignore = "benchmark; run: bash scripts/test.sh --test e2e --run-ignored only fleet_benchmark --no-capture"]
fn fleet_benchmark() {
    let members = env_usize("ECR_FLEET_BENCH_ACCOUNTS", 20);
    let suspended = env_usize("ECR_FLEET_BENCH_SUSPENDED", 1);
    let repos = env_usize("ECR_FLEET_BENCH_REPOS", 50);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let moto = Moto::start();
    let mut spec = FleetSpec::new(members, &FLEET_REGIONS, repos);
    spec.suspended_members = suspended;
    let fleet = runtime.block_on(aws::seed_fleet(&moto.url(), &spec));
    let expected = fleet.expected_outcomes();
    let active_repos = fleet.active_repos().count() as u64;
    println!(
        "\necr-fleet benchmark: {members} member accounts (+{suspended} suspended) x {} regions x {repos} \
         repositories = {active_repos} active repositories",
        FLEET_REGIONS.len()
    );
    println!(
        "moto start {} s; seeding {} s ({} requests, {:.0} per second)",
        secs(moto.startup_time()),
        secs(fleet.elapsed),
        fleet.api_calls,
        fleet.api_calls as f64 / fleet.elapsed.as_secs_f64()
    );

    let workdir = tempfile::tempdir().unwrap();
    let config = write_fleet_workspace(workdir.path(), &FLEET_REGIONS);
    let config = config.to_str().unwrap();
    let proxy = FaultProxy::start(&moto.url(), FaultRules::default());
    let plan = [
        "plan",
        "--config",
        config,
        "--output",
        "json",
        "--no-progress",
    ];
    let apply = [
        "apply",
        "--config",
        config,
        "--yes",
        "--output",
        "json",
        "--no-progress",
    ];

    let began = Instant::now();
    let mut steps = Vec::new();
    for (name, args) in [
        ("plan", &plan[..]),
        ("apply", &apply[..]),
        ("plan again", &plan[..]),
        ("apply again", &apply[..]),
    ] {
        let step = run_step(name, args, &proxy, workdir.path());
        eprintln!(
            "{name}: exit {} in {} s",
            step.output.code,
            secs(step.output.elapsed)
        );
        steps.push(step);
    }
    println!("four runs: {} s", secs(began.elapsed()));
    print_tables(&steps);

    // Correctness, never timing.
    let [plan1, apply1, plan2, apply2] = &steps[..] else {
        unreachable!()
    };
    let pending = expected["create"] + expected["update"];
    plan1.output.assert_code(3);
    for outcome in OUTCOMES {
        assert_eq!(
            plan1.outcome(outcome),
            expected[outcome],
            "first plan: {outcome}"
        );
    }
    assert_eq!(plan1.summary_u64(&["repositories"]), Some(active_repos));
    assert_eq!(
        plan1.summary_u64(&["inactive_accounts"]),
        Some(suspended as u64),
        "inactive_accounts"
    );
    assert_eq!(
        plan1.proxy_counts.get("ecr:PutLifecyclePolicy"),
        None,
        "plan wrote"
    );

    apply1.output.assert_code(0);
    assert_eq!(apply1.applied() as u64, pending, "first apply: applied");
    assert_eq!(
        apply1.proxy_counts.get("ecr:PutLifecyclePolicy").copied(),
        Some(pending),
        "first apply: PutLifecyclePolicy requests"
    );

    plan2.output.assert_code(0);
    assert_eq!(
        plan2.outcome("create") + plan2.outcome("update"),
        0,
        "second plan: pending"
    );
    assert_eq!(plan2.outcome("unchanged"), expected["unchanged"] + pending);
    assert_eq!(plan2.outcome("excluded"), expected["excluded"]);
    assert_eq!(plan2.outcome("unmatched"), expected["unmatched"]);

    apply2.output.assert_code(0);
    assert_eq!(apply2.applied(), 0, "second apply: applied");
    assert_eq!(
        apply2
            .proxy_counts
            .get("ecr:PutLifecyclePolicy")
            .copied()
            .unwrap_or(0),
        0,
        "second apply wrote"
    );

    // What moto holds now, for one account and region: the template where a change was due,
    // the seeded text everywhere else.
    let template: Value = serde_json::from_str(CI_BUILDS_POLICY).unwrap();
    let account = &fleet.members[0];
    runtime.block_on(async {
        let cfg = aws::member_config(&moto.url(), "us-east-1", account).await;
        for repo in fleet
            .active_repos()
            .filter(|r| &r.account_id == account && r.region == "us-east-1")
        {
            let now = aws::get_policy(&cfg, &repo.name).await;
            match repo.kind {
                RepoKind::Missing | RepoKind::Outdated => {
                    let now: Value = serde_json::from_str(&now.expect("no policy after apply"))
                        .expect("policy written is JSON");
                    assert_eq!(now, template, "{}", repo.name);
                }
                _ => assert_eq!(now, repo.policy, "{} was touched", repo.name),
            }
        }
    });
}
