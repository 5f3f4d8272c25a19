//! A filter that calls the host's `log` 100,000 times per batch and keeps
//! every event: the host must rate-limit plugin logs without slowing down or
//! dropping events.

use aetherius_sdk::{Event, Filter, Verdict, log};
use serde::de::IgnoredAny;

const LOGS_PER_BATCH: u32 = 100_000;

/// Floods the log once per batch.
pub struct LogFlood;

impl Filter for LogFlood {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(LogFlood)
    }

    fn filter(&mut self, _event: &Event) -> Verdict {
        Verdict::Keep
    }

    fn filter_batch(&mut self, events: &[Event]) -> Vec<Verdict> {
        for line in 0..LOGS_PER_BATCH {
            log::info(&format!("log-flood line {line}"));
        }
        vec![Verdict::Keep; events.len()]
    }
}

aetherius_sdk::export_filter!(LogFlood);
