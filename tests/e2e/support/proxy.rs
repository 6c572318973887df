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
//! moto has no repository creation templates: the proxy answers ECR's four template calls
//! itself, from templates it keeps per account and region (`ecr_fleet_sim::templates`).
//!
//! HTTP is the simulator crate's layer (`ecr_fleet_sim::http`, on hyper): towards the
//! client connections are kept alive; requests go upstream one per connection, and the
//! answer is read to its end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use ecr_fleet_sim::http::{form_field, forward, HttpServer, Request, Response};
use ecr_fleet_sim::templates::CreationTemplates;
pub use ecr_fleet_sim::wire::{
    json_error, json_ok, op_matches, query_error, throttling_error, xml_text, Operation, Scope,
};
use serde_json::{json, Value};

// APIs and fields moto lacks (ListRegions, Inspector coverage, Lambda digests, image times).
#[path = "emulate.rs"]
pub mod emulate;
use super::faults::{LoadRules, LoadState};
use super::fixtures::MANAGEMENT_ACCOUNT_ID;
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
    shared: Arc<Shared>,
    server: HttpServer,
}

struct Shared {
    upstream: String,
    state: Mutex<State>,
    tagging: tagging::Emulation,
}

pub use ecr_fleet_sim::fleet::RepoKey;

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
    /// Repository creation templates per account and region (moto has none).
    templates: CreationTemplates,
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
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                rules,
                ..State::default()
            }),
            tagging: tagging::Emulation::default(),
        });
        let serving = shared.clone();
        let server = HttpServer::start("fault-proxy", move |request: Request| {
            let shared = serving.clone();
            async move { handle(request, &shared).await }
        });
        FaultProxy { shared, server }
    }

    /// Base URL of the proxy, e.g. `http://127.0.0.1:40001`.
    pub fn url(&self) -> String {
        self.server.url()
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

    /// Runs `f` on the repository creation templates held now (locked meanwhile): to put
    /// one in place as is, other settings included, or to read one back.
    pub fn creation_templates<T>(&self, f: impl FnOnce(&mut CreationTemplates) -> T) -> T {
        f(&mut self.state().templates)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn sum_matching(map: &BTreeMap<String, u64>, op: &str) -> u64 {
    map.iter()
        .filter(|(key, _)| op_matches(op, key))
        .map(|(_, n)| n)
        .sum()
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
        let templates = op.service == "ecr" && CreationTemplates::handles(&op.name);
        let needs_account = state.rules.load.needs_account(&key)
            || templates
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
        ("ecr", name) if CreationTemplates::handles(name) => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let region = Scope::of(request).map(|s| s.region).unwrap_or_default();
            let account = account.unwrap_or(MANAGEMENT_ACCOUNT_ID);
            let answer = state.templates.answer(name, account, &region, &body);
            Decision::Answer(answer.expect("a creation-template call"))
        }
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
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            if ecr_fleet_sim::tagging::wants_ecr_repositories(&body) {
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
