//! Where the pipeline cuts its batches (one call into each plugin): at most
//! `batch_size` events or about a MiB of them, and, on the replay clock, a
//! new batch where the (whole-second) event time moves, so that plugins
//! calling `now` see the same time for an event whatever the batch size.
//! `plugin test` cuts its batches here too, so a plugin is tried as it runs.

use crate::clock::{Clock, ManualClock};
use crate::event::{Event, Millis};

/// Bytes of events a batch holds at most, about: large events go in smaller
/// batches, because a batch's encoded lines are in memory at once.
pub const BATCH_BYTES: usize = 1024 * 1024;

/// Decides, event by event, where a batch ends; see the module docs.
#[derive(Debug)]
pub struct BatchCutter {
    size: usize,
    /// The replay clock it moves along the events, in `replay` and
    /// `plugin test`; `None` live.
    replay: Option<ManualClock>,
    /// The event time of the batch being filled, on the replay clock.
    time: Option<Millis>,
}

impl BatchCutter {
    pub fn new(size: usize, replay: Option<ManualClock>) -> Self {
        Self {
            size: size.max(1),
            replay,
            time: None,
        }
    }

    /// Before `event` joins a batch already holding `events` events of
    /// `bytes` bytes: whether that batch must be processed first. On the
    /// replay clock, moves the clock to the event's time.
    pub fn cut_before(&mut self, event: &Event, events: usize, bytes: usize) -> bool {
        let full = events >= self.size || bytes >= BATCH_BYTES;
        let Some(clock) = &self.replay else {
            return full;
        };
        let time = event
            .occurred_at()
            .map(|t| t - t.rem_euclid(1_000))
            .unwrap_or(i64::MIN)
            .max(clock.now_ms());
        let moved = self.time.is_some_and(|t| t != time);
        clock.advance_to(time);
        self.time = Some(time);
        (full || moved) && events > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::warning;

    #[test]
    fn cuts_at_the_size_and_where_the_replay_second_moves() {
        let clock = ManualClock::new(0);
        let mut cutter = BatchCutter::new(2, Some(clock.clone()));
        let at = |ms| warning("BackOff", "web", "u", 1, ms);
        assert!(!cutter.cut_before(&at(10_100), 0, 0));
        assert!(!cutter.cut_before(&at(10_900), 1, 0), "same second");
        assert!(cutter.cut_before(&at(10_950), 2, 0), "full");
        assert!(cutter.cut_before(&at(11_000), 1, 0), "the second moved");
        assert_eq!(clock.now_ms(), 11_000);
        // An older event is processed at the clock's time: no cut.
        assert!(!cutter.cut_before(&at(5_000), 1, 0));

        let mut live = BatchCutter::new(128, None);
        assert!(!live.cut_before(&at(0), 5, 0));
        assert!(live.cut_before(&at(0), 5, BATCH_BYTES));
    }
}
