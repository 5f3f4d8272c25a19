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

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::config::{SpoolSettings, WhenFull};
use super::spool::Spool;
use super::{Batch, SinkCount, SinkError, SinkMessage, SinkReport};
use crate::backoff::Backoff;
use crate::metrics;
use crate::output::{self, OutputFormat};

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

/// A broker a sink publishes to: what each broker sink kind implements for
/// [`run`], which does the rest (retries, the spool, dead letters, acks).
pub trait Broker: Send + 'static {
    /// One attempt at publishing the records `which` of `batch`: one
    /// outcome each, in order.
    fn publish(
        &mut self,
        batch: &Batch,
        which: &[usize],
    ) -> impl Future<Output = Vec<Outcome>> + Send;

    /// The server(s), for messages.
    fn server(&self) -> &str;

    /// What kind of broker, for messages: `NATS`, `Kafka`.
    fn kind(&self) -> &'static str;

    /// Lets what was published leave the client, a little while at most.
    fn close(self) -> impl Future<Output = ()> + Send;
}

struct Deliverer<B> {
    name: String,
    broker: B,
    /// The format of the lines, for dead letters.
    format: OutputFormat,
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

/// The queues of the `dead-letter` sinks, by sink name: where a broker sink
/// sends what its broker refuses.
pub type DeadLetterQueues = Vec<(String, mpsc::Sender<SinkMessage>)>;

/// Runs a broker sink until its queue closes.
pub async fn run<B: Broker>(
    name: String,
    broker: B,
    format: OutputFormat,
    spool: Option<SpoolSettings>,
    dead_letters: DeadLetterQueues,
    mut receiver: mpsc::Receiver<SinkMessage>,
) -> Result<SinkReport, SinkError> {
    let spool = match spool {
        Some(settings) => {
            let opened =
                blocking(|| Spool::open(&settings.dir, settings.max_bytes)).map_err(|error| {
                    SinkError::Setup {
                        sink: name.clone(),
                        error: format!("spool {}: {error}", settings.dir.display()),
                    }
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
        format,
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
                    Some(SinkMessage::Batch(mut batch)) => {
                        let all: Vec<usize> = (0..batch.records.len()).collect();
                        deliverer.spool_or_drop(&batch, &all).await;
                        batch.acknowledge();
                    }
                },
            }
        } else {
            match receiver.recv().await {
                None => break,
                Some(SinkMessage::Ack(ack)) => ack.ack(),
                Some(SinkMessage::Batch(mut batch)) => {
                    deliverer.deliver(&batch).await;
                    batch.acknowledge();
                }
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

impl<B: Broker> Deliverer<B> {
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
        let (batch, position) = match blocking(|| spool.peek(DRAIN_BATCH)) {
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
        if let Err(error) = blocking(|| spool.commit(position)) {
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
    /// this sink and the reason (by `output`, which knows where each format
    /// keeps its annotations).
    async fn dead_letter(&mut self, batch: &Batch, i: usize, reason: &str) {
        if self.dead_letters.is_empty() {
            return;
        }
        let record = &batch.records[i];
        let Some(bytes) = output::refused(self.format, batch.line(record), &self.name, reason)
        else {
            return;
        };
        for (sink, sender) in &self.dead_letters {
            let mut record = record.clone();
            record.start = 0;
            record.end = bytes.len();
            let letter = Batch {
                bytes: bytes.clone(),
                events: 1,
                records: vec![record],
                budget: None,
                ack: None,
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
                match blocking(|| spool.append(batch, which)) {
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

/// Runs blocking file work (the spool's writes and fsyncs) without stalling
/// the runtime's other tasks where it can: on a multi-threaded runtime (an
/// embedding program's) the worker hands its tasks to the others meanwhile;
/// on a single-threaded one (`aetherius run`'s, the unit tests') it simply
/// runs — while a broker is down, a spool write holds the watches for the
/// milliseconds of its fsync; they read on afterwards, nothing is lost.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    //! The state machine against a scripted broker, on tokio's paused clock:
    //! retries, backoff and `spool.after` take no real time.

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::checkpoint::{Acknowledger, Lag, Mark, Marks, WatchKey, acknowledger};
    use crate::event::Severity;
    use crate::sink::Record;

    /// What the scripted broker does with one publish call.
    #[derive(Debug, Clone, Copy)]
    enum Answer {
        /// Takes every record.
        Up,
        /// Fails every record (to be retried).
        Down,
        /// Refuses the records with these ids for good, takes the others.
        Refuse(&'static [&'static str]),
    }

    /// A broker that answers from a script (then is up), and remembers the
    /// ids it took, in order.
    struct Scripted {
        script: VecDeque<Answer>,
        taken: Arc<Mutex<Vec<String>>>,
        calls: Arc<Mutex<usize>>,
    }

    impl Broker for Scripted {
        async fn publish(&mut self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
            *self.calls.lock().unwrap() += 1;
            let answer = self.script.pop_front().unwrap_or(Answer::Up);
            which
                .iter()
                .map(|&i| {
                    let id = &batch.records[i].id;
                    match answer {
                        Answer::Down => Outcome::Failed("connection refused".into()),
                        Answer::Refuse(ids) if ids.contains(&id.as_str()) => {
                            Outcome::Rejected("message too large".into())
                        }
                        _ => {
                            self.taken.lock().unwrap().push(id.clone());
                            Outcome::Published
                        }
                    }
                })
                .collect()
        }

        fn server(&self) -> &str {
            "scripted"
        }

        fn kind(&self) -> &'static str {
            "Scripted"
        }

        async fn close(self) {}
    }

    /// A batch of StandardEvent-shaped lines with the given ids.
    fn batch(ids: &[&str]) -> Batch {
        let mut batch = Batch::default();
        for id in ids {
            let start = batch.bytes.len();
            let line = serde_json::json!({ "id": id, "annotations": { "message": "m" } });
            batch.bytes.extend_from_slice(line.to_string().as_bytes());
            batch.bytes.push(b'\n');
            batch.events += 1;
            batch.records.push(Record {
                start,
                end: batch.bytes.len(),
                id: (*id).to_owned(),
                subject: "s".into(),
                key: None,
                severity: Severity::High,
                cluster: "c".into(),
            });
        }
        batch
    }

    struct Harness {
        queue: mpsc::Sender<SinkMessage>,
        acks: Acknowledger,
        acked: Marks,
        dead: mpsc::Receiver<SinkMessage>,
        taken: Arc<Mutex<Vec<String>>>,
        calls: Arc<Mutex<usize>>,
        task: tokio::task::JoinHandle<Result<SinkReport, SinkError>>,
        _dir: tempfile::TempDir,
    }

    /// A running broker sink over `script`, with a spool of `spool_bytes`
    /// (none if 0) that takes over after 10 s.
    fn start(name: &str, script: &[Answer], spool_bytes: u64, when_full: WhenFull) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let taken = Arc::default();
        let calls = Arc::default();
        let broker = Scripted {
            script: script.iter().copied().collect(),
            taken: Arc::clone(&taken),
            calls: Arc::clone(&calls),
        };
        let spool = (spool_bytes > 0).then(|| SpoolSettings {
            dir: dir.path().join("spool"),
            max_bytes: spool_bytes,
            after: Duration::from_secs(10),
            when_full,
        });
        let (queue, receiver) = mpsc::channel(16);
        let (dead_sender, dead) = mpsc::channel(16);
        let (acks, acked) = acknowledger(Lag::default());
        let task = tokio::spawn(run(
            name.to_owned(),
            broker,
            OutputFormat::Standard,
            spool,
            vec![("failures".to_owned(), dead_sender)],
            receiver,
        ));
        Harness {
            queue,
            acks,
            acked,
            dead,
            taken,
            calls,
            task,
            _dir: dir,
        }
    }

    impl Harness {
        async fn send(&self, ids: &[&str]) {
            self.queue
                .send(SinkMessage::Batch(batch(ids)))
                .await
                .unwrap();
        }

        /// Queues a mark behind what was sent.
        async fn mark(&self, rv: &str) {
            let mark = Mark {
                key: WatchKey {
                    cluster: "c".into(),
                    namespace: None,
                },
                resource_version: rv.into(),
            };
            let ack = self.acks.ack(mark, 1);
            self.queue.send(SinkMessage::Ack(ack)).await.unwrap();
        }

        fn taken(&self) -> Vec<String> {
            self.taken.lock().unwrap().clone()
        }

        /// Whether no mark has been acknowledged since the last look.
        fn none_acked(&self) -> bool {
            self.acked.take().is_empty()
        }

        /// Waits (on the paused clock) for the next acknowledged mark.
        async fn next_acked(&self) -> Mark {
            loop {
                if let Some(mark) = self.acked.take().pop() {
                    return mark;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }

        /// Waits (on the paused clock) until the broker has taken `n`.
        async fn wait_taken(&self, n: usize) {
            while self.taken.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }

        async fn finish(self) -> (SinkReport, Vec<String>) {
            drop(self.queue);
            let report = self.task.await.unwrap().unwrap();
            let taken = self.taken.lock().unwrap().clone();
            (report, taken)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_broker_that_fails_is_retried_until_it_takes_everything_once() {
        let sink = start(
            "retry",
            &[Answer::Down, Answer::Down, Answer::Down],
            0,
            WhenFull::Block,
        );
        sink.send(&["a", "b"]).await;
        sink.send(&["c"]).await;
        let (report, taken) = sink.finish().await;
        assert_eq!(taken, ["a", "b", "c"]);
        assert_eq!((report.published, report.retried), (3, 6));
        assert_eq!(report.spooled, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_mark_is_acknowledged_only_once_the_broker_took_what_came_before() {
        // No spool: the sink waits for the broker, and so does the mark.
        let sink = start("gate", &[Answer::Down; 20], 0, WhenFull::Block);
        sink.send(&["a"]).await;
        sink.mark("7").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(sink.none_acked(), "acked while `a` was not taken");
        assert!(sink.taken().is_empty());
        let mark = sink.next_acked().await;
        assert_eq!(mark.resource_version, "7");
        assert_eq!(sink.taken(), ["a"]);
        sink.finish().await;
    }

    #[tokio::test(start_paused = true)]
    async fn after_spool_after_the_messages_wait_in_the_spool_and_drain_in_order() {
        // Down for a long while (each attempt is one script entry).
        let sink = start("spool", &[Answer::Down; 30], 1 << 20, WhenFull::Block);
        sink.send(&["a", "b"]).await;
        // Spooled once the broker has been down 10 s: the mark behind it is
        // acknowledged then (the spool is synced), broker still down.
        sink.mark("1").await;
        let mark = sink.next_acked().await;
        assert_eq!(mark.resource_version, "1");
        assert!(
            sink.taken().is_empty(),
            "acked from the spool, not the broker"
        );
        // While spooling, newer batches queue behind the spooled ones.
        sink.send(&["c"]).await;
        sink.send(&["d", "e"]).await;
        sink.mark("2").await;
        assert_eq!(sink.next_acked().await.resource_version, "2");
        sink.wait_taken(5).await;
        let (report, taken) = sink.finish().await;
        assert_eq!(taken, ["a", "b", "c", "d", "e"], "in order, once each");
        assert_eq!(
            (report.spooled, report.drained, report.published),
            (5, 5, 5)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_spool_with_drop_new_drops_and_counts() {
        // Room for about one batch of two small lines.
        let sink = start("drop", &[Answer::Down; 40], 300, WhenFull::DropNew);
        sink.send(&["a", "b"]).await;
        sink.send(&["c", "d"]).await;
        sink.send(&["e", "f"]).await;
        sink.wait_taken(2).await;
        let (report, taken) = sink.finish().await;
        assert!(report.spool_dropped >= 2, "{report:?}");
        assert_eq!(report.spooled + report.spool_dropped, 6, "{report:?}");
        assert_eq!(
            taken.len() as u64,
            report.spooled,
            "what was spooled arrives"
        );
        assert_eq!(&taken[..2], ["a", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_spool_with_block_stops_taking_from_the_queue() {
        let sink = start("block", &[Answer::Down; 40], 300, WhenFull::Block);
        sink.send(&["a", "b"]).await;
        sink.send(&["c", "d"]).await;
        sink.mark("1").await;
        // The spool holds `a`, `b`; `c`, `d` wait for room, so does the mark.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(sink.none_acked());
        assert_eq!(sink.next_acked().await.resource_version, "1");
        let (report, taken) = sink.finish().await;
        assert_eq!(taken, ["a", "b", "c", "d"]);
        assert_eq!(report.spool_dropped, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_message_goes_to_the_dead_letters_and_is_not_retried() {
        let mut sink = start("refuse", &[Answer::Refuse(&["b"])], 0, WhenFull::Block);
        sink.send(&["a", "b", "c"]).await;
        let letter = match sink.dead.recv().await.unwrap() {
            SinkMessage::Batch(batch) => batch,
            SinkMessage::Ack(_) => panic!("a batch"),
        };
        let line: serde_json::Value = serde_json::from_slice(&letter.bytes).unwrap();
        assert_eq!(line["id"], "b");
        assert_eq!(line["annotations"]["dead_letter_sink"], "refuse");
        assert_eq!(
            line["annotations"]["dead_letter_reason"],
            "message too large"
        );
        let calls = Arc::clone(&sink.calls);
        let (report, taken) = sink.finish().await;
        assert_eq!(taken, ["a", "c"]);
        assert_eq!(
            (report.rejected, report.dead_lettered, report.retried),
            (1, 1, 0)
        );
        assert_eq!(
            *calls.lock().unwrap(),
            1,
            "one publish call, nothing retried"
        );
    }
}
