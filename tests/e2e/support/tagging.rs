//! Emulation of the Resource Groups Tagging API's `GetResources` for ECR repositories, in
//! the fault proxy: moto's tagging API does not index ECR repositories, so the proxy answers
//! `GetResources` with `ResourceTypeFilters` naming `ecr` or `ecr:repository` itself, from
//! moto's own ECR answers for the same caller and region (DescribeRepositories, then
//! ListTagsForResource per repository). moto does not check signatures, so those upstream
//! requests reuse the client's credentials with the credential scope's service changed.
//!
//! As AWS does, the answer lists only repositories that carry at least one tag (an absent
//! repository has no tags), sorted by ARN, at most `ResourcesPerPage` (1 to 100, default
//! 100) per page, filtered by `TagFilters` (`ecr_fleet_sim::tagging`). The first page takes a snapshot of the region; the
//! following pages are served from it with the `PaginationToken`, and the last page answers
//! an empty token, as AWS does. The upstream requests are not counted as client requests.
//!
//! Taking a snapshot costs moto one request per repository, the very per-repository reads
//! bulk tag reads save on AWS. A benchmark whose tags never change can keep each
//! account-region's snapshot for later requests (`FaultRules::cache_tag_snapshots`), so
//! that an emulated page costs about what one AWS request does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use futures::StreamExt;
use serde_json::{json, Value};

use ecr_fleet_sim::http::{forward, Request, Response};
use ecr_fleet_sim::tagging::matches_tag_filters;
use ecr_fleet_sim::wire::{json_error, json_ok};

/// ListTagsForResource requests in flight at once while taking a snapshot.
const UPSTREAM_CONCURRENCY: usize = 8;

const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";

/// Snapshots of the pages still to serve, by snapshot id.
#[derive(Default)]
pub struct Emulation {
    snapshots: Mutex<HashMap<u64, Vec<Value>>>,
    next_id: AtomicU64,
    /// Kept snapshots by (account, region), before `TagFilters`.
    cache: Mutex<HashMap<(String, String), Vec<Value>>>,
}

fn invalid(message: &str) -> Response {
    json_error(400, "InvalidParameterException", message)
}

/// Answers one `GetResources` page for ECR repositories. With `cache_key` (account,
/// region), a snapshot taken earlier for it is reused, and a new one is kept.
pub async fn get_resources(
    request: &Request,
    upstream: &str,
    emulation: &Emulation,
    cache_key: Option<(String, String)>,
) -> Response {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_else(|_| json!({}));
    let per_page = match body.get("ResourcesPerPage") {
        None | Some(Value::Null) => 100,
        Some(n) => match n.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => {
                return invalid(
                    "ResourcesPerPage must be between 1 and 100 (injected by the test proxy)",
                )
            }
        },
    };
    if body
        .get("ResourceTypeFilters")
        .and_then(Value::as_array)
        .is_some_and(|filters| filters.len() > 1)
    {
        // Only ECR is emulated; mixing in other types would silently drop them.
        return invalid("the test proxy emulates GetResources for ecr:repository alone");
    }
    let token = body
        .get("PaginationToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let (id, offset) = match token {
        None => {
            let cached = cache_key.as_ref().and_then(|key| {
                emulation
                    .cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(key)
                    .cloned()
            });
            let mut all = match cached {
                Some(all) => all,
                None => match snapshot(request, upstream).await {
                    Ok(all) => {
                        if let Some(key) = cache_key {
                            emulation
                                .cache
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(key, all.clone());
                        }
                        all
                    }
                    Err(response) => return response,
                },
            };
            all.retain(|entry| matches_tag_filters(entry, body.get("TagFilters")));
            let id = emulation.next_id.fetch_add(1, Ordering::Relaxed);
            emulation
                .snapshots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, all);
            (id, 0)
        }
        Some(token) => match decode_token(token) {
            Some(position) => position,
            None => {
                return json_error(
                    400,
                    "PaginationTokenExpiredException",
                    "the pagination token is unknown or expired (injected by the test proxy)",
                )
            }
        },
    };
    let mut snapshots = emulation
        .snapshots
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let Some(all) = snapshots.get(&id) else {
        return json_error(
            400,
            "PaginationTokenExpiredException",
            "the pagination token is unknown or expired (injected by the test proxy)",
        );
    };
    let end = offset.saturating_add(per_page).min(all.len());
    let page = all[offset.min(end)..end].to_vec();
    let next = if end < all.len() {
        encode_token(id, end)
    } else {
        snapshots.remove(&id);
        String::new()
    };
    json_ok(&json!({"PaginationToken": next, "ResourceTagMappingList": page}))
}

fn encode_token(id: u64, offset: usize) -> String {
    format!("tagging-emulation-{id}-{offset}")
}

fn decode_token(token: &str) -> Option<(u64, usize)> {
    let (id, offset) = token.strip_prefix("tagging-emulation-")?.split_once('-')?;
    Some((id.parse().ok()?, offset.parse().ok()?))
}

/// Every tagged repository of the caller's region, sorted by ARN, as mapping entries.
async fn snapshot(request: &Request, upstream: &str) -> Result<Vec<Value>, Response> {
    let listed = upstream_json(request, upstream, "DescribeRepositories", json!({})).await?;
    let arns: Vec<String> = listed["repositories"]
        .as_array()
        .map(|repos| {
            repos
                .iter()
                .filter_map(|r| r["repositoryArn"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut entries: Vec<Value> = futures::stream::iter(arns)
        .map(|arn| async move {
            let tags = upstream_json(
                request,
                upstream,
                "ListTagsForResource",
                json!({"resourceArn": arn}),
            )
            .await?;
            let tags: Vec<Value> = tags["tags"]
                .as_array()
                .map(|tags| {
                    tags.iter()
                        .map(|t| json!({"Key": t["Key"], "Value": t["Value"]}))
                        .collect()
                })
                .unwrap_or_default();
            Ok::<_, Response>((!tags.is_empty()).then(|| json!({"ResourceARN": arn, "Tags": tags})))
        })
        .buffer_unordered(UPSTREAM_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    entries.sort_by(|a, b| a["ResourceARN"].as_str().cmp(&b["ResourceARN"].as_str()));
    Ok(entries)
}

/// Sends an ECR request upstream as the caller of `request` and returns its JSON answer;
/// a failure becomes the tagging API's `InternalServiceException`.
async fn upstream_json(
    request: &Request,
    upstream: &str,
    operation: &str,
    body: Value,
) -> Result<Value, Response> {
    let derived = request.derived(
        "ecr",
        Some(&format!("{ECR_TARGET_PREFIX}.{operation}")),
        "application/x-amz-json-1.1",
        serde_json::to_vec(&body).expect("json"),
    );
    let response = forward(&derived, upstream).await;
    if response.status != 200 {
        return Err(json_error(
            500,
            "InternalServiceException",
            &format!(
                "the test proxy's emulation got HTTP {} from ecr:{operation}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ),
        ));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        json_error(
            500,
            "InternalServiceException",
            &format!("ecr:{operation} answered something else than JSON: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(decode_token(&encode_token(3, 200)), Some((3, 200)));
        assert_eq!(decode_token("nonsense"), None);
    }
}
