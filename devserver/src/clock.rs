//! The virtual clock and time skipping.
//!
//! The server never reads the wall clock for protocol time; every `event_time`, timer and
//! timeout comes from the server's clock. The clock follows real time until time skipping is
//! allowed, which (as in the Java test server) needs two things at once:
//! - no client holds a time-skipping lock (`LockTimeSkipping`, or the lock a server started
//!   "locked" holds), and
//! - no work is in flight: no workflow task scheduled or started, no activity scheduled or
//!   running (an activity waiting out a retry backoff does not count).
//!
//! Then the pump jumps the clock straight to the next due timer and fires it. User timers are
//! never in-flight work, so a 24 h timer fires as soon as the workflow is idle.

use std::{
    pin::pin,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::sync::watch;

use crate::engine::Engine;

/// Nanoseconds since the Unix epoch, in virtual time.
pub type Nanos = i64;

/// A clock that runs at wall speed from a base point and can be moved forward.
#[derive(Debug)]
pub(crate) struct Clock {
    base_virtual: Nanos,
    base_real: Instant,
}

impl Clock {
    pub(crate) fn starting_now() -> Self {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self { base_virtual: since_epoch.as_nanos() as Nanos, base_real: Instant::now() }
    }

    pub(crate) fn now(&self) -> Nanos {
        self.base_virtual + self.base_real.elapsed().as_nanos() as Nanos
    }

    /// Moves the clock forward to `t`; never backwards.
    pub(crate) fn advance_to(&mut self, t: Nanos) {
        if t > self.now() {
            self.base_virtual = t;
            self.base_real = Instant::now();
        }
    }
}

/// Converts virtual nanos to a `SystemTime`.
pub fn to_system_time(t: Nanos) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(t.max(0) as u64)
}

/// An unlock without a matching lock, which the Java test server also rejects.
#[derive(Debug, thiserror::Error)]
#[error("time skipping is not locked: UnlockTimeSkipping called more often than LockTimeSkipping")]
pub struct UnbalancedUnlock;

/// Fires due timers and skips idle time until the server stops.
pub(crate) async fn run_pump(engine: Engine, mut stop: watch::Receiver<bool>) {
    loop {
        let mut woken = pin!(engine.pump_notified());
        woken.as_mut().enable();
        // Real time until the next timer is due, if any is queued.
        let wait = engine.pump_step();
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(wait.unwrap_or(Duration::from_secs(3600))) => {}
            _ = stop.changed() => return,
        }
    }
}
