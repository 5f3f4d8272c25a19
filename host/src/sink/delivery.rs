//! At-least-once delivery to a broker: the sink's bounded queue → publish
//! with retries and backoff → the disk spool once the broker has been down
//! for `spool.after` → drained in order when it is back.
//!
//! A checkpoint mark is acknowledged only when everything queued before it
//! has been acknowledged by the broker or synced into the spool; the spool
//! survives a restart, so a crash skips nothing. While the spool is full the
//! sink stops taking from its queue (`when_full: block`, the default): the
//! pipeline and the watch wait, and the checkpoint stays put. With
//! `when_full: drop-new`, what does not fit is dropped, counted and logged.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::kafka::KafkaSink;
use super::nats::NatsSink;
use super::spool::Spool;
use super::{Batch, SinkCount, SinkError, SinkMessage, SinkReport};
use crate::config::WhenFull;
use crate::metrics;
use crate::watch::Backoff;

/// Records read from the spool per drain attempt.
const DRAIN_BATCH: usize = 256;

/// What happened to one message.
#[derive(Debug)]
pub enum Outcome {
    Published,
    /// Retry later.
    Failed(String),
    /// Never retry: the broker will not take it.
    Rejected(String),
}

/// A broker a sink publishes to.
pub enum Broker {
    Nats(Box<NatsSink>),
    Kafka(KafkaSink),
}

impl Broker {
    async fn publish(&mut self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
        match self {
            Self::Nats(nats) => nats.publish(batch, which).await,
            Self::Kafka(kafka) => kafka.publish(batch, which).await,
        }
    }

    fn server(&self) -> &str {
        match self {
            Self::Nats(nats) => nats.server(),
            Self::Kafka(kafka) => kafka.server(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Nats(_) => "NATS",
            Self::Kafka(_) => "Kafka",
        }
    }

    async fn close(self) {
        match self {
            Self::Nats(nats) => nats.close().await,
            Self::Kafka(kafka) => kafka.close().await,
        }
    }
}

/// The spool as configured for one sink.
#[derive(Debug, Clone)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// How long to retry in memory before spooling.
    pub after: Duration,
    pub when_full: WhenFull,
}

struct Deliverer {
    name: String,
    broker: Broker,
    /// The queues of the `dead-letter` sinks, for what the broker refuses.
    dead_letters: Vec<(String, mpsc::Sender<SinkMessage>)>,
    spool: Option<(Spool, SpoolSettings)>,
    report: SinkReport,
    backoff: Backoff,
    /// Since when the broker has been failing, if it is.
    failing_since: Option<Instant>,
    /// The spool is full and `drop-new` dropped something (logged once).
    dropping: bool,
}

/// Runs a broker sink until its queue closes.
pub async fn run(
    name: String,
    broker: Broker,
    spool: Option<SpoolSettings>,
    dead_letters: Vec<(String, mpsc::Sender<SinkMessage>)>,
    mut receiver: mpsc::Receiver<SinkMessage>,
) -> Result<SinkReport, SinkError> {
    let spool = match spool {
        Some(settings) => {
            let opened =
                tokio::task::block_in_place(|| Spool::open(&settings.dir, settings.max_bytes))
                    .map_err(|error| SinkError::Setup {
                        sink: name.clone(),
                        error: format!("spool {}: {error}", settings.dir.display()),
                    })?;
            if !opened.is_empty() {
                tracing::info!(
                    sink = %name,
                    bytes = opened.pending_bytes(),
                    "the spool holds undelivered messages from before; draining them first"
                );
            }
            Some((opened, settings))
        }
        None => None,
    };
    let mut deliverer = Deliverer {
        report: SinkReport::new(&name),
        name,
        broker,
        dead_letters,
        spool,
        backoff: Backoff::default(),
        failing_since: None,
        dropping: false,
    };
    deliverer.spool_gauge();
    let mut next_drain = Instant::now();
    loop {
        if deliverer.spooling() {
            let block = deliverer.spool_full_and_blocking();
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(next_drain) => {
                    next_drain = match deliverer.drain_once().await {
                        Ok(()) => Instant::now(),
                        Err(delay) => Instant::now() + delay,
                    };
                }
                message = receiver.recv(), if !block => match message {
                    None => break,
                    Some(SinkMessage::Ack(ack)) => ack.ack(),
                    Some(SinkMessage::Batch(batch)) => {
                        let all: Vec<usize> = (0..batch.records.len()).collect();
                        deliverer.spool_or_drop(&batch, &all).await;
                    }
                },
            }
        } else {
            match receiver.recv().await {
                None => break,
                Some(SinkMessage::Ack(ack)) => ack.ack(),
                Some(SinkMessage::Batch(batch)) => deliverer.deliver(&batch).await,
            }
        }
    }
    // Shutting down: drain what the broker takes now; the rest waits in the
    // spool for the next start.
    while deliverer.spooling() {
        if deliverer.drain_once().await.is_err() {
            tracing::warn!(
                sink = %deliverer.name,
                bytes = deliverer.spool.as_ref().map_or(0, |(s, _)| s.pending_bytes()),
                "stopping with messages in the spool; they are delivered after the next start"
            );
            break;
        }
    }
    let Deliverer { broker, report, .. } = deliverer;
    broker.close().await;
    Ok(report)
}

impl Deliverer {
    /// `aetherius_sink_spool_bytes`, after the spool changed.
    fn spool_gauge(&self) {
        if let Some((spool, _)) = &self.spool {
            metrics::SINK_SPOOL_BYTES.set(&[&self.name], spool.pending_bytes() as f64);
        }
    }

    fn spooling(&self) -> bool {
        self.spool
            .as_ref()
            .is_some_and(|(spool, _)| !spool.is_empty())
    }

    fn spool_full_and_blocking(&self) -> bool {
        self.spool.as_ref().is_some_and(|(spool, settings)| {
            settings.when_full == WhenFull::Block && !spool.has_room(1)
        })
    }

    /// Publishes a batch directly: retries until it is all delivered, or
    /// (with a spool) until the broker has been down `spool.after`, then
    /// spools what is left.
    async fn deliver(&mut self, batch: &Batch) {
        let mut pending: Vec<usize> = (0..batch.records.len()).collect();
        loop {
            let outcomes = self.broker.publish(batch, &pending).await;
            pending = self.settle(batch, &pending, outcomes).await;
            if pending.is_empty() {
                self.recovered();
                return;
            }
            let delay = self.backoff.next_delay();
            if let Some((_, settings)) = &self.spool
                && self
                    .failing_since
                    .is_some_and(|since| since.elapsed() >= settings.after)
            {
                self.spool_or_drop(batch, &pending).await;
                return;
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt at the oldest records of the spool. `Err`: try again
    /// after that long.
    async fn drain_once(&mut self) -> Result<(), Duration> {
        let Some((spool, _)) = &self.spool else {
            return Ok(());
        };
        let (batch, position) = match tokio::task::block_in_place(|| spool.peek(DRAIN_BATCH)) {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(sink = %self.name, %error, "cannot read the spool");
                return Err(self.backoff.next_delay());
            }
        };
        let all: Vec<usize> = (0..batch.records.len()).collect();
        let outcomes = self.broker.publish(&batch, &all).await;
        if !self.settle(&batch, &all, outcomes).await.is_empty() {
            // In order: the whole read is tried again (a message id the
            // broker already has is dropped by it).
            return Err(self.backoff.next_delay());
        }
        self.recovered();
        let (spool, _) = self.spool.as_mut().expect("checked above");
        if let Err(error) = tokio::task::block_in_place(|| spool.commit(position)) {
            tracing::error!(sink = %self.name, %error, "cannot record spool progress");
            return Err(self.backoff.next_delay());
        }
        let drained = spool.is_empty();
        self.report
            .add(SinkCount::Drained, batch.records.len() as u64);
        self.spool_gauge();
        if drained {
            tracing::info!(sink = %self.name, "spool drained");
        }
        Ok(())
    }

    /// Counts outcomes, hands refused messages to the dead-letter sinks;
    /// returns the records to retry.
    async fn settle(
        &mut self,
        batch: &Batch,
        which: &[usize],
        outcomes: Vec<Outcome>,
    ) -> Vec<usize> {
        let mut retry = Vec::new();
        let mut reason = None;
        for (&i, outcome) in which.iter().zip(outcomes) {
            match outcome {
                Outcome::Published => self.report.add(SinkCount::Published, 1),
                Outcome::Rejected(why) => {
                    self.report.add(SinkCount::Rejected, 1);
                    let record = &batch.records[i];
                    tracing::error!(
                        sink = %self.name,
                        id = %record.id,
                        subject = %record.subject,
                        bytes = record.end - record.start,
                        reason = %why,
                        dead_letter_sinks = self.dead_letters.len(),
                        "{} refused the message; it is not retried{}",
                        self.broker.kind(),
                        if self.dead_letters.is_empty() { "" } else { " and goes to the dead-letter sinks" }
                    );
                    self.dead_letter(batch, i, &why).await;
                }
                Outcome::Failed(why) => {
                    reason.get_or_insert(why);
                    retry.push(i);
                }
            }
        }
        if let Some(reason) = reason {
            self.report.add(SinkCount::Retried, retry.len() as u64);
            if self.failing_since.is_none() {
                self.failing_since = Some(Instant::now());
                metrics::SINK_UP.set(&[&self.name], 0.0);
                tracing::error!(
                    sink = %self.name,
                    server = %self.broker.server(),
                    waiting = retry.len(),
                    %reason,
                    "cannot publish to {}; retrying with backoff{}",
                    self.broker.kind(),
                    if self.spool.is_some() { ", then spooling to disk" } else { "; the pipeline waits" }
                );
            } else {
                tracing::debug!(sink = %self.name, waiting = retry.len(), %reason, "still cannot publish");
            }
        }
        retry
    }

    /// Sends a refused message to every dead-letter sink, annotated with
    /// this sink and the reason (`annotations`, or `data.annotations` in a
    /// CloudEvent).
    async fn dead_letter(&mut self, batch: &Batch, i: usize, reason: &str) {
        if self.dead_letters.is_empty() {
            return;
        }
        let record = &batch.records[i];
        let Ok(mut event) = serde_json::from_slice::<serde_json::Value>(batch.line(record)) else {
            return;
        };
        let annotations = if event.get("specversion").is_some() {
            &mut event["data"]["annotations"]
        } else {
            &mut event["annotations"]
        };
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert("dead_letter_sink".into(), self.name.clone().into());
            annotations.insert("dead_letter_reason".into(), reason.into());
        }
        let mut bytes = serde_json::to_vec(&event).expect("a Value serializes");
        bytes.push(b'\n');
        for (sink, sender) in &self.dead_letters {
            let mut record = record.clone();
            record.start = 0;
            record.end = bytes.len();
            let letter = Batch {
                bytes: bytes.clone(),
                events: 1,
                records: vec![record],
                budget: None,
            };
            if sender.send(SinkMessage::Batch(letter)).await.is_err() {
                tracing::warn!(sink = %self.name, dead_letter_sink = %sink, "the dead-letter sink stopped");
            } else {
                self.report.add(SinkCount::DeadLettered, 1);
            }
        }
    }

    fn recovered(&mut self) {
        self.backoff.reset();
        metrics::SINK_UP.set(&[&self.name], 1.0);
        if let Some(since) = self.failing_since.take() {
            tracing::info!(
                sink = %self.name,
                server = %self.broker.server(),
                down_for = ?since.elapsed(),
                "{} takes messages again",
                self.broker.kind()
            );
        }
    }

    /// Appends records to the spool, or drops them when it is full and the
    /// policy says so. With `block`, waits (draining) for room first.
    async fn spool_or_drop(&mut self, batch: &Batch, which: &[usize]) {
        let bytes: u64 = which
            .iter()
            .map(|&i| (batch.records[i].end - batch.records[i].start) as u64 + 128)
            .sum();
        loop {
            let (spool, settings) = self.spool.as_mut().expect("only called with a spool");
            if spool.has_room(bytes) || spool.is_empty() {
                match tokio::task::block_in_place(|| spool.append(batch, which)) {
                    Ok(()) => {
                        self.report.add(SinkCount::Spooled, which.len() as u64);
                        self.spool_gauge();
                        return;
                    }
                    Err(error) => {
                        tracing::error!(sink = %self.name, %error, "cannot write to the spool; retrying");
                        tokio::time::sleep(self.backoff.next_delay()).await;
                        continue;
                    }
                }
            }
            match settings.when_full {
                WhenFull::DropNew => {
                    self.report.add(SinkCount::SpoolDropped, which.len() as u64);
                    if !std::mem::replace(&mut self.dropping, true) {
                        tracing::error!(
                            sink = %self.name,
                            max_size = settings.max_bytes,
                            "the spool is full; dropping new messages (when_full: drop-new)"
                        );
                    }
                    return;
                }
                WhenFull::Block => {
                    // Make room by delivering the oldest.
                    if let Err(delay) = self.drain_once().await {
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }
}
