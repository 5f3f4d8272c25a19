//! The stdout sink: JSON lines on standard output.

use std::path::Path;

use serde::Deserialize;

use super::writer::LineWriter;
use super::{Setup, SinkError, Started};

/// Standard output: nothing to configure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {}

impl StdoutSinkConfig {
    /// Starts the sink's task.
    pub(super) async fn start(&self, setup: Setup) -> Result<Started, SinkError> {
        Ok(Started {
            running: setup.lines(LineWriter::stdout()),
            subject: None,
            key: None,
        })
    }

    /// `aetherius check`'s line for it.
    pub(super) fn describe(&self, _name: &str, _base_dir: &Path) -> Result<String, SinkError> {
        Ok("stdout".to_owned())
    }
}
