//! Offline evaluation of a policy against a repository snapshot (section 5): the reference
//! pseudocode of 5.11 plus the manifest-list guard of 5.7.

use std::cmp::Ordering;
use std::collections::HashMap;

use jiff::Timestamp;

use crate::assumptions::{
    manifest_list_protects, pool_of, push_age_reference, AGE_BOUNDARY_STRICT,
    MANIFEST_LIST_CHILDREN_RANKED, RANK_RESTORED_BY_RESTORE_TIME, SECONDS_PER_DAY,
    TIE_BREAK_SMALLER_DIGEST_FIRST,
};
use crate::matching::tag_selected;
use crate::model::{ActionType, CountType, Policy, StorageClass};

/// `imageStatus` as DescribeImages reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageStatus {
    Active,
    Archived,
    Activating,
}

/// One image of the repository snapshot (section 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Timestamp,
    pub size_bytes: u64,
    pub last_pulled_at: Option<Timestamp>,
    pub status: ImageStatus,
    pub last_archived_at: Option<Timestamp>,
    pub last_activated_at: Option<Timestamp>,
    pub manifest_media_type: Option<String>,
    /// Digests of manifest lists (indexes) that reference this image. Not returned by ECR; the
    /// caller derives it from the lists' manifests.
    pub referenced_by_manifest_lists: Vec<String>,
}

/// The one action a run takes on an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageAction {
    /// Index into the `images` slice given to [`evaluate`].
    pub index: usize,
    pub action: ActionType,
    pub rule_priority: i64,
}

/// The actions that are eligible at `now`, at most one per image, sorted by image index.
///
/// Rules run in priority order over the pool of their storage class. After each rule, every
/// image its tag selection matched is *claimed*: lower-priority rules still see (and count)
/// claimed images but never act on them (5.6, 6.2, 6.3). Images still referenced by a manifest
/// list get no action (5.7).
pub fn evaluate(policy: &Policy, images: &[Image], now: Timestamp) -> Vec<ImageAction> {
    let protected = protected_children(images);
    let standard = ranked_pool(images, StorageClass::Standard);
    let archive = ranked_pool(images, StorageClass::Archive);

    let mut claimed = vec![false; images.len()];
    let mut decided: Vec<Option<(ActionType, i64)>> = vec![None; images.len()];

    for rule in policy.rules_by_priority() {
        let selection = &rule.selection;
        let pool = match selection.storage_class {
            StorageClass::Standard => &standard,
            StorageClass::Archive => &archive,
        };
        let keep = selection.count_number;
        // Number of matched images ranked so far (imageCountMoreThan only).
        let mut ranked: u64 = 0;
        for &index in pool {
            let image = &images[index];
            if !tag_selected(selection, &image.tags) {
                continue;
            }
            let candidate = match selection.count_type {
                CountType::ImageCountMoreThan => {
                    // The pool is already ordered newest first, so the matched images arrive
                    // in ranking order and everything past the first `keep` is a candidate.
                    if protected[index] && !MANIFEST_LIST_CHILDREN_RANKED {
                        false
                    } else {
                        ranked += 1;
                        ranked > keep
                    }
                }
                CountType::SinceImagePushed => older_than(now, push_age_reference(image), keep),
                CountType::SinceImagePulled => older_than(now, pull_reference(image), keep),
                CountType::SinceImageTransitioned => image
                    .last_archived_at
                    .is_some_and(|archived| older_than(now, archived, keep)),
            };
            if candidate && !claimed[index] && decided[index].is_none() && !protected[index] {
                decided[index] = Some((rule.action.kind, rule.rule_priority));
            }
            // Claiming right after the decision is the same as claiming the whole selection
            // after the rule: each image is visited once per rule.
            claimed[index] = true;
        }
    }

    decided
        .into_iter()
        .enumerate()
        .filter_map(|(index, decision)| {
            decision.map(|(action, rule_priority)| ImageAction {
                index,
                action,
                rule_priority,
            })
        })
        .collect()
}

/// Whether `now - reference` exceeds `days` (boundary per [`AGE_BOUNDARY_STRICT`]).
fn older_than(now: Timestamp, reference: Timestamp, days: u64) -> bool {
    let age = now.as_nanosecond() - reference.as_nanosecond();
    // u64 days in nanoseconds fits easily in i128 (< 2^127).
    let limit = i128::from(days) * SECONDS_PER_DAY * 1_000_000_000;
    if AGE_BOUNDARY_STRICT {
        age > limit
    } else {
        age >= limit
    }
}

/// Reference time of `sinceImagePulled` (`pull_ref` of 5.11): the last recorded pull unless a
/// restore happened after it, then the restore time, and the push time for never-pulled images.
pub fn pull_reference(image: &Image) -> Timestamp {
    match (image.last_pulled_at, image.last_activated_at) {
        (Some(pulled), Some(activated)) if pulled >= activated => pulled,
        (Some(pulled), None) => pulled,
        (_, Some(activated)) => activated,
        (None, None) => image.pushed_at,
    }
}

/// Time an `imageCountMoreThan` rule ranks the image by.
fn rank_time(image: &Image) -> Timestamp {
    match image.last_activated_at {
        Some(activated) if RANK_RESTORED_BY_RESTORE_TIME => activated.max(image.pushed_at),
        _ => image.pushed_at,
    }
}

/// Indices of the images in `class`'s pool, newest first, sorted once for all rules.
fn ranked_pool(images: &[Image], class: StorageClass) -> Vec<usize> {
    let mut pool: Vec<usize> = (0..images.len())
        .filter(|&i| pool_of(images[i].status) == Some(class))
        .collect();
    pool.sort_by(|&a, &b| newest_first(&images[a], &images[b]).then(a.cmp(&b)));
    pool
}

fn newest_first(a: &Image, b: &Image) -> Ordering {
    rank_time(b).cmp(&rank_time(a)).then_with(|| {
        let by_digest = a.digest.cmp(&b.digest);
        if TIE_BREAK_SMALLER_DIGEST_FIRST {
            by_digest
        } else {
            by_digest.reverse()
        }
    })
}

/// For each image, whether a manifest list present in the snapshot still protects it (5.7).
fn protected_children(images: &[Image]) -> Vec<bool> {
    if images.iter().all(|i| i.referenced_by_manifest_lists.is_empty()) {
        return vec![false; images.len()];
    }
    // A digest could in theory appear twice; keep every status seen for it.
    let mut statuses: HashMap<&str, Vec<ImageStatus>> = HashMap::new();
    for image in images {
        statuses
            .entry(image.digest.as_str())
            .or_default()
            .push(image.status);
    }
    images
        .iter()
        .map(|child| {
            child.referenced_by_manifest_lists.iter().any(|list| {
                statuses.get(list.as_str()).is_some_and(|found| {
                    found
                        .iter()
                        .any(|&status| manifest_list_protects(status, child.status))
                })
            })
        })
        .collect()
}
