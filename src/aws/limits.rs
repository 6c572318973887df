//! What a run may spend: calls in flight and attempts per call, and how retries are paced.
//! Plain values, resolved from the config's `[execution]` table by the config layer.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryMode {
    /// The SDK's adaptive mode: retries and a client-side rate limiter inside each call.
    Adaptive,
    /// ecr-fleet's own: full-jitter exponential backoff that holds no permit while it waits,
    /// and a per-account-region rate controller that tells quota throttling from other
    /// clients' traffic (see `aws::rate`).
    Standard,
}

#[derive(Debug, Clone)]
pub struct ExecutionLimits {
    /// API calls in flight across the whole run.
    pub concurrency: usize,
    /// API calls in flight inside one account-region (ECR throttles per account and region).
    pub per_region_concurrency: usize,
    /// Attempts per call, the first included. The default is sized for throttling: under
    /// 30% of calls throttled by other clients' traffic, a call fails after 15 attempts
    /// about once in 70 million (0.3^15), so a run of 100,000 repositories almost never
    /// gives up on one; after 10, once in 170,000, about once in ten 2,000-repository runs.
    pub max_attempts: u32,
    pub retry_mode: RetryMode,
}

impl Default for ExecutionLimits {
    fn default() -> Self {
        ExecutionLimits {
            concurrency: 32,
            per_region_concurrency: 8,
            max_attempts: 15,
            retry_mode: RetryMode::Standard,
        }
    }
}

impl fmt::Display for RetryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryMode::Adaptive => "adaptive",
            RetryMode::Standard => "standard",
        })
    }
}
