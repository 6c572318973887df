//! Every ECR and tagging call of an account-region goes through [`Calls::call`]: the stop flag
//! is checked, the call is paced by the account-region's rate controller, it runs under the
//! global and per-account-region caps, and it is retried with full-jitter exponential backoff.
//! A call waiting for its retry holds no permit, so a throttled account-region never starves
//! the others.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tokio::sync::Semaphore;

use super::error::AwsError;
use super::limits::{ExecutionLimits, RetryMode};
use super::rate::{RateController, SharedPaces};
use super::ApiStats;

/// Set once the run is asked to stop (Ctrl-C, SIGTERM): no new call starts.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Quota classes: ECR throttles reads, writes and the tagging API separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallClass {
    Read,
    Write,
    TagPage,
}

/// A send slot taken ahead of its call (see [`Calls::take_slot`]).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    class: CallClass,
    first: FirstAttempt,
}

/// How the first attempt of a call goes.
#[derive(Debug, Clone, Copy)]
enum FirstAttempt {
    /// It waits for a slot of its class, as retries do.
    Paced,
    /// In a slot reserved at `pace`, unless the pace changed since.
    Reserved { pace: u64 },
    /// At once: it rides on a slot of another class (see [`Slot::riding`]).
    Riding,
}

impl Slot {
    /// No slot taken: the first attempt waits for one of `class`, as retries do.
    pub fn paced(class: CallClass) -> Slot {
        Slot {
            class,
            first: FirstAttempt::Paced,
        }
    }

    /// The first attempt of a `class` call made in a slot taken for another call, whose
    /// pace it follows (a write's re-check of the exception tag goes in the write's slot):
    /// it does not also wait for a slot of its own class. Retries do.
    pub fn riding(class: CallClass) -> Slot {
        Slot {
            class,
            first: FirstAttempt::Riding,
        }
    }
}

/// What every account-region of a run shares.
#[derive(Debug, Clone)]
pub struct RunLimits {
    global: Arc<Semaphore>,
    per_target: usize,
    max_attempts: u32,
    /// Retries and pacing are ours (`standard`); with `adaptive` the SDK retries inside each
    /// call, as 0.1 did.
    own_retries: bool,
    pub stop: Stop,
    stats: ApiStats,
    /// What the account-regions found about each class's quota (by `CallClass`).
    paces: Arc<[Arc<SharedPaces>; 3]>,
}

impl RunLimits {
    pub fn new(execution: &ExecutionLimits, stats: ApiStats, stop: Stop) -> RunLimits {
        RunLimits {
            global: Arc::new(Semaphore::new(execution.concurrency.max(1))),
            per_target: execution.per_region_concurrency.max(1),
            max_attempts: execution.max_attempts.max(1),
            own_retries: execution.retry_mode == RetryMode::Standard,
            stop,
            stats,
            paces: Arc::new([SharedPaces::new(), SharedPaces::new(), SharedPaces::new()]),
        }
    }
}

/// The call gate of one account-region.
#[derive(Debug, Clone)]
pub struct Calls {
    run: RunLimits,
    local: Arc<Semaphore>,
    rates: Arc<[Mutex<RateController>; 3]>,
    /// Where requests go, for errors that never reached the service.
    endpoints: Arc<Endpoints>,
}

#[derive(Debug)]
pub struct Endpoints {
    pub ecr: String,
    pub tagging: String,
}

/// Where each class starts: reads at a pace that slow-starts upward (see
/// `RateController::slow_start`), writes and tag pages, of which an account-region makes few,
/// at a modest pace that rises while nothing is throttled.
const INITIAL_READS_PER_SECOND: f64 = 20.0;
const INITIAL_WRITES_PER_SECOND: f64 = 10.0;
const INITIAL_TAG_PAGES_PER_SECOND: f64 = 10.0;

/// Retries back off with full jitter from this base. Quotas are met by pacing (see
/// `rate`), so the backoff only has to spread retries, not find the quota: a short base
/// keeps random throttling from other clients cheap. The cap is short too: a run lasts as
/// long as its unluckiest call, and under 30% random throttling some call of a few
/// thousand is throttled seven times in a row, which a 20 s cap would let wait seconds
/// per retry. Retries wait for a paced slot like any call, so they cannot flood a quota.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(50);
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Full jitter: uniform in [0, min(cap, base * 2^retry)).
fn backoff(retry: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << retry.min(16))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(fastrand::f64())
}

impl Calls {
    pub fn new(run: &RunLimits, endpoints: Endpoints) -> Calls {
        let [reads, writes, tag_pages] = &*run.paces;
        Calls {
            run: run.clone(),
            local: Arc::new(Semaphore::new(run.per_target)),
            rates: Arc::new([
                Mutex::new(RateController::slow_start(INITIAL_READS_PER_SECOND).sharing(reads)),
                Mutex::new(
                    RateController::starting_at(Some(INITIAL_WRITES_PER_SECOND)).sharing(writes),
                ),
                Mutex::new(
                    RateController::starting_at(Some(INITIAL_TAG_PAGES_PER_SECOND))
                        .sharing(tag_pages),
                ),
            ]),
            endpoints: Arc::new(endpoints),
        }
    }

    pub fn stop(&self) -> &Stop {
        &self.run.stop
    }

    /// The rate controller of `class`, locked (never across an await).
    fn rate(&self, class: CallClass) -> MutexGuard<'_, RateController> {
        self.rates[class as usize].lock().expect("rate lock")
    }

    fn still_paced(&self, class: CallClass, pace: u64) -> bool {
        self.rate(class).still_paced(pace)
    }

    fn record(&self, class: CallClass, sent: Instant, throttled: bool) {
        let _span = tracing::debug_span!("pace", ?class).entered();
        self.rate(class).record(sent, Instant::now(), throttled);
    }

    /// Wait for this class's next send slot; returns the pace it was reserved at. A slot
    /// reserved before a cut is not used at the old pace: a new one is reserved.
    async fn wait_for_slot(&self, class: CallClass) -> u64 {
        loop {
            let (wait, pace) = self.rate(class).reserve(Instant::now());
            if wait.is_zero() {
                return pace;
            }
            tokio::time::sleep(wait).await;
            if self.still_paced(class, pace) {
                return pace;
            }
        }
    }

    /// Take the next send slot of `class` now, without waiting for its time: the calls
    /// that come after wait one interval longer.
    fn take_slot_now(&self, class: CallClass) {
        if self.run.own_retries {
            self.rate(class).reserve(Instant::now());
        }
    }

    /// Take a send slot of `class` ahead of the call it is for ([`Calls::call_in`]), so that
    /// what must happen just before that call (a write's re-check) goes at its pace.
    pub async fn take_slot(&self, class: CallClass) -> Slot {
        let first = match self.paced_slot(class).await {
            Some(pace) => FirstAttempt::Reserved { pace },
            None => FirstAttempt::Paced,
        };
        Slot { class, first }
    }

    /// A send slot when the pacing is ours; with the SDK's adaptive mode, none.
    async fn paced_slot(&self, class: CallClass) -> Option<u64> {
        if self.run.own_retries {
            Some(self.wait_for_slot(class).await)
        } else {
            None
        }
    }

    /// Make one API call (`make` builds and sends it; it is called again for each attempt).
    pub async fn call<T, E, F, Fut>(
        &self,
        class: CallClass,
        operation: &'static str,
        make: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.call_in(Slot::paced(class), operation, make).await
    }

    /// [`Calls::call`], whose first attempt goes in `slot` (taken with
    /// [`Calls::take_slot`]) unless the pace changed since.
    pub async fn call_in<T, E, F, Fut>(
        &self,
        slot: Slot,
        operation: &'static str,
        mut make: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let class = slot.class;
        let mut first = Some(slot.first);
        let mut retry = 0u32;
        loop {
            if self.run.stop.is_set() {
                return Err(AwsError::interrupted(operation));
            }
            let pace = match first.take() {
                Some(FirstAttempt::Riding) => {
                    // It does not wait, but it counts: the calls of its class that come
                    // next are spaced after it.
                    self.take_slot_now(class);
                    None
                }
                Some(FirstAttempt::Reserved { pace }) if self.still_paced(class, pace) => {
                    Some(pace)
                }
                _ => self.paced_slot(class).await,
            };
            let attempt = loop {
                // Local first: a target at its own cap holds no global permit while it waits.
                let local = self.local.acquire().await.expect("semaphore never closes");
                let global = self
                    .run
                    .global
                    .acquire()
                    .await
                    .expect("semaphore never closes");
                // Checked again once the call may go: a call queued when the stop came is
                // not started.
                if self.run.stop.is_set() {
                    return Err(AwsError::interrupted(operation));
                }
                // Nor does a call that waited for its permits through a cut go at the old
                // pace: it takes a new slot.
                if pace.is_some_and(|p| !self.still_paced(class, p)) {
                    break None;
                }
                // Calls whose slots came while they waited for permits would go together:
                // one that would exceed a second's worth of its class in the last second
                // gives its permits back and waits.
                if self.run.own_retries {
                    // (The guard is a temporary: released before the sleep.)
                    let wait = self.rate(class).send_wait(Instant::now());
                    if !wait.is_zero() {
                        drop(global);
                        drop(local);
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
                let sent = Instant::now();
                break Some((sent, make().await));
            };
            let Some((sent, result)) = attempt else {
                continue;
            };
            if retry > 0 {
                // Each attempt of ours is a new SDK invocation; count it as a retry of the
                // first, not as another call.
                self.run.stats.attempt_was_retry(operation);
            }
            let error = match result {
                Ok(value) => {
                    if self.run.own_retries {
                        self.record(class, sent, false);
                    }
                    return Ok(value);
                }
                Err(e) => {
                    let endpoint = if operation.starts_with("tagging:") {
                        &self.endpoints.tagging
                    } else {
                        &self.endpoints.ecr
                    };
                    AwsError::from_sdk(operation, &e, endpoint)
                }
            };
            if !self.run.own_retries {
                return Err(error);
            }
            self.record(class, sent, error.is_throttling());
            retry += 1;
            if !error.is_retryable() || retry >= self.run.max_attempts {
                return Err(error);
            }
            tracing::debug!(%error, retry, "retrying");
            tokio::time::sleep(backoff(retry - 1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_riding_on_another_slot_goes_at_once_and_delays_its_class() {
        let run = RunLimits::new(
            &ExecutionLimits::default(),
            ApiStats::default(),
            Stop::default(),
        );
        let endpoints = Endpoints {
            ecr: "http://127.0.0.1:1".to_string(),
            tagging: "http://127.0.0.1:1".to_string(),
        };
        let calls = Calls::new(&run, endpoints);
        let limit = calls.rate(CallClass::Read).limit().unwrap();
        // Three re-checks ride on write slots: none waits, but the next read is spaced after
        // them, so reads and re-checks together keep to the read pace.
        for _ in 0..3 {
            calls.take_slot_now(CallClass::Read);
        }
        let (wait, _) = calls.rate(CallClass::Read).reserve(Instant::now());
        let interval = 1.0 / limit;
        assert!(wait.as_secs_f64() > 1.5 * interval, "{wait:?} at {limit}/s");
        // Writes are a class of their own: untouched.
        let (wait, _) = calls.rate(CallClass::Write).reserve(Instant::now());
        assert_eq!(wait, Duration::ZERO);
    }

    #[test]
    fn backoff_is_jittered_under_an_exponential_ceiling() {
        for retry in 0..20 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << retry.min(16))
                .min(BACKOFF_CAP);
            for _ in 0..50 {
                assert!(backoff(retry) <= ceiling);
            }
        }
        // Jitter: not all the same.
        let samples: std::collections::BTreeSet<u128> =
            (0..20).map(|_| backoff(5).as_micros()).collect();
        assert!(samples.len() > 10);
    }
}
