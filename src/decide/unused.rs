//! Unused-image findings of `audit --images`: images never pulled and pushed more than N days
//! ago, images not pulled for more than N days, and untagged images pushed more than N days
//! ago, each with count, bytes and monthly cost; images in use (the in-use index) are left
//! out. Pure: no AWS, no I/O.
//!
//! Only ACTIVE images count (archived ones are already on the cheaper class), and children
//! of a multi-architecture index are left to their index: they are untagged by nature and ECR
//! keeps them while the index is there.

use ecr_lifecycle::{Image, ImageStatus};
use jiff::{SignedDuration, Timestamp};

use crate::model::Unused;

/// Unused images of a repository as of `now`. `in_use[i]` tells whether `images[i]` is in use
/// (shorter or empty: not in use).
pub fn unused_images(
    images: &[Image],
    in_use: &[bool],
    now: Timestamp,
    after_days: u32,
    price_per_gb_month: f64,
) -> Unused {
    let cutoff = now - SignedDuration::from_hours(24 * i64::from(after_days));
    let mut out = Unused::default();
    for (i, image) in images.iter().enumerate() {
        if image.status != ImageStatus::Active || !image.referenced_by_manifest_lists.is_empty() {
            continue;
        }
        let old = image.pushed_at < cutoff;
        let never_pulled = old && image.last_pulled_at.is_none();
        let not_pulled = image.last_pulled_at.is_some_and(|t| t < cutoff);
        let untagged = old && image.tags.is_empty();
        if !(never_pulled || not_pulled || untagged) {
            continue;
        }
        if in_use.get(i).copied().unwrap_or(false) {
            out.in_use_excluded += 1;
            continue;
        }
        if never_pulled {
            out.never_pulled.push(image);
        }
        if not_pulled {
            out.not_pulled.push(image);
        }
        if untagged {
            out.untagged.push(image);
        }
        out.total.push(image);
    }
    out.price(price_per_gb_month);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn image(digest: &str, tags: &[&str], pushed: &str, pulled: Option<&str>) -> Image {
        Image {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: pushed.parse().unwrap(),
            size_bytes: GIB,
            last_pulled_at: pulled.map(|p| p.parse().unwrap()),
            status: ImageStatus::Active,
            last_archived_at: None,
            last_activated_at: None,
            manifest_media_type: None,
            referenced_by_manifest_lists: Vec::new(),
        }
    }

    #[test]
    fn buckets_by_pull_and_tag_age_excluding_in_use() {
        let now: Timestamp = "2026-11-22T00:00:00Z".parse().unwrap();
        let mut archived = image("sha256:arch", &[], "2025-01-01T00:00:00Z", None);
        archived.status = ImageStatus::Archived;
        let mut child = image("sha256:child", &[], "2025-01-01T00:00:00Z", None);
        child.referenced_by_manifest_lists = vec!["sha256:idx".into()];
        let images = vec![
            // never pulled, old, tagged
            image("sha256:a", &["v1"], "2026-01-01T00:00:00Z", None),
            // never pulled, old, untagged: two buckets, counted once in total
            image("sha256:b", &[], "2026-01-01T00:00:00Z", None),
            // pulled long ago
            image(
                "sha256:c",
                &["v2"],
                "2025-06-01T00:00:00Z",
                Some("2026-03-01T00:00:00Z"),
            ),
            // pulled recently: used
            image(
                "sha256:d",
                &["v3"],
                "2025-06-01T00:00:00Z",
                Some("2026-11-01T00:00:00Z"),
            ),
            // new and never pulled: too young
            image("sha256:e", &[], "2026-11-20T00:00:00Z", None),
            // old, never pulled, but a service runs it
            image("sha256:f", &["prod"], "2026-01-01T00:00:00Z", None),
            archived,
            child,
        ];
        let in_use = [false, false, false, false, false, true];
        let u = unused_images(&images, &in_use, now, 90, 0.10);
        assert_eq!((u.never_pulled.images, u.never_pulled.bytes), (2, 2 * GIB));
        assert_eq!(u.not_pulled.images, 1);
        assert_eq!(u.untagged.images, 1);
        assert_eq!((u.total.images, u.total.bytes), (3, 3 * GIB));
        assert!((u.total.monthly_cost_usd - 0.30).abs() < 1e-9);
        assert!((u.never_pulled.monthly_cost_usd - 0.20).abs() < 1e-9);
        assert_eq!(u.in_use_excluded, 1);
        // A shorter window catches the recent pull too and the young image.
        let u = unused_images(&images, &in_use, now, 1, 0.10);
        assert_eq!(u.total.images, 5);
        let mut fleet = Unused::default();
        fleet.add(&u);
        fleet.add(&u);
        assert_eq!(fleet.total.images, 10);
        assert!(!fleet.is_empty());
        assert!(Unused::default().is_empty());
    }
}
