//! A filter that spins forever on events whose reason is `Boom` and keeps all
//! others: after the host stops it, the other events of the batch and later
//! batches must still be handled (by a fresh instance).

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;

/// Spins forever on reason `Boom`.
pub struct LoopOnReason;

impl Filter for LoopOnReason {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(LoopOnReason)
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        if event.reason() == "Boom" {
            let mut spins = 0u64;
            loop {
                spins = std::hint::black_box(spins.wrapping_add(1));
            }
        }
        Verdict::Keep
    }
}

aetherius_sdk::export_filter!(LoopOnReason);
