//! A filter built against `wit/plugin.wit` exactly as it was released at
//! `aetherius:plugin@0.1.0` (frozen in this crate's `wit/`; never edit it).
//! It reads the whole record through `batch.get` (the most type-sensitive
//! import), one label, and the host's `log` and `now`:
//!
//! - reason `Pulled` → dropped;
//! - label `redact` present → message replaced by `redacted at <now>`;
//! - anything else → kept.

wit_bindgen::generate!({
    path: "wit",
    world: "aetherius:plugin/filter@0.1.0",
});

use aetherius::plugin::types::LogLevel;
use aetherius::plugin::{batch, host};

struct Frozen;

impl Guest for Frozen {
    fn init(config: String) -> Result<(), String> {
        host::log(
            LogLevel::Info,
            &format!("contract 0.1.0 guest, config {config}"),
        );
        Ok(())
    }

    fn filter(events: u32) -> Vec<Verdict> {
        (0..events)
            .map(|index| {
                let event = batch::get(index);
                if event.reason == "Pulled" {
                    Verdict::Drop(format!("{} is noise", event.reason))
                } else if batch::label(index, "redact").is_some() {
                    Verdict::Redact(format!("redacted at {}", host::now()))
                } else {
                    Verdict::Keep
                }
            })
            .collect()
    }
}

export!(Frozen);
