//! An enricher with per-instance state: label `seen` is the number of events
//! this instance has handled, this one included (a fresh instance's first
//! event gets `1`). It panics on reason `Boom`, so the host's tests can check
//! that a trapped instance is replaced by one that starts counting afresh.

use aetherius_sdk::{Enricher, Enrichment, Event};
use serde::de::IgnoredAny;

/// Counts events per instance.
pub struct CounterEnricher {
    seen: u64,
}

impl Enricher for CounterEnricher {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(CounterEnricher { seen: 0 })
    }

    fn enrich(&mut self, event: &Event) -> Enrichment {
        assert!(event.reason() != "Boom", "counter-enricher: reason Boom");
        self.seen += 1;
        Enrichment::new().with_label("seen", self.seen.to_string())
    }
}

aetherius_sdk::export_enricher!(CounterEnricher);
