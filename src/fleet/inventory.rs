//! Inventory of one account-region: repositories, their tags (in bulk from the Resource Groups
//! Tagging API, or one repository at a time when that API is unavailable), and, only for
//! repositories a template manages, their current lifecycle policy and, when asked, their images.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecr::primitives::DateTime;
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageDetail, ImageIdentifier, ImageStatusFilter};
use ecr_lifecycle::{Image, ImageStatus};

use crate::aws::ecr::{read_policy, read_tags};
use crate::aws::{AwsError, CallClass, ErrorKind, Target};
use crate::config::{classify, Disposition};
use crate::config::{Config, NameGlob};
use crate::decide::plan::RepoFacts;

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
pub struct Listed {
    pub name: String,
    pub arn: String,
}

/// Tags per repository ARN, as the tagging API returns them.
pub type TagIndex = HashMap<String, BTreeMap<String, String>>;

/// Every repository of the account-region (narrowed by `--repositories`).
pub async fn list_repositories(
    target: &Target,
    options: &InventoryOptions,
) -> Result<Vec<Listed>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = target
            .calls
            .call(CallClass::Read, "ecr:DescribeRepositories", || {
                target
                    .ecr
                    .describe_repositories()
                    .max_results(options.page_size)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
        for r in page.repositories() {
            if let (Some(name), Some(arn)) = (r.repository_name(), r.repository_arn()) {
                if options
                    .repositories
                    .as_ref()
                    .is_none_or(|g| g.is_match(name))
                {
                    out.push(Listed {
                        name: name.to_string(),
                        arn: arn.to_string(),
                    });
                }
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Tags of every tagged repository of the account-region in pages of 100 (GetResources). A
/// repository absent from the answer has no tags.
pub async fn bulk_tags(target: &Target) -> Result<TagIndex, AwsError> {
    let mut index = TagIndex::new();
    let mut token: Option<String> = None;
    loop {
        let page = target
            .calls
            .call(CallClass::TagPage, "tagging:GetResources", || {
                target
                    .tagging
                    .get_resources()
                    .resource_type_filters("ecr:repository")
                    .resources_per_page(100)
                    .set_pagination_token(token.clone())
                    .send()
            })
            .await?;
        for mapping in page.resource_tag_mapping_list() {
            if let Some(arn) = mapping.resource_arn() {
                index.insert(
                    arn.to_string(),
                    mapping
                        .tags()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect(),
                );
            }
        }
        // The tagging API ends with an empty token rather than none.
        token = page
            .pagination_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(index)
}

/// Inventory one repository and decide what it needs. `tags` comes from the bulk read; `None`
/// means read them here. Images, when read, are handed to the planner and dropped.
pub async fn inspect_repository(
    target: &Target,
    repo: &Listed,
    tags: Option<BTreeMap<String, String>>,
    config: &Config,
    options: &InventoryOptions,
) -> RepoFacts {
    let mut facts = RepoFacts {
        account_id: target.account_id.clone(),
        region: target.region.clone(),
        name: repo.name.clone(),
        disposition: None,
        current_policy: None,
        images: None,
        error: None,
        gone: false,
    };
    let tags = match tags {
        Some(t) => t,
        None => match read_tags(target, &repo.arn).await {
            Ok(t) => t,
            Err(e) => {
                fail(&mut facts, e);
                return facts;
            }
        },
    };
    let disposition = classify(config, &repo.name, &tags);
    let template = match &disposition {
        Disposition::Managed { template } => template.clone(),
        Disposition::Unmatched if options.read_unmatched => {
            facts.disposition = Some(disposition);
            match read_policy(target, &repo.name).await {
                Ok(p) => facts.current_policy = Some(p),
                Err(e) => {
                    fail(&mut facts, e);
                    return facts;
                }
            }
            if options.images == ImagesMode::AllManaged {
                match describe_images(target, &repo.name).await {
                    Ok(images) => facts.images = Some(images),
                    Err(e) => fail(&mut facts, e),
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
    let current = match read_policy(target, &repo.name).await {
        Ok(p) => p,
        Err(e) => {
            fail(&mut facts, e);
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
        match describe_images(target, &repo.name).await {
            Ok(images) => facts.images = Some(images),
            Err(e) => fail(&mut facts, e),
        }
    }
    facts
}

/// Every image of a repository, whatever its storage status (archived images included, since
/// archive-class rules act on them).
async fn describe_images(target: &Target, repository: &str) -> Result<Vec<Image>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = target
            .calls
            .call(CallClass::Read, "ecr:DescribeImages", || {
                target
                    .ecr
                    .describe_images()
                    .repository_name(repository)
                    .filter(
                        DescribeImagesFilter::builder()
                            .image_status(ImageStatusFilter::Any)
                            .build(),
                    )
                    .max_results(1000)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
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
    link_manifest_lists(target, repository, &mut out).await?;
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
    target: &Target,
    repository: &str,
    images: &mut [Image],
) -> Result<(), AwsError> {
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
        let out = target
            .calls
            .call(CallClass::Read, "ecr:BatchGetImage", || {
                target
                    .ecr
                    .batch_get_image()
                    .repository_name(repository)
                    .set_image_ids(Some(ids.clone()))
                    .set_accepted_media_types(Some(
                        MANIFEST_LIST_TYPES.iter().map(|t| t.to_string()).collect(),
                    ))
                    .send()
            })
            .await?;
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

/// Record a failed read: a repository that went away is `gone`, anything else an error.
fn fail(facts: &mut RepoFacts, error: AwsError) {
    if error.kind == ErrorKind::RepositoryNotFound {
        facts.gone = true;
    } else {
        facts.error = Some(error.to_string());
    }
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
