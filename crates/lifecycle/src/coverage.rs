//! Content findings for audits: does a policy bound the growth of a repository at all?

use crate::model::{Policy, StorageClass, TagStatus};

/// What a policy covers, judged from its rules alone (no images).
///
/// Both flags look only at rules of the standard storage class, because archive-class rules
/// act only on images that something else already archived and so never bound growth on their
/// own. Either action counts (expire deletes, transition moves the image out of standard
/// storage), as does either kind of limit (count or age).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    /// Some standard-class rule with `tagStatus` `untagged` or `any`. Tagged rules never match
    /// untagged images, so nothing can shield untagged images from the first such rule.
    pub expires_untagged: bool,
    /// Some standard-class rule with `tagStatus` `any` or `tagged` limits tagged images. An
    /// `any` rule bounds every tagged image; a `tagged` rule only the tags it selects, so this
    /// says "some cap exists", not "every tag is capped".
    pub caps_tagged: bool,
}

/// See [`Coverage`].
pub fn coverage(policy: &Policy) -> Coverage {
    let standard = policy
        .rules
        .iter()
        .filter(|rule| rule.selection.storage_class == StorageClass::Standard);
    let mut found = Coverage {
        expires_untagged: false,
        caps_tagged: false,
    };
    for rule in standard {
        match rule.selection.tag_status {
            TagStatus::Untagged => found.expires_untagged = true,
            TagStatus::Tagged => found.caps_tagged = true,
            TagStatus::Any => {
                found.expires_untagged = true;
                found.caps_tagged = true;
            }
        }
    }
    found
}
