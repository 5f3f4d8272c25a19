//! Exponential backoff with jitter between failed attempts: the one policy
//! of the watches, the broker sinks' retries and the checkpoint loads alike
//! (leases renew on their fixed `retry_period` instead: that is the Lease
//! protocol, not a backoff).
//!
//! Written here rather than taken from a crate (backon, backoff): the whole
//! policy is twenty lines with a stated jitter, every caller drives its own
//! loop (a watch resets on progress, a sink on a delivered batch, neither
//! wraps a retried closure), and the tests below pin the sequence.

use std::time::Duration;

/// 250 ms, doubling to at most 30 s, each delay jittered by ±20% so that many
/// watchers do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    seed: u64,
}

const FIRST: Duration = Duration::from_millis(250);
const MAX: Duration = Duration::from_secs(30);

impl Default for Backoff {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Self { next: FIRST, seed }
    }
}

impl Backoff {
    /// The delay before the next attempt; each call doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(MAX);
        // xorshift64: jitter needs no cryptography, nor a dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let permille = 800 + self.seed % 401; // 0.8 ..= 1.2
        base * permille as u32 / 1000
    }

    /// After a success: start again from the shortest delay.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        for (i, delay) in delays.iter().enumerate() {
            let base = (FIRST * 2u32.pow(i as u32)).min(MAX);
            assert!(
                *delay >= base * 8 / 10 && *delay <= base * 12 / 10,
                "attempt {i}: {delay:?} around {base:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= FIRST * 12 / 10);
    }
}
