//! APIs and fields moto lacks, emulated in the proxy (see `proxy.rs` for the hooks):
//!
//! - Account Management `ListRegions`, with an opt-in status per account ([`Emulation::opt_in`]);
//! - Inspector2 `ListCoverage` of ECR images ([`Emulation::coverage`]);
//! - Lambda `GetFunction`'s `Code.ResolvedImageUri`, whose digest moto makes up: rewritten to
//!   the real digest of the image ([`Emulation::lambda_digests`]);
//! - ECR `DescribeImages` push and pull times and image sizes, which moto cannot set
//!   ([`Emulation::image_times`], [`Emulation::image_sizes`]);
//! - a missing permission: `AccessDeniedException` for one operation in one account
//!   ([`Emulation::deny`]), as IAM answers what moto never evaluates.
//!
//! The caller's account is known from its access key: the static test key is the management
//! account, and the proxy records the key of every `sts:AssumeRole` answer it forwards.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use crate::support::fixtures::MANAGEMENT_ACCOUNT_ID;
use ecr_fleet_sim::http::{form_field, Request, Response};
use ecr_fleet_sim::wire::{json_error, rest_ok, Operation};

/// Regions every account has enabled by default.
pub const DEFAULT_REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
];

/// Opt-in regions the emulated ListRegions knows (DISABLED unless enabled per account).
pub const OPT_IN_REGIONS: [&str; 6] = [
    "af-south-1",
    "ap-east-1",
    "eu-south-1",
    "me-south-1",
    "il-central-1",
    "ap-southeast-7",
];

/// One ECR image as Inspector's coverage lists it.
#[derive(Clone, Debug)]
pub struct Coverage {
    pub account_id: String,
    pub region: String,
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub in_use_count: i64,
    /// Epoch seconds.
    pub last_in_use_at: Option<i64>,
}

/// What to emulate. The default emulates ListRegions (default regions enabled, opt-in
/// regions disabled) and an empty Inspector coverage, and rewrites nothing.
#[derive(Clone, Debug, Default)]
pub struct Emulation {
    /// Per account: opt-in regions it has ENABLED (the others stay DISABLED).
    pub opt_in: HashMap<String, Vec<String>>,
    pub coverage: Vec<Coverage>,
    /// Lambda `Code.ImageUri` (as the function was created) → the image's real digest.
    pub lambda_digests: HashMap<String, String>,
    /// Image digest → (pushed at, last recorded pull), epoch seconds.
    pub image_times: HashMap<String, (Option<i64>, Option<i64>)>,
    /// Image digest → `imageSizeInBytes` (moto reports the size of its synthetic manifests).
    pub image_sizes: HashMap<String, u64>,
    /// `(account id, service:Operation)` pairs answered HTTP 400 `AccessDeniedException`, for
    /// the account's own credentials or those of a role assumed in it.
    pub deny: Vec<(String, String)>,
}

/// What the emulation learns from traffic.
#[derive(Debug, Default)]
pub struct Learned {
    /// Access key id → account id, from AssumeRole answers.
    accounts: HashMap<String, String>,
}

fn scope(request: &Request) -> Vec<String> {
    request
        .header("authorization")
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|s| s.split([',', ' ']).next())
        .map(|s| s.split('/').map(str::to_string).collect())
        .unwrap_or_default()
}

fn caller_account(request: &Request, learned: &Learned) -> String {
    let key = scope(request).first().cloned().unwrap_or_default();
    learned
        .accounts
        .get(&key)
        .cloned()
        .unwrap_or_else(|| MANAGEMENT_ACCOUNT_ID.to_string())
}

fn signing_region(request: &Request) -> String {
    scope(request).get(2).cloned().unwrap_or_default()
}

/// The refusal of an operation [`Emulation::deny`] names for the caller's account.
pub(super) fn denied(
    request: &Request,
    op: &Operation,
    emulation: &Emulation,
    learned: &Learned,
) -> Option<Response> {
    if emulation.deny.is_empty() {
        return None;
    }
    let account = caller_account(request, learned);
    let key = op.key();
    emulation
        .deny
        .iter()
        .any(|(a, o)| *a == account && *o == key)
        .then(|| {
            json_error(
                400,
                "AccessDeniedException",
                &format!(
                    "User: arn:aws:sts::{account}:assumed-role/EcrFleetSpoke/ecr-fleet is not \
                     authorized to perform: {key} (injected by the test proxy)"
                ),
            )
        })
}

/// An answer for an API moto lacks, or `None` to go on as usual.
pub(super) fn answer(
    request: &Request,
    op: &Operation,
    emulation: &Emulation,
    learned: &Learned,
) -> Option<Response> {
    match (op.service.as_str(), op.name.as_str()) {
        ("account", "ListRegions") => {
            let account = caller_account(request, learned);
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let wanted: Vec<String> = body
                .get("RegionOptStatusContains")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let enabled = emulation.opt_in.get(&account).cloned().unwrap_or_default();
            let mut regions: BTreeMap<&str, &str> = DEFAULT_REGIONS
                .iter()
                .map(|r| (*r, "ENABLED_BY_DEFAULT"))
                .collect();
            for r in OPT_IN_REGIONS {
                let status = if enabled.iter().any(|e| e == r) {
                    "ENABLED"
                } else {
                    "DISABLED"
                };
                regions.insert(r, status);
            }
            let list: Vec<Value> = regions
                .into_iter()
                .filter(|(_, status)| wanted.is_empty() || wanted.iter().any(|w| w == status))
                .map(|(name, status)| json!({"RegionName": name, "RegionOptStatus": status}))
                .collect();
            Some(rest_ok(&json!({ "Regions": list })))
        }
        ("inspector2", "ListCoverage") => {
            let account = caller_account(request, learned);
            let region = signing_region(request);
            let list: Vec<Value> = emulation
                .coverage
                .iter()
                .filter(|c| c.account_id == account && c.region == region)
                .map(|c| {
                    let mut image = json!({"tags": c.tags, "inUseCount": c.in_use_count});
                    if let Some(t) = c.last_in_use_at {
                        image["lastInUseAt"] = json!(t);
                    }
                    json!({
                        "resourceType": "AWS_ECR_CONTAINER_IMAGE",
                        "resourceId": format!(
                            "arn:aws:ecr:{}:{}:repository/{}/{}",
                            c.region, c.account_id, c.repository, c.digest
                        ),
                        "accountId": c.account_id,
                        "scanType": "PACKAGE",
                        "scanStatus": {"statusCode": "ACTIVE", "reason": "SUCCESSFUL"},
                        "resourceMetadata": {
                            "ecrRepository": {"name": c.repository, "scanFrequency": "CONTINUOUS_SCAN"},
                            "ecrImage": image,
                        },
                    })
                })
                .collect();
            Some(rest_ok(&json!({ "coveredResources": list })))
        }
        _ => None,
    }
}

/// What [`after`] needs to know about a request that [`answer`] let through.
pub struct Seen {
    service: String,
    name: String,
    assumed_account: Option<String>,
}

impl Seen {
    pub(super) fn of(request: &Request, op: &Operation) -> Seen {
        let assumed_account = (op.service == "sts" && op.name == "AssumeRole")
            .then(|| form_field(&request.body, "RoleArn"))
            .flatten()
            .and_then(|arn| arn.split(':').nth(4).map(str::to_string));
        Seen {
            service: op.service.clone(),
            name: op.name.clone(),
            assumed_account,
        }
    }
}

/// Learn from, or rewrite, an answer from upstream.
pub(super) fn after(
    seen: &Seen,
    response: &mut Response,
    emulation: &Emulation,
    learned: &mut Learned,
) {
    if response.status != 200 {
        return;
    }
    match (seen.service.as_str(), seen.name.as_str()) {
        ("sts", "AssumeRole") => {
            let text = String::from_utf8_lossy(&response.body);
            let key = text
                .split("<AccessKeyId>")
                .nth(1)
                .and_then(|rest| rest.split("</AccessKeyId>").next());
            if let (Some(key), Some(account)) = (key, &seen.assumed_account) {
                learned.accounts.insert(key.to_string(), account.clone());
            }
        }
        ("lambda", "GetFunction") if !emulation.lambda_digests.is_empty() => {
            rewrite_json(response, |body| {
                let code = body.get_mut("Code")?;
                let uri = code.get("ImageUri")?.as_str()?.to_string();
                let digest = emulation.lambda_digests.get(&uri)?;
                let repo = uri.rsplit_once(':').map_or(uri.as_str(), |(r, _)| r);
                code["ResolvedImageUri"] = json!(format!("{repo}@{digest}"));
                Some(())
            });
        }
        ("ecr", "DescribeImages")
            if !emulation.image_times.is_empty() || !emulation.image_sizes.is_empty() =>
        {
            rewrite_json(response, |body| {
                for detail in body.get_mut("imageDetails")?.as_array_mut()? {
                    let digest = detail.get("imageDigest")?.as_str()?.to_string();
                    if let Some((pushed, pulled)) = emulation.image_times.get(&digest) {
                        if let Some(p) = pushed {
                            detail["imagePushedAt"] = json!(p);
                        }
                        if let Some(p) = pulled {
                            detail["lastRecordedPullTime"] = json!(p);
                        }
                    }
                    if let Some(size) = emulation.image_sizes.get(&digest) {
                        detail["imageSizeInBytes"] = json!(size);
                    }
                }
                Some(())
            });
        }
        _ => {}
    }
}

fn rewrite_json(response: &mut Response, change: impl FnOnce(&mut Value) -> Option<()>) {
    let Ok(mut body) = serde_json::from_slice::<Value>(&response.body) else {
        return;
    };
    if change(&mut body).is_some() {
        response.body = serde_json::to_vec(&body).expect("json");
    }
}
