//! A filter that breaks the batch contract: one verdict fewer than events.

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;

/// Keeps every event but forgets the last verdict.
pub struct WrongLength;

impl Filter for WrongLength {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(WrongLength)
    }

    fn filter(&mut self, _event: &Event) -> Verdict {
        Verdict::Keep
    }

    fn filter_batch(&mut self, events: &[Event]) -> Vec<Verdict> {
        vec![Verdict::Keep; events.len().saturating_sub(1)]
    }
}

aetherius_sdk::export_filter!(WrongLength);
