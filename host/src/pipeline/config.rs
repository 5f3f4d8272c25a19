//! `pipeline:` — the queue between the watches and the pipeline.

use serde::Deserialize;

/// `pipeline:` in YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Events that may wait between the watches and the pipeline before the
    /// watches stop reading from the API servers (default 1000, the design
    /// document's `buffer_size`). The queue is also bounded in bytes
    /// (docs/limits.md), so a burst of large Events holds back sooner.
    pub buffer_size: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { buffer_size: 1000 }
    }
}

impl PipelineConfig {
    /// What is wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        if self.buffer_size == 0 {
            vec!["at `pipeline.buffer_size`: must be at least 1 event".to_owned()]
        } else {
            Vec::new()
        }
    }
}
