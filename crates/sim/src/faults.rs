//! Load faults shared by the test fault proxy and the synthetic server
//! ([`crate::server`]): added latency per call, random throttling from a seeded generator,
//! and token-bucket quotas per account, region and class of operation, as a busy AWS
//! account shows them.
//!
//! Both servers ask [`LoadState::admit`] before answering a request; a `false` means
//! "answer with a throttling error". Throttled answers are counted per operation.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Load faults to inject. The default injects nothing.
#[derive(Clone, Debug, Default)]
pub struct LoadRules {
    /// Added to every call (throttled or not) before it is answered.
    pub latency: Option<Duration>,
    /// Throttle this share of calls at random.
    pub random_throttle: Option<RandomThrottle>,
    /// Token buckets per account, region and [`QuotaClass`].
    pub quotas: Option<Quotas>,
}

impl LoadRules {
    /// No faults, only latency.
    pub fn latency(latency: Duration) -> LoadRules {
        LoadRules {
            latency: Some(latency),
            ..LoadRules::default()
        }
    }

    /// `percent` % of ECR and tagging calls throttled, from a generator seeded with `seed`.
    pub fn random_throttle(percent: f64, seed: u64) -> LoadRules {
        LoadRules {
            random_throttle: Some(RandomThrottle::new(percent, seed)),
            ..LoadRules::default()
        }
    }

    /// The quotas of [`Quotas::default`].
    pub fn quotas(quotas: Quotas) -> LoadRules {
        LoadRules {
            quotas: Some(quotas),
            ..LoadRules::default()
        }
    }

    /// Whether answering needs the caller's account (only the quotas do).
    pub fn needs_account(&self, op: &str) -> bool {
        self.quotas.is_some() && QuotaClass::of(op).is_some()
    }

    /// A short human description, for benchmark tables.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(latency) = self.latency {
            parts.push(format!("{} ms per call", latency.as_millis()));
        }
        if let Some(random) = &self.random_throttle {
            parts.push(format!(
                "{}% of {} calls throttled",
                random.percent,
                random.services.join("/")
            ));
        }
        if let Some(q) = &self.quotas {
            parts.push(format!(
                "quotas per account-region: reads {}/s, puts {}/s, tag pages {}/s",
                q.reads_per_second, q.puts_per_second, q.tag_pages_per_second
            ));
        }
        if parts.is_empty() {
            "no faults".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Random throttling of a share of calls.
#[derive(Clone, Debug)]
pub struct RandomThrottle {
    /// Share of calls throttled, 0 to 100.
    pub percent: f64,
    pub seed: u64,
    /// Services (signing names) whose calls may be throttled: `ecr` and `tagging` by
    /// default, the services whose quotas other clients of an account share.
    pub services: Vec<String>,
}

impl RandomThrottle {
    pub fn new(percent: f64, seed: u64) -> RandomThrottle {
        assert!(
            (0.0..=100.0).contains(&percent),
            "throttle percent {percent} not in 0..=100"
        );
        RandomThrottle {
            percent,
            seed,
            services: vec!["ecr".into(), "tagging".into()],
        }
    }
}

/// Token-bucket quotas, per account and region, one bucket per [`QuotaClass`]. A bucket
/// holds at most `burst_seconds` x its rate tokens and starts full.
#[derive(Clone, Debug)]
pub struct Quotas {
    pub reads_per_second: f64,
    pub puts_per_second: f64,
    pub tag_pages_per_second: f64,
    pub burst_seconds: f64,
}

impl Default for Quotas {
    /// Reads 20/s, puts 5/s, tag pages 5/s, one second of burst.
    fn default() -> Quotas {
        Quotas {
            reads_per_second: 20.0,
            puts_per_second: 5.0,
            tag_pages_per_second: 5.0,
            burst_seconds: 1.0,
        }
    }
}

impl Quotas {
    fn rate(&self, class: QuotaClass) -> f64 {
        match class {
            QuotaClass::Read => self.reads_per_second,
            QuotaClass::Put => self.puts_per_second,
            QuotaClass::TagPage => self.tag_pages_per_second,
        }
    }
}

/// Which bucket an operation draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaClass {
    /// ECR reads: DescribeRepositories, ListTagsForResource, GetLifecyclePolicy, ...
    Read,
    /// ECR lifecycle policy writes: PutLifecyclePolicy, DeleteLifecyclePolicy.
    Put,
    /// `tagging:GetResources` pages.
    TagPage,
}

impl QuotaClass {
    /// The class of `service:Operation`; `None` for calls without a quota here
    /// (Organizations, STS, other ECR writes).
    pub fn of(op: &str) -> Option<QuotaClass> {
        let (service, name) = op.split_once(':')?;
        match service {
            "tagging" if name == "GetResources" => Some(QuotaClass::TagPage),
            "ecr" if name == "PutLifecyclePolicy" || name == "DeleteLifecyclePolicy" => {
                Some(QuotaClass::Put)
            }
            "ecr"
                if name.starts_with("Describe")
                    || name.starts_with("List")
                    || name.starts_with("Get")
                    || name.starts_with("BatchGet") =>
            {
                Some(QuotaClass::Read)
            }
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The moving parts of [`LoadRules`]: the generator, the buckets, the counts.
#[derive(Debug)]
pub struct LoadState {
    rng: fastrand::Rng,
    seed: Option<u64>,
    buckets: HashMap<(String, String, QuotaClass), Bucket>,
    /// Throttled answers per `service:Operation`.
    throttled: BTreeMap<String, u64>,
}

impl Default for LoadState {
    fn default() -> LoadState {
        LoadState {
            rng: fastrand::Rng::with_seed(0),
            seed: None,
            buckets: HashMap::new(),
            throttled: BTreeMap::new(),
        }
    }
}

impl LoadState {
    /// Whether the call `op` (`service:Operation`) of `account` in `region` may be answered
    /// now; `false` means throttle it (and it is counted as throttled). `account` is only
    /// needed with quotas: an unknown caller then shares the bucket of account `?`.
    pub fn admit(
        &mut self,
        rules: &LoadRules,
        op: &str,
        account: Option<&str>,
        region: &str,
    ) -> bool {
        let service = op.split(':').next().unwrap_or_default();
        if let Some(random) = &rules.random_throttle {
            if self.seed != Some(random.seed) {
                // A new seed (new rules) restarts the sequence, so runs are repeatable.
                self.rng = fastrand::Rng::with_seed(random.seed);
                self.seed = Some(random.seed);
            }
            if random.services.iter().any(|s| s == service)
                && self.rng.f64() * 100.0 < random.percent
            {
                return self.throttle(op);
            }
        }
        if let (Some(quotas), Some(class)) = (&rules.quotas, QuotaClass::of(op)) {
            let rate = quotas.rate(class);
            let capacity = (rate * quotas.burst_seconds).max(1.0);
            let now = Instant::now();
            let key = (
                account.unwrap_or("?").to_string(),
                region.to_string(),
                class,
            );
            let bucket = self.buckets.entry(key).or_insert(Bucket {
                tokens: capacity,
                updated: now,
            });
            let elapsed = now.duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
            bucket.updated = now;
            if bucket.tokens < 1.0 {
                return self.throttle(op);
            }
            bucket.tokens -= 1.0;
        }
        true
    }

    fn throttle(&mut self, op: &str) -> bool {
        *self.throttled.entry(op.to_string()).or_default() += 1;
        false
    }

    /// Counts a throttled answer decided elsewhere (the proxy's first-N throttles).
    pub fn count_throttled(&mut self, op: &str) {
        self.throttle(op);
    }

    /// Throttled answers per `service:Operation`.
    pub fn throttled(&self) -> &BTreeMap<String, u64> {
        &self.throttled
    }

    /// Forgets the counts, refills every bucket and restarts the random sequence, so that
    /// every measured run meets the same faults.
    pub fn reset(&mut self) {
        self.throttled.clear();
        self.buckets.clear();
        self.seed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(
            QuotaClass::of("ecr:GetLifecyclePolicy"),
            Some(QuotaClass::Read)
        );
        assert_eq!(
            QuotaClass::of("ecr:PutLifecyclePolicy"),
            Some(QuotaClass::Put)
        );
        assert_eq!(
            QuotaClass::of("tagging:GetResources"),
            Some(QuotaClass::TagPage)
        );
        assert_eq!(QuotaClass::of("sts:AssumeRole"), None);
    }

    #[test]
    fn random_throttling_is_seeded_and_near_its_share() {
        let rules = LoadRules::random_throttle(30.0, 7);
        let run = || {
            let mut state = LoadState::default();
            (0..10_000)
                .map(|_| state.admit(&rules, "ecr:GetLifecyclePolicy", None, "us-east-1"))
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run(), "same seed, same sequence");
        let throttled = first.iter().filter(|ok| !**ok).count();
        assert!((2_700..3_300).contains(&throttled), "{throttled} of 10000");
        let mut state = LoadState::default();
        for _ in 0..1000 {
            assert!(state.admit(&rules, "sts:AssumeRole", None, "us-east-1"));
            assert!(state.admit(&rules, "organizations:ListAccounts", None, "us-east-1"));
        }
    }

    #[test]
    fn buckets_are_per_account_region_and_class() {
        let rules = LoadRules::quotas(Quotas {
            reads_per_second: 3.0,
            puts_per_second: 1.0,
            tag_pages_per_second: 1.0,
            burst_seconds: 1.0,
        });
        let mut state = LoadState::default();
        let read = "ecr:GetLifecyclePolicy";
        let admitted = (0..5)
            .filter(|_| state.admit(&rules, read, Some("111111111111"), "us-east-1"))
            .count();
        assert_eq!(admitted, 3, "a full bucket of 3, then throttles");
        assert!(state.admit(&rules, read, Some("111111111111"), "eu-west-1"));
        assert!(state.admit(&rules, read, Some("222222222222"), "us-east-1"));
        assert!(state.admit(
            &rules,
            "ecr:PutLifecyclePolicy",
            Some("111111111111"),
            "us-east-1"
        ));
        assert_eq!(state.throttled().get(read), Some(&2));
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            state.admit(&rules, read, Some("111111111111"), "us-east-1"),
            "refilled at 3 per second"
        );
    }
}
