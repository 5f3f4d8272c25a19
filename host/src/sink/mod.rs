//! Sinks: where processed events are published. Each sink runs as its own task
//! behind a bounded queue, so a slow sink applies back-pressure to the
//! pipeline instead of growing memory.

mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::checkpoint::Ack;
use crate::config::{Config, OutputFormat, SinkKind};
use crate::event::Severity;
pub use writer::LineWriter;

/// Batches that may wait in a sink's queue before the pipeline blocks.
const QUEUE_BATCHES: usize = 16;

/// A sink that could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink `{sink}`: cannot open {}: {error}", path.display())]
    Open {
        sink: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("sink `{sink}`: write failed: {error}")]
    Write { sink: String, error: std::io::Error },
}

/// A batch of encoded JSON lines for one sink.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub events: usize,
}

/// What travels down a sink's queue.
#[derive(Debug)]
pub enum SinkMessage {
    Batch(Batch),
    /// Acknowledged once everything queued before it has been written.
    Ack(Arc<Ack>),
}

/// The pipeline's end of a sink: where to send batches and what the sink
/// wants.
#[derive(Debug)]
pub struct SinkRoute {
    pub name: String,
    pub chain: String,
    pub format: OutputFormat,
    pub min_severity: Option<Severity>,
    pub sender: mpsc::Sender<SinkMessage>,
}

/// What a sink did, reported when it shuts down.
#[derive(Debug, Clone, Default)]
pub struct SinkReport {
    pub name: String,
    pub published: u64,
}

/// The running sink tasks.
#[derive(Debug)]
pub struct SinkTasks {
    tasks: Vec<JoinHandle<Result<SinkReport, SinkError>>>,
}

impl SinkTasks {
    /// Waits for every sink to drain its queue and flush.
    pub async fn finish(self) -> Result<Vec<SinkReport>, SinkError> {
        let mut reports = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            match task.await {
                Ok(report) => reports.push(report?),
                Err(join) => std::panic::resume_unwind(join.into_panic()),
            }
        }
        Ok(reports)
    }
}

/// Opens every sink of `config` and starts its task. Must be called within a
/// tokio runtime.
pub async fn start(config: &Config) -> Result<(Vec<SinkRoute>, SinkTasks), SinkError> {
    let mut routes = Vec::new();
    let mut tasks = Vec::new();
    for (name, sink) in &config.sinks {
        let Ok(kind) = sink.kind() else {
            unreachable!("Config::load rejects sinks without exactly one output")
        };
        let writer = match kind {
            SinkKind::Stdout(_) => LineWriter::stdout(),
            SinkKind::File(file) => {
                let path = config.resolve(&file.path);
                LineWriter::append(&path)
                    .await
                    .map_err(|error| SinkError::Open {
                        sink: name.clone(),
                        path,
                        error,
                    })?
            }
        };
        let (sender, receiver) = mpsc::channel(QUEUE_BATCHES);
        tasks.push(tokio::spawn(run(name.clone(), writer, receiver)));
        routes.push(SinkRoute {
            name: name.clone(),
            chain: sink.chain.clone(),
            format: sink.format,
            min_severity: sink.min_severity,
            sender,
        });
    }
    Ok((routes, SinkTasks { tasks }))
}

async fn run(
    name: String,
    mut writer: LineWriter,
    mut receiver: mpsc::Receiver<SinkMessage>,
) -> Result<SinkReport, SinkError> {
    let mut report = SinkReport {
        name: name.clone(),
        published: 0,
    };
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
        report.published += batch.events as u64;
    }
    writer
        .flush()
        .await
        .map_err(|error| SinkError::Write { sink: name, error })?;
    Ok(report)
}
