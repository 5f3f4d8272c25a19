//! One trait per stage kind. Implement one of them for your plugin type and
//! hand the type to the matching `export_*!` macro.
//!
//! The host creates one instance of your type per plugin instance by calling
//! `new` with the stage's config, then calls the stage method for every event
//! (in batches; the `*_batch` methods say how a batch maps onto single
//! events). Each [`Event`] is a view into the host's batch: a field is
//! fetched for the whole batch at its first read, and slices of that copy
//! are what the accessors return. The
//! instance lives until the host discards it: after a trap, when the config
//! changes, or when the pool shrinks. State you keep in `self` is per
//! instance and may start over at any time.

use serde::de::DeserializeOwned;

use crate::event::Event;
use crate::types::{Enrichment, Severity, Verdict};
use crate::verdicts::Verdicts;

/// A filter stage: keeps, drops or redacts events
/// (world `aetherius:plugin/filter@0.1`).
pub trait Filter: Sized {
    /// The stage's `config` from the YAML. `null` (no config) gives
    /// `Config::default()`.
    type Config: DeserializeOwned + Default;

    /// Creates the plugin from its config. An `Err` rejects the config; the
    /// host shows the message to the operator, so say what to change.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Decides about one event.
    fn filter(&mut self, event: &Event) -> Verdict;

    /// Decides about a batch; must return one verdict per event, in order.
    /// The default calls [`Filter::filter`] for each event.
    fn filter_batch(&mut self, events: &[Event]) -> Vec<Verdict> {
        events.iter().map(|event| self.filter(event)).collect()
    }

    /// Decides about a batch into `verdicts`, one verdict per event, in
    /// order: what the SDK calls. The default adds
    /// [`Filter::filter_batch`]'s verdicts. Override it in a filter that
    /// drops many events: [`Verdicts::drop`] borrows its reason, so no
    /// `String` is made per drop.
    fn filter_into(&mut self, events: &[Event], verdicts: &mut Verdicts) {
        for verdict in self.filter_batch(events) {
            verdicts.push(&verdict);
        }
    }
}

/// A severity-mapper stage: decides how bad events are
/// (world `aetherius:plugin/severity-mapper@0.1`).
pub trait SeverityMapper: Sized {
    /// The stage's `config` from the YAML. `null` (no config) gives
    /// `Config::default()`.
    type Config: DeserializeOwned + Default;

    /// Creates the plugin from its config. An `Err` rejects the config; the
    /// host shows the message to the operator, so say what to change.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// A new severity for one event, or `None` to keep the current one
    /// (`event.severity()`).
    fn map(&mut self, event: &Event) -> Option<Severity>;

    /// Maps a batch; must return one entry per event, in order.
    /// The default calls [`SeverityMapper::map`] for each event.
    fn map_batch(&mut self, events: &[Event]) -> Vec<Option<Severity>> {
        events.iter().map(|event| self.map(event)).collect()
    }
}

/// An enricher stage: adds labels and annotations to events
/// (world `aetherius:plugin/enricher@0.1`).
pub trait Enricher: Sized {
    /// The stage's `config` from the YAML. `null` (no config) gives
    /// `Config::default()`.
    type Config: DeserializeOwned + Default;

    /// Creates the plugin from its config. An `Err` rejects the config; the
    /// host shows the message to the operator, so say what to change.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// What to add to one event ([`Enrichment::new`] to add nothing). Label
    /// keys must be valid Kubernetes label keys; the host rejects others.
    fn enrich(&mut self, event: &Event) -> Enrichment;

    /// Enriches a batch; must return one enrichment per event, in order.
    /// The default calls [`Enricher::enrich`] for each event.
    fn enrich_batch(&mut self, events: &[Event]) -> Vec<Enrichment> {
        events.iter().map(|event| self.enrich(event)).collect()
    }
}
