//! The synthetic AWS: a loopback server that answers, for a generated organization of any
//! size, the calls ecr-fleet makes (see [`crate::ecr`] and [`crate::org`] for each call).
//!
//! The fleet is generated from a seed ([`crate::generate`]): accounts x regions x
//! repositories whose kinds ([`RepoKind`]) are drawn at random in the proportions of the
//! moto fleet. On request ([`SynthSpec`]), repositories hold images, Lambda functions run
//! some of them, and accounts hold repository creation templates. Load faults (latency, random throttling, token-bucket quotas) are
//! [`LoadRules`], the same as the test fault proxy's. Requests are counted per operation,
//! writes per repository, and a caller reads the final policies back. A repository can be
//! deleted, or marked to vanish right after it is first listed, to exercise `gone`.
//!
//! One tokio thread serves everything; state sits behind one mutex held only for the
//! microseconds of an answer, which keeps the server far cheaper than the client under test.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::faults::{LoadRules, LoadState};
use crate::fleet::{Fleet, RepoKey, RepoKind, MANAGEMENT_ACCOUNT_ID};
use crate::http::{HttpServer, Request, Response};
use crate::templates::CreationTemplates;
use crate::wire::{json_body, json_error, throttling_error, Operation, Scope};

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    /// Active member accounts.
    pub members: usize,
    /// Further members with repositories whose Organizations status is SUSPENDED.
    pub suspended_members: usize,
    pub regions: Vec<String>,
    pub repos_per_region: usize,
    /// Seed of the repository kinds (and of the images).
    pub seed: u64,
    pub load: LoadRules,
    /// Images in every repository (2 to 8 each, see [`crate::images`]); off, DescribeImages
    /// answers none (the scale benchmark's fleet).
    pub images: bool,
    /// In the first region of each active member, a Lambda function runs an old untagged
    /// image of one repository that needs a policy (with `images`).
    pub in_use: bool,
    /// Repository creation templates in two accounts of three: `ROOT` with
    /// [`crate::fleet::OUTDATED_POLICY`] and an unmanaged `legacy` template, or `ROOT`
    /// with the fixture template ([`crate::fleet::CI_BUILDS_POLICY`]).
    pub creation_templates: bool,
}

impl SynthSpec {
    pub fn new(members: usize, regions: &[&str], repos_per_region: usize) -> SynthSpec {
        SynthSpec {
            members,
            suspended_members: 0,
            regions: regions.iter().map(|r| r.to_string()).collect(),
            repos_per_region,
            seed: 1,
            load: LoadRules::default(),
            images: false,
            in_use: false,
            creation_templates: false,
        }
    }
}

/// One repository as the server holds it.
#[derive(Clone, Debug)]
pub struct SynthRepo {
    pub name: String,
    pub tags: Vec<(String, String)>,
    pub policy: Option<Arc<str>>,
    /// Successful PutLifecyclePolicy requests.
    pub puts: u32,
    pub deleted: bool,
    /// Deleted right after a listing page (DescribeRepositories or GetResources) shows it.
    pub vanish_after_listing: bool,
    pub kind: RepoKind,
    /// Images generated for it; see [`crate::images`].
    pub image_count: u8,
    /// Its oldest image is old, untagged, and run by a Lambda function.
    pub in_use: bool,
}

#[derive(Default)]
pub(crate) struct RegionState {
    /// Sorted by name.
    pub repos: Vec<SynthRepo>,
    pub index: HashMap<String, usize>,
    /// Lambda functions: (name, repository index) of the image each runs.
    pub functions: Vec<(String, usize)>,
}

pub(crate) struct AccountState {
    pub active: bool,
    pub regions: HashMap<String, RegionState>,
}

pub(crate) struct State {
    /// By account id, sorted.
    pub accounts: BTreeMap<String, AccountState>,
    pub seed: u64,
    /// Epoch seconds the image ages count from.
    pub epoch: i64,
    pub load_rules: LoadRules,
    pub load: LoadState,
    pub deny_assume_role: HashSet<String>,
    pub templates: CreationTemplates,
    pub counts: BTreeMap<String, u64>,
    pub failures: BTreeMap<String, u64>,
    /// Every answer since the counts were last reset, once [`SynthFleet::record_answers`].
    pub answers: Option<Vec<Answer>>,
    /// When the counts were last reset: what [`Answer::at`] counts from.
    pub since: std::time::Instant,
}

/// One answered request, for per-call timelines of a benchmark step.
#[derive(Clone, Debug)]
pub struct Answer {
    /// When it was answered, from the last [`SynthFleet::reset_counts`].
    pub at: std::time::Duration,
    /// `service:Operation`.
    pub operation: String,
    pub account: String,
    pub region: String,
    /// Refused by the load faults (random throttling or a quota).
    pub throttled: bool,
}

type Shared = Arc<Mutex<State>>;

/// A running synthetic fleet on 127.0.0.1; stops when dropped (or with [`SynthFleet::stop`]).
pub struct SynthFleet {
    shared: Shared,
    fleet: Fleet,
    server: HttpServer,
}

/// Name of the serving thread (at most 15 bytes, the kernel's limit).
const THREAD_NAME: &str = "synth-fleet";

/// The access key AssumeRole issues for `account`; [`account_of_key`] reads it back.
pub(crate) fn access_key_for(account: &str) -> String {
    format!("ASIA{account}SYNTH")
}

fn account_of_key(key: &str) -> Option<&str> {
    let account = key.strip_prefix("ASIA")?.strip_suffix("SYNTH")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

impl SynthFleet {
    /// Generates the fleet and starts serving it.
    pub fn start(spec: &SynthSpec) -> SynthFleet {
        let (state, fleet) = crate::generate::generate(spec);
        let shared: Shared = Arc::new(Mutex::new(state));
        let serving = shared.clone();
        let server = HttpServer::start(THREAD_NAME, move |request: Request| {
            let shared = serving.clone();
            async move { handle(&request, &shared).await }
        });
        SynthFleet {
            shared,
            fleet,
            server,
        }
    }

    /// CPU time the server's thread has used so far (Linux; `None` elsewhere), to show
    /// that the server is not what a benchmark measures.
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() != THREAD_NAME {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the parenthesized name: state is field 3, utime 14, stime 15.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            // USER_HZ is 100 on every Linux platform Rust targets.
            return Some(std::time::Duration::from_millis(ticks * 10));
        }
        None
    }

    /// Base URL, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Stops serving and waits for the server's thread to end.
    pub fn stop(self) {
        self.server.stop();
    }

    /// The generated fleet as seeded (kinds, names, policies), like moto's seeding returns.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    /// Requests seen per `service:Operation`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.state().counts.clone()
    }

    /// Requests seen for `service:Operation` (or a bare operation name, any service).
    pub fn count(&self, op: &str) -> u64 {
        self.state()
            .counts
            .iter()
            .filter(|(k, _)| crate::wire::op_matches(op, k))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests answered with HTTP 400 or more, per `service:Operation`.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        self.state().failures.clone()
    }

    /// Throttled answers per `service:Operation`.
    pub fn throttled(&self) -> BTreeMap<String, u64> {
        self.state().load.throttled().clone()
    }

    /// Every request seen.
    pub fn total(&self) -> u64 {
        self.state().counts.values().sum()
    }

    /// Forgets the counts (and refills the quota buckets); policies and puts per
    /// repository stay.
    pub fn reset_counts(&self) {
        let mut state = self.state();
        state.counts.clear();
        state.failures.clear();
        state.load.reset();
        if let Some(answers) = &mut state.answers {
            answers.clear();
        }
        state.since = std::time::Instant::now();
    }

    /// From now on, keep every answer (see [`SynthFleet::take_answers`]).
    pub fn record_answers(&self) {
        self.state().answers.get_or_insert_with(Vec::new);
    }

    /// The answers kept since the counts were last reset, in the order they were given.
    pub fn take_answers(&self) -> Vec<Answer> {
        self.state()
            .answers
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Replaces the load faults.
    pub fn set_load(&self, load: LoadRules) {
        self.state().load_rules = load;
    }

    /// AssumeRole into this account answers AccessDenied.
    pub fn deny_assume_role(&self, account: &str) {
        self.state().deny_assume_role.insert(account.to_string());
    }

    fn with_repo<T>(
        &self,
        account: &str,
        region: &str,
        name: &str,
        f: impl FnOnce(&mut SynthRepo) -> T,
    ) -> Option<T> {
        let mut state = self.state();
        let region = state.accounts.get_mut(account)?.regions.get_mut(region)?;
        let i = *region.index.get(name)?;
        Some(f(&mut region.repos[i]))
    }

    /// Deletes a repository now; panics when it does not exist.
    pub fn delete_repository(&self, account: &str, region: &str, name: &str) {
        self.with_repo(account, region, name, |r| r.deleted = true)
            .unwrap_or_else(|| panic!("no repository {account}/{region}/{name}"));
    }

    /// Deletes the repository right after the first listing page that shows it.
    pub fn vanish_after_listing(&self, account: &str, region: &str, name: &str) {
        self.with_repo(account, region, name, |r| r.vanish_after_listing = true)
            .unwrap_or_else(|| panic!("no repository {account}/{region}/{name}"));
    }

    /// A repository as held now (deleted ones too).
    pub fn repo(&self, account: &str, region: &str, name: &str) -> Option<SynthRepo> {
        self.with_repo(account, region, name, |r| r.clone())
    }

    /// The policy text of every repository that still exists.
    pub fn policies(&self) -> BTreeMap<RepoKey, Option<String>> {
        self.repos()
            .into_iter()
            .filter(|(_, r)| !r.deleted)
            .map(|(k, r)| (k, r.policy.as_deref().map(str::to_string)))
            .collect()
    }

    /// Successful PutLifecyclePolicy requests per repository (repositories never written
    /// are left out).
    pub fn writes(&self) -> BTreeMap<RepoKey, u32> {
        self.repos()
            .into_iter()
            .filter(|(_, r)| r.puts > 0)
            .map(|(k, r)| (k, r.puts))
            .collect()
    }

    fn repos(&self) -> Vec<(RepoKey, SynthRepo)> {
        let state = self.state();
        let mut all = Vec::new();
        for (account, a) in &state.accounts {
            for (region, r) in &a.regions {
                for repo in &r.repos {
                    all.push((
                        (account.clone(), region.clone(), repo.name.clone()),
                        repo.clone(),
                    ));
                }
            }
        }
        all
    }

    /// Runs `f` on the repository creation templates held now (locked meanwhile): to put
    /// one in place as is, other settings included, or to read one back.
    pub fn creation_templates<T>(&self, f: impl FnOnce(&mut CreationTemplates) -> T) -> T {
        f(&mut self.state().templates)
    }
}

pub(crate) fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The caller of a request: `(account, region)`. Keys AssumeRole issued name their
/// account; any other key is the management account.
fn caller(request: &Request) -> (String, String) {
    match Scope::of(request) {
        Some(scope) => (
            account_of_key(&scope.access_key)
                .unwrap_or(MANAGEMENT_ACCOUNT_ID)
                .to_string(),
            scope.region,
        ),
        None => (MANAGEMENT_ACCOUNT_ID.to_string(), "us-east-1".to_string()),
    }
}

async fn handle(request: &Request, shared: &Mutex<State>) -> Response {
    let op = Operation::of(request);
    let key = op.key();
    let (account, region) = caller(request);
    let latency = lock(shared).load_rules.latency;
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let mut guard = lock(shared);
    let state = &mut *guard;
    let admitted = state
        .load
        .admit(&state.load_rules, &key, Some(&account), &region);
    let response = if admitted {
        let body: Value = match op.service.as_str() {
            // Form (STS) and rest (Lambda) requests: their handlers read what they need.
            "sts" | "lambda" => Value::Null,
            _ => json_body(request),
        };
        answer(state, request, &op, &account, &region, &body)
    } else {
        throttling_error(&op)
    };
    *state.counts.entry(key.clone()).or_default() += 1;
    if let Some(answers) = &mut state.answers {
        answers.push(Answer {
            at: state.since.elapsed(),
            operation: key.clone(),
            account,
            region,
            throttled: !admitted,
        });
    }
    if response.status >= 400 {
        *state.failures.entry(key).or_default() += 1;
    }
    response
}

fn answer(
    state: &mut State,
    request: &Request,
    op: &Operation,
    account: &str,
    region: &str,
    body: &Value,
) -> Response {
    let answered = match op.service.as_str() {
        "sts" | "organizations" => crate::org::answer(state, request, op, account),
        "ecr" => state
            .templates
            .answer(&op.name, account, region, body)
            .or_else(|| crate::ecr::answer(state, op, account, region, body)),
        "tagging" if op.name == "GetResources" => {
            Some(crate::ecr::get_resources(state, account, region, body))
        }
        "lambda" => crate::images::lambda(state, request, op, account, region),
        _ => None,
    };
    answered.unwrap_or_else(|| {
        json_error(
            400,
            "UnknownOperationException",
            &format!("the synthetic fleet does not answer {}", op.key()),
        )
    })
}
