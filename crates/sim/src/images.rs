//! Images of the synthetic fleet, and the Lambda functions that run some of them.
//!
//! A repository's images are not stored: they are drawn again, the same every time, from
//! the fleet's seed and the repository's account, region and name, so 100,000
//! repositories cost no memory for them. Each holds [`SynthRepo::image_count`] images:
//! pushed up to 400 days before the server started, untagged or tagged `ci-N` or
//! `release-1.N` (the newest tagged one also `latest`), 20 to 600 MiB, about half of them
//! pulled since.
//! A repository marked [`SynthRepo::in_use`] also holds an untagged image pushed 60 days
//! ago that a Lambda function of its account-region runs, by digest: an image a template
//! expiring old untagged images would remove, which the in-use check must protect.
//!
//! Answers ECR `DescribeImages` (pages of `maxResults`, default 100, `nextToken`) and
//! Lambda `ListFunctions` (pages of `MaxItems`, default 50, `Marker`) and `GetFunction`
//! (`Code.ImageUri` and `Code.ResolvedImageUri`).

use serde_json::{json, Value};

use crate::ecr::ecr_page;
use crate::http::{form_field, Request, Response};
use crate::org::parse_offset;
use crate::server::{State, SynthRepo};
use crate::wire::{json_ok, rest_error, rest_ok, Operation, LAMBDA_FUNCTIONS};

const DAY: i64 = 86_400;
const MIB: u64 = 1 << 20;

/// Age of the image a Lambda function runs, in days.
pub const IN_USE_AGE_DAYS: i64 = 60;

/// One image as DescribeImages lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthImage {
    pub digest: String,
    pub tags: Vec<String>,
    /// Epoch seconds.
    pub pushed_at: i64,
    pub size_bytes: u64,
    pub last_pulled_at: Option<i64>,
}

/// FNV-1a of the parts, separated, so each repository gets its own generator.
fn repo_seed(seed: u64, parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

fn digest(rng: &mut fastrand::Rng) -> String {
    let words: Vec<String> = (0..4).map(|_| format!("{:016x}", rng.u64(..))).collect();
    format!("sha256:{}", words.concat())
}

/// The images of `repo` (of `account` and `region`), newest first; ages count back from
/// `epoch` (epoch seconds).
pub fn images_of(
    seed: u64,
    epoch: i64,
    account: &str,
    region: &str,
    repo: &SynthRepo,
) -> Vec<SynthImage> {
    let mut rng = fastrand::Rng::with_seed(repo_seed(seed, &[account, region, &repo.name]));
    let mut images: Vec<SynthImage> = (0..repo.image_count)
        .map(|i| {
            let age_days = rng.i64(0..400);
            let tags = match (i, rng.u8(0..10)) {
                (0, _) => vec![format!("release-1.{i}")],
                (_, 0..=3) => Vec::new(),
                (_, 4..=6) => vec![format!("ci-{i}")],
                _ => vec![format!("release-1.{i}")],
            };
            let pushed_at = epoch - age_days * DAY - rng.i64(0..DAY);
            let last_pulled_at = rng
                .bool()
                .then(|| epoch - rng.i64(0..=age_days) * DAY)
                .filter(|pulled| *pulled >= pushed_at);
            SynthImage {
                digest: digest(&mut rng),
                tags,
                pushed_at,
                size_bytes: rng.u64(20..600) * MIB,
                last_pulled_at,
            }
        })
        .collect();
    if repo.in_use {
        images.push(SynthImage {
            digest: digest(&mut rng),
            tags: Vec::new(),
            pushed_at: epoch - IN_USE_AGE_DAYS * DAY,
            size_bytes: 250 * MIB,
            last_pulled_at: None,
        });
    }
    images.sort_by_key(|image| std::cmp::Reverse(image.pushed_at));
    // The first image always has a tag, so some image is `latest`: the newest tagged one.
    if let Some(newest) = images.iter_mut().find(|image| !image.tags.is_empty()) {
        newest.tags.insert(0, "latest".to_string());
    }
    images
}

/// The image a Lambda function runs in `repo`, if it is [`SynthRepo::in_use`].
pub fn in_use_image(
    seed: u64,
    epoch: i64,
    account: &str,
    region: &str,
    repo: &SynthRepo,
) -> Option<SynthImage> {
    if !repo.in_use {
        return None;
    }
    images_of(seed, epoch, account, region, repo)
        .into_iter()
        .find(|image| image.pushed_at == epoch - IN_USE_AGE_DAYS * DAY && image.tags.is_empty())
}

pub(crate) fn describe_images(
    seed: u64,
    epoch: i64,
    account: &str,
    region: &str,
    repo: &SynthRepo,
    body: &Value,
) -> Response {
    let (max, offset) = match ecr_page(body, "synth-images-") {
        Ok(page) => page,
        Err(response) => return response,
    };
    let images = images_of(seed, epoch, account, region, repo);
    let end = (offset + max).min(images.len());
    let details: Vec<Value> = images[offset.min(end)..end]
        .iter()
        .map(|image| {
            let mut detail = json!({
                "registryId": account,
                "repositoryName": repo.name,
                "imageDigest": image.digest,
                "imageSizeInBytes": image.size_bytes,
                "imagePushedAt": image.pushed_at,
                "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactMediaType": "application/vnd.oci.image.config.v1+json",
                "imageStatus": "ACTIVE",
            });
            if !image.tags.is_empty() {
                detail["imageTags"] = json!(image.tags);
            }
            if let Some(pulled) = image.last_pulled_at {
                detail["lastRecordedPullTime"] = json!(pulled);
            }
            detail
        })
        .collect();
    let mut answer = json!({"imageDetails": details});
    if end < images.len() {
        answer["nextToken"] = json!(format!("synth-images-{end}"));
    }
    json_ok(&answer)
}

fn function_json(account: &str, region: &str, name: &str) -> Value {
    json!({
        "FunctionName": name,
        "FunctionArn": format!("arn:aws:lambda:{region}:{account}:function:{name}"),
        "PackageType": "Image",
        "Version": "$LATEST",
        "LastModified": "2026-01-01T00:00:00.000+0000",
    })
}

/// Lambda `ListFunctions` and `GetFunction` in the caller's account-region.
pub(crate) fn lambda(
    state: &State,
    request: &Request,
    op: &Operation,
    account: &str,
    region: &str,
) -> Option<Response> {
    let here = state
        .accounts
        .get(account)
        .and_then(|a| a.regions.get(region));
    let functions = here.map_or(&[][..], |r| r.functions.as_slice());
    match op.name.as_str() {
        "ListFunctions" => {
            let query = request.query().as_bytes();
            let max = form_field(query, "MaxItems")
                .and_then(|m| m.parse::<usize>().ok())
                .unwrap_or(50)
                .clamp(1, 10_000);
            let marker = form_field(query, "Marker");
            let Ok(offset) = parse_offset(marker.as_deref(), "synth-functions-") else {
                return Some(rest_error(
                    400,
                    "InvalidParameterValueException",
                    "Invalid Marker",
                ));
            };
            let end = (offset + max).min(functions.len());
            let page: Vec<Value> = functions[offset.min(end)..end]
                .iter()
                .map(|(name, _)| function_json(account, region, name))
                .collect();
            let mut answer = json!({"Functions": page});
            if end < functions.len() {
                answer["NextMarker"] = json!(format!("synth-functions-{end}"));
            }
            Some(rest_ok(&answer))
        }
        "GetFunction" => {
            let name = request
                .path()
                .strip_prefix(LAMBDA_FUNCTIONS)
                .unwrap_or_default()
                .trim_matches('/');
            let found = functions
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, i)| {
                    let repo = &here?.repos[*i];
                    let image = in_use_image(state.seed, state.epoch, account, region, repo)?;
                    Some((repo, image))
                });
            let Some((repo, image)) = found else {
                return Some(rest_error(
                    404,
                    "ResourceNotFoundException",
                    &format!(
                        "Function not found: arn:aws:lambda:{region}:{account}:function:{name}"
                    ),
                ));
            };
            let uri = format!("{account}.dkr.ecr.{region}.amazonaws.com/{}", repo.name);
            Some(rest_ok(&json!({
                "Configuration": function_json(account, region, name),
                "Code": {
                    "RepositoryType": "ECR",
                    "ImageUri": format!("{uri}@{}", image.digest),
                    "ResolvedImageUri": format!("{uri}@{}", image.digest),
                },
            })))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::RepoKind;

    fn repo(name: &str, image_count: u8, in_use: bool) -> SynthRepo {
        SynthRepo {
            name: name.into(),
            tags: Vec::new(),
            policy: None,
            puts: 0,
            deleted: false,
            vanish_after_listing: false,
            kind: RepoKind::Missing,
            image_count,
            in_use,
        }
    }

    #[test]
    fn images_are_the_same_every_time_and_differ_between_repositories() {
        let epoch = 1_800_000_000;
        let a = images_of(1, epoch, "1", "r", &repo("a", 8, false));
        assert_eq!(a, images_of(1, epoch, "1", "r", &repo("a", 8, false)));
        assert_eq!(a.len(), 8);
        assert_ne!(a, images_of(1, epoch, "1", "r", &repo("b", 8, false)));
        assert_ne!(a, images_of(2, epoch, "1", "r", &repo("a", 8, false)));
        assert!(a.windows(2).all(|w| w[0].pushed_at >= w[1].pushed_at));
        let latest = a.iter().filter(|i| i.tags.iter().any(|t| t == "latest"));
        assert_eq!(latest.count(), 1);
        let newest_tagged = a.iter().find(|i| !i.tags.is_empty()).unwrap();
        assert_eq!(newest_tagged.tags[0], "latest");
        let used = repo("a", 8, true);
        let image = in_use_image(1, epoch, "1", "r", &used).unwrap();
        assert!(image.tags.is_empty());
        assert_eq!(images_of(1, epoch, "1", "r", &used).len(), 9);
        assert_eq!(in_use_image(1, epoch, "1", "r", &repo("a", 8, false)), None);
    }
}
