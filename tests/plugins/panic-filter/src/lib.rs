//! A filter that panics (with `panic = "abort"`, a trap) on events whose
//! reason is `Boom`, and keeps all others.

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;

/// Panics on reason `Boom`.
pub struct PanicFilter;

impl Filter for PanicFilter {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(PanicFilter)
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        assert!(event.reason() != "Boom", "panic-filter: reason Boom");
        Verdict::Keep
    }
}

aetherius_sdk::export_filter!(PanicFilter);
