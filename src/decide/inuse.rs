//! The in-use index: which ECR images something runs, anywhere in the visited accounts and
//! regions. `[safety] in_use` names the sources: ECS (task definitions of active services and
//! images of running tasks), Lambda (functions of package type Image, by resolved digest) and
//! Amazon Inspector's coverage (`inUseCount`, `lastInUseAt`). References are keyed by the
//! repository they point at (account, region, name), so an image of account A that a service
//! in account B runs is found when A's repositories are planned.
//!
//! The index must be complete before any repository's decision is final: a consumer in the
//! last account visited may protect an image of the first. `run` therefore collects it in a
//! pass of its own, over every account-region, before the inventory.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ecr_lifecycle::Image;
use jiff::Timestamp;

use crate::model::{Consumer, InUseSource};

/// What an image reference names inside a repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

/// An image reference resolved to the repository it points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageRef {
    pub account_id: String,
    pub region: String,
    pub repository: String,
    pub reference: Reference,
}

/// Parse `account.dkr.ecr.region.amazonaws.com/repo:tag` or `.../repo@sha256:...` (also the
/// FIPS and China host names). `None` for images outside ECR (Docker Hub, ECR Public...) and
/// for references without tag or digest, which pull `latest`: those become a `latest` tag.
pub fn parse_image_uri(uri: &str) -> Option<ImageRef> {
    let uri = uri.trim();
    let (host, path) = uri.split_once('/')?;
    let labels: Vec<&str> = host.split('.').collect();
    // <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]
    if labels.len() < 6
        || labels[1] != "dkr"
        || !(labels[2] == "ecr" || labels[2] == "ecr-fips")
        || labels[4] != "amazonaws"
    {
        return None;
    }
    let account_id = labels[0];
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let region = labels[3];
    let (name, reference) = if let Some((name, digest)) = path.split_once('@') {
        // A digest wins over a tag written before it (`repo:tag@sha256:...`).
        let name = strip_tag(name);
        (name, Reference::Digest(digest.to_string()))
    } else {
        match tag_of(path) {
            Some((name, tag)) => (name, Reference::Tag(tag.to_string())),
            None => (path, Reference::Tag("latest".to_string())),
        }
    };
    if name.is_empty() {
        return None;
    }
    Some(ImageRef {
        account_id: account_id.to_string(),
        region: region.to_string(),
        repository: name.to_string(),
        reference,
    })
}

/// `repo:tag` → (`repo`, `tag`); the colon must come after the last `/`.
fn tag_of(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/').map_or(0, |i| i + 1);
    let colon = path[slash..].find(':')? + slash;
    Some((&path[..colon], &path[colon + 1..]))
}

fn strip_tag(path: &str) -> &str {
    tag_of(path).map_or(path, |(name, _)| name)
}

/// Inspector names an ECR image `arn:aws:ecr:<region>:<account>:repository/<name>/sha256:<hex>`.
pub fn parse_inspector_resource_id(id: &str) -> Option<ImageRef> {
    let mut parts = id.splitn(6, ':');
    let (arn, _partition, service, region, account, rest) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn" || service != "ecr" {
        return None;
    }
    let rest = rest.strip_prefix("repository/")?;
    let at = rest.rfind("/sha256:")?;
    let (name, digest) = (&rest[..at], &rest[at + 1..]);
    if name.is_empty() {
        return None;
    }
    Some(ImageRef {
        account_id: account.to_string(),
        region: region.to_string(),
        repository: name.to_string(),
        reference: Reference::Digest(digest.to_string()),
    })
}

type RepoKey = (String, String, String);

#[derive(Debug, Clone, Default)]
struct RepoUses {
    by_digest: BTreeMap<String, BTreeSet<Consumer>>,
    by_tag: BTreeMap<String, BTreeSet<Consumer>>,
}

/// Where the index has a hole: a source that could not be read in an account-region, or an
/// account that could not be entered at all (`source` and `region` `None`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourceFailure {
    pub source: Option<InUseSource>,
    pub account_id: String,
    pub region: Option<String>,
    pub error: String,
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, &self.region) {
            (Some(s), Some(r)) => write!(
                f,
                "{} {} {}: {}",
                s.as_str(),
                self.account_id,
                r,
                self.error
            ),
            _ => write!(f, "account {}: {}", self.account_id, self.error),
        }
    }
}

/// Consumers per image, over every visited account-region.
#[derive(Debug, Clone, Default)]
pub struct InUseIndex {
    repos: BTreeMap<RepoKey, RepoUses>,
    /// What could not be read. While anything is listed, nothing the index does not show can
    /// be called unused.
    pub incomplete: Vec<SourceFailure>,
}

impl InUseIndex {
    pub fn add(&mut self, image: ImageRef, consumer: Consumer) {
        let uses = self
            .repos
            .entry((image.account_id, image.region, image.repository))
            .or_default();
        let slot = match image.reference {
            Reference::Digest(d) => uses.by_digest.entry(d),
            Reference::Tag(t) => uses.by_tag.entry(t),
        };
        slot.or_default().insert(consumer);
    }

    /// Every distinct (reference, consumer) pair.
    pub fn references(&self) -> usize {
        self.repos
            .values()
            .map(|u| {
                u.by_digest.values().map(BTreeSet::len).sum::<usize>()
                    + u.by_tag.values().map(BTreeSet::len).sum::<usize>()
            })
            .sum()
    }

    pub fn is_complete(&self) -> bool {
        self.incomplete.is_empty()
    }

    /// Consumers of each image of a repository (same order as `images`): by digest, or by
    /// any tag the image carries now (a tag reference resolves to the image holding the tag).
    /// Children of an index in use are in use too: running the index pulls them.
    pub fn consumers(
        &self,
        account_id: &str,
        region: &str,
        repository: &str,
        images: &[Image],
    ) -> Vec<Vec<Consumer>> {
        let key = (
            account_id.to_string(),
            region.to_string(),
            repository.to_string(),
        );
        let Some(uses) = self.repos.get(&key) else {
            return vec![Vec::new(); images.len()];
        };
        let direct = |image: &Image| -> BTreeSet<Consumer> {
            let mut out = BTreeSet::new();
            if let Some(c) = uses.by_digest.get(&image.digest) {
                out.extend(c.iter().cloned());
            }
            for tag in &image.tags {
                if let Some(c) = uses.by_tag.get(tag) {
                    out.extend(c.iter().cloned());
                }
            }
            out
        };
        let mut by_digest: BTreeMap<&str, BTreeSet<Consumer>> = BTreeMap::new();
        for image in images {
            let c = direct(image);
            if !c.is_empty() {
                by_digest.insert(image.digest.as_str(), c);
            }
        }
        images
            .iter()
            .map(|image| {
                let mut c = by_digest
                    .get(image.digest.as_str())
                    .cloned()
                    .unwrap_or_default();
                for parent in &image.referenced_by_manifest_lists {
                    if let Some(p) = by_digest.get(parent.as_str()) {
                        c.extend(p.iter().cloned());
                    }
                }
                c.into_iter().collect()
            })
            .collect()
    }

    pub fn merge(&mut self, other: InUseIndex) {
        for (key, uses) in other.repos {
            let mine = self.repos.entry(key).or_default();
            for (d, c) in uses.by_digest {
                mine.by_digest.entry(d).or_default().extend(c);
            }
            for (t, c) in uses.by_tag {
                mine.by_tag.entry(t).or_default().extend(c);
            }
        }
        self.incomplete.extend(other.incomplete);
    }
}

/// Inspector's counts are refreshed about daily: an image it saw in use within this window is
/// still treated as in use even when the latest count is zero.
pub const INSPECTOR_RECENT_HOURS: i64 = 24;

/// Whether Inspector's metadata says an image is in use.
pub fn inspector_in_use(
    in_use_count: Option<i64>,
    last_in_use_at: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    in_use_count.unwrap_or(0) > 0
        || last_in_use_at.is_some_and(|t| {
            now.duration_since(t) <= jiff::SignedDuration::from_hours(INSPECTOR_RECENT_HOURS)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(digest: &str, tags: &[&str]) -> Image {
        Image {
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            size_bytes: 1 << 20,
            last_pulled_at: None,
            status: ecr_lifecycle::ImageStatus::Active,
            last_archived_at: None,
            last_activated_at: None,
            manifest_media_type: None,
            referenced_by_manifest_lists: Vec::new(),
        }
    }

    fn svc(account: &str, name: &str) -> Consumer {
        Consumer::new(InUseSource::Ecs, account, "us-east-1", name.to_string())
    }

    #[test]
    fn image_uris_resolve_to_repository_and_reference() {
        let r =
            parse_image_uri("111111111111.dkr.ecr.eu-west-1.amazonaws.com/team/api:v1.2").unwrap();
        assert_eq!(
            (
                r.account_id.as_str(),
                r.region.as_str(),
                r.repository.as_str()
            ),
            ("111111111111", "eu-west-1", "team/api")
        );
        assert_eq!(r.reference, Reference::Tag("v1.2".into()));
        let r = parse_image_uri("111111111111.dkr.ecr.us-east-1.amazonaws.com/api:v1@sha256:abcd")
            .unwrap();
        assert_eq!(r.repository, "api");
        assert_eq!(r.reference, Reference::Digest("sha256:abcd".into()));
        let r = parse_image_uri("111111111111.dkr.ecr.cn-north-1.amazonaws.com.cn/api").unwrap();
        assert_eq!(r.reference, Reference::Tag("latest".into()));
        assert_eq!(r.region, "cn-north-1");
        let r =
            parse_image_uri("111111111111.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a/b:c").unwrap();
        assert_eq!(r.repository, "a/b");
        // Not ECR.
        assert!(parse_image_uri("nginx:1.27").is_none());
        assert!(parse_image_uri("docker.io/library/nginx:1.27").is_none());
        assert!(parse_image_uri("public.ecr.aws/nginx/nginx:1").is_none());
        assert!(parse_image_uri("12345.dkr.ecr.us-east-1.amazonaws.com/api:v1").is_none());
        // A registry port is not a tag.
        assert!(parse_image_uri("localhost:5000/api").is_none());
    }

    #[test]
    fn inspector_resource_ids_resolve_to_digests() {
        let r = parse_inspector_resource_id(
            "arn:aws:ecr:us-east-1:222222222222:repository/team/api/sha256:feed",
        )
        .unwrap();
        assert_eq!(r.account_id, "222222222222");
        assert_eq!(r.repository, "team/api");
        assert_eq!(r.reference, Reference::Digest("sha256:feed".into()));
        assert!(parse_inspector_resource_id("arn:aws:ecr:us-east-1:2:repository/api").is_none());
        assert!(parse_inspector_resource_id("i-0123456789").is_none());
    }

    #[test]
    fn inspector_counts_and_recent_use() {
        let now: Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        assert!(inspector_in_use(Some(2), None, now));
        assert!(inspector_in_use(
            Some(0),
            Some("2026-11-22T00:00:00Z".parse().unwrap()),
            now
        ));
        assert!(!inspector_in_use(
            Some(0),
            Some("2026-11-20T00:00:00Z".parse().unwrap()),
            now
        ));
        assert!(!inspector_in_use(None, None, now));
    }

    #[test]
    fn consumers_by_digest_tag_and_index_across_accounts() {
        let mut index = InUseIndex::default();
        let repo = |reference| ImageRef {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            repository: "api".into(),
            reference,
        };
        // A service in another account runs api:v1; a function pins a digest.
        index.add(
            repo(Reference::Tag("v1".into())),
            svc("222222222222", "prod/web"),
        );
        index.add(
            repo(Reference::Digest("sha256:b".into())),
            svc("111111111111", "ops/cron"),
        );
        index.add(
            repo(Reference::Digest("sha256:idx".into())),
            svc("333333333333", "edge/proxy"),
        );
        // Same consumer twice is one consumer.
        index.add(
            repo(Reference::Tag("v1".into())),
            svc("222222222222", "prod/web"),
        );
        let mut child = image("sha256:child", &[]);
        child.referenced_by_manifest_lists = vec!["sha256:idx".into()];
        let images = vec![
            image("sha256:a", &["v1", "latest"]),
            image("sha256:b", &[]),
            image("sha256:c", &["v2"]),
            image("sha256:idx", &["multi"]),
            child,
        ];
        let c = index.consumers("111111111111", "us-east-1", "api", &images);
        assert_eq!(c[0], vec![svc("222222222222", "prod/web")]);
        assert_eq!(c[1], vec![svc("111111111111", "ops/cron")]);
        assert!(c[2].is_empty());
        assert_eq!(c[3], vec![svc("333333333333", "edge/proxy")]);
        assert_eq!(c[4], vec![svc("333333333333", "edge/proxy")]);
        // Other repositories, regions and accounts are not affected.
        assert!(index
            .consumers("111111111111", "eu-west-1", "api", &images)
            .iter()
            .all(Vec::is_empty));
        assert!(index
            .consumers("222222222222", "us-east-1", "api", &images)
            .iter()
            .all(Vec::is_empty));
        assert_eq!(index.references(), 3);
        assert_eq!(
            svc("222222222222", "prod/web").to_string(),
            "ecs 222222222222 us-east-1 prod/web"
        );
    }

    #[test]
    fn merged_indexes_keep_failures() {
        let mut a = InUseIndex::default();
        let mut b = InUseIndex::default();
        b.add(
            parse_image_uri("111111111111.dkr.ecr.us-east-1.amazonaws.com/api:v1").unwrap(),
            svc("222222222222", "prod/web"),
        );
        b.incomplete.push(SourceFailure {
            source: Some(InUseSource::Lambda),
            account_id: "222222222222".into(),
            region: Some("us-east-1".into()),
            error: "lambda:ListFunctions: AccessDeniedException".into(),
        });
        a.merge(b);
        assert_eq!(a.references(), 1);
        assert!(!a.is_complete());
        assert_eq!(
            a.incomplete[0].to_string(),
            "lambda 222222222222 us-east-1: lambda:ListFunctions: AccessDeniedException"
        );
    }
}
