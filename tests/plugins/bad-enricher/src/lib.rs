//! An enricher that returns a label key the host must reject (`has space` is
//! not a valid Kubernetes label key).

use aetherius_sdk::{Enricher, Enrichment, Event};
use serde::de::IgnoredAny;

/// Adds the label `has space` to every event.
pub struct BadEnricher;

impl Enricher for BadEnricher {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(BadEnricher)
    }

    fn enrich(&mut self, _event: &Event) -> Enrichment {
        Enrichment::new().with_label("has space", "value")
    }
}

aetherius_sdk::export_enricher!(BadEnricher);
