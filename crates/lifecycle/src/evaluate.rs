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
use crate::matching::TagMatcher;
use crate::model::{ActionType, CountType, Policy, StorageClass};

/// `imageStatus` as DescribeImages reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
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
///
/// Cost: at most one sort per pool (only for pools an `imageCountMoreThan` rule ranks), then per
/// rule one pass over the images in slice order (which reads memory sequentially), plus for
/// count rules a walk of the ranking that touches only one state byte per image:
/// O(n log n + rules × n).
pub fn evaluate(policy: &Policy, images: &[Image], now: Timestamp) -> Vec<ImageAction> {
    let rules = policy.rules_by_priority();
    // Per-image flags in one byte, so the ranked walk makes one small random access per image.
    let mut state: Vec<u8> = protected_children(images)
        .into_iter()
        .map(|protected| if protected { PROTECTED } else { 0 })
        .collect();
    // Position in `rules` of the rule that acted on each image (valid where DECIDED is set).
    let mut decided: Vec<usize> = vec![0; images.len()];
    let mut rankings: [Option<Vec<usize>>; 2] = [None, None];

    for (ordinal, rule) in rules.iter().enumerate() {
        let selection = &rule.selection;
        let class = selection.storage_class;
        let tags = TagMatcher::new(selection);
        let selected =
            |image: &Image| pool_of(image.status) == Some(class) && tags.matches(&image.tags);
        // Records the decision for one image the rule's tags selected, then claims it. Claiming
        // right away is the same as claiming the whole selection after the rule: each image is
        // visited once per rule.
        let mut act = |flags: &mut u8, index: usize, candidate: bool| {
            if candidate && *flags & (CLAIMED | DECIDED | PROTECTED) == 0 {
                *flags |= DECIDED;
                decided[index] = ordinal;
            }
            *flags |= CLAIMED;
        };
        let reference: fn(&Image) -> Option<Timestamp> = match selection.count_type {
            CountType::SinceImagePushed => |image| Some(push_age_reference(image)),
            CountType::SinceImagePulled => |image| Some(pull_reference(image)),
            CountType::SinceImageTransitioned => |image| image.last_archived_at,
            CountType::ImageCountMoreThan => {
                // Count rules walk the pool newest first; matched images arrive in ranking
                // order and everything past the first `countNumber` is a candidate.
                for (image, flags) in images.iter().zip(state.iter_mut()) {
                    *flags = if selected(image) {
                        *flags | MATCHED
                    } else {
                        *flags & !MATCHED
                    };
                }
                let slot = usize::from(class == StorageClass::Archive);
                let ranking = rankings[slot].get_or_insert_with(|| ranked_pool(images, class));
                let mut ranked: u64 = 0;
                for &index in ranking.iter() {
                    let flags = &mut state[index];
                    if *flags & MATCHED == 0 {
                        continue;
                    }
                    let candidate = if *flags & PROTECTED != 0 && !MANIFEST_LIST_CHILDREN_RANKED {
                        false
                    } else {
                        ranked += 1;
                        ranked > selection.count_number
                    };
                    act(flags, index, candidate);
                }
                continue;
            }
        };
        // Age rules judge each image on its own, so slice order will do.
        let cutoff = AgeCutoff::new(now, selection.count_number);
        for (index, (image, flags)) in images.iter().zip(state.iter_mut()).enumerate() {
            if selected(image) {
                act(
                    flags,
                    index,
                    reference(image).is_some_and(|t| cutoff.is_older(t)),
                );
            }
        }
    }

    state
        .iter()
        .zip(&decided)
        .enumerate()
        .filter(|(_, (flags, _))| **flags & DECIDED != 0)
        .filter_map(|(index, (_, &ordinal))| {
            let rule = rules.get(ordinal)?;
            Some(ImageAction {
                index,
                action: rule.action.kind,
                rule_priority: rule.rule_priority,
            })
        })
        .collect()
}

/// Bits of the per-image state byte.
const MATCHED: u8 = 1; // selected by the current count rule's tags
const CLAIMED: u8 = 2; // selected by an earlier rule's tags (5.6)
const DECIDED: u8 = 4; // has its one action
const PROTECTED: u8 = 8; // referenced by a manifest list that is present (5.7)

/// "Older than N days" for one rule, as a single comparison per image.
struct AgeCutoff {
    /// Reference times (nanoseconds) before this instant, or at it if not strict, are older.
    latest: i128,
}

impl AgeCutoff {
    fn new(now: Timestamp, days: u64) -> AgeCutoff {
        // u64 days in nanoseconds fits easily in i128 (< 2^127), and so does the difference.
        let limit = i128::from(days) * SECONDS_PER_DAY * 1_000_000_000;
        AgeCutoff {
            latest: now.as_nanosecond() - limit,
        }
    }

    /// Whether `now - reference` exceeds the limit (boundary per [`AGE_BOUNDARY_STRICT`]).
    fn is_older(&self, reference: Timestamp) -> bool {
        let reference = reference.as_nanosecond();
        if AGE_BOUNDARY_STRICT {
            reference < self.latest
        } else {
            reference <= self.latest
        }
    }
}

/// Indices of `class`'s pool, newest first: the `imageCountMoreThan` ranking.
fn ranked_pool(images: &[Image], class: StorageClass) -> Vec<usize> {
    let mut members: Vec<(i128, usize)> = images
        .iter()
        .enumerate()
        .filter(|(_, image)| pool_of(image.status) == Some(class))
        .map(|(i, image)| (rank_time(image).as_nanosecond(), i))
        .collect();
    // Keys are unique (the index breaks every tie), so an unstable sort is deterministic.
    members.sort_unstable_by(|&(a_time, a), &(b_time, b)| {
        b_time
            .cmp(&a_time)
            .then_with(|| tie_break(&images[a], &images[b]))
            .then(a.cmp(&b))
    });
    members.into_iter().map(|(_, index)| index).collect()
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
    if images
        .iter()
        .all(|i| i.referenced_by_manifest_lists.is_empty())
    {
        return vec![false; images.len()];
    }
    // Only the digests that some image names as its list matter. A digest could in theory
    // appear twice, so keep every status seen for it (as a bit set).
    let mut lists: HashMap<&str, u8, DigestHasher> = images
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
                [
                    ImageStatus::Active,
                    ImageStatus::Archived,
                    ImageStatus::Activating,
                ]
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

/// A fast non-cryptographic hasher for digest lookups. Every image's digest is looked up
/// once, and SipHash dominated that pass; digests come from a registry, not an adversary.
#[derive(Default, Clone, Copy)]
struct DigestHasher(u64);

impl std::hash::BuildHasher for DigestHasher {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Multiply-rotate over 8-byte words (the FxHash scheme).
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(SEED);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
