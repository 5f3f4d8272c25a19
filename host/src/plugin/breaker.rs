//! A circuit breaker for a stage that keeps failing.

use crate::event::Millis;

/// Whether a stage may be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are skipped until `until`.
    Open { until: Millis },
    /// The cooldown is over: the next call is a trial.
    HalfOpen,
}

/// Opens after `threshold` consecutive failures, stays open for `cooldown`,
/// then lets one trial through: success closes it, failure opens it again.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Millis,
    consecutive_failures: u32,
    state: BreakerState,
}

/// A change of state worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    Closed,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Millis) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            consecutive_failures: 0,
            state: BreakerState::Closed,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Whether a call may be made at `now`.
    pub fn allows(&mut self, now: Millis) -> bool {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                true
            }
            BreakerState::Open { .. } => false,
        }
    }

    pub fn record_success(&mut self) -> Option<Transition> {
        self.consecutive_failures = 0;
        let was_half_open = self.state == BreakerState::HalfOpen;
        self.state = BreakerState::Closed;
        was_half_open.then_some(Transition::Closed)
    }

    pub fn record_failure(&mut self, now: Millis) -> Option<Transition> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let trips = self.state == BreakerState::HalfOpen
            || (self.state == BreakerState::Closed && self.consecutive_failures >= self.threshold);
        if trips {
            self.state = BreakerState::Open {
                until: now.saturating_add(self.cooldown),
            };
            return Some(Transition::Opened);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_recovers_after_cooldown() {
        let mut breaker = CircuitBreaker::new(3, 1_000);
        assert_eq!(breaker.record_failure(0), None);
        assert_eq!(breaker.record_failure(0), None);
        assert_eq!(breaker.record_failure(10), Some(Transition::Opened));
        assert!(!breaker.allows(500));
        assert!(!breaker.allows(1_009));
        assert!(breaker.allows(1_010), "cooldown over: one trial");
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(
            breaker.record_failure(1_010),
            Some(Transition::Opened),
            "failed trial"
        );
        assert!(!breaker.allows(1_500));
        assert!(breaker.allows(2_010));
        assert_eq!(breaker.record_success(), Some(Transition::Closed));
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut breaker = CircuitBreaker::new(2, 1_000);
        breaker.record_failure(0);
        assert_eq!(breaker.record_success(), None);
        assert_eq!(breaker.record_failure(0), None);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
