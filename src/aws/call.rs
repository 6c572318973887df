//! Every ECR and tagging call of an account-region goes through [`Calls::call`]: the stop flag
//! is checked, the call runs under the per-account-region and global caps (writes go first at
//! both; at the global cap account-regions take turns), its class's pacer ([`super::rate`])
//! may hold it back, and it is retried with full-jitter exponential backoff. A call waiting
//! for its pace or its retry holds no permit, so a throttled account-region never starves the
//! others. The design: `docs/rate-control.md`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use priority_semaphore::{Priority, PrioritySemaphore};
use tracing::Instrument;

use super::error::AwsError;
use super::limits::{ExecutionLimits, RetryMode};
use super::rate::Pacer;
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
    /// It waits for the pace of its class, as retries do.
    Paced,
    /// Its slot was taken ahead ([`Calls::take_slot`]), for a token due at this time.
    Taken(Instant),
    /// On the next token of its class, reserved (see [`Slot::riding`]).
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

    /// The first attempt of a `class` call made in a slot taken for another call (a write's
    /// re-check of the exception tag goes in the write's slot): it reserves the next token of
    /// its class instead of waiting in line with that class's calls. Retries wait in line.
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
    /// The run's cap: writes first, then reads in turn by account-region (see [`AtRunCap`]).
    global: Arc<PrioritySemaphore>,
    per_target: usize,
    max_attempts: u32,
    /// Retries and pacing are ours (`standard`); with `adaptive` the SDK retries inside each
    /// call and paces with its own client-side rate limiter.
    own_retries: bool,
    pub stop: Stop,
    stats: ApiStats,
    /// Per [`CallClass`]: what the run heard in it (see [`Pacer::new`]).
    heard: Arc<[Arc<AtomicU64>; 3]>,
}

impl RunLimits {
    pub fn new(execution: &ExecutionLimits, stats: ApiStats, stop: Stop) -> RunLimits {
        RunLimits {
            global: Arc::new(PrioritySemaphore::new(execution.concurrency.max(1))),
            per_target: execution.per_region_concurrency.max(1),
            max_attempts: execution.max_attempts.max(1),
            own_retries: execution.retry_mode == RetryMode::Standard,
            stop,
            stats,
            heard: Arc::default(),
        }
    }
}

/// The call gate of one account-region.
#[derive(Debug, Clone)]
pub struct Calls {
    run: RunLimits,
    /// The account-region's cap: writes (and their re-checks) are served before queued reads
    /// (see `docs/rate-control.md`).
    local: Arc<PrioritySemaphore>,
    /// One pacer per [`CallClass`] (see [`super::rate`]).
    pacers: Arc<[Mutex<Pacer>; 3]>,
    /// Where requests go, for errors that never reached the service, and the account-region
    /// they are for, for logs.
    endpoints: Arc<Endpoints>,
    /// Its calls waiting for or holding a permit of the run's cap (see [`AtRunCap`]).
    at_run_cap: Arc<AtomicI32>,
}

/// A call's place at the run's cap, counted while it waits there and while it holds the
/// permit. A read ranks below the calls of its account-region that are there before it, so
/// the run's cap serves account-regions in turn (fair queuing): the reads one account-region
/// queued at once never hold back another's first call.
struct AtRunCap<'a> {
    count: &'a AtomicI32,
    /// Calls of the same account-region there before this one.
    ahead: i32,
}

impl<'a> AtRunCap<'a> {
    fn enter(count: &'a AtomicI32) -> AtRunCap<'a> {
        let ahead = count.fetch_add(1, Ordering::Relaxed);
        AtRunCap { count, ahead }
    }
}

impl Drop for AtRunCap<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct Endpoints {
    pub ecr: String,
    pub tagging: String,
    /// The account-region, `account/region`, for logs.
    pub target: String,
}

/// At both caps, waiting calls of the higher rank go first; at the run's cap a read's rank is
/// lowered by its account-region's calls there before it (see [`AtRunCap`]).
const WRITES_RANK: Priority = 1;
const READS_RANK: Priority = 0;

/// Retries back off with full jitter from this base, up to this cap (see
/// `docs/rate-control.md`): pacing meets quotas, so backoff only spreads retries.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(50);
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// Full jitter: `jitter` (in [0, 1)) of min(cap, base * 2^retry).
pub(crate) fn backoff(retry: u32, jitter: f64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << retry.min(16))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(jitter)
}

impl Calls {
    pub fn new(run: &RunLimits, endpoints: Endpoints) -> Calls {
        Calls {
            run: run.clone(),
            local: Arc::new(PrioritySemaphore::new(run.per_target)),
            pacers: Arc::new(
                run.heard
                    .each_ref()
                    .map(|heard| Mutex::new(Pacer::new(Arc::clone(heard)))),
            ),
            endpoints: Arc::new(endpoints),
            at_run_cap: Arc::default(),
        }
    }

    pub fn stop(&self) -> &Stop {
        &self.run.stop
    }

    /// The pacer of `class`, locked (never across an await).
    fn pacer(&self, class: CallClass) -> MutexGuard<'_, Pacer> {
        self.pacers[class as usize].lock().expect("pacer lock")
    }

    /// Take a send slot of `class` ahead of the call it is for ([`Calls::call_in`]), so that
    /// what must happen just before that call (a write's re-check) goes at its pace. It waits
    /// in line with the class's calls, so a pace that changes meanwhile applies to it (a
    /// token reserved ahead would keep the pace of when it was reserved). Unpaced, there is
    /// no pace to keep: the call asks when it is sent, as any other.
    pub async fn take_slot(&self, class: CallClass) -> Slot {
        if !self.run.own_retries {
            return Slot::paced(class);
        }
        loop {
            if self.run.stop.is_set() {
                return Slot::paced(class);
            }
            let now = Instant::now();
            let wait = {
                let mut pacer = self.pacer(class);
                if !pacer.is_paced() {
                    return Slot::paced(class);
                }
                pacer.try_send(now)
            };
            match wait {
                Ok(()) => {
                    return Slot {
                        class,
                        first: FirstAttempt::Taken(now),
                    }
                }
                Err(wait) => tokio::time::sleep(wait).await,
            }
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
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
        T: Send + 'static,
        E: ProvideErrorMetadata + std::error::Error + Send + 'static,
    {
        self.call_in(Slot::paced(class), operation, make).await
    }

    /// [`Calls::call`], whose first attempt goes in `slot` (taken with
    /// [`Calls::take_slot`], or riding on another call's).
    pub async fn call_in<T, E, F, Fut>(
        &self,
        slot: Slot,
        operation: &'static str,
        mut make: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
        T: Send + 'static,
        E: ProvideErrorMetadata + std::error::Error + Send + 'static,
    {
        let class = slot.class;
        let mut first = slot.first;
        // A repository's write (and its re-check, riding on the write's slot) goes before the
        // reads of repositories not yet decided.
        let rank = match (class, first) {
            (CallClass::Write, _) | (_, FirstAttempt::Riding) => WRITES_RANK,
            _ => READS_RANK,
        };
        let mut retry = 0u32;
        loop {
            if self.run.stop.is_set() {
                return Err(AwsError::interrupted(operation));
            }
            // Local first: a target at its own cap holds no global permit while it waits.
            let local = self
                .local
                .acquire(rank)
                .await
                .expect("semaphore never closes");
            let at_run_cap = AtRunCap::enter(&self.at_run_cap);
            let run_rank = if rank == WRITES_RANK {
                rank
            } else {
                READS_RANK - at_run_cap.ahead
            };
            let global = self
                .run
                .global
                .acquire(run_rank)
                .await
                .expect("semaphore never closes");
            // Checked again once the call may go: a call queued when the stop came is not
            // started.
            if self.run.stop.is_set() {
                return Err(AwsError::interrupted(operation));
            }
            if self.run.own_retries {
                let now = Instant::now();
                let paced = match std::mem::replace(&mut first, FirstAttempt::Paced) {
                    FirstAttempt::Paced => self.pacer(class).try_send(now),
                    // Gone late (its re-check was retried, say), it asks again: a token
                    // spent long after it was due would be a burst on the quota's bucket.
                    FirstAttempt::Taken(due) => self.pacer(class).redeem(due, now),
                    // It reserves the next token of its class, ahead of the calls that wait
                    // for one, and goes when it comes.
                    FirstAttempt::Riding => {
                        let wait = self.pacer(class).reserve(now);
                        let wait = wait.filter(|w| !w.is_zero());
                        first = FirstAttempt::Taken(now + wait.unwrap_or_default());
                        wait.map_or(Ok(()), Err)
                    }
                };
                // A call the pace holds back gives its permits back while it waits.
                if let Err(wait) = paced {
                    drop((global, at_run_cap, local));
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            let sent = Instant::now();
            let result = attempt(make()).await;
            drop((global, at_run_cap, local));
            if retry > 0 {
                // Each attempt of ours is a new SDK invocation; count it as a retry of the
                // first, not as another call.
                self.run.stats.attempt_was_retry(operation);
            }
            // Tag pages are the Resource Groups Tagging API's; every other class is ECR's.
            let endpoint = match class {
                CallClass::TagPage => &self.endpoints.tagging,
                CallClass::Read | CallClass::Write => &self.endpoints.ecr,
            };
            let result = result.map_err(|e| AwsError::from_sdk(operation, &e, endpoint));
            if self.run.own_retries {
                let _span =
                    tracing::debug_span!("pace", target = %self.endpoints.target, ?class).entered();
                let throttled = result.as_ref().is_err_and(AwsError::is_throttling);
                // Reads are what a write's re-check waits for.
                let feeds_paced_writes =
                    class == CallClass::Read && self.pacer(CallClass::Write).is_paced();
                self.pacer(class)
                    .record(sent, Instant::now(), throttled, feeds_paced_writes);
            }
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) if !self.run.own_retries => return Err(error),
                Err(error) => error,
            };
            retry += 1;
            if !error.is_retryable() || retry >= self.run.max_attempts {
                return Err(error);
            }
            tracing::debug!(%error, retry, "retrying");
            tokio::time::sleep(backoff(retry - 1, fastrand::f64())).await;
        }
    }
}

/// One attempt, as a task of its own: the SDK's request building, signing and parsing then
/// run on any of the runtime's workers, not on the one that polls the fleet. As if awaited in
/// place, it logs in its caller's span and is aborted if its caller goes away.
async fn attempt<T, E, Fut>(call: Fut) -> Result<T, SdkError<E, HttpResponse>>
where
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let task = tokio::spawn(call.in_current_span());
    match tokio_util::task::AbortOnDropHandle::new(task).await {
        Ok(result) => result,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled only by the abort when this future is dropped, or by the runtime
            // shutting down: no caller is left to read this error.
            Err(e) => Err(SdkError::dispatch_failure(
                aws_smithy_runtime_api::client::result::ConnectorError::other(e.into(), None),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::rate::QUOTA_KNOWN;

    fn gate() -> (RunLimits, Calls) {
        gate_with(ExecutionLimits::default())
    }

    fn gate_with(limits: ExecutionLimits) -> (RunLimits, Calls) {
        let run = RunLimits::new(&limits, ApiStats::default(), Stop::default());
        let calls = Calls::new(&run, endpoints("123456789012/us-east-1"));
        (run, calls)
    }

    /// Endpoints nothing listens on, for calls that never reach the network.
    fn endpoints(target: &str) -> Endpoints {
        Endpoints {
            ecr: "http://127.0.0.1:1".to_string(),
            tagging: "http://127.0.0.1:1".to_string(),
            target: target.to_string(),
        }
    }

    use aws_sdk_ecr::operation::get_lifecycle_policy::GetLifecyclePolicyError;

    type Answer = Result<(), SdkError<GetLifecyclePolicyError, HttpResponse>>;

    /// The order in which calls were sent.
    #[derive(Default)]
    struct Sent(Mutex<Vec<&'static str>>);

    impl Sent {
        /// A call that records `name` when sent, and succeeds.
        fn call(&self, name: &'static str) -> impl FnMut() -> std::future::Ready<Answer> + '_ {
            move || {
                self.0.lock().unwrap().push(name);
                std::future::ready(Ok(()))
            }
        }

        fn order(self) -> Vec<&'static str> {
            self.0.into_inner().unwrap()
        }
    }

    /// A read of `calls` that holds its permits until `release` is notified.
    async fn hold(calls: &Calls, release: &Arc<tokio::sync::Notify>) -> Result<(), AwsError> {
        calls
            .call(CallClass::Read, "holder", || {
                let release = Arc::clone(release);
                async move {
                    release.notified().await;
                    Answer::Ok(())
                }
            })
            .await
    }

    /// Releases the holder once every call joined with it has queued.
    async fn free(release: &tokio::sync::Notify) {
        tokio::task::yield_now().await;
        release.notify_one();
    }

    #[tokio::test]
    async fn slots_and_riding_calls_reserve_tokens_ahead_of_their_class() {
        let (run, calls) = gate();
        // As production starts: unpaced, there is no token to take; the call asks when sent.
        let slot = calls.take_slot(CallClass::Read).await;
        assert!(matches!(slot.first, FirstAttempt::Paced));
        // Paced after a success and a throttle (the run knows reads have a quota): three
        // re-checks riding on write slots reserve the next three tokens, and the next read
        // waits for them.
        run.heard[CallClass::Read as usize].store(QUOTA_KNOWN, Ordering::Relaxed);
        let start = Instant::now();
        calls
            .pacer(CallClass::Read)
            .record(start, start, false, false);
        calls
            .pacer(CallClass::Read)
            .record(start, start, true, false);
        let limit = calls.pacer(CallClass::Read).rate().unwrap();
        for _ in 0..3 {
            assert!(calls.pacer(CallClass::Read).reserve(start).is_some());
        }
        let wait = calls.pacer(CallClass::Read).try_send(start).unwrap_err();
        assert!(wait.as_secs_f64() > 3.5 / limit, "{wait:?} at {limit}/s");
        // Writes are a class of their own: untouched.
        assert!(calls.pacer(CallClass::Write).try_send(start).is_ok());
    }

    #[tokio::test]
    async fn writes_waiting_for_their_slot_go_at_the_pace_of_when_they_go() {
        let (run, calls) = gate();
        run.heard[CallClass::Write as usize].store(QUOTA_KNOWN, Ordering::Relaxed);
        let start = Instant::now();
        let write = || calls.pacer(CallClass::Write);
        for _ in 0..2 {
            write().record(start, start, false, false);
        }
        write().record(start, start, true, false);
        let rate = write().rate().unwrap();
        assert!((1.5..=2.0).contains(&rate), "paced at {rate}/s");
        // Four writes wait for their slots; then the pace rises to what gets through.
        let slots = futures::future::join_all((0..4).map(|_| calls.take_slot(CallClass::Write)));
        let raise = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = Instant::now();
            for _ in 0..100 {
                write().record(now, now, false, false);
            }
            assert!(write().rate().unwrap() > 50.0);
        };
        let (slots, ()) = tokio::join!(slots, raise);
        assert!(slots
            .iter()
            .all(|s| matches!(s.first, FirstAttempt::Taken(_))));
        // Reserved at 2/s they would go over 1.5 s (and more at a lower start); waiting in
        // line, the first goes at the old pace's next token and the rest at the new pace.
        let took = start.elapsed();
        assert!(took < Duration::from_millis(1200), "{took:?}");
    }

    #[tokio::test]
    async fn writes_go_before_the_reads_queued_at_the_account_region_cap() {
        let (_run, calls) = gate_with(ExecutionLimits {
            per_region_concurrency: 1,
            ..ExecutionLimits::default()
        });
        let sent = Sent::default();
        // One call holds the only permit; three reads queue, then a write and a re-check
        // riding on a write's slot.
        let release = Arc::new(tokio::sync::Notify::new());
        let reads = futures::future::join_all(
            (0..3).map(|_| calls.call(CallClass::Read, "read", sent.call("read"))),
        );
        let write = calls.call(CallClass::Write, "write", sent.call("write"));
        let recheck = calls.call_in(
            Slot::riding(CallClass::Read),
            "re-check",
            sent.call("re-check"),
        );
        let (held, reads, write, recheck, ()) = tokio::join!(
            hold(&calls, &release),
            reads,
            write,
            recheck,
            free(&release)
        );
        assert!(held.is_ok() && write.is_ok() && recheck.is_ok());
        assert!(reads.iter().all(Result::is_ok));
        assert_eq!(sent.order(), ["write", "re-check", "read", "read", "read"]);
    }

    #[tokio::test]
    async fn account_regions_take_turns_at_the_run_cap_after_writes() {
        let (run, a) = gate_with(ExecutionLimits {
            concurrency: 1,
            ..ExecutionLimits::default()
        });
        let b = Calls::new(&run, endpoints("210987654321/us-east-1"));
        let sent = Sent::default();
        // A call of `a` holds the run's only permit; three more reads of `a` queue, then a
        // read of `b`, then a write of `a`.
        let release = Arc::new(tokio::sync::Notify::new());
        let reads_a =
            futures::future::join_all((0..3).map(|_| a.call(CallClass::Read, "a", sent.call("a"))));
        let read_b = b.call(CallClass::Read, "b", sent.call("b"));
        let write_a = a.call(CallClass::Write, "a write", sent.call("a write"));
        let (held, reads_a, read_b, write_a, ()) =
            tokio::join!(hold(&a, &release), reads_a, read_b, write_a, free(&release));
        assert!(held.is_ok() && read_b.is_ok() && write_a.is_ok());
        assert!(reads_a.iter().all(Result::is_ok));
        assert_eq!(sent.order(), ["a write", "b", "a", "a", "a"]);
        assert_eq!(
            a.at_run_cap.load(Ordering::Relaxed),
            0,
            "every place is given back"
        );
    }

    /// A throttle, as ECR answers one.
    fn throttle() -> SdkError<GetLifecyclePolicyError, HttpResponse> {
        use aws_sdk_ecr::error::ErrorMetadata;
        let error = GetLifecyclePolicyError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        );
        let response = HttpResponse::new(
            400.try_into().expect("a status"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(error, response)
    }

    #[tokio::test]
    async fn reads_pace_from_their_first_throttle_once_writes_are_paced() {
        let (_run, calls) = gate_with(ExecutionLimits {
            max_attempts: 1,
            ..ExecutionLimits::default()
        });
        let read = |throttled: bool| {
            calls.call(CallClass::Read, "read", move || {
                std::future::ready(if throttled { Err(throttle()) } else { Ok(()) })
            })
        };
        // A throttle after a success is no flood, and the run knows of no quota.
        assert!(read(false).await.is_ok());
        assert!(read(true).await.is_err());
        assert!(!calls.pacer(CallClass::Read).is_paced());
        // The writes flood and are paced: the next read throttle paces the reads.
        let now = Instant::now();
        for _ in 0..20 {
            calls.pacer(CallClass::Write).record(now, now, true, false);
        }
        assert!(calls.pacer(CallClass::Write).is_paced());
        assert!(read(false).await.is_ok());
        assert!(!calls.pacer(CallClass::Read).is_paced());
        assert!(read(true).await.is_err());
        assert!(calls.pacer(CallClass::Read).is_paced());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_attempt_is_a_task_of_its_own() {
        let (_run, calls) = gate();
        // The test body is polled by `block_on`, as the fleet is: no task of its own.
        assert_eq!(tokio::task::try_id(), None);
        let attempt = calls
            .call(CallClass::Read, "read", || async {
                Ok::<_, SdkError<GetLifecyclePolicyError, HttpResponse>>(tokio::task::try_id())
            })
            .await
            .unwrap();
        assert!(attempt.is_some(), "the attempt ran in the caller's task");
    }

    #[tokio::test]
    async fn an_attempt_whose_caller_goes_away_is_dropped() {
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let (_run, calls) = gate();
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&dropped);
        let call = calls.call(CallClass::Write, "write", move || {
            let guard = Dropped(Arc::clone(&flag));
            async move {
                std::future::pending::<()>().await;
                drop(guard);
                Answer::Ok(())
            }
        });
        let gone = tokio::time::timeout(Duration::from_millis(10), call).await;
        assert!(gone.is_err(), "the call never answers");
        // An aborted task is dropped the next time the runtime gets to it.
        for _ in 0..100 {
            if dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(dropped.load(Ordering::SeqCst), "the attempt still runs");
    }

    #[test]
    fn backoff_is_jittered_under_an_exponential_ceiling() {
        for retry in 0..20 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << retry.min(16))
                .min(BACKOFF_CAP);
            assert_eq!(backoff(retry, 0.0), Duration::ZERO);
            assert!(backoff(retry, 0.999) <= ceiling);
        }
    }
}
