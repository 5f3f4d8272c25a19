//! Sinks: where processed events are published. Each sink runs as its own task
//! behind a bounded queue, so a slow sink applies back-pressure to the
//! pipeline instead of growing memory.

mod delivery;
mod kafka;
mod nats;
mod spool;
mod template;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::budget::{ByteBudget, BytePermit};
use crate::checkpoint::Ack;
use crate::config::{Config, OutputFormat, SinkKind};
use crate::event::Severity;
use crate::metrics;
pub use kafka::{KAFKA_CLUSTER_HEADER, KAFKA_ID_HEADER, KAFKA_SEVERITY_HEADER, KafkaSink};
pub use nats::{CLUSTER_HEADER, NatsSink, SEVERITY_HEADER};
pub use spool::Spool;
pub use template::Template;
pub use writer::LineWriter;

/// Batches that may wait in a sink's queue before the pipeline blocks.
const QUEUE_BATCHES: usize = 16;
/// Bytes of encoded events that may wait in (or be delivered from) a sink's
/// queue before the pipeline blocks: all of the batches above when events
/// are ordinary, fewer of the largest.
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;

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
    #[error("sink `{sink}`: {error}")]
    Setup { sink: String, error: String },
}

/// A batch of encoded JSON lines for one sink.
#[derive(Debug, Default)]
pub struct Batch {
    pub bytes: Vec<u8>,
    pub events: usize,
    /// Its bytes in the sink queue's budget, given back when the sink is done
    /// with the batch.
    pub budget: Option<BytePermit>,
    /// One per line, for sinks that publish events one by one (brokers);
    /// empty for line sinks.
    pub records: Vec<Record>,
}

/// How one line of a batch is addressed on a broker.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where the line starts and ends (newline included) in `Batch::bytes`.
    pub start: usize,
    pub end: usize,
    /// The occurrence id: the message id brokers deduplicate on.
    pub id: String,
    /// The rendered subject (or topic).
    pub subject: String,
    /// The rendered message key (Kafka).
    pub key: Option<String>,
    pub severity: Severity,
    pub cluster: String,
}

impl Batch {
    /// The line of `record`, newline included.
    pub fn line(&self, record: &Record) -> &[u8] {
        &self.bytes[record.start..record.end]
    }
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
    /// For sinks that address each event: the subject (or topic) template,
    /// and the key template of those that key messages.
    pub subject: Option<Template>,
    pub key: Option<Template>,
    pub sender: mpsc::Sender<SinkMessage>,
    /// Bounds the bytes queued to the sink ([`QUEUE_BYTES`]).
    pub budget: ByteBudget,
}

/// What a sink did, reported when it shuts down.
#[derive(Debug, Clone, Default)]
pub struct SinkReport {
    pub name: String,
    pub published: u64,
    /// Messages the broker refused for good (too large, say).
    pub rejected: u64,
    /// Publish attempts repeated after a failure.
    pub retried: u64,
    /// Messages written to the disk spool, delivered from it, and dropped
    /// because it was full (`when_full: drop-new`).
    pub spooled: u64,
    pub drained: u64,
    pub spool_dropped: u64,
    /// Refused messages handed to the dead-letter sinks.
    pub dead_lettered: u64,
}

/// What a sink counts; each also feeds its `aetherius_sink_*_total` metric.
#[derive(Debug, Clone, Copy)]
pub enum SinkCount {
    Published,
    Rejected,
    Retried,
    Spooled,
    Drained,
    SpoolDropped,
    DeadLettered,
}

impl SinkReport {
    fn new(name: &str) -> Self {
        let labels = [name];
        for metric in [
            &metrics::SINK_PUBLISHED,
            &metrics::SINK_FAILED,
            &metrics::SINK_REJECTED,
            &metrics::SINK_SPOOLED,
            &metrics::SINK_DRAINED,
            &metrics::SINK_SPOOL_DROPPED,
            &metrics::SINK_DEAD_LETTERED,
        ] {
            metric.touch(&labels);
        }
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Counts `n` messages.
    pub fn add(&mut self, what: SinkCount, n: u64) {
        let (field, metric) = match what {
            SinkCount::Published => (&mut self.published, &metrics::SINK_PUBLISHED),
            SinkCount::Rejected => (&mut self.rejected, &metrics::SINK_REJECTED),
            SinkCount::Retried => (&mut self.retried, &metrics::SINK_FAILED),
            SinkCount::Spooled => (&mut self.spooled, &metrics::SINK_SPOOLED),
            SinkCount::Drained => (&mut self.drained, &metrics::SINK_DRAINED),
            SinkCount::SpoolDropped => (&mut self.spool_dropped, &metrics::SINK_SPOOL_DROPPED),
            SinkCount::DeadLettered => (&mut self.dead_lettered, &metrics::SINK_DEAD_LETTERED),
        };
        *field += n;
        metric.add(&[&self.name], n);
    }

    /// Logs the counters at INFO (`sink finished`).
    pub fn log(&self) {
        tracing::info!(
            sink = %self.name,
            published = self.published,
            rejected = self.rejected,
            retried = self.retried,
            spooled = self.spooled,
            drained = self.drained,
            spool_dropped = self.spool_dropped,
            dead_lettered = self.dead_lettered,
            "sink finished"
        );
    }
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

/// Where a sink task writes.
enum Output {
    Lines(LineWriter),
    Broker(Box<delivery::Broker>, Option<delivery::SpoolSettings>),
}

/// Opens every sink of `config` and starts its task. Must be called within a
/// tokio runtime.
pub async fn start(config: &Config) -> Result<(Vec<SinkRoute>, SinkTasks), SinkError> {
    let mut routes = Vec::new();
    let mut tasks = Vec::new();
    let mut channels: Vec<_> = config
        .sinks
        .keys()
        .map(|_| mpsc::channel(QUEUE_BATCHES))
        .collect();
    // Where broker sinks send what their broker refuses.
    let dead_letters: Vec<(String, mpsc::Sender<SinkMessage>)> = config
        .sinks
        .iter()
        .zip(&channels)
        .filter(|((_, sink), _)| sink.chain == crate::config::DEAD_LETTER_CHAIN)
        .map(|((name, _), (sender, _))| (name.clone(), sender.clone()))
        .collect();
    for (name, sink) in config.sinks.iter().rev() {
        let (sender, receiver) = channels.pop().expect("one channel per sink");
        let Ok(kind) = sink.kind() else {
            unreachable!("Config::load rejects sinks without exactly one output")
        };
        let mut subject = None;
        let mut key = None;
        let template = |text: &str| {
            Template::parse(text).map_err(|error| SinkError::Setup {
                sink: name.clone(),
                error,
            })
        };
        let spool = sink.spool.enabled.then(|| delivery::SpoolSettings {
            dir: sink
                .spool
                .dir
                .as_ref()
                .map(|dir| config.resolve(dir))
                .unwrap_or_else(|| crate::config::state_dir().join("spool").join(name)),
            max_bytes: sink.spool.max_size.0,
            after: sink.spool.after.0,
            when_full: sink.spool.when_full,
        });
        let output =
            match kind {
                SinkKind::Stdout(_) => Output::Lines(LineWriter::stdout()),
                SinkKind::File(file) => {
                    let path = config.resolve(&file.path);
                    Output::Lines(LineWriter::append(&path).await.map_err(|error| {
                        SinkError::Open {
                            sink: name.clone(),
                            path,
                            error,
                        }
                    })?)
                }
                SinkKind::Nats(nats) => {
                    subject = Some(template(&nats.subject)?);
                    Output::Broker(
                        Box::new(delivery::Broker::Nats(Box::new(
                            NatsSink::connect(name, nats, sink.format, config).await?,
                        ))),
                        spool,
                    )
                }
                SinkKind::Kafka(kafka) => {
                    subject = Some(template(&kafka.topic)?);
                    key = Some(template(&kafka.key)?);
                    Output::Broker(
                        Box::new(delivery::Broker::Kafka(KafkaSink::connect(
                            name,
                            kafka,
                            sink.format,
                            config,
                        )?)),
                        spool,
                    )
                }
            };
        tasks.push(match output {
            Output::Lines(writer) => tokio::spawn(run(name.clone(), writer, receiver)),
            Output::Broker(broker, spool) => {
                // A dead-letter sink does not forward what it cannot
                // publish: two of them would wait on each other at shutdown.
                let dead_letters = if sink.chain == crate::config::DEAD_LETTER_CHAIN {
                    Vec::new()
                } else {
                    dead_letters.clone()
                };
                tokio::spawn(delivery::run(
                    name.clone(),
                    *broker,
                    spool,
                    dead_letters,
                    receiver,
                ))
            }
        });
        routes.push(SinkRoute {
            name: name.clone(),
            chain: sink.chain.clone(),
            format: sink.format,
            min_severity: sink.min_severity,
            subject,
            key,
            sender,
            budget: ByteBudget::new(QUEUE_BYTES),
        });
    }
    // In config order, as before.
    routes.reverse();
    tasks.reverse();
    drop(dead_letters);
    Ok((routes, SinkTasks { tasks }))
}

async fn run(
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
