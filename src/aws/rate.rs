//! A request-rate controller for one class of calls in one account-region.
//!
//! ECR throttles per account, region and API, with token buckets shared by every client of the
//! account. Two kinds of throttling look alike on the wire and need opposite answers:
//! - our own rate is above the quota: slowing down to what gets through removes the throttles;
//! - someone else's traffic (a CI system on the same account) drains the bucket at random:
//!   slowing down does not remove them, it only makes the run slower.
//!
//! The controller starts unpaced. It looks at windows of calls; when a window has more
//! throttles than the background level, it cuts the rate to what got through. If the next
//! window is throttled just as much, the cut did not help: the throttles are background, the
//! cut is undone and the level is remembered so it no longer triggers cuts. Windows without
//! excess throttling raise the rate again (additive increase, so it recovers instead of
//! staying at a floor). Retries with backoff handle the throttles that remain.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A window closes after this long and this many calls, whichever is later.
const WINDOW: Duration = Duration::from_millis(500);
const WINDOW_CALLS: u32 = 8;
/// Throttled share above the background that counts as "we are too fast".
const EXCESS: f64 = 0.05;
/// A cut aims this far below the rate that got through.
const CUT_TO: f64 = 0.9;
/// Calls sent after a cut before judging whether it helped.
const JUDGE_CALLS: u32 = 16;
/// The first calls after a cut still find the quota's bucket empty: they are not judged.
const GRACE_CALLS: u32 = 4;
/// A cut helped if at most this share (or the background's) is throttled after it.
const QUIET: f64 = 0.1;
/// A share of throttled calls no background explains: far above a quota.
const FLOODED: f64 = 0.75;
/// Over a whole trial, a share not taken for background either: still above a quota.
const ABOVE_QUOTA: f64 = 0.5;
/// A trial whose share fell below this part of the share before it helped in part.
const DROPPED: f64 = 0.6;
/// Cuts in a row that helped in part before the rest is taken for background.
const MAX_DEPTH: u32 = 4;
/// Rates are never measured over less than this.
const MIN_SPAN: Duration = Duration::from_millis(50);
/// Share of the limit added after a window without excess throttling (at least one call/s).
const INCREASE: f64 = 0.1;
/// Calls per second never go below this.
const FLOOR: f64 = 1.0;
/// Answers are counted over this span to estimate the rates sent and got through.
const RECENT: Duration = Duration::from_secs(1);

/// Calls and throttles of a sample.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    sent: u32,
    throttled: u32,
}

impl Sample {
    fn add(&mut self, throttled: bool) {
        self.sent += 1;
        self.throttled += u32::from(throttled);
    }

    fn share(&self) -> f64 {
        f64::from(self.throttled) / f64::from(self.sent.max(1))
    }
}

/// A cut under trial: calls sent after it are compared with the calls that caused it.
#[derive(Debug)]
struct Trial {
    at: Instant,
    limit_before: Option<f64>,
    before: Sample,
    after: Sample,
    /// Cuts in a row so far, each after one that helped only in part.
    depth: u32,
    /// Calls after the cut not counted yet (see `GRACE_CALLS`).
    grace: u32,
}

#[derive(Debug)]
pub struct RateController {
    /// Calls per second; `None` means unpaced.
    limit: Option<f64>,
    next_slot: Option<Instant>,
    window_start: Option<Instant>,
    window: Sample,
    /// Answers of the last second (time, throttled): the rates sent and got through.
    recent: VecDeque<(Instant, bool)>,
    first_answer: Option<Instant>,
    /// Throttled share that does not respond to our rate.
    background: f64,
    trial: Option<Trial>,
    /// Changes at every cut: slots reserved before it are reserved again.
    pace: u64,
    /// The last window had excess over a known background; the current one confirms it.
    suspect: bool,
}

impl Default for RateController {
    fn default() -> Self {
        RateController::new()
    }
}

impl RateController {
    pub fn new() -> RateController {
        RateController::starting_at(None)
    }

    /// A controller that starts paced at `limit` calls per second (`None`: unpaced). Calls of
    /// which an account-region makes few (writes, tag pages) get no window to learn from
    /// before a burst of them drains a small quota, so they start at a modest pace and rise
    /// from there while nothing is throttled.
    pub fn starting_at(limit: Option<f64>) -> RateController {
        RateController {
            limit,
            next_slot: None,
            window_start: None,
            window: Sample::default(),
            recent: VecDeque::new(),
            first_answer: None,
            background: 0.0,
            trial: None,
            pace: 0,
            suspect: false,
        }
    }

    /// Reserve the next send slot: how long to wait before sending, and the pace it was
    /// reserved at. After the wait, ask [`RateController::still_paced`] whether the pace
    /// is still the same: slots reserved before a cut would otherwise all be sent after it,
    /// at the old pace.
    pub fn reserve(&mut self, now: Instant) -> (Duration, u64) {
        let Some(limit) = self.limit else {
            return (Duration::ZERO, self.pace);
        };
        let slot = self.next_slot.filter(|s| *s > now).unwrap_or(now);
        self.next_slot = Some(slot + Duration::from_secs_f64(1.0 / limit));
        (slot - now, self.pace)
    }

    /// Whether a slot reserved at `pace` may be used (no cut since).
    pub fn still_paced(&self, pace: u64) -> bool {
        pace == self.pace
    }

    /// Record the answer, at `now`, of one attempt sent at `sent`.
    pub fn record(&mut self, sent: Instant, now: Instant, throttled: bool) {
        self.first_answer.get_or_insert(now);
        self.recent.push_back((now, throttled));
        while self
            .recent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RECENT)
        {
            self.recent.pop_front();
        }
        if let Some(trial) = &mut self.trial {
            // Only calls sent at the new pace say whether it helped, and the first few of
            // them still meet a bucket that we drained.
            if sent >= trial.at {
                if trial.grace > 0 {
                    trial.grace -= 1;
                } else {
                    trial.after.add(throttled);
                }
                self.judge(now);
            }
            return;
        }
        let start = *self.window_start.get_or_insert(now);
        self.window.add(throttled);
        let elapsed = now.saturating_duration_since(start);
        let w = self.window;
        let share = w.share();
        // Excess must stand out from the sampling noise of the background level (three
        // standard deviations), or random throttling would trigger cuts by chance; and a
        // single throttle says little.
        let noise = 3.0 * (self.background * (1.0 - self.background) / f64::from(w.sent)).sqrt();
        let excess = w.throttled >= 2 && share - self.background > EXCESS.max(noise);
        // React as soon as a window has enough calls to tell, not at its end: a burst of
        // calls drains a small quota within one window.
        let closes = elapsed >= WINDOW && w.sent >= self.window_calls();
        let decides = closes || w.sent >= WINDOW_CALLS;
        if excess && decides && self.background > 0.0 && !self.suspect && share < FLOODED {
            // Over a known background, excess in one window can be chance (and a cut would
            // then look as if it helped): a fresh window at the same pace must confirm it.
            self.suspect = true;
            self.restart_window(now);
        } else if excess && decides {
            self.suspect = false;
            let (rate, got_through) = self.recent_rates(now);
            let limit_before = self.limit;
            // At least halve: a cut that is put on trial must be deep enough to tell a quota
            // (throttling stops) from other clients' traffic (it does not).
            self.cut(now, w, (got_through * CUT_TO).min(rate * 0.5), limit_before);
        } else if closes {
            self.suspect = false;
            // A window without excess: the other clients may have gone, and we may go faster.
            if self.background > 0.0 {
                self.background = 0.9 * self.background + 0.1 * share;
            }
            if let Some(limit) = self.limit {
                // Only a pace that was used is raised: while calls are scarce (waiting for
                // their retries), a rising limit would be untested.
                if f64::from(w.sent + 1) >= 0.7 * limit * elapsed.as_secs_f64() {
                    // Additive increase, gentle enough that a quota is approached, not jumped.
                    self.limit = Some(limit + (limit * INCREASE).max(1.0));
                }
            }
            self.restart_window(now);
        }
    }

    /// Calls a window needs before it closes: fewer at a slow pace, so that a slow start
    /// is raised every half second.
    fn window_calls(&self) -> u32 {
        match self.limit {
            Some(limit) => ((limit * WINDOW.as_secs_f64()) as u32).clamp(2, WINDOW_CALLS),
            None => WINDOW_CALLS,
        }
    }

    /// Calls per second answered, and answered without throttling, over the last second
    /// (or since the first answer).
    fn recent_rates(&self, now: Instant) -> (f64, f64) {
        let span = self
            .first_answer
            .map_or(RECENT, |f| now.saturating_duration_since(f))
            .clamp(MIN_SPAN, RECENT)
            .as_secs_f64();
        let got_through = self.recent.iter().filter(|(_, t)| !t).count();
        (self.recent.len() as f64 / span, got_through as f64 / span)
    }

    /// Slow down to `to` calls per second (never above 0.9x the current limit, never below
    /// the floor), and put the cut on trial; `limit_before` is the pace to go back to if
    /// it does not help.
    fn cut(&mut self, now: Instant, before: Sample, to: f64, limit_before: Option<f64>) {
        let cut = match self.limit {
            Some(limit) => to.min(limit * CUT_TO),
            None => to,
        }
        .max(FLOOR);
        tracing::debug!(share = before.share(), from = ?self.limit, to = cut, "throttled: slowing down");
        self.trial = Some(Trial {
            at: now,
            limit_before,
            before,
            after: Sample::default(),
            depth: 0,
            grace: GRACE_CALLS,
        });
        self.limit = Some(cut);
        self.next_slot = None;
        self.pace += 1;
    }

    /// Whether the cut on trial helped, once enough calls were sent after it. Below a quota,
    /// throttling all but stops; throttling from other clients stays as it was.
    fn judge(&mut self, now: Instant) {
        let Some(trial) = &self.trial else { return };
        let after = trial.after;
        let flooded = (after.sent >= WINDOW_CALLS && after.share() >= FLOODED)
            || (after.sent >= JUDGE_CALLS && after.share() >= ABOVE_QUOTA);
        if flooded {
            // Still far above a quota (right after a burst, the rate that got through
            // overstates it): cut again from what gets through at the new pace, to no less
            // than a quarter while that is measured over too short a time to tell.
            let span = now.saturating_duration_since(trial.at);
            let seconds = span.max(MIN_SPAN).as_secs_f64();
            let got_through = f64::from(after.sent - after.throttled) / seconds * CUT_TO;
            let rate = f64::from(after.sent) / seconds;
            let to = if span >= Duration::from_millis(200) {
                got_through
            } else {
                got_through.max(rate * 0.25)
            };
            let limit_before = trial.limit_before;
            self.cut(now, after, to, limit_before);
            return;
        }
        if after.sent < JUDGE_CALLS {
            return;
        }
        let trial = self.trial.take().expect("on trial");
        // The share expected below a quota: the background, give or take its noise.
        let b = self.background;
        let quiet = (b + 2.0 * (b * (1.0 - b) / f64::from(after.sent)).sqrt()).max(QUIET);
        if after.share() <= quiet {
            // Below the quota now; the window starts afresh from this pace.
        } else if after.share() < DROPPED * trial.before.share() && trial.depth < MAX_DEPTH {
            // Throttling fell with our rate but did not stop: still above a quota.
            let to = self.recent_rates(now).1 * CUT_TO;
            self.cut(now, after, to, trial.limit_before);
            if let Some(t) = &mut self.trial {
                t.depth = trial.depth + 1;
            }
            return;
        } else {
            // Slowing down did not stop it: this is other clients' traffic. Go back to the
            // pace before the cut and expect this share from now on (measured after the
            // cut: the window that caused the cut was picked for being high).
            tracing::debug!(
                share = after.share(),
                "throttling does not follow our rate: background"
            );
            self.background = after.share();
            self.limit = trial.limit_before;
            self.next_slot = None;
            self.pace += 1;
        }
        self.restart_window(now);
    }

    fn restart_window(&mut self, now: Instant) {
        self.window_start = Some(now);
        self.window = Sample::default();
    }

    /// Calls per second, if paced.
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::call::{BACKOFF_BASE, BACKOFF_CAP};

    /// Drive a controller against a simulated service for `seconds`, with calls ready to go
    /// whenever the controller allows (at most `offered` per second). `throttle(now, rng)` says
    /// whether the service throttles a call. Returns (calls, throttled).
    fn simulate(
        controller: &mut RateController,
        seconds: f64,
        offered: f64,
        mut throttle: impl FnMut(Instant) -> bool,
    ) -> (u32, u32) {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        let gap = Duration::from_secs_f64(1.0 / offered);
        let mut now = start;
        let (mut calls, mut throttled) = (0, 0);
        while now < end {
            now += controller.reserve(now).0.max(gap);
            let t = throttle(now);
            controller.record(now, now, t);
            calls += 1;
            throttled += u32::from(t);
        }
        (calls, throttled)
    }

    /// A token bucket of `rate` per second and `burst` capacity.
    fn bucket(rate: f64, burst: f64) -> impl FnMut(Instant) -> bool {
        let mut tokens = burst;
        let mut last: Option<Instant> = None;
        move |now| {
            if let Some(l) = last {
                tokens = (tokens + now.duration_since(l).as_secs_f64() * rate).min(burst);
            }
            last = Some(now);
            if tokens >= 1.0 {
                tokens -= 1.0;
                false
            } else {
                true
            }
        }
    }

    /// One account-region's job as `Calls::call` runs it: `calls` calls, at most `in_flight`
    /// of them sent at once, each answered `latency` after it is sent; a throttled call waits
    /// out a full-jitter backoff (holding no slot) and is sent again, paced like the rest.
    /// Returns (makespan, attempts, throttled).
    #[derive(Clone, Copy)]
    struct Job {
        calls: u32,
        in_flight: usize,
        latency: Duration,
        seed: u64,
    }

    impl Job {
        fn run(
            &self,
            controller: &mut RateController,
            mut throttle: impl FnMut(Instant) -> bool,
        ) -> (Duration, u32, u32) {
            use std::cmp::Reverse;
            use std::collections::{BinaryHeap, VecDeque};
            #[derive(PartialEq, Eq, PartialOrd, Ord)]
            enum Event {
                // Wants a send slot: reserve one from the controller.
                Ready { retry: u32 },
                // Its reserved slot has come: send when an in-flight place is free.
                Send { retry: u32, pace: u64 },
                Answer { retry: u32, throttled: bool },
            }
            let mut rng = fastrand::Rng::with_seed(self.seed);
            let start = Instant::now();
            let mut events = BinaryHeap::new();
            let mut seq = 0u64;
            let mut push = |events: &mut BinaryHeap<_>, at: Instant, e: Event| {
                seq += 1;
                events.push(Reverse((at, seq, e)));
            };
            let first = self.calls.min(64);
            for _ in 0..first {
                push(&mut events, start, Event::Ready { retry: 0 });
            }
            let mut not_started = self.calls - first;
            let mut sending = 0usize;
            let mut waiting: VecDeque<(u32, u64)> = VecDeque::new();
            let (mut attempts, mut throttled, mut end) = (0, 0, start);
            while let Some(Reverse((now, _, event))) = events.pop() {
                match event {
                    Event::Ready { retry } => {
                        let (wait, pace) = controller.reserve(now);
                        push(&mut events, now + wait, Event::Send { retry, pace });
                    }
                    Event::Send { retry, pace } => {
                        if !controller.still_paced(pace) {
                            push(&mut events, now, Event::Ready { retry });
                        } else if sending < self.in_flight {
                            sending += 1;
                            attempts += 1;
                            let t = throttle(now);
                            push(
                                &mut events,
                                now + self.latency,
                                Event::Answer {
                                    retry,
                                    throttled: t,
                                },
                            );
                        } else {
                            waiting.push_back((retry, pace));
                        }
                    }
                    Event::Answer {
                        retry,
                        throttled: t,
                    } => {
                        sending -= 1;
                        end = now;
                        controller.record(now - self.latency, now, t);
                        // The next call waiting for a place goes, unless it was paced before
                        // a cut: then it reserves a slot again.
                        while let Some((next, pace)) = waiting.pop_front() {
                            if controller.still_paced(pace) {
                                sending += 1;
                                attempts += 1;
                                let t = throttle(now);
                                push(
                                    &mut events,
                                    now + self.latency,
                                    Event::Answer {
                                        retry: next,
                                        throttled: t,
                                    },
                                );
                                break;
                            }
                            push(&mut events, now, Event::Ready { retry: next });
                        }
                        if t {
                            throttled += 1;
                            if std::env::var_os("RATE_DEEP").is_some() && retry >= 4 { eprintln!("retry {} at {:?}", retry + 1, now - start); }
                            let ceiling = BACKOFF_BASE
                                .saturating_mul(1 << retry.min(16))
                                .min(BACKOFF_CAP);
                            let backoff = ceiling.mul_f64(rng.f64());
                            push(
                                &mut events,
                                now + backoff,
                                Event::Ready { retry: retry + 1 },
                            );
                        } else if not_started > 0 {
                            not_started -= 1;
                            push(&mut events, now, Event::Ready { retry: 0 });
                        }
                    }
                }
            }
            (end - start, attempts, throttled)
        }
    }

    /// How a job fares: its mean slowdown under 30% random throttling (over 20 seeds)
    /// against its unthrottled time, and the throttled share and time under a token bucket
    /// of `quota` per second (one second of burst).
    fn fare(job: &Job, start: Option<f64>, quota: f64) -> (f64, f64, Duration) {
        let base = job
            .run(&mut RateController::starting_at(start), |_| false)
            .0;
        let slowdown = (0..20)
            .map(|seed| {
                let mut rng = fastrand::Rng::with_seed(seed);
                let job = Job { seed, ..*job };
                let random = job.run(&mut RateController::starting_at(start), |_| rng.f64() < 0.3);
                random.0.as_secs_f64() / base.as_secs_f64()
            })
            .sum::<f64>()
            / 20.0;
        let (time, attempts, throttled) = job.run(
            &mut RateController::starting_at(start),
            bucket(quota, quota),
        );
        (slowdown, f64::from(throttled) / f64::from(attempts), time)
    }

    #[test]
    fn zz_trace() {
        let Ok(ms) = std::env::var("RATE_MS") else { return };
        let job = Job { calls: 41, in_flight: 8, latency: Duration::from_millis(ms.parse().unwrap()), seed: 1 };
        let base = job.run(&mut RateController::new(), |_| false).0;
        for seed in 0..10 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut c = RateController::new();
            let r = Job { seed, ..job }.run(&mut c, |_| rng.f64() < 0.3);
            println!("seed {seed}: {:.1}x {r:?} limit {:?} bg {:.2}", r.0.as_secs_f64() / base.as_secs_f64(), c.limit(), c.background);
        }
    }

    #[test]
    fn reads_keep_their_pace_under_random_throttling_and_find_a_quota() {
        for latency in [30, 100, 300] {
            let job = Job {
                calls: 300,
                in_flight: 8,
                latency: Duration::from_millis(latency),
                seed: 1,
            };
            let (slowdown, share, time) = fare(&job, None, 20.0);
            println!("reads at {latency} ms: {slowdown:.2}x; quota: {share:.3} in {time:?}");
            assert!(slowdown < 3.0, "{latency} ms: {slowdown:.2}x");
            // 280 calls past the burst at 20/s: 14 s at best.
            assert!(time < Duration::from_secs(18), "{latency} ms: {time:?}");
            if latency == 100 {
                assert!(share < 0.12, "{latency} ms: throttled share {share:.3}");
            }
        }
    }

    #[test]
    fn writes_from_a_paced_start_keep_their_pace_and_find_a_small_quota() {
        for latency in [30, 100, 300] {
            let job = Job {
                calls: 200,
                in_flight: 8,
                latency: Duration::from_millis(latency),
                seed: 1,
            };
            let (slowdown, share, time) = fare(&job, Some(10.0), 5.0);
            println!("writes at {latency} ms: {slowdown:.2}x; quota: {share:.3} in {time:?}");
            assert!(slowdown < 2.5, "{latency} ms: {slowdown:.2}x");
            assert!(share < 0.10, "{latency} ms: throttled share {share:.3}");
            // 195 calls past the burst at 5/s: 39 s at best.
            assert!(time < Duration::from_secs(48), "{latency} ms: {time:?}");
        }
    }

    #[test]
    fn unthrottled_calls_are_never_paced() {
        let mut c = RateController::new();
        let (calls, throttled) = simulate(&mut c, 10.0, 500.0, |_| false);
        assert_eq!(throttled, 0);
        assert!(calls >= 4_990, "{calls}");
        assert_eq!(c.limit(), None);
    }

    #[test]
    fn a_quota_is_found_and_few_calls_are_throttled() {
        let mut c = RateController::new();
        let (calls, throttled) = simulate(&mut c, 60.0, 500.0, bucket(20.0, 20.0));
        let share = f64::from(throttled) / f64::from(calls);
        // Close to the quota (20/s over 60 s = 1,200 calls) and few throttles.
        assert!(calls > 1_000, "calls {calls}");
        assert!(
            share < 0.10,
            "throttled share {share:.3} ({throttled}/{calls})"
        );
        let limit = c.limit().expect("paced");
        assert!((10.0..=30.0).contains(&limit), "limit {limit}");
    }

    #[test]
    fn random_throttling_from_others_does_not_slow_the_run_down() {
        let mut c = RateController::new();
        let mut rng = fastrand::Rng::with_seed(7);
        let (calls, throttled) = simulate(&mut c, 20.0, 200.0, |_| rng.f64() < 0.3);
        assert!(c.limit().is_none_or(|l| l > 100.0), "{:?}", c.limit());
        // Unpaced, the run would make 4,000 calls; it must keep most of that pace.
        assert!(calls > 3_000, "calls {calls}, throttled {throttled}");
    }

    #[test]
    fn a_paced_start_meets_a_small_quota_with_few_throttles() {
        let mut c = RateController::starting_at(Some(10.0));
        let (calls, throttled) = simulate(&mut c, 10.0, 500.0, bucket(5.0, 5.0));
        let share = f64::from(throttled) / f64::from(calls);
        assert!(
            share < 0.2,
            "throttled share {share:.3} ({throttled}/{calls})"
        );
        // And a paced start is not a ceiling: unthrottled, the pace rises.
        let mut c = RateController::starting_at(Some(10.0));
        simulate(&mut c, 10.0, 500.0, |_| false);
        assert!(c.limit().unwrap() > 20.0, "{:?}", c.limit());
    }

    #[test]
    fn the_rate_recovers_when_the_quota_grows() {
        let mut c = RateController::new();
        simulate(&mut c, 20.0, 500.0, bucket(10.0, 10.0));
        let low = c.limit().expect("paced");
        assert!(low < 20.0, "{low}");
        simulate(&mut c, 30.0, 500.0, bucket(100.0, 100.0));
        let high = c.limit().expect("paced");
        // Additive increase: steadily up, several times the old limit within 30 s.
        assert!(high > 3.0 * low, "{low} -> {high}");
    }
}
