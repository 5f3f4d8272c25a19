//! The pipeline's sense of time, injected so that TTLs, ages and breaker
//! cooldowns are deterministic in replay and in tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::event::Millis;

/// A wall clock in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> Millis;
}

/// The system's wall clock, for watching live clusters.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        jiff::Timestamp::now().as_millisecond()
    }
}

/// A clock that only moves when told to. During replay it follows the events:
/// it reads the latest event time seen so far, so a stale event among fresh
/// ones is as old as it would have been live. Tests move it by hand.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }

    /// Moves the clock forward to `ms`; never backwards.
    pub fn advance_to(&self, ms: Millis) {
        self.0.fetch_max(ms, Ordering::Relaxed);
    }

    /// Moves the clock forward by `delta` milliseconds.
    pub fn advance_by(&self, delta: Millis) {
        self.0.fetch_add(delta, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::Relaxed)
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_back() {
        let clock = ManualClock::new(1_000);
        clock.advance_to(5_000);
        clock.advance_to(2_000);
        assert_eq!(clock.now_ms(), 5_000);
        clock.advance_by(10);
        assert_eq!(clock.now_ms(), 5_010);
    }
}
