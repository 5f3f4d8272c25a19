//! The file sink: JSON lines appended to a file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::writer::LineWriter;
use super::{Setup, SinkError, Started};
use crate::paths::resolve;

/// A JSON-lines file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file to append to (created if missing; relative to the config file).
    pub path: PathBuf,
}

impl FileSinkConfig {
    /// Opens the file (creating it) and starts the sink's task.
    pub(super) async fn start(&self, setup: Setup) -> Result<Started, SinkError> {
        let path = resolve(&setup.base_dir, &self.path);
        let writer = LineWriter::append(&path)
            .await
            .map_err(|error| SinkError::Open {
                sink: setup.name.clone(),
                path,
                error,
            })?;
        Ok(Started {
            running: setup.lines(writer),
            subject: None,
            key: None,
        })
    }

    /// `aetherius check`'s line for it.
    pub(super) fn describe(&self, _name: &str, base_dir: &Path) -> Result<String, SinkError> {
        Ok(format!("file {}", resolve(base_dir, &self.path).display()))
    }
}
