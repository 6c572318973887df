//! Inventory of one account-region: repositories, their tags, and (only for repositories a
//! template manages) their current lifecycle policy and, when asked, their images.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_ecr::primitives::DateTime;
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageDetail, ImageIdentifier, ImageStatusFilter};
use ecr_lifecycle::{Image, ImageStatus};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::aws::{describe_error, error_code};
use crate::config::{Config, NameGlob};
use crate::plan::{classify, Disposition, RepoFacts};

/// Bounds API calls: a global cap for the run and a smaller one per account-region, because
/// ECR throttles per account and region.
#[derive(Debug, Clone)]
pub struct Limiter {
    global: Arc<Semaphore>,
    local: Arc<Semaphore>,
}

impl Limiter {
    pub fn global(max_in_flight: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(max_in_flight.max(1)))
    }

    pub fn for_target(global: &Arc<Semaphore>, per_target: usize) -> Limiter {
        Limiter {
            global: global.clone(),
            local: Arc::new(Semaphore::new(per_target.max(1))),
        }
    }

    /// Run one API call under both caps. The local permit is taken first so a target that is
    /// already at its own cap does not hold a global permit while it waits.
    pub async fn run<F: std::future::Future>(&self, call: F) -> F::Output {
        let _local = self
            .local
            .acquire()
            .await
            .expect("limiter semaphore never closes");
        let _global = self
            .global
            .acquire()
            .await
            .expect("limiter semaphore never closes");
        call.await
    }
}

/// Which repositories get their images described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagesMode {
    None,
    /// Only repositories whose policy would change (to check `[safety]`).
    Changing,
    /// Every managed repository (impact report).
    AllManaged,
}

#[derive(Debug, Clone)]
pub struct InventoryOptions {
    pub repositories: Option<NameGlob>,
    pub images: ImagesMode,
    /// DescribeRepositories page size (1..=1000).
    pub page_size: i32,
    /// Also read the policy (and, with `AllManaged`, the images) of unmatched repositories:
    /// a whole-organization audit.
    pub read_unmatched: bool,
}

/// A repository as DescribeRepositories lists it.
#[derive(Debug, Clone)]
struct Listed {
    name: String,
    arn: String,
}

/// Inventory one account-region. `Err` means the region could not be listed at all.
pub async fn inventory_target(
    ecr: &aws_sdk_ecr::Client,
    account_id: &str,
    region: &str,
    config: &Config,
    options: &InventoryOptions,
    limiter: &Limiter,
    on_repository: &(dyn Fn() + Send + Sync),
) -> Result<Vec<RepoFacts>, String> {
    let listed = list_repositories(ecr, options.page_size, limiter).await?;
    let listed: Vec<Listed> = listed
        .into_iter()
        .filter(|r| {
            options
                .repositories
                .as_ref()
                .is_none_or(|g| g.is_match(&r.name))
        })
        .collect();
    tracing::debug!(account = %account_id, region = %region, repositories = listed.len(), "listed");
    let facts = futures::stream::iter(listed)
        .map(|repo| async move {
            let f =
                inspect_repository(ecr, account_id, region, repo, config, options, limiter).await;
            on_repository();
            f
        })
        // The limiter bounds the calls; this only bounds how many repositories are in progress.
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    Ok(facts)
}

async fn list_repositories(
    ecr: &aws_sdk_ecr::Client,
    page_size: i32,
    limiter: &Limiter,
) -> Result<Vec<Listed>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = limiter
            .run(
                ecr.describe_repositories()
                    .max_results(page_size)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await
            .map_err(|e| format!("ecr:DescribeRepositories: {}", describe_error(&e)))?;
        for r in page.repositories() {
            if let (Some(name), Some(arn)) = (r.repository_name(), r.repository_arn()) {
                out.push(Listed {
                    name: name.to_string(),
                    arn: arn.to_string(),
                });
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

async fn inspect_repository(
    ecr: &aws_sdk_ecr::Client,
    account_id: &str,
    region: &str,
    repo: Listed,
    config: &Config,
    options: &InventoryOptions,
    limiter: &Limiter,
) -> RepoFacts {
    let mut facts = RepoFacts {
        account_id: account_id.to_string(),
        region: region.to_string(),
        name: repo.name.clone(),
        disposition: None,
        current_policy: None,
        images: None,
        error: None,
    };
    let tags = match read_tags(ecr, &repo.arn, limiter).await {
        Ok(t) => t,
        Err(e) => {
            facts.error = Some(e);
            return facts;
        }
    };
    let disposition = classify(config, &repo.name, &tags);
    let template = match &disposition {
        Disposition::Managed { template } => template.clone(),
        Disposition::Unmatched if options.read_unmatched => {
            facts.disposition = Some(disposition);
            match read_policy(ecr, &repo.name, limiter).await {
                Ok(p) => facts.current_policy = Some(p),
                Err(e) => {
                    facts.error = Some(e);
                    return facts;
                }
            }
            if options.images == ImagesMode::AllManaged {
                match describe_images(ecr, &repo.name, limiter).await {
                    Ok(images) => facts.images = Some(images),
                    Err(e) => facts.error = Some(e),
                }
            }
            return facts;
        }
        _ => {
            facts.disposition = Some(disposition);
            return facts;
        }
    };
    facts.disposition = Some(disposition);
    let current = match read_policy(ecr, &repo.name, limiter).await {
        Ok(p) => p,
        Err(e) => {
            facts.error = Some(e);
            return facts;
        }
    };
    let wants_images = match options.images {
        ImagesMode::None => false,
        ImagesMode::AllManaged => true,
        ImagesMode::Changing => config.templates.get(&template).is_some_and(|t| {
            current
                .as_deref()
                .is_none_or(|c| !ecr_lifecycle::semantically_equal(c, &t.text))
        }),
    };
    facts.current_policy = Some(current);
    if wants_images {
        match describe_images(ecr, &repo.name, limiter).await {
            Ok(images) => facts.images = Some(images),
            Err(e) => facts.error = Some(e),
        }
    }
    facts
}

/// Tags of a repository (DescribeRepositories does not return them).
pub async fn read_tags(
    ecr: &aws_sdk_ecr::Client,
    arn: &str,
    limiter: &Limiter,
) -> Result<BTreeMap<String, String>, String> {
    let out = limiter
        .run(ecr.list_tags_for_resource().resource_arn(arn).send())
        .await
        .map_err(|e| format!("ecr:ListTagsForResource: {}", describe_error(&e)))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

/// The current policy text; `None` when the repository has none.
pub async fn read_policy(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    limiter: &Limiter,
) -> Result<Option<String>, String> {
    match limiter
        .run(
            ecr.get_lifecycle_policy()
                .repository_name(repository)
                .send(),
        )
        .await
    {
        Ok(out) => Ok(out.lifecycle_policy_text().map(str::to_string)),
        Err(e) if error_code(&e).as_deref() == Some("LifecyclePolicyNotFoundException") => Ok(None),
        Err(e) => Err(format!("ecr:GetLifecyclePolicy: {}", describe_error(&e))),
    }
}

/// Every image of a repository, whatever its storage status (archived images included, since
/// archive-class rules act on them).
async fn describe_images(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    limiter: &Limiter,
) -> Result<Vec<Image>, String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = limiter
            .run(
                ecr.describe_images()
                    .repository_name(repository)
                    .filter(
                        DescribeImagesFilter::builder()
                            .image_status(ImageStatusFilter::Any)
                            .build(),
                    )
                    .max_results(1000)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await
            .map_err(|e| format!("ecr:DescribeImages: {}", describe_error(&e)))?;
        for detail in page.image_details() {
            match image_from_detail(detail) {
                Some(image) => out.push(image),
                // Not silently: an image left out of the evaluation changes its counts.
                None => tracing::warn!(
                    repository = %repository,
                    digest = detail.image_digest().unwrap_or("?"),
                    "image without digest or push time left out of the evaluation"
                ),
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    link_manifest_lists(ecr, repository, &mut out, limiter).await?;
    Ok(out)
}

/// Media types of multi-architecture indexes, whose children ECR will not expire while the
/// index is there.
const MANIFEST_LIST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// BatchGetImage takes at most this many image ids.
const BATCH_GET_IMAGE_MAX: usize = 100;

/// DescribeImages does not say which index references an image: read the indexes (one
/// BatchGetImage per 100 of them, none in a repository without indexes) and record, on each
/// child, the indexes that list it, so the evaluator protects children as ECR does.
async fn link_manifest_lists(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    images: &mut [Image],
    limiter: &Limiter,
) -> Result<(), String> {
    let indexes: Vec<String> = images
        .iter()
        .filter(|i| {
            i.manifest_media_type
                .as_deref()
                .is_some_and(|t| MANIFEST_LIST_TYPES.contains(&t))
        })
        .map(|i| i.digest.clone())
        .collect();
    if indexes.is_empty() {
        return Ok(());
    }
    let position: std::collections::HashMap<String, usize> = images
        .iter()
        .enumerate()
        .map(|(i, image)| (image.digest.clone(), i))
        .collect();
    for chunk in indexes.chunks(BATCH_GET_IMAGE_MAX) {
        let ids = chunk
            .iter()
            .map(|d| ImageIdentifier::builder().image_digest(d).build())
            .collect::<Vec<_>>();
        let out = limiter
            .run(
                ecr.batch_get_image()
                    .repository_name(repository)
                    .set_image_ids(Some(ids))
                    .set_accepted_media_types(Some(
                        MANIFEST_LIST_TYPES.iter().map(|t| t.to_string()).collect(),
                    ))
                    .send(),
            )
            .await
            .map_err(|e| format!("ecr:BatchGetImage: {}", describe_error(&e)))?;
        for image in out.images() {
            let (Some(index), Some(manifest)) = (
                image.image_id().and_then(|id| id.image_digest()),
                image.image_manifest(),
            ) else {
                continue;
            };
            for child in manifest_children(manifest) {
                if let Some(&i) = position.get(&child) {
                    images[i]
                        .referenced_by_manifest_lists
                        .push(index.to_string());
                }
            }
        }
    }
    Ok(())
}

/// Digests listed by an image index or manifest list (`manifests[].digest`).
fn manifest_children(manifest: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(manifest)
        .ok()
        .and_then(|v| {
            v.get("manifests")?.as_array().map(|list| {
                list.iter()
                    .filter_map(|m| m.get("digest")?.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn timestamp(t: Option<&DateTime>) -> Option<jiff::Timestamp> {
    let t = t?;
    jiff::Timestamp::new(t.secs(), t.subsec_nanos() as i32).ok()
}

fn image_from_detail(d: &ImageDetail) -> Option<Image> {
    use aws_sdk_ecr::types::ImageStatus as Status;
    Some(Image {
        digest: d.image_digest()?.to_string(),
        tags: d.image_tags().to_vec(),
        pushed_at: timestamp(d.image_pushed_at())?,
        size_bytes: d
            .image_size_in_bytes()
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0),
        last_pulled_at: timestamp(d.last_recorded_pull_time()),
        status: match d.image_status() {
            Some(Status::Archived) => ImageStatus::Archived,
            Some(Status::Activating) => ImageStatus::Activating,
            _ => ImageStatus::Active,
        },
        last_archived_at: timestamp(d.last_archived_at()),
        last_activated_at: timestamp(d.last_activated_at()),
        manifest_media_type: d.image_manifest_media_type().map(str::to_string),
        // Filled in by `link_manifest_lists`.
        referenced_by_manifest_lists: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_of_an_index_are_read_from_its_manifests() {
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[{"digest":"sha256:aa","platform":{"architecture":"amd64"}},{"digest":"sha256:bb"}]}"#;
        assert_eq!(manifest_children(index), ["sha256:aa", "sha256:bb"]);
        assert!(manifest_children(r#"{"schemaVersion":2,"layers":[]}"#).is_empty());
        assert!(manifest_children("not json").is_empty());
    }
}
