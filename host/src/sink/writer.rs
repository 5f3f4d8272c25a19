//! The stdout and file outputs: JSON lines, flushed after every batch.

use std::io::Write;
use std::path::Path;

use tokio::sync::mpsc;

use super::{SinkCount, SinkError, SinkMessage, SinkReport};
use crate::metrics;

/// Writes batches of complete lines to stdout or a file, with plain
/// blocking writes on the sink's own thread ([`run`]): tokio's stdout and
/// files hand every write and every flush to its blocking pool, two thread
/// hand-offs per batch, which at a few hundred events a second were most of
/// the process's context switches.
pub struct LineWriter {
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for LineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter").finish_non_exhaustive()
    }
}

impl LineWriter {
    pub fn stdout() -> Self {
        Self {
            out: Box::new(std::io::stdout()),
        }
    }

    /// Opens `path` for appending, creating it (and its directory) if needed.
    pub async fn append(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self {
            out: Box::new(file.into_std().await),
        })
    }

    /// Writes whole lines and flushes, so a reader never sees half a batch
    /// sitting in a buffer.
    pub fn write_batch(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.out.flush()
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Runs a line sink (stdout, file) on a thread of its own: writes each
/// batch and flushes, acks a mark once everything before it was written.
pub(super) fn run(
    name: String,
    mut writer: LineWriter,
    mut receiver: mpsc::Receiver<SinkMessage>,
) -> Result<SinkReport, SinkError> {
    let mut report = SinkReport::new(&name);
    metrics::SINK_UP.set(&[&name], 1.0);
    while let Some(message) = receiver.blocking_recv() {
        let mut batch = match message {
            SinkMessage::Batch(batch) => batch,
            // Every batch before it was written and flushed.
            SinkMessage::Ack(ack) => {
                ack.ack();
                continue;
            }
        };
        writer
            .write_batch(&batch.bytes)
            .map_err(|error| SinkError::Write {
                sink: name.clone(),
                error,
            })?;
        report.add(SinkCount::Published, batch.events as u64);
        // Written and flushed: the mark behind it may move.
        batch.acknowledge();
    }
    writer
        .flush()
        .map_err(|error| SinkError::Write { sink: name, error })?;
    Ok(report)
}
