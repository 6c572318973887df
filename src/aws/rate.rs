//! The pacer of one class of calls in one account-region. The design, its states and the
//! reason for every constant are in `docs/rate-control.md`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What got through is counted over this span: about what a quota's bucket holds.
const MEASURE: Duration = Duration::from_secs(1);
/// Multiplicative decrease, as CUBIC and the AWS SDKs' adaptive mode.
const CUT: f64 = 0.7;
/// Cuts stop at this share of the first pace: a quota stops throttling long before.
const FLOOR_SHARE: f64 = 0.5;
/// Additive increase: this share of the first pace per `RAISE_AFTER` successes. Counted in
/// calls, so throttles are the same share of calls at any quota.
const RAISE: f64 = 0.1;
const RAISE_AFTER: u32 = 5;
/// After a cut, a raise goes at least this share of the way back to what got through when
/// cut and stops there (BIC's binary search increase): that rate is near the quota.
const RECOVER: f64 = 0.5;
/// Never paced below this many calls per second (as the AWS SDKs' adaptive mode).
const MIN_RATE: f64 = 0.5;
/// A flood: `FLOOD_THROTTLES` of the last `FLOOD_WINDOW` answers throttled. 30% random
/// throttling floods a window with probability 5.6e-6 (P(X >= 16), X ~ B(20, 0.3)).
const FLOOD_WINDOW: u32 = 20;
const FLOOD_THROTTLES: u32 = 16;
/// Per class, the run pools the last `RUN_WINDOW` answers of its unpaced account-regions
/// past their burst (a throttle in their window) in the low bits of an `AtomicU64`;
/// `RUN_FLOOD` throttles among them set `QUOTA_KNOWN` for the run (2e-7 per window at 30%).
const RUN_WINDOW: u32 = 32;
const RUN_FLOOD: u32 = 24;
pub(crate) const QUOTA_KNOWN: u64 = 1 << RUN_WINDOW;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// No pacing: where every class starts, and where a fleet that is never throttled
    /// stays. A flood (or, once the run knows the class has a quota, any throttle) starts
    /// the pace. `recent`: the last `FLOOD_WINDOW` answers, a bit each, set if throttled.
    Unpaced { recent: u32 },
    /// A token bucket of `rate` calls per second, without burst.
    Paced {
        rate: f64,
        /// When the next call may go.
        next: Instant,
        /// Cuts stop here (see `FLOOR_SHARE`).
        floor: f64,
        /// Added per `RAISE_AFTER` successes (see `RAISE`).
        step: f64,
        /// What got through when last cut, or what refilled at most if less (see `RECOVER`).
        cut_from: f64,
        /// When the pace last changed: answers to calls sent before it say nothing of it.
        since: Instant,
        /// Successes of calls sent since then.
        successes: u32,
    },
}

/// One class of calls of one account-region: call [`Pacer::try_send`] just before each send
/// and [`Pacer::record`] with each answer.
#[derive(Debug)]
pub struct Pacer {
    state: State,
    /// When each success of the last `MEASURE` was answered.
    successes: VecDeque<Instant>,
    /// What the run heard in this class (see `RUN_WINDOW`).
    run: Arc<AtomicU64>,
    /// When the first call of this class was sent.
    started: Option<Instant>,
    /// The last throttle's send time, successes sent since, the last one's (see `refilled`).
    last_throttle: Option<(Instant, u32, Instant)>,
}

impl Pacer {
    /// A pacer that shares with the run's other account-regions what they heard in its class.
    pub fn new(run: Arc<AtomicU64>) -> Pacer {
        Pacer {
            state: State::Unpaced { recent: 0 },
            successes: VecDeque::new(),
            run,
            started: None,
            last_throttle: None,
        }
    }

    /// Whether calls wait for a pace.
    pub fn is_paced(&self) -> bool {
        matches!(self.state, State::Paced { .. })
    }

    /// A call may be sent at `now` (and is counted as sent), or must wait this long.
    pub fn try_send(&mut self, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Paced { next, .. } if next > now => Err(next - now),
            _ => {
                self.reserve(now);
                Ok(())
            }
        }
    }

    /// A call whose token was due at `due` may go at `now` until the token after it is due;
    /// later, it asks for a new one ([`Pacer::try_send`]).
    pub fn redeem(&mut self, due: Instant, now: Instant) -> Result<(), Duration> {
        match self.state {
            State::Paced { rate, .. } if now > due + interval(rate) => self.try_send(now),
            _ => Ok(()),
        }
    }

    /// Reserve the next token at `now`, for a call that goes when it comes: how long that
    /// is, or `None` if unpaced (nothing to reserve).
    pub fn reserve(&mut self, now: Instant) -> Option<Duration> {
        let State::Paced { rate, next, .. } = &mut self.state else {
            return None;
        };
        let at = (*next).max(now);
        *next = at + interval(*rate);
        Some(at - now)
    }

    /// The answer, at `now`, of a call sent at `sent`. `feeds_writes`: this class feeds
    /// writes that are paced (see `docs/rate-control.md`, "Reads that feed paced writes");
    /// it then paces from its first throttle, as under a quota the run knows.
    pub fn record(&mut self, sent: Instant, now: Instant, throttled: bool, feeds_writes: bool) {
        let started = self.started.map_or(sent, |s| s.min(sent));
        self.started = Some(started);
        let (refilled, upper, last_success) = self.refilled(sent, throttled);
        if !throttled {
            self.successes.push_back(now);
        }
        let old = |t: &Instant| now.saturating_duration_since(*t) > MEASURE;
        while self.successes.front().is_some_and(old) {
            self.successes.pop_front();
        }
        let got_through = self.successes.len() as f64 / MEASURE.as_secs_f64();
        // At a throttle the quota's bucket is empty: what got through over the last `span`
        // is at most a bucket (`MEASURE` of the quota) plus what refilled over `span`.
        let span = now.saturating_duration_since(started).min(MEASURE);
        let under = self.successes.len() as f64 / (MEASURE + span).as_secs_f64();
        match &mut self.state {
            State::Unpaced { recent } => {
                let heard = |w: u64| {
                    let recent = (w << 1 | u64::from(throttled)) & (QUOTA_KNOWN - 1);
                    let flood = recent.count_ones() >= RUN_FLOOD;
                    Some(recent | if flood { QUOTA_KNOWN } else { w & QUOTA_KNOWN })
                };
                // Only answers that follow a throttle of this account-region (its burst is
                // spent). Not the first throttle itself: every account-region would add one
                // throttle that way, and a run's account-regions, starting together under
                // random throttling, would flood the pool with them.
                if *recent != 0 {
                    let _ = self.run.fetch_update(Relaxed, Relaxed, heard);
                }
                *recent = (*recent << 1 | u32::from(throttled)) & ((1 << FLOOD_WINDOW) - 1);
                // Once the run knows the class has a quota, the first throttle after something
                // got through (there is something to measure) starts the pace.
                let quota = feeds_writes || self.run.load(Relaxed) & QUOTA_KNOWN != 0;
                let measured = !self.successes.is_empty();
                if recent.count_ones() >= FLOOD_THROTTLES || throttled && quota && measured {
                    self.pace(now, under);
                }
            }
            State::Paced {
                rate,
                next,
                floor,
                step,
                cut_from,
                since,
                successes,
            } => {
                if !throttled && under > *rate {
                    // A pace under what got through, measured as at its start, was started
                    // before the answers of calls sent unpaced came back (a throttle can come
                    // back sooner than a success): it starts again from there.
                    let next = (*next).min(now + interval(under));
                    tracing::debug!(rate = under, "raised to what got through");
                    self.state = paced(under, next, now);
                    return;
                }
                if sent < *since {
                    return;
                }
                if throttled && *rate <= *floor {
                    // A quota stops throttling long before the floor: this is other clients'
                    // traffic (or the flood was), so the pace is not what throttles.
                    tracing::debug!(rate = *rate, "throttled at the floor: unpaced");
                    self.state = State::Unpaced { recent: 0 };
                    return;
                }
                if throttled {
                    // From what got through if less (an unused pace says nothing), keeping what
                    // refilled up to it; raises go back no higher than what refilled at most.
                    let last = last_success.filter(|_| *next <= sent + interval(*rate));
                    *cut_from = rate.min(got_through);
                    *rate = (*cut_from * CUT).max(refilled.min(*cut_from)).max(*floor);
                    *cut_from = cut_from.min(upper).max(*rate);
                    // The throttled call took no token: if it was the last sent (no token was
                    // taken after its own), the next goes an interval after the last success's,
                    // when the bucket holds one again.
                    if let Some(last) = last {
                        *next = (*next).min(last + interval(*rate));
                    }
                    tracing::debug!(rate = *rate, "throttled: cut");
                } else {
                    *successes += 1;
                    if *successes < RAISE_AFTER {
                        return;
                    }
                    let cap = Some(*cut_from)
                        .filter(|&c| c > *rate)
                        .unwrap_or(f64::INFINITY);
                    *rate = (*rate + step.max((*cut_from - *rate) * RECOVER)).min(cap);
                    tracing::trace!(rate = *rate, "raised");
                }
                *since = now;
                *successes = 0;
            }
        }
    }

    /// Counts the answer of a call sent at `sent`. At a throttle: what refilled since the
    /// throttle before, at least and at most, and the last success's send, if a call sent
    /// between them got through (else 0, infinity and none; see `docs/rate-control.md`,
    /// "Additive increase, multiplicative decrease").
    fn refilled(&mut self, sent: Instant, throttled: bool) -> (f64, f64, Option<Instant>) {
        match &mut self.last_throttle {
            Some((since, n, last)) if sent > *since && !throttled => {
                *n += 1;
                *last = (*last).max(sent);
            }
            Some((since, n, last)) if sent > *since => {
                let (from, n, last) = (*since, *n, *last);
                self.last_throttle = Some((sent, 0, sent));
                if n > 0 {
                    // The last success went on a token, the n - 1 before on what the bucket held
                    // (under one) and what refilled; at this throttle it held under one again.
                    let over = |to: Instant| (to - from).as_secs_f64();
                    let at_least = f64::from(n - 1) / over(last);
                    return (at_least, f64::from(n + 1) / over(sent), Some(last));
                }
            }
            None if throttled => self.last_throttle = Some((sent, 0, sent)),
            _ => {}
        }
        (0.0, f64::INFINITY, None)
    }

    /// Start pacing at `under`, what got through measured at or under the quota.
    fn pace(&mut self, now: Instant, under: f64) {
        let rate = under.max(MIN_RATE);
        tracing::debug!(rate, "throttled: pacing");
        // The quota's bucket is empty: the first call waits for a token, as the others, and
        // calls sent before it (slots taken unpaced) say nothing of the pace.
        let next = now + interval(rate);
        self.state = paced(rate, next, next);
    }
}

/// The time between two calls at `rate` calls per second.
fn interval(rate: f64) -> Duration {
    Duration::from_secs_f64(1.0 / rate)
}

/// Paced from `rate`, its first pace: the floor and the raise step follow from it. Answers to
/// calls sent before `since` say nothing of it.
fn paced(rate: f64, next: Instant, since: Instant) -> State {
    State::Paced {
        rate,
        next,
        floor: (rate * FLOOR_SHARE).max(MIN_RATE),
        step: rate * RAISE,
        cut_from: 0.0,
        since,
        successes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::call::backoff;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    impl Pacer {
        /// Calls per second, if paced.
        pub(crate) fn rate(&self) -> Option<f64> {
            match self.state {
                State::Paced { rate, .. } => Some(rate),
                State::Unpaced { .. } => None,
            }
        }
    }

    /// A token bucket of `rate` per second holding `burst` seconds of it, full at first.
    fn bucket(rate: f64, burst: f64) -> impl FnMut(Instant) -> bool {
        let mut tokens = rate * burst;
        let mut last: Option<Instant> = None;
        move |now| {
            if let Some(l) = last {
                tokens = (tokens + now.duration_since(l).as_secs_f64() * rate).min(rate * burst);
            }
            last = Some(now);
            let throttled = tokens < 1.0;
            if !throttled {
                tokens -= 1.0;
            }
            throttled
        }
    }

    /// One account-region's class as `Calls::call` runs it: `calls` calls, at most
    /// `in_flight` at once; a call asks the pacer once it holds a place and gives it back
    /// while it waits; each answer comes `latency` after its send (a throttle at once with
    /// `quick_throttles`: turned away at the door of a busy service); a throttled call waits
    /// out the backoff, holding no place, and goes again. Returns (makespan, attempts,
    /// throttled).
    #[derive(Clone, Copy)]
    struct Job {
        calls: u32,
        in_flight: u32,
        latency: Duration,
        quick_throttles: bool,
        /// Tell the pacer its class feeds paced writes.
        feeds_paced_writes: bool,
        seed: u64,
    }

    impl Job {
        /// `calls` calls of `latency_ms`, 8 in flight (the default per-account-region cap),
        /// throttles answered as late as successes.
        fn new(calls: u32, latency_ms: u64, seed: u64) -> Job {
            Job {
                calls,
                in_flight: 8,
                latency: Duration::from_millis(latency_ms),
                quick_throttles: false,
                feeds_paced_writes: false,
                seed,
            }
        }

        fn run(&self, pacer: &mut Pacer, mut throttle: impl FnMut(Instant) -> bool) -> Stats {
            // (when, order, retry, answer: Some((throttled, sent, paced))); None = wants to send.
            let mut events = BinaryHeap::new();
            let start = Instant::now();
            let mut order = 0u64;
            let mut push = |events: &mut BinaryHeap<_>,
                            at,
                            retry: u32,
                            answer: Option<(bool, Instant, bool)>| {
                order += 1;
                events.push(Reverse((at, order, retry, answer)));
            };
            for _ in 0..self.calls.min(self.in_flight) {
                push(&mut events, start, 0, None);
            }
            let mut rng = fastrand::Rng::with_seed(self.seed);
            let (mut queued, mut free) =
                (self.calls.saturating_sub(self.in_flight), self.in_flight);
            let mut stats = Stats::default();
            while let Some(Reverse((now, _, retry, answer))) = events.pop() {
                match answer {
                    None if free == 0 => push(&mut events, now + self.latency / 4, retry, None),
                    None => match pacer.try_send(now) {
                        Err(wait) => push(&mut events, now + wait, retry, None),
                        Ok(()) => {
                            free -= 1;
                            stats.attempts += 1;
                            let paced = pacer.is_paced();
                            stats.paced_attempts += u32::from(paced);
                            let t = throttle(now);
                            let latency = if t && self.quick_throttles {
                                Duration::from_millis(1)
                            } else {
                                self.latency
                            };
                            push(&mut events, now + latency, retry, Some((t, now, paced)));
                        }
                    },
                    Some((t, sent, paced)) => {
                        free += 1;
                        stats.time = now - start;
                        pacer.record(sent, now, t, self.feeds_paced_writes);
                        if t {
                            stats.throttled += 1;
                            stats.paced_throttled += u32::from(paced);
                            let wait = backoff(retry, rng.f64());
                            push(&mut events, now + wait, retry + 1, None);
                        } else if queued > 0 {
                            queued -= 1;
                            push(&mut events, now, 0, None);
                        }
                    }
                }
            }
            stats
        }
    }

    #[derive(Debug, Default, Clone, Copy)]
    struct Stats {
        time: Duration,
        attempts: u32,
        throttled: u32,
        /// Of the attempts sent paced.
        paced_attempts: u32,
        paced_throttled: u32,
    }

    impl Stats {
        fn share(&self) -> f64 {
            f64::from(self.throttled) / f64::from(self.attempts)
        }
    }

    const LATENCIES: [u64; 3] = [3, 30, 100];

    /// Instants as seconds from a start of their own.
    fn clock() -> impl Fn(f64) -> Instant {
        let start = Instant::now();
        move |s| start + Duration::from_secs_f64(s)
    }

    /// A pacer as production starts one, in a run that knows the class has a quota or not.
    fn pacer(quota: bool) -> Pacer {
        Pacer::new(Arc::new(AtomicU64::new(if quota {
            QUOTA_KNOWN
        } else {
            0
        })))
    }

    #[test]
    fn a_quiet_class_is_never_paced() {
        for latency in LATENCIES {
            let job = Job::new(500, latency, 1);
            let mut pacer = pacer(true);
            let stats = job.run(&mut pacer, |_| false);
            assert_eq!(stats.throttled, 0);
            assert_eq!(pacer.state, State::Unpaced { recent: 0 });
            // 500 calls, 8 at a time: nothing waits but the latency.
            assert!(stats.time <= Duration::from_millis(latency) * 63);
        }
    }

    #[test]
    fn quotas_of_5_20_and_100_are_met_with_few_throttles() {
        for quota in [5.0, 20.0, 100.0] {
            for latency in LATENCIES {
                let (mut first, mut all, mut paced, mut slowest) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                for seed in 0..10 {
                    // Enough calls for ten seconds at the quota.
                    let calls = (quota * 10.0) as u32;
                    let job = Job::new(calls, latency, seed);
                    // The account-region that floods first, then the others.
                    first = first.max(job.run(&mut pacer(false), bucket(quota, 1.0)).share());
                    let stats = job.run(&mut pacer(true), bucket(quota, 1.0));
                    // Before the pace, at most the calls in flight: the first throttle after a
                    // success starts it.
                    let unpaced = stats.throttled - stats.paced_throttled;
                    assert!(
                        unpaced <= job.in_flight,
                        "quota {quota}, {latency} ms: {stats:?}"
                    );
                    all = all.max(stats.share());
                    let paced_attempts = f64::from(stats.paced_attempts.max(1));
                    paced = paced.max(f64::from(stats.paced_throttled) / paced_attempts);
                    // The best any client does: the burst at once, the rest at the quota, or
                    // the calls in flight one latency at a time if that is slower.
                    let in_flight = f64::from(job.in_flight);
                    let best = ((f64::from(calls) - quota) / quota)
                        .max(f64::from(calls) * job.latency.as_secs_f64() / in_flight);
                    slowest = slowest.max(stats.time.as_secs_f64() / best);
                }
                println!("quota {quota}/s, {latency} ms: throttled {all:.3} of all calls, {paced:.3} of paced ones (first account-region {first:.3}), {slowest:.3}x the best time");
                // At most one throttle per climb: back near the quota in `RAISE_AFTER`
                // successes, as many at it, then a step past it.
                let climb = f64::from(2 * RAISE_AFTER + 1);
                assert!(
                    paced <= 1.0 / climb,
                    "quota {quota}, {latency} ms: throttled {paced:.3}"
                );
                assert!(slowest < 1.05, "quota {quota}, {latency} ms: {slowest:.3}x");
            }
        }
    }

    #[test]
    fn reads_that_feed_paced_writes_pace_from_their_first_throttle() {
        // Calls at about twice a quota of 20/s (8 in flight, 200 ms each): about half the
        // answers past the burst are throttled, which is no flood. Alone, the class is left
        // to the retries; feeding paced writes, it paces at the quota from its first throttle.
        for seed in 0..10 {
            let job = Job::new(400, 200, seed);
            let mut alone = pacer(false);
            let unpaced = job.run(&mut alone, bucket(20.0, 1.0));
            let mut feeding = pacer(false);
            let job = Job {
                feeds_paced_writes: true,
                ..job
            };
            let paced = job.run(&mut feeding, bucket(20.0, 1.0));
            println!(
                "seed {seed}: alone {:.3} throttled in {:.2} s, feeding writes {:.3} in {:.2} s",
                unpaced.share(),
                unpaced.time.as_secs_f64(),
                paced.share(),
                paced.time.as_secs_f64(),
            );
            assert!(alone.rate().is_none(), "seed {seed}: alone, paced");
            assert!(unpaced.share() > 0.2, "seed {seed}: {:.3}", unpaced.share());
            assert!(
                feeding.rate().is_some(),
                "seed {seed}: feeding writes, unpaced"
            );
            assert!(paced.share() < 0.1, "seed {seed}: {:.3}", paced.share());
            // As fast: the quota sets the time either way.
            assert!(
                paced.time <= unpaced.time.mul_f64(1.05),
                "seed {seed}: {:?} against {:?}",
                paced.time,
                unpaced.time
            );
        }
    }

    #[test]
    fn the_first_pace_is_at_or_under_the_quota_and_near_it() {
        // Calls at four times the quota, answered at once, in a run that knows the class has
        // a quota; `quiet` seconds at half the quota first (the bucket stays full).
        for quota in [5.0, 20.0, 100.0] {
            for quiet in [0.0, 3.0] {
                let mut pacer = pacer(true);
                let mut throttle = bucket(quota, 1.0);
                let start = Instant::now();
                let mut now = start;
                // Bounded: a pacer that never starts fails below instead of looping forever.
                while pacer.rate().is_none() && now - start < Duration::from_secs(60) {
                    let gap = if now - start < Duration::from_secs_f64(quiet) {
                        2.0
                    } else {
                        0.25
                    };
                    now += Duration::from_secs_f64(gap / quota);
                    pacer.record(now, now, throttle(now), false);
                }
                let rate = pacer.rate().expect("paced within a minute of throttles");
                println!("quota {quota}/s, {quiet} s at half of it first: paced at {rate:.2}/s");
                assert!(rate <= quota, "quota {quota}, {quiet} s: {rate:.2}");
                // From a standing start the span of the count is short: the pace is close.
                if quiet == 0.0 {
                    assert!(rate >= 0.75 * quota, "quota {quota}: {rate:.2}");
                }
            }
        }
    }

    #[test]
    fn after_a_cut_the_pace_goes_half_the_way_back_then_probes() {
        for quota in [5.0, 20.0, 100.0] {
            let mut pacer = pacer(true);
            let start = Instant::now();
            pacer.state = paced(quota, start, start);
            let gap = interval(quota);
            let mut now = start;
            let mut answer = |pacer: &mut Pacer, throttled| {
                now += gap;
                pacer.record(now, now, throttled, false);
            };
            // A second of successes at the quota (the pace rises past it), then a throttle.
            for _ in 0..quota as u32 {
                answer(&mut pacer, false);
            }
            answer(&mut pacer, true);
            let State::Paced {
                rate: cut,
                cut_from,
                step,
                ..
            } = pacer.state
            else {
                panic!("quota {quota}: not paced");
            };
            // Cut from what got through in the last second, the quota.
            assert!((cut_from - quota).abs() <= 1.0, "quota {quota}: {cut_from}");
            assert!((cut - CUT * cut_from).abs() < 1e-9, "quota {quota}: {cut}");
            let mut raised = [0.0; 2];
            for r in &mut raised {
                for _ in 0..RAISE_AFTER {
                    answer(&mut pacer, false);
                }
                *r = pacer.rate().unwrap();
            }
            // Half the way back at once (a tenth of the first pace would be 0.8 of it)...
            let half = cut + (cut_from - cut) / 2.0;
            assert!((raised[0] - half).abs() < 1e-9, "quota {quota}: {raised:?}");
            // ... then a step at most: past what throttled, slowly.
            assert!(
                raised[1] - raised[0] <= step + 1e-9,
                "quota {quota}: {raised:?}"
            );
            assert!(raised[1] >= 0.9 * cut_from, "quota {quota}: {raised:?}");
        }
    }

    #[test]
    fn a_cut_keeps_what_refilled_between_two_throttles() {
        for quota in [5.0, 20.0, 100.0] {
            let mut pacer = pacer(true);
            let at = clock();
            // A throttle before anything got through (not paced yet), then a pace over the
            // quota; one success sent before that throttle, answered late, is not of the span.
            pacer.record(at(0.0), at(0.01), true, false);
            pacer.state = paced(quota * 1.2, at(0.01), at(0.01));
            pacer.record(at(0.0) - Duration::from_millis(100), at(0.5), false, false);
            // Three seconds of the quota's successes, then a throttle.
            let n = (quota * 3.0) as u32;
            let sent = |i: u32| 3.0 * f64::from(i) / f64::from(n + 1);
            for i in 1..=n {
                pacer.record(at(sent(i)), at(sent(i)), false, false);
            }
            pacer.record(at(3.0), at(3.01), true, false);
            let State::Paced {
                rate,
                cut_from,
                step,
                ..
            } = pacer.state
            else {
                panic!("quota {quota}: not paced");
            };
            // The bucket held less than a token at the first throttle: the last of the n calls
            // went on a token, the n - 1 before it on less than one and what refilled until
            // it was sent. So n - 1 over that span is at or under the quota: the cut keeps it
            // (up to what got through in the last second), over the multiplicative cut. At the
            // second throttle the bucket held less than a token again: n + 1 over the whole
            // span is over the quota, and what got through goes no higher.
            let (lower, upper) = (f64::from(n - 1) / sent(n), f64::from(n + 1) / 3.0);
            assert!(
                (rate - lower.min(cut_from)).abs() < 1e-9,
                "quota {quota}: {rate}"
            );
            assert!(
                rate <= quota && lower > CUT * cut_from,
                "quota {quota}: {rate}"
            );
            assert!(
                cut_from <= upper && upper >= quota,
                "quota {quota}: {cut_from}"
            );
            // Raises go back to what got through when cut and stop there, then step past it.
            let mut raised = [0.0; 2];
            for (k, r) in (0..).zip(&mut raised) {
                for i in 0..RAISE_AFTER {
                    let sent = at(3.01 + f64::from(k * RAISE_AFTER + i + 1) / quota);
                    pacer.record(sent, sent, false, false);
                }
                *r = pacer.rate().unwrap_or_default();
            }
            if rate < cut_from {
                assert!(
                    rate + step > cut_from,
                    "quota {quota}: a step would pass it"
                );
                assert_eq!(raised[0], cut_from, "quota {quota}: {raised:?}");
            }
            let past = raised[1] - raised[0] - step;
            assert!(past.abs() < 1e-9, "quota {quota}: {raised:?}, step {step}");
            // Between two throttles with nothing through, nothing is known; from one success
            // on, both bounds.
            for successes in [0, 1, 9] {
                let from = at(4.0 + f64::from(successes));
                pacer.refilled(from, true);
                let last = from + Duration::from_millis(100);
                for _ in 0..successes {
                    pacer.refilled(last, false);
                }
                let bounds = pacer.refilled(from + Duration::from_secs(1), true);
                let expected = if successes == 0 {
                    (0.0, f64::INFINITY, None)
                } else {
                    let n = f64::from(successes);
                    ((n - 1.0) / 0.1, n + 1.0, Some(last))
                };
                assert_eq!(bounds, expected, "quota {quota}, {successes} successes");
            }
        }
    }

    #[test]
    fn a_short_span_still_keeps_what_refilled() {
        // A climb throttled at its ninth success: back near the quota in five, then at it.
        for quota in [5.0, 20.0, 100.0] {
            let mut pacer = pacer(true);
            let at = clock();
            pacer.record(at(0.0), at(0.0), true, false);
            pacer.state = paced(quota, at(0.0), at(0.0));
            for i in 1..=9 {
                let sent = at(f64::from(i) / quota);
                pacer.record(sent, sent, false, false);
            }
            pacer.record(at(10.0 / quota), at(10.0 / quota), true, false);
            let State::Paced { rate, cut_from, .. } = pacer.state else {
                panic!("quota {quota}: not paced");
            };
            let lower = 8.0 / (9.0 / quota);
            assert!(
                (rate - lower.min(cut_from)).abs() < 1e-9 && rate > CUT * cut_from,
                "quota {quota}: {rate} from {cut_from}"
            );
        }
    }

    #[test]
    fn raises_go_back_no_higher_than_what_refilled_at_most() {
        let mut pacer = pacer(true);
        let at = clock();
        pacer.record(at(0.0), at(0.0), true, false);
        pacer.state = paced(10.0, at(0.0), at(0.0));
        // 12 successes in the last second of a 1.3 s span, then a throttle: 12 got through,
        // but 13 over 1.3 s, 10 per second, is over the quota.
        for i in 0..12 {
            let sent = at(0.3 + 0.08 * f64::from(i));
            pacer.record(sent, sent, false, false);
        }
        pacer.record(at(1.3), at(1.3), true, false);
        let cut = pacer.rate().unwrap_or_default();
        assert!((cut - 11.0 / 1.18).abs() < 1e-9, "{cut}");
        for i in 0..RAISE_AFTER {
            let sent = at(1.4 + 0.1 * f64::from(i));
            pacer.record(sent, sent, false, false);
        }
        assert_eq!(pacer.rate(), Some(10.0));
    }

    #[test]
    fn a_throttle_never_raises_the_pace() {
        for quota in [5.0, 20.0, 100.0] {
            let mut pacer = pacer(true);
            let at = clock();
            // Unpaced: a success, then a throttle answered 50 ms later starts the pace. Calls
            // sent meanwhile, unpaced, fall in the span after that throttle: what refilled
            // over it would be more than the pace lets through.
            pacer.record(at(0.0), at(0.0), false, false);
            pacer.record(at(0.1), at(0.15), true, false);
            let burst = (quota * 2.0) as u32;
            for i in 0..burst {
                let sent = at(0.1 + 0.05 * f64::from(i + 1) / f64::from(burst + 1));
                pacer.record(sent, at(0.2), false, false);
            }
            let before = pacer.rate().expect("paced");
            pacer.record(at(0.5), at(0.5), true, false);
            let State::Paced { rate, cut_from, .. } = pacer.state else {
                panic!("quota {quota}: not paced");
            };
            assert!(
                rate <= before && rate == cut_from,
                "quota {quota}: {before} to {rate}"
            );
        }
    }

    #[test]
    fn a_throttled_call_gives_its_interval_back() {
        let next_of = |pacer: &Pacer| match pacer.state {
            State::Paced { next, .. } => next,
            State::Unpaced { .. } => panic!("not paced"),
        };
        for quota in [5.0, 20.0, 100.0] {
            for sent_after in [false, true] {
                let mut pacer = pacer(true);
                let mut bucket = bucket(quota, 1.0);
                let at = clock();
                // Calls at ten times the quota until a throttle starts the pace; then calls on
                // their tokens, over the quota and answered at once, until one is turned away.
                let (mut last, mut sent) = (at(0.0), at(0.0));
                while !pacer.is_paced() && sent < at(60.0) {
                    sent += Duration::from_secs_f64(0.1 / quota);
                    pacer.record(sent, sent, bucket(sent), false);
                }
                let first = next_of(&pacer);
                pacer.state = paced(quota * 1.2, first, first);
                for _ in 0..1000 {
                    sent = next_of(&pacer);
                    pacer.try_send(sent).expect("on its token");
                    if bucket(sent) {
                        break;
                    }
                    pacer.record(sent, sent, false, false);
                    last = sent;
                }
                assert!(last < sent, "quota {quota}: never throttled");
                let old = pacer.rate().unwrap_or_default();
                // Another call goes on the next token before the throttle's answer, or none.
                let later = next_of(&pacer);
                if sent_after {
                    pacer.try_send(later).expect("on its token");
                }
                let before = next_of(&pacer);
                let answered = if sent_after { later } else { sent };
                pacer.record(sent, answered, true, false);
                let rate = pacer.rate().expect("paced");
                let next = next_of(&pacer);
                if sent_after {
                    // That call may take the token the throttled one did not: the pace keeps.
                    assert_eq!(next, before, "quota {quota}");
                    continue;
                }
                // The bucket holds a token again an interval of the new pace (at or under the
                // quota) after the last success went: the next call goes then, and gets
                // through, well before an interval after the throttled call.
                assert!(rate <= quota, "quota {quota}: {rate}");
                assert_eq!(next, last + interval(rate), "quota {quota}");
                assert!(
                    next + interval(old) / 2 < sent + interval(rate),
                    "quota {quota}"
                );
                assert!(!bucket(next), "quota {quota}: throttled again");
            }
        }
    }

    #[test]
    fn a_token_spent_late_asks_for_a_new_one() {
        let mut pacer = pacer(true);
        let start = Instant::now();
        pacer.state = paced(10.0, start, start);
        let interval = Duration::from_millis(100);
        assert!(pacer.try_send(start).is_ok());
        // Spent before the next token is due: it goes.
        assert!(pacer.redeem(start, start + interval / 2).is_ok());
        // Another call takes the next token; spent after that one was due, the first token
        // asks again and waits for the one after.
        assert!(pacer.try_send(start + interval).is_ok());
        let wait = pacer.redeem(start, start + interval * 3 / 2).unwrap_err();
        assert!((wait.as_secs_f64() - 0.05).abs() < 1e-6, "{wait:?}");
    }

    #[test]
    fn a_pace_started_before_anything_got_through_rises_to_what_then_gets_through() {
        // A busy service: successes come back after a second, throttles at once. With twice
        // the quota in flight, the first throttle comes back before any success, so pacing
        // starts at the minimum; the burst's successes then show what gets through.
        for quota in [5.0, 20.0, 100.0] {
            let (mut worst, mut slowest) = (0.0f64, 0.0f64);
            for seed in 0..10 {
                let calls = (quota * 10.0) as u32;
                let job = Job {
                    in_flight: (quota * 2.0) as u32,
                    quick_throttles: true,
                    ..Job::new(calls, 1000, seed)
                };
                // The best any client does: the burst at once, the rest at the quota, and
                // the last answer a second later.
                let best = (f64::from(calls) - quota) / quota + 1.0;
                for known in [false, true] {
                    let stats = job.run(&mut pacer(known), bucket(quota, 1.0));
                    worst = worst.max(stats.share());
                    slowest = slowest.max(stats.time.as_secs_f64() / best);
                }
            }
            println!("quota {quota}/s, answers in 1 s, throttles at once: throttled {worst:.3}, {slowest:.3}x the best time");
            assert!(slowest < 2.0, "quota {quota}: {slowest:.3}x the best time");
        }
    }

    #[test]
    fn random_throttling_is_left_to_retries() {
        for latency in LATENCIES {
            let job = Job::new(100, latency, 0);
            let base = job.run(&mut pacer(false), |_| false).time.as_secs_f64();
            let (mut sum, mut worst) = (0.0, 0.0f64);
            let mut paced = 0;
            for seed in 0..200 {
                let mut rng = fastrand::Rng::with_seed(seed);
                let job = Job { seed, ..job };
                let mut pacer = pacer(false);
                let stats = job.run(&mut pacer, |_| rng.f64() < 0.3);
                paced += u32::from(pacer.rate().is_some());
                let slowdown = stats.time.as_secs_f64() / base;
                sum += slowdown;
                worst = worst.max(slowdown);
            }
            // Retries alone cost their backoff (50 ms and up): at 3 ms a call, several times
            // the unthrottled time. Pacing must add nothing: no run is paced.
            println!(
                "{latency} ms: random 30%: {:.2}x mean, {worst:.2}x worst",
                sum / 200.0
            );
            assert_eq!(paced, 0, "{latency} ms: {paced} of 200 runs paced");
        }
    }
    #[test]
    fn account_regions_starting_together_under_random_throttling_never_pool_a_flood() {
        // 40 account-regions answered in turn, as a run's first calls come back, 30% of
        // answers throttled at random: the pool must not take that for a quota.
        for seed in 0..100 {
            let run = Arc::new(AtomicU64::new(0));
            let mut pacers: Vec<Pacer> = (0..40).map(|_| Pacer::new(run.clone())).collect();
            let mut rng = fastrand::Rng::with_seed(seed);
            let now = Instant::now();
            for _ in 0..100 {
                for pacer in &mut pacers {
                    pacer.record(now, now, rng.f64() < 0.3, false);
                }
            }
            assert_eq!(run.load(Relaxed) & QUOTA_KNOWN, 0, "seed {seed}");
        }
        // The same pool does learn a quota: answers past a burst are mostly throttles.
        let run = Arc::new(AtomicU64::new(0));
        let mut pacers: Vec<Pacer> = (0..40).map(|_| Pacer::new(run.clone())).collect();
        let now = Instant::now();
        for _ in 0..2 {
            for pacer in &mut pacers {
                pacer.record(now, now, true, false);
            }
        }
        assert_ne!(run.load(Relaxed) & QUOTA_KNOWN, 0);
    }

    #[test]
    fn a_false_flood_under_random_throttling_is_undone_at_the_floor() {
        for latency in LATENCIES {
            let job = Job::new(300, latency, 0);
            let mut worst_random = 0.0f64;
            let mut worst_flooded = 0.0f64;
            for seed in 0..20 {
                let job = Job { seed, ..job };
                let mut rng = fastrand::Rng::with_seed(seed);
                let stats = job.run(&mut pacer(false), |_| rng.f64() < 0.3);
                worst_random = worst_random.max(stats.time.as_secs_f64());
                // The first 16 answers throttled (a flood), then the same random 30%.
                let mut rng = fastrand::Rng::with_seed(seed);
                let mut sent = 0;
                let mut pacer = pacer(false);
                let stats = job.run(&mut pacer, |_| {
                    sent += 1;
                    sent <= FLOOD_THROTTLES || rng.f64() < 0.3
                });
                worst_flooded = worst_flooded.max(stats.time.as_secs_f64());
                assert!(
                    pacer.rate().is_none(),
                    "{latency} ms, seed {seed}: still paced"
                );
            }
            println!("{latency} ms: random 30% {worst_random:.2} s, after a false flood {worst_flooded:.2} s");
            // Paced until a throttle at the floor (a few calls at 0.5/s when nothing got
            // through), then unpaced: seconds, not the ten minutes that 300 calls at the floor
            // would take.
            assert!(
                worst_flooded < worst_random + 60.0,
                "{latency} ms: {worst_flooded:.2} s against {worst_random:.2} s"
            );
        }
    }
}
