//! The stdout and file outputs: JSON lines, flushed after every batch.
//!
//! A line sink is written by the pipeline's thread itself ([`LineOutlet`]):
//! a write to a pipe or a file takes a few microseconds, and a thread of its
//! own cost every event a wake-up and a context switch on each side, more
//! than the write. Only a line sink that is a dead-letter target keeps a
//! queue and a thread ([`run`]): the broker sinks' tasks send it what their
//! brokers refuse, and those must not write from the async runtime.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{Batch, SinkCount, SinkError, SinkMessage, SinkReport};
use crate::checkpoint::Ack;
use crate::metrics;

/// Writes batches of complete lines to stdout or a file with plain blocking
/// writes (tokio's stdout and files hand every write and every flush to its
/// blocking pool, two thread hand-offs per batch).
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

/// A line sink that the pipeline writes directly, from whichever of its
/// threads has a batch for it (one at a time). A failed write stops the
/// sink for good, as a sink task's end would: its later events are lost
/// (logged once) and its marks are never acknowledged, so the checkpoint
/// stays behind them; shutting down reports the error.
#[derive(Debug)]
pub struct LineOutlet {
    name: String,
    state: Mutex<LineState>,
}

#[derive(Debug)]
struct LineState {
    writer: LineWriter,
    report: SinkReport,
    failed: Option<std::io::Error>,
}

impl LineOutlet {
    pub(super) fn new(name: String, writer: LineWriter) -> Arc<Self> {
        metrics::SINK_UP.set(&[&name], 1.0);
        Arc::new(Self {
            state: Mutex::new(LineState {
                writer,
                report: SinkReport::new(&name),
                failed: None,
            }),
            name,
        })
    }

    /// Writes and flushes `batch`, then acknowledges the mark behind it.
    pub fn write(&self, mut batch: Batch) {
        let mut state = self.lock();
        if state.failed.is_some() {
            return;
        }
        match state.writer.write_batch(&batch.bytes) {
            Ok(()) => {
                state.report.add(SinkCount::Published, batch.events as u64);
                // Written and flushed: the mark behind it may move.
                batch.acknowledge();
            }
            Err(error) => {
                tracing::error!(sink = %self.name, %error, "write failed; the sink stopped and its events from now on are lost");
                metrics::SINK_UP.set(&[&self.name], 0.0);
                state.failed = Some(error);
            }
        }
    }

    /// Acknowledges a mark with no events of this sink's before it: every
    /// batch before it was written when it was handed over.
    pub fn acknowledge(&self, ack: &Ack) {
        if self.lock().failed.is_none() {
            ack.ack();
        }
    }

    /// Flushes, and reports what the sink did, or why it stopped.
    pub(super) fn finish(&self) -> Result<SinkReport, SinkError> {
        let mut state = self.lock();
        let result = match state.failed.take() {
            Some(error) => Err(error),
            None => state.writer.flush(),
        };
        result
            .map(|()| state.report.clone())
            .map_err(|error| SinkError::Write {
                sink: self.name.clone(),
                error,
            })
    }

    fn lock(&self) -> MutexGuard<'_, LineState> {
        // A panic while writing leaves the writer as usable as any.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs a line sink that is a dead-letter target on a thread of its own:
/// writes each batch and flushes, acks a mark once everything before it was
/// written.
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::checkpoint::{Lag, Mark, WatchKey, acknowledger};

    /// Takes writes into a shared buffer until told to fail.
    #[derive(Clone, Default)]
    struct Output {
        lines: Arc<Mutex<Vec<u8>>>,
        broken: Arc<AtomicBool>,
    }

    impl Write for Output {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.broken.load(Ordering::Relaxed) {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.lines.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn batch(lines: &str, ack: &Arc<Ack>) -> Batch {
        Batch {
            bytes: lines.as_bytes().to_vec(),
            events: lines.lines().count(),
            ack: Some(ack.clone()),
            ..Batch::default()
        }
    }

    #[test]
    fn a_line_sink_acks_what_it_wrote_and_stops_at_a_failed_write() {
        let output = Output::default();
        let outlet = LineOutlet::new(
            "lines-test".into(),
            LineWriter {
                out: Box::new(output.clone()),
            },
        );
        let (acks, marks) = acknowledger(Lag::default());
        let mark = |version: &str| Mark {
            key: WatchKey {
                cluster: "a".into(),
                namespace: None,
            },
            resource_version: version.into(),
        };

        let first = acks.ack(mark("1"), 1);
        outlet.write(batch("{\"n\":1}\n{\"n\":2}\n", &first));
        drop(first);
        assert_eq!(marks.take(), [mark("1")], "written, so acknowledged");
        let alone = acks.ack(mark("2"), 1);
        outlet.acknowledge(&alone);
        drop(alone);
        assert_eq!(marks.take(), [mark("2")], "nothing before it unwritten");

        output.broken.store(true, Ordering::Relaxed);
        let lost = acks.ack(mark("3"), 1);
        outlet.write(batch("{\"n\":3}\n", &lost));
        output.broken.store(false, Ordering::Relaxed);
        let after = acks.ack(mark("4"), 1);
        outlet.write(batch("{\"n\":4}\n", &after));
        outlet.acknowledge(&after);
        drop((lost, after));
        assert!(
            marks.take().is_empty(),
            "a stopped sink moves no checkpoint"
        );
        assert_eq!(*output.lines.lock().unwrap(), b"{\"n\":1}\n{\"n\":2}\n");
        assert_eq!(metrics::SINK_UP.get(&["lines-test"]), Some(0.0));
        match outlet.finish() {
            Err(SinkError::Write { sink, error }) => {
                assert_eq!(sink, "lines-test");
                assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
            }
            other => panic!("the write error at shutdown, got {other:?}"),
        }
    }
}
