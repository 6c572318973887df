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

use std::time::{Duration, Instant};

/// A window closes after this long and this many calls, whichever is later.
const WINDOW: Duration = Duration::from_millis(500);
const WINDOW_CALLS: u32 = 8;
/// Throttled share above the background that counts as "we are too fast".
const EXCESS: f64 = 0.05;
/// A cut aims this far below the rate that got through.
const CUT_TO: f64 = 0.9;
/// A cut "did not help" when the next window keeps at least this share of its throttling.
const NO_BETTER: f64 = 0.75;
/// Share of the limit added after a window without excess throttling (at least one call/s).
const INCREASE: f64 = 0.1;
/// Calls per second never go below this.
const FLOOR: f64 = 1.0;

#[derive(Debug)]
pub struct RateController {
    /// Calls per second; `None` means unpaced.
    limit: Option<f64>,
    next_slot: Option<Instant>,
    window_start: Option<Instant>,
    sent: u32,
    throttled: u32,
    /// Throttled share that does not respond to our rate.
    background: f64,
    /// The cut made at the end of the previous window: the limit before it and the
    /// throttled share that caused it.
    last_cut: Option<(Option<f64>, f64)>,
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
            sent: 0,
            throttled: 0,
            background: 0.0,
            last_cut: None,
        }
    }

    /// Reserve the next send slot; returns how long to wait before sending.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let Some(limit) = self.limit else {
            return Duration::ZERO;
        };
        let slot = self.next_slot.filter(|s| *s > now).unwrap_or(now);
        self.next_slot = Some(slot + Duration::from_secs_f64(1.0 / limit));
        slot - now
    }

    /// Record the answer of one attempt.
    pub fn record(&mut self, now: Instant, throttled: bool) {
        let start = *self.window_start.get_or_insert(now);
        self.sent += 1;
        if throttled {
            self.throttled += 1;
        }
        let elapsed = now.saturating_duration_since(start);
        // A window closes on time, or at once when most of it is throttled: an unpaced start
        // against a quota should not wait half a second to react.
        let flooded = self.throttled >= 2 * WINDOW_CALLS
            && f64::from(self.throttled) > f64::from(self.sent) * (0.5 + self.background / 2.0);
        if self.sent >= WINDOW_CALLS && (elapsed >= WINDOW || flooded) {
            self.close_window(elapsed.as_secs_f64());
            self.window_start = Some(now);
            self.sent = 0;
            self.throttled = 0;
        }
    }

    fn close_window(&mut self, seconds: f64) {
        let sent = f64::from(self.sent);
        let share = f64::from(self.throttled) / sent;
        // Excess must also stand out from the sampling noise of the background level (two
        // standard deviations), or random throttling would trigger cuts by chance.
        let noise = 2.0 * (self.background * (1.0 - self.background) / sent).sqrt();
        // A single throttle in a small window says little: act on two or more.
        if self.throttled >= 2 && share - self.background > EXCESS.max(noise) {
            match self.last_cut.take() {
                // More than half of the calls throttled is never taken for background: that is
                // a quota we are far above (a bucket's burst can make a first cut too small).
                Some((before, cut_share))
                    if self.throttled >= 3 && share < 0.5 && share >= cut_share * NO_BETTER =>
                {
                    // Slowing down changed nothing: this is other clients' traffic.
                    tracing::debug!(share, "throttling does not follow our rate: background");
                    self.background = share;
                    self.limit = before;
                }
                _ => {
                    let got_through = (sent - f64::from(self.throttled)) / seconds;
                    let sending = self.limit.unwrap_or(sent / seconds);
                    let cut = (got_through * CUT_TO).min(sending * CUT_TO).max(FLOOR);
                    tracing::debug!(share, from = sending, to = cut, "throttled: slowing down");
                    self.last_cut = Some((self.limit, share));
                    self.limit = Some(cut);
                }
            }
        } else {
            self.last_cut = None;
            if let Some(limit) = self.limit {
                // Additive increase, gentle enough that a quota is approached, not jumped.
                self.limit = Some(limit + (limit * INCREASE).max(1.0));
            }
        }
    }

    /// Calls per second, if paced.
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            now += controller.reserve(now).max(gap);
            let t = throttle(now);
            controller.record(now, t);
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
