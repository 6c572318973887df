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
    let classes: Vec<Option<StorageClass>> = images.iter().map(|i| pool_of(i.status)).collect();
    let standard = ranked_pool(images, &classes, &protected, StorageClass::Standard);
    let archive = ranked_pool(images, &classes, &protected, StorageClass::Archive);

    let mut matched = vec![false; images.len()];
    let mut claimed = vec![false; images.len()];
    let mut decided: Vec<Option<(ActionType, i64)>> = vec![None; images.len()];

    for rule in policy.rules_by_priority() {
        let selection = &rule.selection;
        let (class, pool) = match selection.storage_class {
            StorageClass::Standard => (StorageClass::Standard, &standard),
            StorageClass::Archive => (StorageClass::Archive, &archive),
        };
        // Tag selection in image order: the tags live on the heap in roughly that order, so
        // this pass reads memory sequentially; the ranked pass below touches only `entries`.
        for ((hit, image), image_class) in matched.iter_mut().zip(images).zip(&classes) {
            *hit = *image_class == Some(class) && tag_selected(selection, &image.tags);
        }
        let keep = selection.count_number;
        // Number of matched images ranked so far (imageCountMoreThan only).
        let mut ranked: u64 = 0;
        for entry in pool {
            let index = entry.index;
            if !matched[index] {
                continue;
            }
            let candidate = match selection.count_type {
                CountType::ImageCountMoreThan => {
                    // The pool is ordered newest first, so matched images arrive in ranking
                    // order and everything past the first `keep` is a candidate.
                    if entry.protected && !MANIFEST_LIST_CHILDREN_RANKED {
                        false
                    } else {
                        ranked += 1;
                        ranked > keep
                    }
                }
                CountType::SinceImagePushed => older_than(now, entry.pushed, keep),
                CountType::SinceImagePulled => older_than(now, entry.pulled, keep),
                CountType::SinceImageTransitioned => entry
                    .archived
                    .is_some_and(|archived| older_than(now, archived, keep)),
            };
            if candidate && !claimed[index] && decided[index].is_none() && !entry.protected {
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

/// What the ranked pass needs of one pool member, stored compactly so a rule's pass over
/// 100,000 images stays in cache.
struct PoolEntry {
    index: usize,
    protected: bool,
    /// Reference times of the age-based count types.
    pushed: Timestamp,
    pulled: Timestamp,
    archived: Option<Timestamp>,
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

/// The members of `class`'s pool, newest first (the `imageCountMoreThan` ranking), sorted once
/// for all rules.
fn ranked_pool(
    images: &[Image],
    classes: &[Option<StorageClass>],
    protected: &[bool],
    class: StorageClass,
) -> Vec<PoolEntry> {
    let mut members: Vec<(Timestamp, usize)> = classes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == Some(class))
        .map(|(i, _)| (rank_time(&images[i]), i))
        .collect();
    members.sort_by(|&(a_time, a), &(b_time, b)| {
        b_time
            .cmp(&a_time)
            .then_with(|| tie_break(&images[a], &images[b]))
            .then(a.cmp(&b))
    });
    members
        .into_iter()
        .map(|(_, index)| {
            let image = &images[index];
            PoolEntry {
                index,
                protected: protected[index],
                pushed: push_age_reference(image),
                pulled: pull_reference(image),
                archived: image.last_archived_at,
            }
        })
        .collect()
}

/// Order of two images with the same ranking time (see [`TIE_BREAK_SMALLER_DIGEST_FIRST`]).
fn tie_break(a: &Image, b: &Image) -> Ordering {
    let by_digest = a.digest.cmp(&b.digest);
    if TIE_BREAK_SMALLER_DIGEST_FIRST {
        by_digest
    } else {
        by_digest.reverse()
    }
}

/// For each image, whether a manifest list present in the snapshot still protects it (5.7).
fn protected_children(images: &[Image]) -> Vec<bool> {
    if images.iter().all(|i| i.referenced_by_manifest_lists.is_empty()) {
        return vec![false; images.len()];
    }
    // Only the digests that some image names as its list matter. A digest could in theory
    // appear twice, so keep every status seen for it (as a bit set).
    let mut lists: HashMap<&str, u8> = images
        .iter()
        .flat_map(|i| i.referenced_by_manifest_lists.iter())
        .map(|digest| (digest.as_str(), 0))
        .collect();
    for image in images {
        if let Some(seen) = lists.get_mut(image.digest.as_str()) {
            *seen |= status_bit(image.status);
        }
    }
    images
        .iter()
        .map(|child| {
            child.referenced_by_manifest_lists.iter().any(|list| {
                let seen = lists.get(list.as_str()).copied().unwrap_or(0);
                [ImageStatus::Active, ImageStatus::Archived, ImageStatus::Activating]
                    .into_iter()
                    .any(|status| {
                        seen & status_bit(status) != 0 && manifest_list_protects(status, child.status)
                    })
            })
        })
        .collect()
}

fn status_bit(status: ImageStatus) -> u8 {
    match status {
        ImageStatus::Active => 1,
        ImageStatus::Archived => 2,
        ImageStatus::Activating => 4,
    }
}
