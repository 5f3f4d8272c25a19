//! Dead letters retried later (the design document's §6.2.2: "记录到死信队列,
//! 稍后重试"). An occurrence a chain dead-lettered goes to the dead-letter
//! sinks at once — durable, and re-drivable with `aetherius replay` — and is
//! also held here, in memory, to run through that chain again: after
//! `after`, then twice as long each time, never while one of the chain's
//! circuit breakers is open, at most `attempts` times. A retry that passes is
//! published as if it had never failed (under the same occurrence id); one
//! that fails again waits for the next attempt, without a second dead
//! letter. What is held is lost on a restart; the dead-letter sinks still
//! have it. A retry that passes is published late: after any later
//! occurrence of the same object that passed meanwhile (each carries its
//! count). A chain a reload removed takes no retries: they count as
//! filtered.

use std::sync::Arc;

use serde::Deserialize;

use crate::event::Millis;
use crate::metrics;
use crate::occurrence::Occurrence;
use crate::units::HumanDuration;

/// `pipeline.dead_letter_retry:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Times a dead-lettered occurrence runs through its chain again
    /// (default 5; 0: never).
    pub attempts: u32,
    /// Wait before the first retry, doubled for each next one (default 30s,
    /// the circuit breaker's default cooldown).
    pub after: HumanDuration,
    /// Occurrences held for a retry at once (default 10000); when full, the
    /// oldest is given up (it is in the dead-letter sinks).
    pub max_events: usize,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 5,
            after: HumanDuration::from_secs(30),
            max_events: 10_000,
        }
    }
}

/// One occurrence waiting for its next attempt.
#[derive(Debug)]
pub(super) struct Retry {
    pub occurrence: Arc<Occurrence>,
    pub chain: String,
    /// Failed runs through the chain so far.
    pub failures: u32,
    pub due: Millis,
}

/// The occurrences waiting, in the order they were dead-lettered.
#[derive(Debug)]
pub(super) struct Retries {
    config: RetryConfig,
    waiting: Vec<Retry>,
}

/// The `result`s of `aetherius_dead_letter_retries_total`.
pub const RESULTS: [&str; 5] = ["published", "filtered", "failed", "exhausted", "dropped"];

impl Retries {
    pub fn new(config: RetryConfig) -> Self {
        Self {
            config,
            waiting: Vec::new(),
        }
    }

    /// `occurrence` failed in `chain` for the `failures`-th time at `now`:
    /// held for another attempt, or given up.
    pub fn failed(&mut self, occurrence: Arc<Occurrence>, chain: &str, failures: u32, now: Millis) {
        if failures > self.config.attempts {
            if self.config.attempts > 0 {
                metrics::DEAD_LETTER_RETRIES.inc(&["exhausted"]);
                tracing::warn!(
                    chain,
                    id = %occurrence.id,
                    attempts = self.config.attempts,
                    "a dead-lettered event failed every retry; it stays in the dead-letter sinks"
                );
            }
            return;
        }
        if failures > 1 {
            metrics::DEAD_LETTER_RETRIES.inc(&["failed"]);
        }
        if self.waiting.len() >= self.config.max_events.max(1) {
            self.waiting.remove(0);
            metrics::DEAD_LETTER_RETRIES.inc(&["dropped"]);
        }
        let wait = self.config.after.as_millis_i64() << (failures - 1).min(20);
        self.waiting.push(Retry {
            occurrence,
            chain: chain.to_owned(),
            failures,
            due: now.saturating_add(wait),
        });
    }

    /// Takes the occurrences due at `now` whose chain `is_open` does not
    /// hold back (its breaker open until a time, which becomes their due).
    pub fn take_due(
        &mut self,
        now: Millis,
        open_until: impl Fn(&str) -> Option<Millis>,
    ) -> Vec<Retry> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].due > now {
                i += 1;
                continue;
            }
            if let Some(until) = open_until(&self.waiting[i].chain) {
                self.waiting[i].due = until;
                i += 1;
                continue;
            }
            due.push(self.waiting.remove(i));
        }
        due
    }

    /// When the next one is due, if any waits.
    pub fn next_due(&self) -> Option<Millis> {
        self.waiting.iter().map(|r| r.due).min()
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::warning;
    use crate::occurrence::{Fingerprint, occurrence_id};

    fn occurrence(uid: &str) -> Arc<Occurrence> {
        let event = warning("Boom", "web", uid, 1, 0);
        Arc::new(Occurrence {
            id: occurrence_id(&event),
            fingerprint: Fingerprint::of(&event),
            repeated_count: None,
            event,
        })
    }

    #[test]
    fn backs_off_waits_for_the_breaker_and_gives_up() {
        let config = RetryConfig {
            attempts: 2,
            after: HumanDuration::from_secs(30),
            max_events: 2,
        };
        let mut retries = Retries::new(config);
        retries.failed(occurrence("a"), "main", 1, 0);
        assert_eq!(retries.next_due(), Some(30_000));
        assert!(retries.take_due(29_999, |_| None).is_empty());
        // The chain's breaker is open until 45s: held until then.
        assert!(retries.take_due(30_000, |_| Some(45_000)).is_empty());
        assert_eq!(retries.next_due(), Some(45_000));
        let due = retries.take_due(45_000, |_| None);
        assert_eq!(due.len(), 1);
        // Failed again: twice the wait.
        retries.failed(due[0].occurrence.clone(), "main", 2, 45_000);
        assert_eq!(retries.next_due(), Some(105_000));
        let due = retries.take_due(105_000, |_| None);
        // A third failure is beyond the two attempts: given up.
        retries.failed(due[0].occurrence.clone(), "main", 3, 105_000);
        assert_eq!(retries.len(), 0);
        // Bounded: the oldest goes.
        for uid in ["x", "y", "z"] {
            retries.failed(occurrence(uid), "main", 1, 0);
        }
        assert_eq!(retries.len(), 2);
    }
}
