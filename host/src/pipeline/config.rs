//! `pipeline:` — the queue between the watches and the pipeline, and its
//! workers.

use serde::Deserialize;

use super::RetryConfig;

/// `pipeline:` in YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Events that may wait between the watches and the pipeline before the
    /// watches stop reading from the API servers (default 1000, the design
    /// document's `buffer_size`). The queue is also bounded in bytes
    /// (docs/limits.md), so a burst of large Events holds back sooner.
    pub buffer_size: usize,
    /// Threads that run the occurrence core and the chains (default 1; the
    /// design document's `worker_count`). Events are split among them by
    /// fingerprint, so each object's occurrences stay in order; each worker
    /// has its own plugin instances (memory: docs/limits.md). More than one
    /// pays when the chains are the bottleneck (slow plugins), not for
    /// ordinary loads (docs/benchmarks.md). `aetherius replay` uses one.
    pub workers: usize,
    /// Dead letters run through their chain again later (see
    /// `pipeline/retry.rs`).
    pub dead_letter_retry: RetryConfig,
}

/// Most workers: more than the cores of any pod this runs in.
const MAX_WORKERS: usize = 64;

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            buffer_size: 1000,
            workers: 1,
            dead_letter_retry: RetryConfig::default(),
        }
    }
}

impl PipelineConfig {
    /// What is wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.buffer_size == 0 {
            problems.push("at `pipeline.buffer_size`: must be at least 1 event".to_owned());
        }
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            problems.push(format!(
                "at `pipeline.workers`: {} is not between 1 and {MAX_WORKERS}",
                self.workers
            ));
        }
        problems
    }
}
