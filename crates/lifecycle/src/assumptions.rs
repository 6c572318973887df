//! Every choice that AWS documentation leaves open (or that we infer rather than read) lives
//! here, so that a single edit changes the behaviour everywhere and a reviewer can see at a
//! glance what the engine guesses. Rule and section numbers refer to `RULES.md` in this crate,
//! which lists each of these assumptions.

use crate::evaluate::{Image, ImageStatus};
use crate::model::StorageClass;

/// 1.1 / 7.4: whether members other than `rules` at the top level are rejected. The service
/// validates with a JSON schema that forbids unknown members at the rule level, so we assume the
/// top level is just as strict; rejecting also catches typos such as `"Rules"`.
pub const REJECT_UNKNOWN_TOP_LEVEL_MEMBERS: bool = true;

/// 1.2: moto rejects unknown members in rule, selection and action objects; we assume AWS does too.
pub const REJECT_UNKNOWN_RULE_MEMBERS: bool = true;

/// 1.5 / 7.4: enumerated values inside a policy are lowercase; `"TAGGED"` is taken as an enum
/// mismatch, not as a synonym.
pub const REJECT_UPPERCASE_ENUMS: bool = true;

/// 1.2 / 7.3: lowest accepted `rulePriority`. The API shape that reports a priority back
/// (`appliedRulePriority`) has minimum 1, so 0 and negatives are rejected.
pub const MIN_RULE_PRIORITY: i64 = 1;

/// 1.3 / 7.3: no upper bound on `countNumber` is documented; public policies use 9999 and 3650.
pub const MAX_COUNT_NUMBER: Option<u64> = None;

/// 1.2 / 7.3: no length limit on `description` is documented.
pub const MAX_DESCRIPTION_CHARS: Option<usize> = None;

/// 1.1: the policy text length limits. "Characters" are counted as Unicode scalar values; the
/// service may count UTF-16 units instead, which only differs for text outside the BMP.
pub const MIN_POLICY_CHARS: usize = 100;
/// 1.1: see [`MIN_POLICY_CHARS`].
pub const MAX_POLICY_CHARS: usize = 30_720;
/// 1.1: "Rules per lifecycle policy" quota, not adjustable.
pub const MAX_RULES: usize = 50;

/// 2.3 / 7.10: an empty `tagPrefixList` / `tagPatternList` is treated as if it were absent, for
/// every check (2.3, 2.4, 2.5) and for evaluation.
pub const EMPTY_TAG_LIST_IS_ABSENT: bool = true;

/// 2.6: at most this many `*` in one pattern (documented; kept here beside the other limits).
pub const MAX_WILDCARDS_PER_PATTERN: usize = 4;

/// 2.8 / 7.2: "a unique set of prefixes" is read as: two rules of the same storage class may not
/// carry identical prefix sets (compared as sets). Overlapping but different sets are allowed.
pub const UNIQUE_PREFIX_SETS_PER_STORAGE_CLASS: bool = true;
/// 2.8 / 7.2: whether the same uniqueness applies to pattern lists. Nothing says so.
pub const UNIQUE_PATTERN_SETS_PER_STORAGE_CLASS: bool = false;

/// 2.15: archived images must stay archived at least 90 days, so a `sinceImageTransitioned`
/// rule needs `countNumber >= 90` (inferred; the error text is not documented).
pub const MIN_DAYS_BEFORE_ARCHIVE_EXPIRY: u64 = 90;

/// 2.17 / 7.11: no minimum age for `sinceImagePulled` transitions is documented, so none is
/// enforced.
pub const MIN_SINCE_IMAGE_PULLED_DAYS: Option<u64> = None;

/// 5.4 / 7.7: tag matching is case-sensitive.
pub const TAG_MATCH_CASE_SENSITIVE: bool = true;

/// 5.4 / 7.7: a `*` inside a `tagPrefixList` entry is a literal character, not a wildcard.
pub const PREFIX_STAR_IS_LITERAL: bool = true;

/// 5.5 / 7.5: length of the only unit, `days`: a fixed 24 hours, not a calendar day.
pub const SECONDS_PER_DAY: i128 = 86_400;

/// 5.5 / 7.5: an image is older than N days only when `now - t > N days` (strict); exactly at
/// the boundary nothing happens.
pub const AGE_BOUNDARY_STRICT: bool = true;

/// 5.3 / 7.8: the storage-class pool an image belongs to. ACTIVATING images (being restored)
/// belong to no pool: no rule counts or acts on them until the restore finishes.
pub fn pool_of(status: ImageStatus) -> Option<StorageClass> {
    match status {
        ImageStatus::Active => Some(StorageClass::Standard),
        ImageStatus::Archived => Some(StorageClass::Archive),
        ImageStatus::Activating => None,
    }
}

/// 5.5 / 7.6: the time an `imageCountMoreThan` rule ranks an image by. LP says the restore time
/// takes the place of the push time for restored images, but not how; the reference
/// pseudocode (5.11) ranks by push time only, and so do we. Flip this to rank restored images by
/// their latest restore.
pub const RANK_RESTORED_BY_RESTORE_TIME: bool = false;

/// 5.5 / 7.6: the time `sinceImagePushed` measures age from: the push time, even for restored
/// images (re-tagging or restoring does not make an image younger, 4.4).
pub fn push_age_reference(image: &Image) -> jiff::Timestamp {
    image.pushed_at
}

/// 5.5 / 7.5: order of images with the same ranking time in an `imageCountMoreThan` ranking
/// (newest first). ECR's order is unknown; for determinism the smaller digest ranks as newer
/// (is kept first).
pub const TIE_BREAK_SMALLER_DIGEST_FIRST: bool = true;

/// 5.7 / 7.9: whether an image protected by a manifest list still occupies a place in an
/// `imageCountMoreThan` ranking. One empirical preview (DEFANG) reports that such children were
/// not ranked (24 rankable of 26 pushed), so they are left out of the ranking. They are still
/// claimed by the rule's tag selection (they match it).
pub const MANIFEST_LIST_CHILDREN_RANKED: bool = false;

/// 5.7 / 7.9: whether a manifest list that is still present protects a child with the given
/// status. LP: a child cannot be expired or archived "until that list has been deleted or
/// archived", so an ARCHIVED list no longer protects an active child. For an archived child of
/// an archived list nothing is documented; we keep protecting it (the conservative choice).
/// A list that is expired in the same run still protects its children in that run (they go in
/// a later run, like the orphans of 6.11).
pub fn manifest_list_protects(list: ImageStatus, child: ImageStatus) -> bool {
    match list {
        ImageStatus::Active | ImageStatus::Activating => true,
        ImageStatus::Archived => child == ImageStatus::Archived,
    }
}
