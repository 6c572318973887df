//! Times `evaluate` on a repository at the ECR image quota (100,000 images) with a ten-rule
//! policy. Run with `cargo bench -p ecr-lifecycle --bench evaluate`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ecr_lifecycle::{evaluate, parse_policy, Image, ImageStatus};
use jiff::{SignedDuration, Timestamp};

const IMAGES: usize = 100_000;
const ITERATIONS: usize = 15;

const POLICY: &str = r#"{"rules": [
  {"rulePriority": 1, "description": "keep production",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 9999},
   "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "keep the last 50 releases",
   "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 50},
   "action": {"type": "transition", "targetStorageClass": "archive"}},
  {"rulePriority": 3, "description": "archive old release candidates",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["release-*-rc*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 60},
   "action": {"type": "transition", "targetStorageClass": "archive"}},
  {"rulePriority": 4, "description": "keep 20 dev builds",
   "selection": {"tagStatus": "tagged", "tagPrefixList": ["dev-"], "countType": "imageCountMoreThan", "countNumber": 20},
   "action": {"type": "expire"}},
  {"rulePriority": 5, "description": "feature branches live two weeks",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["feature-*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
   "action": {"type": "expire"}},
  {"rulePriority": 6, "description": "archive unused commit builds",
   "selection": {"tagStatus": "tagged", "tagPrefixList": ["sha-"], "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 30},
   "action": {"type": "transition", "targetStorageClass": "archive"}},
  {"rulePriority": 7, "description": "nightlies",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["nightly-*-*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
   "action": {"type": "expire"}},
  {"rulePriority": 8, "description": "untagged after a week",
   "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
   "action": {"type": "expire"}},
  {"rulePriority": 9, "description": "cap everything else",
   "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 500},
   "action": {"type": "transition", "targetStorageClass": "archive"}},
  {"rulePriority": 10, "description": "delete after half a year in archive",
   "selection": {"tagStatus": "any", "storageClass": "archive", "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 180},
   "action": {"type": "expire"}}
]}"#;

/// xorshift64*: deterministic data without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn repository(now: Timestamp) -> Vec<Image> {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let ago = |seconds: u64| now - SignedDuration::from_secs(seconds as i64);
    let mut images = Vec::with_capacity(IMAGES);
    for i in 0..IMAGES {
        let tags: Vec<String> = match random.below(10) {
            0..=2 => Vec::new(),
            3 => vec![
                format!("v1.{}.{}", i / 100, i % 100),
                format!("sha-{i:07x}"),
            ],
            4 => vec![format!("dev-{i}")],
            5 => vec![format!("feature-{}-{i}", random.below(40))],
            6 => vec![format!("sha-{i:07x}")],
            7 => vec![format!("nightly-2025-{i}"), "latest-nightly".to_string()],
            8 => vec![format!("release-{}-rc{}", i / 10, i % 10)],
            _ => vec![format!("prod-{i}"), format!("sha-{i:07x}")],
        };
        let archived = random.below(20) == 0;
        let pushed = random.below(400 * 86_400);
        images.push(Image {
            digest: format!("sha256:{:016x}{i:08x}", random.next()),
            tags,
            pushed_at: ago(pushed),
            size_bytes: 10_000_000 + random.below(500_000_000),
            last_pulled_at: (random.below(3) == 0).then(|| ago(random.below(pushed + 1))),
            status: if archived {
                ImageStatus::Archived
            } else {
                ImageStatus::Active
            },
            last_archived_at: archived.then(|| ago(random.below(365 * 86_400))),
            last_activated_at: None,
            manifest_media_type: None,
            referenced_by_manifest_lists: Vec::new(),
        });
    }
    // Every 50th image is a multi-arch index over the two images after it.
    for i in (0..IMAGES - 2).step_by(50) {
        let index = images[i].digest.clone();
        images[i + 1]
            .referenced_by_manifest_lists
            .push(index.clone());
        images[i + 2].referenced_by_manifest_lists.push(index);
    }
    images
}

fn main() {
    let policy = parse_policy(POLICY).expect("the bench policy is valid");
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("valid timestamp");
    let images = repository(now);

    let first = evaluate(&policy, &images, now);
    let mut times: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        let actions = evaluate(black_box(&policy), black_box(&images), now);
        times.push(started.elapsed());
        assert_eq!(actions.len(), first.len());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    println!(
        "evaluate: {IMAGES} images, {} rules, {} actions; {ITERATIONS} runs: min {:.2} ms, median {:.2} ms, max {:.2} ms",
        policy.rules.len(),
        first.len(),
        ms(times[0]),
        ms(times[ITERATIONS / 2]),
        ms(times[ITERATIONS - 1]),
    );
}
