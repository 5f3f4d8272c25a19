//! A filter built against `wit/plugin.wit` exactly as it was released at
//! `aetherius:plugin@0.1.1` (frozen in this crate's `wit/`; never edit it).
//! Plugins built with SDK 0.1 read each field of each event with its own
//! call (`batch.reason(index)`, ...); this guest does the same, so those
//! imports stay tested now that the SDK reads whole columns:
//!
//! - reason `Pulled` → dropped, saying which namespace;
//! - label `redact` present → message replaced by what the guest read of
//!   the event's fields, one call each;
//! - anything else → kept.

wit_bindgen::generate!({
    path: "wit",
    world: "aetherius:plugin/filter@0.1.1",
});

use aetherius::plugin::batch;
use aetherius::plugin::types::Severity;

struct Frozen;

impl Guest for Frozen {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn filter(events: u32) -> Vec<Verdict> {
        (0..events).map(decide).collect()
    }
}

fn decide(index: u32) -> Verdict {
    let reason = batch::reason(index);
    if reason == "Pulled" {
        return Verdict::Drop(format!("{reason} in {} is noise", batch::namespace(index)));
    }
    if batch::label(index, "redact").is_none() {
        return Verdict::Keep;
    }
    let severity = match batch::severity(index) {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    };
    Verdict::Redact(format!(
        "{}/{} {} [{}] x{} last={:?} first={:?} {severity} annotation={:?}",
        batch::involved_kind(index),
        batch::involved_name(index),
        batch::message(index),
        batch::event_type(index),
        batch::count(index),
        batch::last_timestamp(index),
        batch::first_timestamp(index),
        batch::annotation(index, "runbook"),
    ))
}

export!(Frozen);
