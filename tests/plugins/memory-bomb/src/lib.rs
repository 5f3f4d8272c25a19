//! A filter that allocates ~200 MiB and writes to every page of it: the
//! host's memory cap (`StoreLimits`) has to stop it.

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;

const BOMB_BYTES: usize = 200 << 20;
const PAGE: usize = 64 << 10;

/// Allocates and touches ~200 MiB per event.
pub struct MemoryBomb;

impl Filter for MemoryBomb {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(MemoryBomb)
    }

    fn filter(&mut self, _event: &Event) -> Verdict {
        // Grow in steps, as a leaking plugin would, touching each page.
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut total = 0;
        while total < BOMB_BYTES {
            let mut chunk = vec![0u8; 4 << 20];
            for page in chunk.chunks_mut(PAGE) {
                page[0] = 1;
            }
            total += chunk.len();
            chunks.push(std::hint::black_box(chunk));
        }
        std::hint::black_box(&chunks);
        Verdict::Keep
    }
}

aetherius_sdk::export_filter!(MemoryBomb);
