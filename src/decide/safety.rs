//! `[safety]`: the images a template may not expire or archive (a tag glob, a recent pull,
//! or something that runs them). Pure: no AWS, no I/O.

use ecr_lifecycle::{Image, ImageAction};
use jiff::Timestamp;

use super::inuse::SourceFailure;
use crate::config::SafetyConfig;
use crate::model::{Consumer, ProtectedImage};

/// Images the `[safety]` settings protect that the template would act on. `consumers[i]` are
/// the consumers of `images[i]` (shorter or empty: none); `unknown_in_use` lists the
/// account-regions whose consumers could not be read: while it is not empty, every image the
/// template would act on may be in use, so each is protected.
pub fn protected_images(
    safety: &SafetyConfig,
    images: &[Image],
    actions: &[ImageAction],
    now: Timestamp,
    consumers: &[Vec<Consumer>],
    unknown_in_use: &[SourceFailure],
) -> Vec<ProtectedImage> {
    if !safety.is_enabled() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for action in actions {
        let Some(image) = images.get(action.index) else {
            continue;
        };
        let users = consumers.get(action.index).cloned().unwrap_or_default();
        let in_use = if !users.is_empty() {
            Some(format!(
                "in use by {}",
                users
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else if !safety.in_use.is_empty() && !unknown_in_use.is_empty() {
            Some(format!(
                "may be in use: consumers of {} could not be read",
                unknown_in_use
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        } else {
            None
        };
        let by_tag = image.tags.iter().find_map(|t| {
            safety
                .protected_tags
                .iter()
                .find(|g| g.is_match(t))
                .map(|g| (t, g))
        });
        let reason = if let Some(reason) = in_use {
            Some(reason)
        } else if let Some((tag, glob)) = by_tag {
            Some(format!(
                "tag {tag:?} matches protected glob {:?}",
                glob.pattern
            ))
        } else {
            safety.pulled_within_days.and_then(|days| {
                let pulled = image.last_pulled_at?;
                let window = jiff::SignedDuration::from_hours(24 * i64::from(days));
                (now.duration_since(pulled) <= window)
                    .then(|| format!("pulled within {days} days ({pulled})"))
            })
        };
        if let Some(reason) = reason {
            out.push(ProtectedImage {
                image_digest: image.digest.clone(),
                image_tags: image.tags.clone(),
                action: match action.action {
                    ecr_lifecycle::ActionType::Expire => "expire".to_string(),
                    ecr_lifecycle::ActionType::Transition => "transition".to_string(),
                },
                rule_priority: action.rule_priority,
                reason,
                consumers: users,
            });
        }
    }
    out
}
