//! An HTTP/1.1 forwarding proxy that sits between a client (ecr-fleet, or the SDK in a
//! test) and moto, and produces what moto cannot: denied AssumeRole calls, paged
//! DescribeRepositories answers, throttling and permanently failing writes. It also counts
//! every request per operation, independently of the tool's own counters.
//!
//! Point the client's endpoint (`AWS_ENDPOINT_URL`) at [`FaultProxy::url`]. Operations are
//! named like the report's `api_calls`: `service:Operation` (for example
//! `ecr:PutLifecyclePolicy`, `sts:AssumeRole`, `organizations:ListAccounts`), where the
//! service is the signing name of the request's SigV4 credential scope and the operation
//! comes from the `X-Amz-Target` header (awsJson services: ECR, Organizations) or the
//! `Action` form field (awsQuery services: STS). Rules and [`FaultProxy::count`] accept
//! either that full name or just the operation (`PutLifecyclePolicy`).
//!
//! It also answers what moto lacks: `tagging:GetResources` for ECR repositories (see
//! [`super::tagging`]), and load faults shared with the synthetic fleet server (see
//! [`super::faults`]): latency, random throttling and token-bucket quotas per account and
//! region. The account of a request comes from its access key: keys issued by AssumeRole
//! are learnt from the answers passing through, others are asked of upstream STS
//! GetCallerIdentity once. Requests the proxy makes upstream on its own are not counted.
//!
//! Requests go upstream one per connection with `Connection: close`, and the answer is
//! read to its end, so the proxy never has to track upstream keep-alive; towards the client
//! connections are kept alive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

// APIs and fields moto lacks (ListRegions, Inspector coverage, Lambda digests, image times).
#[path = "emulate.rs"]
pub mod emulate;
use super::faults::{LoadRules, LoadState};
use super::tagging;

/// Faults to inject. The default injects nothing: a plain counting proxy.
#[derive(Clone, Debug, Default)]
pub struct FaultRules {
    /// Account ids for which `sts:AssumeRole` answers HTTP 403 `AccessDenied` (STS XML),
    /// whatever role in that account is asked for.
    pub deny_assume_role: HashSet<String>,
    /// Page size for `ecr:DescribeRepositories` (moto always answers with one page). Each
    /// answer holds at most `min(page_size, maxResults)` repositories and a `nextToken`
    /// while more remain; the token is the proxy's own.
    pub page_size: Option<usize>,
    /// The first N requests of an operation answer a throttling error: HTTP 400
    /// `ThrottlingException` (ECR), `TooManyRequestsException` (Organizations) or
    /// `Throttling` (STS). Keys: `PutLifecyclePolicy` or `ecr:PutLifecyclePolicy`.
    pub throttle: HashMap<String, u32>,
    /// `ecr:PutLifecyclePolicy` for these repository names answers HTTP 500
    /// `ServerException`, every time.
    pub fail_put_for_repos: HashSet<String>,
    /// From the second `ecr:ListTagsForResource` of a repository on, answer as if this tag
    /// (key, value) had been added to it: a tag set between a plan and its apply.
    pub tag_after_first_read: HashMap<String, (String, String)>,
    /// From the second `ecr:GetLifecyclePolicy` of a repository on, answer with this policy
    /// text: a policy changed by someone else between a plan and its apply.
    pub policy_after_first_read: HashMap<String, String>,
    /// Hold every request of an operation this long before answering (a slow service), e.g.
    /// to interrupt a run while it is writing.
    pub delay: HashMap<String, std::time::Duration>,
    /// APIs and fields moto lacks, answered or rewritten here (see [`emulate`]).
    pub emulation: emulate::Emulation,
    /// Latency, random throttling and quotas (answered as the service's throttling error).
    pub load: LoadRules,
    /// Account ids whose `tagging:GetResources` answers HTTP 400 `AccessDeniedException`.
    pub deny_get_resources: HashSet<String>,
    /// Keep the tag snapshot of each account-region that the `GetResources` emulation
    /// takes, and answer later requests from it: only for runs whose tags never change
    /// (a benchmark), where the snapshot's upstream reads would otherwise load moto with
    /// the per-repository reads that bulk tag reads save.
    pub cache_tag_snapshots: bool,
}

impl FaultRules {
    /// Every `ecr:PutLifecyclePolicy` held `delay` before it is forwarded: a run to interrupt
    /// while its writes are under way.
    pub fn slow_puts(delay: std::time::Duration) -> FaultRules {
        FaultRules {
            delay: [("ecr:PutLifecyclePolicy".to_string(), delay)].into(),
            ..FaultRules::default()
        }
    }
}

/// A running proxy on 127.0.0.1; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    state: Mutex<State>,
    tagging: tagging::Emulation,
}

/// A repository, as `(account id, region, repository name)`.
pub type RepoKey = (String, String, String);

#[derive(Default)]
struct State {
    rules: FaultRules,
    /// Requests seen per `service:Operation`.
    counts: BTreeMap<String, u64>,
    /// Requests per `service:Operation` answered with HTTP 400 or more (injected or not).
    failures: BTreeMap<String, u64>,
    /// `ecr:ListTagsForResource` requests per repository name, for `tag_after_first_read`.
    tag_reads: HashMap<String, u32>,
    /// `ecr:GetLifecyclePolicy` requests per repository name, for `policy_after_first_read`.
    policy_reads: HashMap<String, u32>,
    /// What the emulation learned from traffic (the accounts behind access keys).
    learned: emulate::Learned,
    /// Generator, buckets and throttle counts of `rules.load` (and of `rules.throttle`).
    load: LoadState,
    /// Account id per access key.
    accounts: HashMap<String, String>,
    /// Successful `ecr:PutLifecyclePolicy` requests per repository.
    writes: BTreeMap<RepoKey, u32>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (for example [`super::moto::Moto::url`]).
    /// It runs on a tokio runtime of its own thread, so it serves sync and async tests alike.
    pub fn start(upstream: &str, rules: FaultRules) -> FaultProxy {
        let upstream = upstream
            .trim_end_matches('/')
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("the proxy forwards to http:// URLs only, not {upstream}"))
            .to_string();
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("proxy: cannot bind a loopback port");
        listener.set_nonblocking(true).expect("proxy: nonblocking");
        let addr = listener.local_addr().expect("proxy: local address");
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                rules,
                ..State::default()
            }),
            tagging: tagging::Emulation::default(),
        });
        let (shutdown, stop) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy: tokio runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("proxy: listener");
                    tokio::select! {
                        _ = accept_loop(listener, serving) => {}
                        _ = stop => {}
                    }
                });
                // Dropping the runtime cancels every connection still open.
            })
            .expect("proxy: thread");
        FaultProxy {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Base URL of the proxy, e.g. `http://127.0.0.1:40001`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen for an operation: `ecr:PutLifecyclePolicy` counts that operation of
    /// that service; a bare `PutLifecyclePolicy` sums every service's operation of that name.
    pub fn count(&self, op: &str) -> u64 {
        sum_matching(&self.state().counts, op)
    }

    /// Requests for an operation that were answered with HTTP 400 or more.
    pub fn failures(&self, op: &str) -> u64 {
        sum_matching(&self.state().failures, op)
    }

    /// Requests seen per `service:Operation`, sorted by name.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.state().counts.clone()
    }

    /// Every request seen, all operations together.
    pub fn total(&self) -> u64 {
        self.state().counts.values().sum()
    }

    /// Throttled answers the proxy gave, per `service:Operation` (injected ones only).
    pub fn throttled(&self) -> BTreeMap<String, u64> {
        self.state().load.throttled().clone()
    }

    /// Successful `ecr:PutLifecyclePolicy` requests per repository.
    pub fn writes(&self) -> BTreeMap<RepoKey, u32> {
        self.state().writes.clone()
    }

    /// Starts counting from zero again (the rules and remaining throttles are kept; the
    /// quota buckets are refilled).
    pub fn reset_counts(&self) {
        let mut state = self.state();
        state.counts.clear();
        state.failures.clear();
        state.writes.clear();
        state.load.reset();
    }

    /// Replaces the rules, for a test that changes faults between two runs.
    pub fn set_rules(&self, rules: FaultRules) {
        self.state().rules = rules;
    }

    /// Changes the rules in place.
    pub fn update_rules(&self, change: impl FnOnce(&mut FaultRules)) {
        change(&mut self.state().rules);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn sum_matching(map: &BTreeMap<String, u64>, op: &str) -> u64 {
    map.iter()
        .filter(|(key, _)| op_matches(op, key))
        .map(|(_, n)| n)
        .sum()
}

/// Whether a rule or query name (`Op` or `service:Op`) designates the operation `key`
/// (always `service:Op`).
fn op_matches(name: &str, key: &str) -> bool {
    name == key || key.split_once(':').is_some_and(|(_, op)| op == name)
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

/// Serves the requests of one client connection, one after the other (keep-alive).
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut client = Conn::new(stream);
    loop {
        let request = match client.read_request().await {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        let keep_alive = !request.header_has_token("connection", "close");
        let response = handle(request, &shared).await;
        if client.write_response(&response, keep_alive).await.is_err() || !keep_alive {
            return;
        }
    }
}

/// Decides, forwards when needed, and counts one request.
async fn handle(request: Request, shared: &Shared) -> Response {
    let op = Operation::of(&request);
    let key = op.key();
    let (delay, load, needs_account, cache_tags) = {
        let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        let delay = state
            .rules
            .delay
            .iter()
            .find(|(name, _)| op_matches(name, &key))
            .map(|(_, d)| *d);
        let tagging = key == "tagging:GetResources";
        let needs_account = state.rules.load.needs_account(&key)
            || (tagging && !state.rules.deny_get_resources.is_empty())
            || (tagging && state.rules.cache_tag_snapshots);
        let cache = tagging && state.rules.cache_tag_snapshots;
        (delay, state.rules.load.clone(), needs_account, cache)
    };
    if let Some(latency) = load.latency {
        tokio::time::sleep(latency).await;
    }
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let seen = emulate::Seen::of(&request, &op);
    let scope = Scope::of(&request);
    let account = match (&scope, needs_account) {
        (Some(scope), true) => caller_account(&request, scope, shared).await,
        _ => None,
    };
    let region = scope.as_ref().map_or("", |s| s.region.as_str());
    let admitted = shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .load
        .admit(&load, &key, account.as_deref(), region);
    let mut response = if !admitted {
        throttling_error(&op)
    } else {
        match decide(&request, &op, account.as_deref(), shared) {
            Decision::Answer(response) => response,
            Decision::Forward => forward(&request, &shared.upstream).await,
            Decision::Page { offset, limit } => {
                page_repositories(request.clone(), &shared.upstream, offset, limit).await
            }
            Decision::Tagging => {
                let cache_key = account
                    .clone()
                    .filter(|_| cache_tags)
                    .map(|account| (account, region.to_string()));
                tagging::get_resources(&request, &shared.upstream, &shared.tagging, cache_key).await
            }
        }
    };
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let emulation_state = &mut *state;
    emulate::after(
        &seen,
        &mut response,
        &emulation_state.rules.emulation,
        &mut emulation_state.learned,
    );
    *state.counts.entry(key.clone()).or_default() += 1;
    if response.status >= 400 {
        *state.failures.entry(key.clone()).or_default() += 1;
    } else if response.status == 200 {
        observe_success(&mut state, &request, &key, scope.as_ref(), &response);
    }
    response
}

/// Learns from a successful answer: the account of credentials AssumeRole issued, and the
/// repositories written.
fn observe_success(
    state: &mut State,
    request: &Request,
    key: &str,
    scope: Option<&Scope>,
    response: &Response,
) {
    match key {
        "sts:AssumeRole" => {
            let role_arn = form_field(&request.body, "RoleArn").unwrap_or_default();
            let account = role_arn.split(':').nth(4).unwrap_or_default().to_string();
            let body = String::from_utf8_lossy(&response.body);
            if let Some(access_key) = xml_text(&body, "AccessKeyId") {
                if !account.is_empty() {
                    state.accounts.insert(access_key, account);
                }
            }
        }
        "ecr:PutLifecyclePolicy" => {
            let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            let account = answer["registryId"]
                .as_str()
                .map(str::to_string)
                .or_else(|| scope.and_then(|s| state.accounts.get(&s.access_key).cloned()))
                .unwrap_or_else(|| "?".into());
            let repo = answer["repositoryName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let region = scope.map_or_else(String::new, |s| s.region.clone());
            *state.writes.entry((account, region, repo)).or_default() += 1;
        }
        _ => {}
    }
}

/// The text of the first `<tag>...</tag>` element of an XML document.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].trim().to_string())
}

/// The account of the request's credentials: learnt from AssumeRole answers, else asked of
/// upstream STS (GetCallerIdentity, once per access key, not counted).
async fn caller_account(request: &Request, scope: &Scope, shared: &Shared) -> Option<String> {
    if let Some(account) = shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .accounts
        .get(&scope.access_key)
    {
        return Some(account.clone());
    }
    let ask = request.derived(
        "sts",
        None,
        "application/x-www-form-urlencoded; charset=utf-8",
        b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
    );
    let answer = forward(&ask, &shared.upstream).await;
    if answer.status != 200 {
        return None;
    }
    let account = xml_text(&String::from_utf8_lossy(&answer.body), "Account")?;
    shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .accounts
        .insert(scope.access_key.clone(), account.clone());
    Some(account)
}

/// The SigV4 credential scope of a request: `KEY/date/region/service/aws4_request`.
pub struct Scope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    pub fn of(request: &Request) -> Option<Scope> {
        let credential = request
            .header("authorization")?
            .split("Credential=")
            .nth(1)?
            .split([',', ' '])
            .next()?;
        let mut parts = credential.split('/');
        let access_key = parts.next()?.to_string();
        let _date = parts.next()?;
        let region = parts.next()?.to_string();
        let service = parts.next()?.to_string();
        Some(Scope {
            access_key,
            region,
            service,
        })
    }
}

enum Decision {
    Answer(Response),
    Forward,
    Page {
        offset: usize,
        limit: usize,
    },
    /// `tagging:GetResources` for ECR repositories, emulated.
    Tagging,
}

fn decide(request: &Request, op: &Operation, account: Option<&str>, shared: &Shared) -> Decision {
    let mut guard = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let state = &mut *guard;
    let rules = &mut state.rules;
    let key = op.key();
    if let Some(refused) = emulate::denied(request, op, &rules.emulation, &state.learned) {
        return Decision::Answer(refused);
    }

    // Throttling comes first, as a rate limiter in front of the service would.
    if let Some(remaining) = rules
        .throttle
        .iter_mut()
        .find(|(name, left)| **left > 0 && op_matches(name, &key))
        .map(|(_, left)| left)
    {
        *remaining -= 1;
        state.load.count_throttled(&key);
        return Decision::Answer(throttling_error(op));
    }

    match (op.service.as_str(), op.name.as_str()) {
        ("tagging", "GetResources") => {
            if account.is_some_and(|a| rules.deny_get_resources.contains(a)) {
                return Decision::Answer(json_error(
                    400,
                    "AccessDeniedException",
                    &format!(
                        "User: arn:aws:sts::{}:assumed-role/spoke/session is not authorized to \
                         perform: tag:GetResources (injected by the test proxy)",
                        account.unwrap_or_default()
                    ),
                ));
            }
            if tagging::wants_ecr_repositories(&request.body) {
                return Decision::Tagging;
            }
            Decision::Forward
        }
        ("sts", "AssumeRole") => {
            let role_arn = form_field(&request.body, "RoleArn").unwrap_or_default();
            let account = role_arn.split(':').nth(4).unwrap_or_default();
            if rules.deny_assume_role.contains(account) {
                return Decision::Answer(assume_role_denied(&role_arn));
            }
            Decision::Forward
        }
        ("ecr", "PutLifecyclePolicy") if !rules.fail_put_for_repos.is_empty() => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            match body.get("repositoryName").and_then(Value::as_str) {
                Some(repo) if rules.fail_put_for_repos.contains(repo) => {
                    Decision::Answer(json_error(
                        500,
                        "ServerException",
                        &format!("Internal failure while writing the lifecycle policy of {repo} (injected by the test proxy)"),
                    ))
                }
                _ => Decision::Forward,
            }
        }
        ("ecr", "ListTagsForResource") if !rules.tag_after_first_read.is_empty() => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let arn = body
                .get("resourceArn")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let repo = arn.split_once(":repository/").map(|(_, r)| r.to_string());
            let Some((repo, (key, value))) = repo.and_then(|r| {
                let tag = rules.tag_after_first_read.get(&r)?.clone();
                Some((r, tag))
            }) else {
                return Decision::Forward;
            };
            let reads = state.tag_reads.entry(repo).or_default();
            *reads += 1;
            if *reads < 2 {
                return Decision::Forward;
            }
            Decision::Answer(json_ok(&json!({"tags": [{"Key": key, "Value": value}]})))
        }
        ("ecr", "GetLifecyclePolicy") if !rules.policy_after_first_read.is_empty() => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let repo = body
                .get("repositoryName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(text) = rules.policy_after_first_read.get(&repo).cloned() else {
                return Decision::Forward;
            };
            let reads = state.policy_reads.entry(repo.clone()).or_default();
            *reads += 1;
            if *reads < 2 {
                return Decision::Forward;
            }
            Decision::Answer(json_ok(&json!({
                "registryId": "123456789012",
                "repositoryName": repo,
                "lifecyclePolicyText": text,
            })))
        }
        ("ecr", "DescribeRepositories") => {
            let Some(page_size) = rules.page_size else {
                return Decision::Forward;
            };
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let named = body
                .get("repositoryNames")
                .and_then(Value::as_array)
                .is_some_and(|names| !names.is_empty());
            if named {
                // Asking for named repositories is not paged (ECR rejects maxResults then).
                return Decision::Forward;
            }
            let offset = match body.get("nextToken").and_then(Value::as_str) {
                None => 0,
                Some(token) => match decode_token(token) {
                    Some(offset) => offset,
                    None => {
                        return Decision::Answer(json_error(
                            400,
                            "InvalidParameterException",
                            "Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'",
                        ))
                    }
                },
            };
            let max_results = body.get("maxResults").and_then(Value::as_u64);
            let limit = max_results
                .map_or(page_size, |max| page_size.min(max as usize))
                .max(1);
            Decision::Page { offset, limit }
        }
        _ => match emulate::answer(request, op, &state.rules.emulation, &state.learned) {
            Some(response) => Decision::Answer(response),
            None => Decision::Forward,
        },
    }
}

const TOKEN_PREFIX: &str = "fault-proxy-page-";

fn encode_token(offset: usize) -> String {
    format!("{TOKEN_PREFIX}{offset}")
}

fn decode_token(token: &str) -> Option<usize> {
    token.strip_prefix(TOKEN_PREFIX)?.parse().ok()
}

/// Asks upstream for every repository, then answers one page of them.
async fn page_repositories(
    mut request: Request,
    upstream: &str,
    offset: usize,
    limit: usize,
) -> Response {
    let mut body: Value = serde_json::from_slice(&request.body).unwrap_or_else(|_| json!({}));
    if let Some(fields) = body.as_object_mut() {
        fields.remove("maxResults");
        fields.remove("nextToken");
    }
    request.body = serde_json::to_vec(&body).expect("serialize request");
    let mut response = forward(&request, upstream).await;
    if response.status != 200 {
        return response;
    }
    let Ok(mut answer) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    let all = match answer.get_mut("repositories").map(Value::take) {
        Some(Value::Array(all)) => all,
        _ => Vec::new(),
    };
    let end = offset.saturating_add(limit).min(all.len());
    let page: Vec<Value> = all.get(offset.min(end)..end).unwrap_or_default().to_vec();
    let fields = answer
        .as_object_mut()
        .expect("DescribeRepositories answers an object");
    fields.insert("repositories".into(), Value::Array(page));
    fields.remove("nextToken");
    if end < all.len() {
        fields.insert("nextToken".into(), Value::String(encode_token(end)));
    }
    response.body = serde_json::to_vec(&answer).expect("serialize response");
    response
}

/// Sends the request upstream on a fresh connection and reads the whole answer.
pub async fn forward(request: &Request, upstream: &str) -> Response {
    match try_forward(request, upstream).await {
        Ok(response) => response,
        Err(e) => Response {
            status: 502,
            reason: "Bad Gateway".into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("fault proxy: upstream {upstream} failed: {e}").into_bytes(),
        },
    }
}

async fn try_forward(request: &Request, upstream: &str) -> io::Result<Response> {
    let stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {upstream}\r\n",
        request.method, request.target
    );
    for (name, value) in &request.headers {
        if !is_hop_by_hop(name)
            && !name.eq_ignore_ascii_case("host")
            && !name.eq_ignore_ascii_case("expect")
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        request.body.len()
    ));
    conn.stream.write_all(head.as_bytes()).await?;
    conn.stream.write_all(&request.body).await?;
    conn.stream.flush().await?;
    conn.read_response(request.method.eq_ignore_ascii_case("HEAD"))
        .await
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

// ---------------------------------------------------------------------------------------
// Injected answers, shaped like the real services' errors so the SDK parses them.

pub fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A successful awsJson 1.1 answer.
pub fn json_ok(body: &Value) -> Response {
    Response {
        status: 200,
        reason: reason_phrase(200).into(),
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amzn-requestid".into(), request_id()),
        ],
        body: serde_json::to_vec(body).expect("json"),
    }
}

pub fn json_error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        reason: reason_phrase(status).into(),
        headers: vec![
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amzn-requestid".into(), request_id()),
            ("x-amzn-errortype".into(), code.into()),
        ],
        body: serde_json::to_vec(&json!({"__type": code, "message": message})).expect("json"),
    }
}

pub fn query_error(status: u16, kind: &str, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
         <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
         <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message),
        request_id()
    );
    Response {
        status,
        reason: reason_phrase(status).into(),
        headers: vec![
            ("content-type".into(), "text/xml".into()),
            ("x-amzn-requestid".into(), request_id()),
        ],
        body: body.into_bytes(),
    }
}

pub fn throttling_error(op: &Operation) -> Response {
    match op.service.as_str() {
        "sts" => query_error(400, "Sender", "Throttling", "Rate exceeded"),
        "organizations" => json_error(400, "TooManyRequestsException", "Rate exceeded"),
        // The tagging API's own name for it.
        "tagging" => json_error(400, "ThrottledException", "Rate exceeded"),
        _ => json_error(400, "ThrottlingException", "Rate exceeded"),
    }
}

fn assume_role_denied(role_arn: &str) -> Response {
    query_error(
        403,
        "Sender",
        "AccessDenied",
        &format!(
            "User: arn:aws:iam::123456789012:user/testing is not authorized to perform: \
             sts:AssumeRole on resource: {role_arn}"
        ),
    )
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Unknown",
    }
}

pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------------------
// Operation names.

pub struct Operation {
    pub service: String,
    pub name: String,
}

impl Operation {
    pub fn of(request: &Request) -> Operation {
        let target = request.header("x-amz-target");
        let service = request
            .header("authorization")
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|scope| scope.split([',', ' ']).next())
            .and_then(|scope| scope.split('/').nth(3))
            .map(str::to_string)
            .or_else(|| {
                let target = target?;
                Some(
                    if target.starts_with("AmazonEC2ContainerRegistry") {
                        "ecr"
                    } else if target.starts_with("AWSOrganizations") {
                        "organizations"
                    } else {
                        "unknown"
                    }
                    .to_string(),
                )
            })
            .unwrap_or_else(|| "unknown".into());
        let name = match target {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => form_field(&request.body, "Action")
                .or_else(|| {
                    let query = request.target.split_once('?')?.1;
                    form_field(query.as_bytes(), "Action")
                })
                .or_else(|| {
                    emulate::rest_operation(&service, &request.method, request.path())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| format!("{} {}", request.method, request.path())),
        };
        Operation { service, name }
    }

    pub fn key(&self) -> String {
        format!("{}:{}", self.service, self.name)
    }
}

/// The decoded value of a field of an `application/x-www-form-urlencoded` text.
pub fn form_field(body: &[u8], field: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(name) == field).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------
// Minimal HTTP/1.1 message handling.

#[derive(Clone)]
pub struct Request {
    pub method: String,
    /// Request target as sent: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// A request of the same caller to another service (moto reads the caller and region
    /// from the credential scope and does not check signatures): the Authorization
    /// header's service replaced, the given target, content type and body.
    pub fn derived(
        &self,
        service: &str,
        target: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Request {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| {
                ![
                    "x-amz-target",
                    "content-type",
                    "content-length",
                    "content-encoding",
                ]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            })
            .map(|(name, value)| {
                if name.eq_ignore_ascii_case("authorization") {
                    let mut parts: Vec<String> = value.split('/').map(str::to_string).collect();
                    // Credential=KEY/date/region/service/aws4_request
                    if parts.len() > 3 {
                        parts[3] = service.to_string();
                    }
                    (name.clone(), parts.join("/"))
                } else {
                    (name.clone(), value.clone())
                }
            })
            .collect();
        headers.push(("content-type".into(), content_type.into()));
        if let Some(target) = target {
            headers.push(("x-amz-target".into(), target.into()));
        }
        Request {
            method: "POST".into(),
            target: "/".into(),
            headers,
            body,
        }
    }

    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

const MAX_HEAD: usize = 64 * 1024;

/// A connection with its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(8 * 1024),
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads up to the blank line ending a message head; `None` at a clean end of stream.
    async fn read_head(&mut self) -> io::Result<Option<(String, Vec<(String, String)>)>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                let mut lines = head.split("\r\n");
                let start = lines.next().unwrap_or_default().to_string();
                let headers = lines
                    .filter_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        Some((name.trim().to_string(), value.trim().to_string()))
                    })
                    .collect();
                return Ok(Some((start, headers)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::other("message head too large"));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    async fn read_exact_body(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn read_chunked_body(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, up to an empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.read_exact_body(size).await?);
            self.read_line().await?;
        }
    }

    async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    async fn read_body(
        &mut self,
        headers: &[(String, String)],
        to_eof: bool,
    ) -> io::Result<Vec<u8>> {
        let chunked = find_header(headers, "transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return self.read_chunked_body().await;
        }
        match find_header(headers, "content-length") {
            Some(len) => {
                let len = len
                    .parse()
                    .map_err(|_| io::Error::other(format!("bad content-length {len:?}")))?;
                self.read_exact_body(len).await
            }
            None if to_eof => self.read_to_end().await,
            None => Ok(Vec::new()),
        }
    }

    pub async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let Some((start, headers)) = self.read_head().await? else {
            return Ok(None);
        };
        let mut parts = start.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Err(io::Error::other(format!("bad request line {start:?}")));
        };
        let (method, target) = (method.to_string(), target.to_string());
        if find_header(&headers, "expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
            self.stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await?;
        }
        let body = self.read_body(&headers, false).await?;
        Ok(Some(Request {
            method,
            target,
            headers,
            body,
        }))
    }

    async fn read_response(&mut self, head_request: bool) -> io::Result<Response> {
        loop {
            let Some((start, headers)) = self.read_head().await? else {
                return Err(io::ErrorKind::UnexpectedEof.into());
            };
            let mut parts = start.splitn(3, ' ');
            let _version = parts.next();
            let status: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad status line {start:?}")))?;
            let reason = parts.next().unwrap_or_default().to_string();
            if (100..200).contains(&status) {
                continue; // interim answer
            }
            let body = if head_request || status == 204 || status == 304 {
                Vec::new()
            } else {
                self.read_body(&headers, true).await?
            };
            return Ok(Response {
                status,
                reason,
                headers,
                body,
            });
        }
    }

    pub async fn write_response(
        &mut self,
        response: &Response,
        keep_alive: bool,
    ) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, response.reason);
        for (name, value) in &response.headers {
            if !is_hop_by_hop(name) {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str(&format!(
            "content-length: {}\r\nconnection: {}\r\n\r\n",
            response.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        ));
        let mut message = head.into_bytes();
        message.extend_from_slice(&response.body);
        self.stream.write_all(&message).await?;
        self.stream.flush().await
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
