//! Sinks as declared in YAML.

use std::path::PathBuf;

use serde::Deserialize;

use crate::event::Severity;

/// One named sink (`sinks.NAME` in YAML). Exactly one of the output kinds
/// (`stdout`, `file`) must be given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The chain whose output this sink publishes, or `dead-letter` for the
    /// events that a stage with `on_failure: dead-letter` could not process.
    pub chain: String,
    /// Wire format of each published line.
    #[serde(default)]
    pub format: OutputFormat,
    /// Publish only occurrences at least this severe (default: all).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Write JSON lines to standard output.
    #[serde(default)]
    pub stdout: Option<StdoutSinkConfig>,
    /// Append JSON lines to a file.
    #[serde(default)]
    pub file: Option<FileSinkConfig>,
}

/// The output kinds a sink can have.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    Stdout(StdoutSinkConfig),
    File(FileSinkConfig),
}

impl SinkConfig {
    /// The one output kind this sink has, or the names of all it has (zero
    /// or several), for the error message.
    pub fn kind(&self) -> Result<SinkKind, Vec<&'static str>> {
        let mut kinds = Vec::new();
        if let Some(stdout) = &self.stdout {
            kinds.push(SinkKind::Stdout(stdout.clone()));
        }
        if let Some(file) = &self.file {
            kinds.push(SinkKind::File(file.clone()));
        }
        match kinds.len() {
            1 => Ok(kinds.remove(0)),
            _ => Err(kinds
                .iter()
                .map(|kind| match kind {
                    SinkKind::Stdout(_) => "stdout",
                    SinkKind::File(_) => "file",
                })
                .collect()),
        }
    }
}

/// Standard output: nothing to configure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {}

/// A JSON-lines file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file to append to (created if missing; relative to the config file).
    pub path: PathBuf,
}

/// Wire format of a published event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// The `StandardEvent` JSON (schema: `schema/standard-event.schema.json`).
    #[default]
    Standard,
    /// CloudEvents 1.0, structured JSON mode, with the `StandardEvent` as `data`.
    Cloudevents,
}
