//! Default plugin `builtin:time-filter`: drops events older than `max_age`.
//!
//! An event's time is its `last-timestamp` if present, else the later of
//! `event-time` and `series-last-observed` (events.k8s.io/v1 producers set
//! only those), else its `first-timestamp`. Events with no time at all are
//! kept: dropping them silently would hide whole producers. Events from the
//! future (clock skew) are kept too.
//!
//! The age is measured against the host's clock ([`aetherius_sdk::now_ms`]),
//! which is the replay clock during `aetherius replay`.
//!
//! ```yaml
//! - plugin: builtin:time-filter
//!   config: { max_age: 10m }   # default 5m
//! ```

use std::time::Duration;

use aetherius_sdk::{Event, Filter, Timestamp, Verdict, duration, log, now_ms};
use serde::Deserialize;

/// The stage's config.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Events older than this are dropped (`"300ms"`, `"90s"`, `"5m"`,
    /// `"1h"`). Defaults to 5 minutes, the design document's value: old
    /// enough to absorb watch lag, young enough that a relist's backlog of
    /// stale events is not published again.
    pub max_age: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_age: "5m".to_owned(),
        }
    }
}

/// Drops events whose time is more than `max_age` before now.
pub struct TimeFilter {
    max_age_ms: i64,
    /// The drop reason, with the duration as the operator wrote it; made
    /// once, cloned per drop.
    reason: String,
}

impl TimeFilter {
    /// The decision for `event` at the time `now` (ms since the epoch).
    pub fn decide(&self, event: &Event, now: Timestamp) -> Verdict {
        let Some(time) = event_time(event) else {
            // No names in the message: they would cost three string copies
            // out of the host for a debug line.
            log::debug("keeping an event that carries no time");
            return Verdict::Keep;
        };
        if now.saturating_sub(time) > self.max_age_ms {
            Verdict::Drop(self.reason.clone())
        } else {
            Verdict::Keep
        }
    }
}

/// The time that says how fresh an event is; see the crate docs. Reads the
/// timestamps from the host lazily, in that order, and stops at the first
/// that decides.
pub fn event_time(event: &Event) -> Option<Timestamp> {
    event
        .last_timestamp()
        .or_else(
            || match (event.event_time(), event.series_last_observed()) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        )
        .or_else(|| event.first_timestamp())
}

impl Filter for TimeFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let max_age: Duration =
            duration::parse(&config.max_age).map_err(|err| format!("max_age: {err}"))?;
        let max_age_ms = i64::try_from(max_age.as_millis())
            .map_err(|_| format!("max_age: `{}` is too long", config.max_age))?;
        Ok(TimeFilter {
            max_age_ms,
            reason: format!("older than {}", config.max_age.trim()),
        })
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        self.decide(event, now_ms())
    }

    fn filter_batch(&mut self, events: &[Event]) -> Vec<Verdict> {
        // One host call per batch, and every event judged against the same now.
        let now = now_ms();
        events.iter().map(|event| self.decide(event, now)).collect()
    }
}

aetherius_sdk::export_filter!(TimeFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, parse_config};

    const NOW: Timestamp = 1_795_165_200_000;
    const MINUTE: i64 = 60_000;

    fn filter_for(config: &str) -> Result<TimeFilter, String> {
        TimeFilter::new(parse_config(config)?)
    }

    fn default_filter() -> TimeFilter {
        filter_for("null").unwrap()
    }

    fn last_seen(ago_ms: i64) -> Event {
        Event::from_record(EventRecord {
            last_timestamp: Some(NOW - ago_ms),
            ..EventRecord::default()
        })
    }

    #[test]
    fn default_max_age_is_five_minutes() {
        let filter = default_filter();
        assert_eq!(filter.decide(&last_seen(5 * MINUTE), NOW), Verdict::Keep);
        assert_eq!(
            filter.decide(&last_seen(5 * MINUTE + 1), NOW),
            Verdict::Drop("older than 5m".into())
        );
        assert_eq!(filter.decide(&last_seen(0), NOW), Verdict::Keep);
    }

    #[test]
    fn configured_max_age_and_its_text() {
        let filter = filter_for(r#"{"max_age": "90s"}"#).unwrap();
        assert_eq!(filter.decide(&last_seen(89_000), NOW), Verdict::Keep);
        assert_eq!(
            filter.decide(&last_seen(91_000), NOW),
            Verdict::Drop("older than 90s".into())
        );
    }

    #[test]
    fn future_events_are_kept() {
        assert_eq!(
            default_filter().decide(&last_seen(-60 * MINUTE), NOW),
            Verdict::Keep
        );
    }

    #[test]
    fn events_without_time_are_kept() {
        assert_eq!(
            default_filter().decide(&Event::from_record(EventRecord::default()), NOW),
            Verdict::Keep
        );
    }

    #[test]
    fn last_timestamp_wins_over_everything() {
        let event = Event::from_record(EventRecord {
            first_timestamp: Some(NOW),
            last_timestamp: Some(NOW - 60 * MINUTE),
            event_time: Some(NOW),
            series_last_observed: Some(NOW),
            ..EventRecord::default()
        });
        assert_eq!(event_time(&event), Some(NOW - 60 * MINUTE));
        assert!(matches!(
            default_filter().decide(&event, NOW),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn event_time_and_series_use_the_later_one() {
        // An events.k8s.io/v1 series: eventTime is the first occurrence,
        // series.lastObservedTime the latest. Never drop it for its eventTime.
        let series = Event::from_record(EventRecord {
            event_time: Some(NOW - 60 * MINUTE),
            series_last_observed: Some(NOW - MINUTE),
            first_timestamp: Some(NOW - 120 * MINUTE),
            ..EventRecord::default()
        });
        assert_eq!(event_time(&series), Some(NOW - MINUTE));
        assert_eq!(default_filter().decide(&series, NOW), Verdict::Keep);

        let only_event_time = Event::from_record(EventRecord {
            event_time: Some(NOW - 2 * MINUTE),
            ..EventRecord::default()
        });
        assert_eq!(
            default_filter().decide(&only_event_time, NOW),
            Verdict::Keep
        );

        let only_series = Event::from_record(EventRecord {
            series_last_observed: Some(NOW - 10 * MINUTE),
            ..EventRecord::default()
        });
        assert_eq!(event_time(&only_series), Some(NOW - 10 * MINUTE));
    }

    #[test]
    fn first_timestamp_is_the_last_resort() {
        let event = Event::from_record(EventRecord {
            first_timestamp: Some(NOW - 6 * MINUTE),
            ..EventRecord::default()
        });
        assert_eq!(event_time(&event), Some(NOW - 6 * MINUTE));
        assert!(matches!(
            default_filter().decide(&event, NOW),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let filter = default_filter();
        let ancient = Event::from_record(EventRecord {
            last_timestamp: Some(Timestamp::MIN),
            ..EventRecord::default()
        });
        assert!(matches!(filter.decide(&ancient, NOW), Verdict::Drop(_)));
        let far_future = Event::from_record(EventRecord {
            last_timestamp: Some(Timestamp::MAX),
            ..EventRecord::default()
        });
        assert_eq!(filter.decide(&far_future, NOW), Verdict::Keep);
    }

    #[test]
    fn bad_configs_are_rejected_with_the_field() {
        let err = filter_for(r#"{"max_age": "5"}"#).err().unwrap();
        assert!(
            err.starts_with("max_age:") && err.contains("no unit"),
            "{err}"
        );
        let err = filter_for(r#"{"max_age": 300}"#).err().unwrap();
        assert!(err.contains("`max_age`"), "{err}");
        let err = filter_for(r#"{"maxAge": "5m"}"#).err().unwrap();
        assert!(err.contains("unknown field `maxAge`"), "{err}");
    }
}
