//! A filter that sleeps for ten seconds with `std::thread::sleep` on events
//! whose reason is `Sleep` and keeps all others, as a plugin written by
//! someone who did not know that plugins share the pipeline's thread. The
//! host must end such a call at once (or within its deadline), never hold
//! every other event behind it.

use std::time::Duration;

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;

/// Sleeps on reason `Sleep`.
pub struct SleepOnReason;

impl Filter for SleepOnReason {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(SleepOnReason)
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        if event.reason() == "Sleep" {
            std::thread::sleep(Duration::from_secs(10));
        }
        Verdict::Keep
    }
}

aetherius_sdk::export_filter!(SleepOnReason);
