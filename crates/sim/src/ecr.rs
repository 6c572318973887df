//! ECR and tagging calls of the synthetic server:
//!
//! - ECR `DescribeRepositories` (pages of `maxResults`, default 100, at most 1000, with
//!   `nextToken`; or `repositoryNames`), `ListTagsForResource`, `GetLifecyclePolicy`
//!   (`LifecyclePolicyNotFoundException` when none), `PutLifecyclePolicy`,
//!   `DeleteLifecyclePolicy`, `DescribeImages` (see [`crate::images`]), and
//!   `RepositoryNotFoundException` for unknown repositories;
//! - Resource Groups Tagging `GetResources` for `ecr:repository` (tagged repositories only,
//!   at most 100 per page, `PaginationToken`, `TagFilters`).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::http::Response;
use crate::org::parse_offset;
use crate::server::{RegionState, State, SynthRepo};
use crate::tagging::matches_tag_filters;
use crate::wire::{json_error, json_ok, Operation};

pub(crate) fn answer(
    state: &mut State,
    op: &Operation,
    account: &str,
    region: &str,
    body: &Value,
) -> Option<Response> {
    Some(match op.name.as_str() {
        "DescribeRepositories" => describe_repositories(state, account, region, body),
        "ListTagsForResource" => {
            let arn = body["resourceArn"].as_str().unwrap_or_default();
            let Some(name) = arn.split_once(":repository/").map(|(_, n)| n) else {
                return Some(json_error(
                    400,
                    "InvalidParameterException",
                    "Invalid resourceArn",
                ));
            };
            match find_repo(state, account, region, name) {
                Ok(repo) => json_ok(&json!({
                    "tags": repo.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()
                })),
                Err(response) => response,
            }
        }
        "GetLifecyclePolicy" => {
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
        "PutLifecyclePolicy" => put_lifecycle_policy(state, account, region, body),
        "DeleteLifecyclePolicy" => {
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
        "DescribeImages" => {
            let name = body["repositoryName"].as_str().unwrap_or_default();
            let (seed, epoch) = (state.seed, state.epoch);
            match find_repo(state, account, region, name) {
                Ok(repo) => {
                    crate::images::describe_images(seed, epoch, account, region, repo, body)
                }
                Err(response) => response,
            }
        }
        _ => return None,
    })
}

fn put_lifecycle_policy(state: &mut State, account: &str, region: &str, body: &Value) -> Response {
    let name = body["repositoryName"].as_str().unwrap_or_default();
    let Some(text) = body["lifecyclePolicyText"].as_str() else {
        return json_error(
            400,
            "InvalidParameterException",
            "lifecyclePolicyText is required",
        );
    };
    if !is_policy_document(text) {
        return invalid_policy();
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

/// `maxResults` (1 to 1000, default 100) and the offset of `nextToken` (a token of ours
/// starting with `token_prefix`) of an ECR listing, or the error ECR answers for them.
pub(crate) fn ecr_page(body: &Value, token_prefix: &str) -> Result<(usize, usize), Response> {
    let max = body["maxResults"].as_u64().unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(json_error(
            400,
            "InvalidParameterException",
            "maxResults must be between 1 and 1000",
        ));
    }
    let offset = parse_offset(body["nextToken"].as_str(), token_prefix)
        .map_err(|()| json_error(400, "InvalidParameterException", "Invalid nextToken"))?;
    Ok((max as usize, offset))
}

/// The check the server makes of a lifecycle policy: a JSON document with a `rules` list.
pub(crate) fn is_policy_document(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v["rules"].is_array())
}

/// ECR's answer to a lifecycle policy it refuses.
pub(crate) fn invalid_policy() -> Response {
    json_error(
        400,
        "InvalidParameterException",
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: \
         'Lifecycle policy validation failure'",
    )
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

pub(crate) fn find_repo<'a>(
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
    let (max, offset) = match ecr_page(body, "synth-repos-") {
        Ok(page) => page,
        Err(response) => return response,
    };
    let Some(repos) = region_of(state, account, region) else {
        // An account without repositories here (the management account, say).
        return json_ok(&json!({"repositories": []}));
    };
    let mut page = Vec::new();
    let mut i = offset;
    while i < repos.repos.len() && page.len() < max {
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

pub(crate) fn get_resources(
    state: &mut State,
    account: &str,
    region: &str,
    body: &Value,
) -> Response {
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
