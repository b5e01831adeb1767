//! Request rates per workspace and per API key: a GCRA token bucket (`governor`) for each,
//! checked when a request authenticates, so both transports and every operation share them.
//! A request over either rate is 429 `rate_limited` (gRPC `RESOURCE_EXHAUSTED`) with how long
//! to wait: `Retry-After` over HTTP, a `google.rpc.RetryInfo` over gRPC.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
};

use super::Caller;
use crate::error::{ApiError, ErrorCode};

/// A rate: `requests` per `period`, with bursts of up to `requests` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many requests.
    pub requests: NonZeroU32,
    /// In how long.
    pub period: Duration,
}

impl Rate {
    /// `requests` a second.
    pub fn per_second(requests: NonZeroU32) -> Self {
        Self { requests, period: Duration::from_secs(1) }
    }

    fn quota(self) -> Quota {
        let every = self.period / self.requests.get();
        Quota::with_period(every.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.requests))
            .allow_burst(self.requests)
    }
}

/// The request rates of [`super::AppSettings`]; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// Every API key of a workspace together.
    pub per_workspace: Option<Rate>,
    /// Each API key on its own.
    pub per_key: Option<Rate>,
}

/// The buckets of [`RateLimits`], keyed by workspace id and API key id.
pub(crate) struct Limiters {
    workspace: Option<DefaultKeyedRateLimiter<String>>,
    key: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("per_workspace", &self.workspace.is_some())
            .field("per_key", &self.key.is_some())
            .finish()
    }
}

impl Limiters {
    pub(crate) fn new(limits: RateLimits) -> Self {
        let keyed = |rate: Option<Rate>| rate.map(|r| RateLimiter::dashmap(r.quota()));
        Self {
            workspace: keyed(limits.per_workspace),
            key: keyed(limits.per_key),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request of `caller`'s key and workspace from their buckets, or refuses it
    /// with how long until it would be let through. The key is checked first, so a key over
    /// its own rate spends nothing of its workspace's.
    pub(crate) fn check(&self, caller: &Caller) -> Result<(), ApiError> {
        let checks = [
            (self.key.as_ref(), caller.api_key_id.as_str(), "this API key"),
            (self.workspace.as_ref(), caller.workspace.as_str(), "this workspace"),
        ];
        for (limiter, id, whose) in checks {
            let Some(limiter) = limiter else { continue };
            if let Err(not_until) = limiter.check_key(&id.to_owned()) {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    format!("{whose} is over its request rate; retry in {} ms", wait.as_millis()),
                )
                .with_retry_after(wait));
            }
        }
        Ok(())
    }
}
