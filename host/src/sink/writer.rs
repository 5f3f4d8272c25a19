//! The stdout and file outputs: JSON lines, flushed after every batch.

use std::path::Path;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{SinkCount, SinkError, SinkMessage, SinkReport};
use crate::metrics;

/// Writes batches of complete lines to stdout or a file.
pub struct LineWriter {
    out: Box<dyn AsyncWrite + Send + Unpin>,
}

impl std::fmt::Debug for LineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter").finish_non_exhaustive()
    }
}

impl LineWriter {
    pub fn stdout() -> Self {
        Self {
            out: Box::new(tokio::io::stdout()),
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
            out: Box::new(file),
        })
    }

    /// Writes whole lines and flushes, so a reader never sees half a batch
    /// sitting in a buffer.
    pub async fn write_batch(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes).await?;
        self.out.flush().await
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().await
    }
}

/// Runs a line sink (stdout, file): writes each batch and flushes, acks a
/// mark once everything before it was written.
pub(super) async fn run(
    name: String,
    mut writer: LineWriter,
    mut receiver: mpsc::Receiver<SinkMessage>,
) -> Result<SinkReport, SinkError> {
    let mut report = SinkReport::new(&name);
    metrics::SINK_UP.set(&[&name], 1.0);
    while let Some(message) = receiver.recv().await {
        let batch = match message {
            SinkMessage::Batch(batch) => batch,
            // Every batch before it was written and flushed.
            SinkMessage::Ack(ack) => {
                ack.ack();
                continue;
            }
        };
        writer
            .write_batch(&batch.bytes)
            .await
            .map_err(|error| SinkError::Write {
                sink: name.clone(),
                error,
            })?;
        report.add(SinkCount::Published, batch.events as u64);
    }
    writer
        .flush()
        .await
        .map_err(|error| SinkError::Write { sink: name, error })?;
    Ok(report)
}
