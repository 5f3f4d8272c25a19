//! Sinks: where processed events are published. A broker sink runs as its
//! own task behind a bounded queue, so a slow broker applies back-pressure
//! to the pipeline instead of growing memory; a line sink (stdout, file) is
//! written by the pipeline's thread itself ([`LineOutlet`]).

mod config;
mod delivery;
mod embedded;
mod file;
mod kafka;
mod nats;
mod spool;
mod stdout;
mod webhook;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::{SinkConfig, SinkKind, SpoolConfig, SpoolSettings, WhenFull};
pub use delivery::{Broker, DeadLetterQueues, Outcome};
pub use embedded::{EmbeddedSinkConfig, Published};
pub use file::FileSinkConfig;
pub use kafka::{
    KAFKA_CLUSTER_HEADER, KAFKA_ID_HEADER, KAFKA_MANAGED_OPTIONS, KAFKA_SEVERITY_HEADER, KafkaSink,
    KafkaSinkConfig, Scalar,
};
pub use nats::{CLUSTER_HEADER, NatsAuth, NatsSink, NatsSinkConfig, SEVERITY_HEADER, TlsFiles};
pub use spool::Spool;
pub use stdout::StdoutSinkConfig;
pub use webhook::{
    Encoding, IDEMPOTENCY_KEY, UrlTemplate, WebhookAuth, WebhookSink, WebhookSinkConfig,
};
pub use writer::{LineOutlet, LineWriter};

use crate::budget::{ByteBudget, BytePermit};
use crate::checkpoint::Ack;
use crate::event::Severity;
use crate::item::DEAD_LETTER_CHAIN;
use crate::metrics;
use crate::output::{OutputFormat, Template};
use crate::units::Checked;

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
    /// A mark that rides behind the batch's last line: acknowledged once the
    /// sink has done with the batch (written, or taken by the broker or the
    /// spool), so that a mark costs the sink no wake-up of its own.
    pub ack: Option<Arc<Ack>>,
}

impl Batch {
    /// Acknowledges the mark riding behind the batch, if any: the sink is done
    /// with everything up to it.
    pub fn acknowledge(&mut self) {
        if let Some(ack) = self.ack.take() {
            ack.ack();
        }
    }
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
    /// Events, and possibly the mark behind them ([`Batch::ack`]).
    Batch(Batch),
    /// Acknowledged once everything queued before it has been written (a
    /// mark with no events of this sink's before it).
    Ack(Arc<Ack>),
}

/// The pipeline's end of a sink: where to send batches and what the sink
/// wants. Each pipeline worker has a clone; they share the queue.
#[derive(Debug, Clone)]
pub struct SinkRoute {
    pub name: String,
    pub chain: String,
    pub format: OutputFormat,
    pub min_severity: Option<Severity>,
    /// For sinks that address each event: the subject (or topic) template,
    /// and the key template of those that key messages.
    pub subject: Option<Template>,
    pub key: Option<Template>,
    pub outlet: Outlet,
}

/// Where the pipeline hands a sink its batches.
#[derive(Debug, Clone)]
pub enum Outlet {
    /// The queue of the sink's task.
    Queue {
        sender: mpsc::Sender<SinkMessage>,
        /// Bounds the bytes queued to the sink ([`QUEUE_BYTES`]).
        budget: ByteBudget,
    },
    /// Written by the pipeline itself.
    Lines(Arc<LineOutlet>),
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
    /// The sink's series of each [`SinkCount`]'s metric, in its order.
    series: Vec<prometheus::IntCounter>,
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

impl SinkCount {
    /// Every count, in declaration order.
    const ALL: [Self; 7] = [
        Self::Published,
        Self::Rejected,
        Self::Retried,
        Self::Spooled,
        Self::Drained,
        Self::SpoolDropped,
        Self::DeadLettered,
    ];

    fn metric(self) -> &'static metrics::Counter {
        match self {
            Self::Published => &metrics::SINK_PUBLISHED,
            Self::Rejected => &metrics::SINK_REJECTED,
            Self::Retried => &metrics::SINK_FAILED,
            Self::Spooled => &metrics::SINK_SPOOLED,
            Self::Drained => &metrics::SINK_DRAINED,
            Self::SpoolDropped => &metrics::SINK_SPOOL_DROPPED,
            Self::DeadLettered => &metrics::SINK_DEAD_LETTERED,
        }
    }
}

impl SinkReport {
    fn new(name: &str) -> Self {
        let labels = [name];
        // Each series exists from the start, at 0.
        let series = SinkCount::ALL
            .iter()
            .map(|count| count.metric().series(&labels))
            .collect();
        Self {
            name: name.to_owned(),
            series,
            ..Self::default()
        }
    }

    /// Counts `n` messages.
    pub fn add(&mut self, what: SinkCount, n: u64) {
        let field = match what {
            SinkCount::Published => &mut self.published,
            SinkCount::Rejected => &mut self.rejected,
            SinkCount::Retried => &mut self.retried,
            SinkCount::Spooled => &mut self.spooled,
            SinkCount::Drained => &mut self.drained,
            SinkCount::SpoolDropped => &mut self.spool_dropped,
            SinkCount::DeadLettered => &mut self.dead_lettered,
        };
        *field += n;
        if let Some(series) = self.series.get(what as usize) {
            series.inc_by(n);
        }
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

/// The running sinks.
#[derive(Debug)]
pub struct SinkTasks {
    sinks: Vec<Running>,
}

/// A started sink: a task over its queue, or written by the pipeline.
#[derive(Debug)]
pub(crate) enum Running {
    Task(JoinHandle<Result<SinkReport, SinkError>>),
    Lines(Arc<LineOutlet>),
}

impl SinkTasks {
    /// Waits for every sink to drain its queue and flush. Once the
    /// pipelines are done: a line sink is flushed here.
    pub async fn finish(self) -> Result<Vec<SinkReport>, SinkError> {
        let mut reports = Vec::with_capacity(self.sinks.len());
        for sink in self.sinks {
            let report = match sink {
                Running::Task(task) => match task.await {
                    Ok(report) => report,
                    Err(join) => std::panic::resume_unwind(join.into_panic()),
                },
                Running::Lines(outlet) => outlet.finish(),
            };
            reports.push(report?);
        }
        Ok(reports)
    }
}

/// What a sink kind gets to start a sink: who it is, where its config
/// lives, its queue, and where its refused messages go.
pub(crate) struct Setup {
    name: String,
    format: OutputFormat,
    base_dir: PathBuf,
    spool: Option<SpoolSettings>,
    dead_letters: DeadLetterQueues,
    /// Whether broker sinks send it what their brokers refuse.
    dead_letter_target: bool,
    queue: mpsc::Receiver<SinkMessage>,
}

/// A started sink, and the templates the pipeline renders for it.
pub(crate) struct Started {
    running: Running,
    subject: Option<Template>,
    key: Option<Template>,
}

impl Setup {
    /// A template of the config, parsed when it was read.
    fn parsed(&self, template: &Checked<Template>) -> Result<Template, SinkError> {
        template.value().cloned().ok_or_else(|| SinkError::Setup {
            sink: self.name.clone(),
            error: template.problem().unwrap_or_default().to_owned(),
        })
    }

    /// A line sink (stdout, file): written by the pipeline, or, for a
    /// dead-letter target, over its queue on a thread of its own (a
    /// blocking-pool thread held for the sink's life).
    fn lines(self, writer: LineWriter) -> Running {
        if self.dead_letter_target {
            Running::Task(tokio::task::spawn_blocking(move || {
                writer::run(self.name, writer, self.queue)
            }))
        } else {
            Running::Lines(LineOutlet::new(self.name, writer))
        }
    }

    /// Runs a broker sink over the queue, with retries, spool and dead
    /// letters.
    fn spawn_broker<B: Broker>(self, broker: B) -> Running {
        Running::Task(tokio::spawn(delivery::run(
            self.name,
            broker,
            self.format,
            self.spool,
            self.dead_letters,
            self.queue,
        )))
    }
}

/// Opens every sink of `sinks` (paths relative to `base_dir`) and starts its
/// task (if it has one), in name order. Must be called within a tokio
/// runtime.
pub async fn start(
    sinks: &BTreeMap<String, SinkConfig>,
    base_dir: &Path,
) -> Result<(Vec<SinkRoute>, SinkTasks), SinkError> {
    let queues: Vec<_> = sinks.keys().map(|_| mpsc::channel(QUEUE_BATCHES)).collect();
    // Where broker sinks send what their broker refuses. A dead-letter sink
    // does not forward what it cannot publish: two of them would wait on
    // each other at shutdown.
    let dead_letters: DeadLetterQueues = sinks
        .iter()
        .zip(&queues)
        .filter(|((_, sink), _)| sink.chain == DEAD_LETTER_CHAIN)
        .map(|((name, _), (sender, _))| (name.clone(), sender.clone()))
        .collect();
    let mut routes = Vec::with_capacity(sinks.len());
    let mut running = Vec::with_capacity(sinks.len());
    for ((name, sink), (sender, queue)) in sinks.iter().zip(queues) {
        let Ok(kind) = sink.kind() else {
            unreachable!("Config::load rejects sinks without exactly one output")
        };
        let setup = Setup {
            name: name.clone(),
            format: sink.format,
            base_dir: base_dir.to_owned(),
            spool: sink.spool_settings(name, base_dir),
            dead_letters: if sink.chain == DEAD_LETTER_CHAIN {
                Vec::new()
            } else {
                dead_letters.clone()
            },
            dead_letter_target: sink.chain == DEAD_LETTER_CHAIN,
            queue,
        };
        let started = kind.start(setup).await?;
        let outlet = match &started.running {
            Running::Task(_) => Outlet::Queue {
                sender,
                budget: ByteBudget::new(QUEUE_BYTES),
            },
            Running::Lines(outlet) => Outlet::Lines(outlet.clone()),
        };
        running.push(started.running);
        routes.push(SinkRoute {
            name: name.clone(),
            chain: sink.chain.clone(),
            format: sink.format,
            min_severity: sink.min_severity,
            subject: started.subject,
            key: started.key,
            outlet,
        });
    }
    Ok((routes, SinkTasks { sinks: running }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report finds each count's series at `count as usize`.
    #[test]
    fn every_count_feeds_its_own_metric() {
        for (index, count) in SinkCount::ALL.into_iter().enumerate() {
            assert_eq!(count as usize, index, "{count:?}");
        }
        let mut report = SinkReport::new("counts-test");
        report.add(SinkCount::Drained, 3);
        report.add(SinkCount::DeadLettered, 2);
        assert_eq!(metrics::SINK_DRAINED.get(&["counts-test"]), Some(3));
        assert_eq!(metrics::SINK_DEAD_LETTERED.get(&["counts-test"]), Some(2));
        assert_eq!(metrics::SINK_FAILED.get(&["counts-test"]), Some(0));
        assert_eq!((report.drained, report.dead_lettered), (3, 2));
    }
}
