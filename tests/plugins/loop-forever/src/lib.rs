//! A filter whose `filter` never returns: the host's CPU limit (fuel or epoch
//! deadline) has to stop it.

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;

/// Spins forever on every event.
pub struct LoopForever;

impl Filter for LoopForever {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(LoopForever)
    }

    fn filter(&mut self, _event: &Event) -> Verdict {
        let mut spins = 0u64;
        loop {
            // black_box keeps the optimiser from proving the loop pointless.
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

aetherius_sdk::export_filter!(LoopForever);
