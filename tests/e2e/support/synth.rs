//! A synthetic AWS for fleets larger than moto can serve: an in-process HTTP server that
//! answers, for a generated organization of any size, the calls ecr-fleet makes:
//!
//! - Organizations `ListAccounts` (pages of at most 20, `NextToken`);
//! - STS `GetCallerIdentity` and `AssumeRole` (XML; the issued access key names the member
//!   account, so later requests signed with it act as that member);
//! - ECR `DescribeRepositories` (pages of `maxResults`, default 100, at most 1000, with
//!   `nextToken`; or `repositoryNames`), `ListTagsForResource`, `GetLifecyclePolicy`
//!   (`LifecyclePolicyNotFoundException` when none), `PutLifecyclePolicy`,
//!   `DeleteLifecyclePolicy`, `DescribeImages` (no images), and
//!   `RepositoryNotFoundException` for unknown repositories;
//! - Resource Groups Tagging `GetResources` for `ecr:repository` (tagged repositories only,
//!   at most 100 per page, `PaginationToken`, `TagFilters`).
//!
//! The fleet is generated from a seed: accounts x regions x repositories whose kinds
//! ([`RepoKind`]) are drawn at random in the proportions of the moto fleet. Load faults
//! (latency, random throttling, token-bucket quotas) are [`LoadRules`], the same as the
//! fault proxy's. Requests are counted per operation as the proxy counts them, writes per
//! repository, and a test reads the final policies back. A repository can be deleted, or
//! marked to vanish right after it is first listed, to exercise the `gone` outcome.
//!
//! One tokio thread serves everything; state sits behind one mutex held only for the
//! microseconds of an answer, which keeps the server far cheaper than the client under test.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::aws::{repo_of_kind, Fleet, RepoKind, SeededRepo};
use super::faults::{LoadRules, LoadState};
use super::fixtures::MANAGEMENT_ACCOUNT_ID;
use super::proxy::{
    form_field, json_error, json_ok, query_error, request_id, throttling_error, xml_escape, Conn,
    Operation, RepoKey, Request, Response, Scope,
};
use super::tagging::matches_tag_filters;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    /// Active member accounts.
    pub members: usize,
    /// Further members with repositories whose Organizations status is SUSPENDED.
    pub suspended_members: usize,
    pub regions: Vec<String>,
    pub repos_per_region: usize,
    /// Seed of the repository kinds.
    pub seed: u64,
    pub load: LoadRules,
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
}

#[derive(Default)]
struct RegionState {
    /// Sorted by name.
    repos: Vec<SynthRepo>,
    index: HashMap<String, usize>,
}

struct AccountState {
    active: bool,
    regions: HashMap<String, RegionState>,
}

struct Shared {
    state: Mutex<State>,
}

struct State {
    /// By account id, sorted.
    accounts: BTreeMap<String, AccountState>,
    load_rules: LoadRules,
    load: LoadState,
    deny_assume_role: HashSet<String>,
    counts: BTreeMap<String, u64>,
    failures: BTreeMap<String, u64>,
}

/// A running synthetic fleet on 127.0.0.1; stops when dropped.
pub struct SynthFleet {
    addr: SocketAddr,
    shared: Arc<Shared>,
    fleet: Fleet,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Name of the serving thread (at most 15 bytes, the kernel's limit).
const THREAD_NAME: &str = "synth-fleet";

/// Id of the `k`-th generated member account.
pub fn member_id(k: usize) -> String {
    format!("{:012}", 200_000_000_000u64 + k as u64)
}

/// The access key AssumeRole issues for `account`; [`account_of_key`] reads it back.
fn access_key_for(account: &str) -> String {
    format!("ASIA{account}SYNTH")
}

fn account_of_key(key: &str) -> Option<&str> {
    let account = key.strip_prefix("ASIA")?.strip_suffix("SYNTH")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

impl SynthFleet {
    /// Generates the fleet and starts serving it.
    pub fn start(spec: &SynthSpec) -> SynthFleet {
        let began = Instant::now();
        let mut rng = fastrand::Rng::with_seed(spec.seed);
        let total = spec.members + spec.suspended_members;
        let mut accounts = BTreeMap::new();
        let mut seeded = Vec::new();
        let mut texts: HashMap<String, Arc<str>> = HashMap::new();
        for k in 0..total {
            let id = member_id(k);
            let active = k < spec.members;
            let mut regions = HashMap::new();
            for region in &spec.regions {
                let mut state = RegionState::default();
                for i in 0..spec.repos_per_region {
                    let kind = RepoKind::for_index(rng.usize(0..10));
                    let (mut repo, tags): (SeededRepo, _) = repo_of_kind(&id, region, i, kind);
                    repo.active = active;
                    // One allocation per distinct text keeps 100,000 repositories small.
                    let policy = repo.policy.as_ref().map(|text| {
                        texts
                            .entry(text.clone())
                            .or_insert_with(|| Arc::from(text.as_str()))
                            .clone()
                    });
                    state.repos.push(SynthRepo {
                        name: repo.name.clone(),
                        tags,
                        policy,
                        puts: 0,
                        deleted: false,
                        vanish_after_listing: false,
                    });
                    seeded.push(repo);
                }
                state.repos.sort_by(|a, b| a.name.cmp(&b.name));
                state.index = state
                    .repos
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.name.clone(), i))
                    .collect();
                regions.insert(region.clone(), state);
            }
            accounts.insert(id, AccountState { active, regions });
        }
        seeded.sort_by(|a, b| {
            (&a.account_id, &a.region, &a.name).cmp(&(&b.account_id, &b.region, &b.name))
        });
        let fleet = Fleet {
            members: (0..spec.members).map(member_id).collect(),
            suspended: (spec.members..total).map(member_id).collect(),
            regions: spec.regions.clone(),
            repos: seeded,
            api_calls: 0,
            elapsed: began.elapsed(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                accounts,
                load_rules: spec.load.clone(),
                load: LoadState::default(),
                deny_assume_role: HashSet::new(),
                counts: BTreeMap::new(),
                failures: BTreeMap::new(),
            }),
        });

        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("synth: cannot bind a loopback port");
        listener.set_nonblocking(true).expect("synth: nonblocking");
        let addr = listener.local_addr().expect("synth: local address");
        let (shutdown, stop) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("synth: tokio runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("synth: listener");
                    tokio::select! {
                        _ = accept_loop(listener, serving) => {}
                        _ = stop => {}
                    }
                });
            })
            .expect("synth: thread");
        SynthFleet {
            addr,
            shared,
            fleet,
            shutdown: Some(shutdown),
            thread: Some(thread),
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
        format!("http://{}", self.addr)
    }

    /// The generated fleet as seeded (kinds, names, policies), like moto's seeding returns.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
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
            .filter(|(k, _)| *k == op || k.split_once(':').is_some_and(|(_, o)| o == op))
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
            .filter(|(_, r)| !r.deleted)
            .map(|(k, r)| (k, r.policy.as_deref().map(str::to_string)))
            .collect()
    }

    /// Successful PutLifecyclePolicy requests per repository (repositories never written
    /// are left out).
    pub fn writes(&self) -> BTreeMap<RepoKey, u32> {
        self.repos()
            .filter(|(_, r)| r.puts > 0)
            .map(|(k, r)| (k, r.puts))
            .collect()
    }

    fn repos(&self) -> impl Iterator<Item = (RepoKey, SynthRepo)> {
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
        all.into_iter()
    }
}

impl Drop for SynthFleet {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, shared.clone()));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut client = Conn::new(stream);
    loop {
        let request = match client.read_request().await {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        let keep_alive = !request.header_has_token("connection", "close");
        let response = handle(&request, &shared).await;
        if client.write_response(&response, keep_alive).await.is_err() || !keep_alive {
            return;
        }
    }
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

async fn handle(request: &Request, shared: &Shared) -> Response {
    let op = Operation::of(request);
    let key = op.key();
    let (account, region) = caller(request);
    let latency = shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .load_rules
        .latency;
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let mut guard = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let state = &mut *guard;
    let response = if state
        .load
        .admit(&state.load_rules, &key, Some(&account), &region)
    {
        let body: Value = if op.service == "sts" {
            Value::Null
        } else {
            serde_json::from_slice(&request.body).unwrap_or_else(|_| json!({}))
        };
        answer(state, request, &op, &account, &region, &body)
    } else {
        throttling_error(&op)
    };
    *state.counts.entry(key.clone()).or_default() += 1;
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
    match (op.service.as_str(), op.name.as_str()) {
        ("sts", "GetCallerIdentity") => sts_ok(
            "GetCallerIdentity",
            &format!(
                "<Arn>arn:aws:sts::{account}:assumed-role/synth/session</Arn>\
                 <UserId>AROASYNTH:session</UserId><Account>{account}</Account>"
            ),
        ),
        ("sts", "AssumeRole") => assume_role(state, request),
        ("organizations", "ListAccounts") => list_accounts(state, body),
        ("ecr", "DescribeRepositories") => describe_repositories(state, account, region, body),
        ("ecr", "ListTagsForResource") => {
            let arn = body["resourceArn"].as_str().unwrap_or_default();
            let Some(name) = arn.split_once(":repository/").map(|(_, n)| n) else {
                return json_error(400, "InvalidParameterException", "Invalid resourceArn");
            };
            match find_repo(state, account, region, name) {
                Ok(repo) => json_ok(&json!({
                    "tags": repo.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()
                })),
                Err(response) => response,
            }
        }
        ("ecr", "GetLifecyclePolicy") => {
            let name = body["repositoryName"].as_str().unwrap_or_default();
            match find_repo(state, account, region, name) {
                Ok(repo) => match &repo.policy {
                    Some(text) => json_ok(&json!({
                        "registryId": account, "repositoryName": name,
                        "lifecyclePolicyText": &**text, "lastEvaluatedAt": 0.0,
                    })),
                    None => policy_not_found(account, name),
                },
                Err(response) => response,
            }
        }
        ("ecr", "PutLifecyclePolicy") => {
            let name = body["repositoryName"].as_str().unwrap_or_default();
            let Some(text) = body["lifecyclePolicyText"].as_str() else {
                return json_error(
                    400,
                    "InvalidParameterException",
                    "lifecyclePolicyText is required",
                );
            };
            if serde_json::from_str::<Value>(text).map_or(true, |v| !v["rules"].is_array()) {
                return json_error(
                    400,
                    "InvalidParameterException",
                    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure'",
                );
            }
            match find_repo(state, account, region, name) {
                Ok(repo) => {
                    repo.policy = Some(Arc::from(text));
                    repo.puts += 1;
                    json_ok(&json!({
                        "registryId": account, "repositoryName": name, "lifecyclePolicyText": text,
                    }))
                }
                Err(response) => response,
            }
        }
        ("ecr", "DeleteLifecyclePolicy") => {
            let name = body["repositoryName"].as_str().unwrap_or_default();
            match find_repo(state, account, region, name) {
                Ok(repo) => match repo.policy.take() {
                    Some(text) => json_ok(&json!({
                        "registryId": account, "repositoryName": name,
                        "lifecyclePolicyText": &*text, "lastEvaluatedAt": 0.0,
                    })),
                    None => policy_not_found(account, name),
                },
                Err(response) => response,
            }
        }
        ("ecr", "DescribeImages") => {
            let name = body["repositoryName"].as_str().unwrap_or_default();
            match find_repo(state, account, region, name) {
                Ok(_) => json_ok(&json!({"imageDetails": []})),
                Err(response) => response,
            }
        }
        ("tagging", "GetResources") => get_resources(state, account, region, body),
        _ => json_error(
            400,
            "UnknownOperationException",
            &format!("the synthetic fleet does not answer {}", op.key()),
        ),
    }
}

fn sts_ok(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        request_id()
    );
    Response {
        status: 200,
        reason: "OK".into(),
        headers: vec![
            ("content-type".into(), "text/xml".into()),
            ("x-amzn-requestid".into(), request_id()),
        ],
        body: body.into_bytes(),
    }
}

fn assume_role(state: &State, request: &Request) -> Response {
    let role_arn = form_field(&request.body, "RoleArn").unwrap_or_default();
    let session = form_field(&request.body, "RoleSessionName").unwrap_or_default();
    let target = role_arn.split(':').nth(4).unwrap_or_default().to_string();
    let known = target == MANAGEMENT_ACCOUNT_ID || state.accounts.contains_key(&target);
    if !known || state.deny_assume_role.contains(&target) {
        return query_error(
            403,
            "Sender",
            "AccessDenied",
            &format!(
                "User: arn:aws:iam::{MANAGEMENT_ACCOUNT_ID}:user/synth is not authorized to \
                 perform: sts:AssumeRole on resource: {role_arn}"
            ),
        );
    }
    let role = role_arn.rsplit('/').next().unwrap_or_default();
    let expires = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    sts_ok(
        "AssumeRole",
        &format!(
            "<Credentials><AccessKeyId>{}</AccessKeyId>\
             <SecretAccessKey>synthetic-secret</SecretAccessKey>\
             <SessionToken>synthetic-session-token</SessionToken>\
             <Expiration>{expires}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROASYNTH:{}</AssumedRoleId>\
             <Arn>arn:aws:sts::{target}:assumed-role/{}/{}</Arn></AssumedRoleUser>",
            access_key_for(&target),
            xml_escape(&session),
            xml_escape(role),
            xml_escape(&session)
        ),
    )
}

fn account_json(id: &str, active: bool) -> Value {
    let status = if active { "ACTIVE" } else { "SUSPENDED" };
    json!({
        "Id": id,
        "Arn": format!("arn:aws:organizations::{MANAGEMENT_ACCOUNT_ID}:account/o-synth/{id}"),
        "Email": format!("{id}@example.com"),
        "Name": format!("account-{id}"),
        "Status": status,
        "State": status,
        "JoinedMethod": "CREATED",
        "JoinedTimestamp": 1_700_000_000.0,
    })
}

/// Pages of offsets, as tokens of our own.
fn parse_offset(token: Option<&str>, prefix: &str) -> Result<usize, ()> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => token
            .strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .ok_or(()),
    }
}

fn list_accounts(state: &State, body: &Value) -> Response {
    let max = body["MaxResults"].as_u64().unwrap_or(20);
    if !(1..=20).contains(&max) {
        return json_error(400, "InvalidInputException", "MaxResults must be 1 to 20");
    }
    let Ok(offset) = parse_offset(body["NextToken"].as_str(), "synth-accounts-") else {
        return json_error(400, "InvalidInputException", "Invalid NextToken");
    };
    let all: Vec<Value> = std::iter::once(account_json(MANAGEMENT_ACCOUNT_ID, true))
        .chain(
            state
                .accounts
                .iter()
                .map(|(id, a)| account_json(id, a.active)),
        )
        .collect();
    let end = (offset + max as usize).min(all.len());
    let mut answer = json!({"Accounts": all[offset.min(end)..end]});
    if end < all.len() {
        answer["NextToken"] = json!(format!("synth-accounts-{end}"));
    }
    json_ok(&answer)
}

fn repository_json(account: &str, region: &str, name: &str) -> Value {
    json!({
        "repositoryArn": format!("arn:aws:ecr:{region}:{account}:repository/{name}"),
        "registryId": account,
        "repositoryName": name,
        "repositoryUri": format!("{account}.dkr.ecr.{region}.amazonaws.com/{name}"),
        "createdAt": 1_700_000_000.0,
        "imageTagMutability": "MUTABLE",
        "imageScanningConfiguration": {"scanOnPush": false},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    })
}

fn region_of<'a>(state: &'a mut State, account: &str, region: &str) -> Option<&'a mut RegionState> {
    state.accounts.get_mut(account)?.regions.get_mut(region)
}

fn repo_not_found(account: &str, name: &str) -> Response {
    json_error(
        400,
        "RepositoryNotFoundException",
        &format!(
            "The repository with name '{name}' does not exist in the registry with id '{account}'"
        ),
    )
}

fn policy_not_found(account: &str, name: &str) -> Response {
    json_error(
        400,
        "LifecyclePolicyNotFoundException",
        &format!(
            "Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{account}'"
        ),
    )
}

fn find_repo<'a>(
    state: &'a mut State,
    account: &str,
    region: &str,
    name: &str,
) -> Result<&'a mut SynthRepo, Response> {
    let found = region_of(state, account, region).and_then(|r| {
        let i = *r.index.get(name)?;
        Some(&mut r.repos[i])
    });
    match found {
        Some(repo) if !repo.deleted => Ok(repo),
        _ => Err(repo_not_found(account, name)),
    }
}

fn describe_repositories(state: &mut State, account: &str, region: &str, body: &Value) -> Response {
    if let Some(names) = body["repositoryNames"].as_array().filter(|n| !n.is_empty()) {
        let mut found = Vec::new();
        for name in names.iter().filter_map(Value::as_str) {
            if let Err(response) = find_repo(state, account, region, name) {
                return response;
            }
            found.push(repository_json(account, region, name));
        }
        return json_ok(&json!({"repositories": found}));
    }
    let max = body["maxResults"].as_u64().unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return json_error(
            400,
            "InvalidParameterException",
            "maxResults must be between 1 and 1000",
        );
    }
    let Ok(offset) = parse_offset(body["nextToken"].as_str(), "synth-repos-") else {
        return json_error(400, "InvalidParameterException", "Invalid NextToken");
    };
    let Some(repos) = region_of(state, account, region) else {
        // An account without repositories here (the management account, say).
        return json_ok(&json!({"repositories": []}));
    };
    let mut page = Vec::new();
    let mut i = offset;
    while i < repos.repos.len() && page.len() < max as usize {
        let repo = &mut repos.repos[i];
        if !repo.deleted {
            page.push(repository_json(account, region, &repo.name));
            if repo.vanish_after_listing {
                repo.deleted = true;
            }
        }
        i += 1;
    }
    let more = repos.repos[i.min(repos.repos.len())..]
        .iter()
        .any(|r| !r.deleted);
    let mut answer = json!({"repositories": page});
    if more {
        answer["nextToken"] = json!(format!("synth-repos-{i}"));
    }
    json_ok(&answer)
}

fn get_resources(state: &mut State, account: &str, region: &str, body: &Value) -> Response {
    let types: Vec<&str> = body["ResourceTypeFilters"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if types.iter().any(|t| *t != "ecr" && *t != "ecr:repository") || types.is_empty() {
        return json_error(
            400,
            "InvalidParameterException",
            "the synthetic fleet answers GetResources for ResourceTypeFilters [\"ecr:repository\"] only",
        );
    }
    let per_page = match body["ResourcesPerPage"].as_u64() {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(_) => {
            return json_error(
                400,
                "InvalidParameterException",
                "ResourcesPerPage must be between 1 and 100",
            )
        }
    };
    let Ok(offset) = parse_offset(body["PaginationToken"].as_str(), "synth-tags-") else {
        return json_error(
            400,
            "PaginationTokenExpiredException",
            "Invalid PaginationToken",
        );
    };
    let Some(repos) = region_of(state, account, region) else {
        return json_ok(&json!({"PaginationToken": "", "ResourceTagMappingList": []}));
    };
    // Offsets count positions in the sorted repository list, so deletions between pages
    // do not shift later pages.
    let mut page = Vec::new();
    let mut i = offset;
    while i < repos.repos.len() && page.len() < per_page {
        let repo = &mut repos.repos[i];
        i += 1;
        if repo.deleted || repo.tags.is_empty() {
            continue;
        }
        let entry = json!({
            "ResourceARN": format!("arn:aws:ecr:{region}:{account}:repository/{}", repo.name),
            "Tags": repo.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
        });
        if matches_tag_filters(&entry, body.get("TagFilters")) {
            page.push(entry);
            if repo.vanish_after_listing {
                repo.deleted = true;
            }
        }
    }
    let more = repos.repos[i.min(repos.repos.len())..]
        .iter()
        .any(|r| !r.deleted && !r.tags.is_empty());
    let token = if more {
        format!("synth-tags-{i}")
    } else {
        String::new()
    };
    json_ok(&json!({"PaginationToken": token, "ResourceTagMappingList": page}))
}
