//! The pipeline proper: occurrence core → chains → sink queues, run on one
//! thread of its own fed by batches of decoded events (`thread.rs`); built
//! from a config by `build.rs`, in batches cut by `batches.rs`.

mod batches;
mod build;
mod config;
mod retry;
mod thread;

use std::sync::Arc;

pub use batches::{BATCH_BYTES, BatchCutter};
pub use build::{
    LoadError, StageError, StageErrors, StartError, build_chain_sets, build_chains, load_chains,
    start,
};
pub use config::PipelineConfig;
pub use retry::RetryConfig;
pub use thread::{PendingChains, PipelineThread, spawn};

use crate::chain::{Chain, ChainOutput};
use crate::checkpoint::Ack;
use crate::clock::{Clock, ManualClock, SharedClock};
use crate::event::{Event, Millis};
use crate::item::{DEAD_LETTER_CHAIN, Processed};
use crate::occurrence::{Admission, DedupConfig, Occurrence, OccurrenceCore};
use crate::output::OutputFormat;
use crate::sink::{Batch, Outlet, Record, SinkMessage, SinkRoute};
use crate::{metrics, output};

/// Counters of what the pipeline did, for the summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Events handed to the pipeline.
    pub received: u64,
    /// Events the occurrence core suppressed as duplicates.
    pub deduplicated: u64,
    /// Occurrences published to at least one sink.
    pub published: u64,
    /// Occurrences no sink published (dropped by filters or `fail-closed`,
    /// or below every sink's `min_severity`).
    pub filtered: u64,
    /// Occurrences handed to the dead-letter sinks.
    pub dead_lettered: u64,
    /// Stage failures (traps, limits, invalid output, open breakers).
    pub plugin_failures: u64,
}

impl PipelineStats {
    /// Adds another worker's counts.
    pub fn add(&mut self, other: &Self) {
        self.received += other.received;
        self.deduplicated += other.deduplicated;
        self.published += other.published;
        self.filtered += other.filtered;
        self.dead_lettered += other.dead_lettered;
        self.plugin_failures += other.plugin_failures;
    }
}

/// The fingerprints each worker's occurrence core remembers, summed for
/// `k8s_events_dedup_cache_size`.
#[derive(Debug, Clone)]
struct CacheSizes {
    index: usize,
    all: Arc<[std::sync::atomic::AtomicUsize]>,
    gauge: prometheus::Gauge,
}

impl CacheSizes {
    fn new(index: usize, all: Arc<[std::sync::atomic::AtomicUsize]>) -> Self {
        let gauge = metrics::DEDUP_CACHE_SIZE.series(&[]);
        Self { index, all, gauge }
    }

    fn publish(&self, len: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.all[self.index].store(len, Relaxed);
        let total: usize = self.all.iter().map(|size| size.load(Relaxed)).sum();
        self.gauge.set(total as f64);
    }
}

/// One cluster's pipeline counters, their series looked up once.
#[derive(Debug)]
struct ClusterCounters {
    cluster: String,
    received: prometheus::IntCounter,
    deduplicated: prometheus::IntCounter,
    processed: prometheus::IntCounter,
    filtered: prometheus::IntCounter,
    dead_lettered: prometheus::IntCounter,
    recovered: prometheus::IntCounter,
}

/// The counters of each cluster the pipeline has seen: a handful, found by
/// name without a lock or an allocation per event.
#[derive(Debug, Default)]
struct Counters(Vec<ClusterCounters>);

impl Counters {
    /// Where `cluster`'s counters are (added on first sight).
    fn index(&mut self, cluster: &str) -> usize {
        match self.0.iter().position(|c| c.cluster == cluster) {
            Some(index) => index,
            None => {
                let labels = &[cluster];
                self.0.push(ClusterCounters {
                    cluster: cluster.to_owned(),
                    received: metrics::EVENTS_RECEIVED.series(labels),
                    deduplicated: metrics::EVENTS_DEDUPLICATED.series(labels),
                    processed: metrics::EVENTS_PROCESSED.series(labels),
                    filtered: metrics::EVENTS_FILTERED.series(labels),
                    dead_lettered: metrics::EVENTS_ERRORS.series(&[cluster, "dead_letter"]),
                    recovered: metrics::RESYNC_RECOVERED.series(labels),
                });
                self.0.len() - 1
            }
        }
    }

    fn of(&mut self, cluster: &str) -> &ClusterCounters {
        let index = self.index(cluster);
        &self.0[index]
    }
}

impl std::ops::Index<usize> for Counters {
    type Output = ClusterCounters;

    fn index(&self, index: usize) -> &ClusterCounters {
        &self.0[index]
    }
}

/// Time as the pipeline sees it.
#[derive(Debug, Clone)]
pub enum PipelineClock {
    /// Live: the system clock.
    Live(SharedClock),
    /// Replay: a clock that follows the events. Each event is processed at
    /// the latest event time seen so far, to the second; a batch is cut
    /// where that changes, so plugins calling `now` see the same time for
    /// the same event whatever the batch size.
    Replay(ManualClock),
}

impl PipelineClock {
    fn now_ms(&self) -> Millis {
        match self {
            Self::Live(clock) => clock.now_ms(),
            Self::Replay(clock) => clock.now_ms(),
        }
    }
}

/// Occurrence core, chains and sink routes.
#[derive(Debug)]
pub struct Pipeline {
    core: OccurrenceCore,
    chains: Vec<Chain>,
    routes: Vec<SinkRoute>,
    clock: PipelineClock,
    cutter: BatchCutter,
    stats: PipelineStats,
    counters: Counters,
    /// Counted per occurrence without atomics, flushed once per batch.
    processing_seconds: prometheus::local::LocalHistogram,
    cache_sizes: CacheSizes,
    retries: retry::Retries,
}

/// A retry's run through the one chain that dead-lettered its occurrences:
/// the chain, and each occurrence's failures so far.
struct RetryRun {
    chain: String,
    failures: Vec<u32>,
}

impl Pipeline {
    pub fn new(
        dedup: DedupConfig,
        chains: Vec<Chain>,
        routes: Vec<SinkRoute>,
        clock: PipelineClock,
        batch_size: usize,
    ) -> Self {
        let (shared, replay): (SharedClock, _) = match &clock {
            PipelineClock::Live(clock) => (clock.clone(), None),
            PipelineClock::Replay(clock) => (Arc::new(clock.clone()), Some(clock.clone())),
        };
        Self {
            core: OccurrenceCore::new(dedup, shared),
            chains,
            routes,
            clock,
            cutter: BatchCutter::new(batch_size, replay),
            stats: PipelineStats::default(),
            counters: Counters::default(),
            processing_seconds: metrics::PROCESSING_SECONDS.series(&[]).local(),
            cache_sizes: CacheSizes::new(0, Arc::new([std::sync::atomic::AtomicUsize::new(0)])),
            retries: retry::Retries::new(RetryConfig {
                attempts: 0,
                ..RetryConfig::default()
            }),
        }
    }

    /// Retries dead letters as `config` says (live pipelines only: a
    /// replay's clock stops with its input).
    #[must_use]
    pub fn with_retries(mut self, config: RetryConfig) -> Self {
        if matches!(self.clock, PipelineClock::Live(_)) {
            self.retries = retry::Retries::new(config);
            if config.attempts > 0 {
                for result in retry::RESULTS {
                    metrics::DEAD_LETTER_RETRIES.touch(&[result]);
                }
            }
        }
        self
    }

    /// `workers` pipelines of the same config, each with its own chains
    /// (`chain_sets`, one per worker) and occurrence core, sharing the sink
    /// queues and the dedup cache-size gauge.
    pub fn workers(
        dedup: DedupConfig,
        chain_sets: Vec<Vec<Chain>>,
        routes: Vec<SinkRoute>,
        clock: PipelineClock,
        batch_size: usize,
        retries: RetryConfig,
    ) -> Vec<Self> {
        let all: Arc<[std::sync::atomic::AtomicUsize]> = chain_sets
            .iter()
            .map(|_| std::sync::atomic::AtomicUsize::new(0))
            .collect();
        chain_sets
            .into_iter()
            .enumerate()
            .map(|(index, chains)| {
                let mut pipeline =
                    Self::new(dedup, chains, routes.clone(), clock.clone(), batch_size)
                        .with_retries(retries);
                pipeline.cache_sizes = CacheSizes::new(index, all.clone());
                pipeline
            })
            .collect()
    }

    pub fn stats(&self) -> PipelineStats {
        self.stats
    }

    /// Fingerprints the occurrence core currently remembers.
    pub fn cache_size(&self) -> usize {
        self.core.len()
    }

    /// Runs the next batches through `chains` instead (a reload). Sinks keep
    /// their chain names; a chain no sink takes is dropped.
    pub fn replace_chains(&mut self, chains: Vec<Chain>) {
        self.chains = chains;
    }

    /// Sinks the pipeline feeds.
    pub fn sink_count(&self) -> usize {
        self.routes.len()
    }

    /// Sends each sink its rest of a chunk (`batches`, one per route; none
    /// when nothing passed) with `ack` riding behind it: a mark costs a sink
    /// no message of its own unless no event of this input went its way.
    /// Blocks while a sink's queue is full.
    fn send_rest(&self, batches: Vec<Batch>, ack: Option<&Arc<Ack>>) {
        let mut batches = batches.into_iter();
        for route in &self.routes {
            let mut batch = batches.next().unwrap_or_default();
            if batch.events > 0 {
                batch.ack = ack.cloned();
                send(route, batch);
            } else if let Some(ack) = ack {
                match &route.outlet {
                    Outlet::Queue { sender, .. } => {
                        if sender.blocking_send(SinkMessage::Ack(ack.clone())).is_err() {
                            // A sink that stopped never acks: the checkpoint stays put.
                            tracing::debug!(sink = %route.name, "sink stopped; checkpoint not acknowledged");
                        }
                    }
                    Outlet::Lines(outlet) => outlet.acknowledge(ack),
                }
            }
        }
    }

    /// How long until a held dead letter is due for a retry, if one waits.
    pub fn retry_wait(&self) -> Option<std::time::Duration> {
        let due = self.retries.next_due()?;
        let wait = due.saturating_sub(self.clock.now_ms()).max(0);
        Some(std::time::Duration::from_millis(wait as u64))
    }

    /// Ends the pipeline: its counts, after saying what it gives up.
    pub fn finish(self) -> PipelineStats {
        let waiting = self.retries.len();
        if waiting > 0 {
            tracing::info!(
                waiting,
                "dead letters waiting for a retry are given up; they are in the dead-letter sinks"
            );
        }
        self.stats
    }

    /// Runs the dead letters that are due through their chains again.
    pub fn retry_due(&mut self) {
        // Nearly always nothing waits: no clock read on the way of a batch.
        if self.retries.len() == 0 {
            return;
        }
        let now = self.clock.now_ms();
        let chains = &self.chains;
        let due = self.retries.take_due(now, |name| {
            chains
                .iter()
                .find(|chain| chain.name() == name)
                .and_then(|chain| chain.open_until(now))
        });
        let mut by_chain: Vec<(String, Vec<Arc<Occurrence>>, Vec<u32>)> = Vec::new();
        for retry in due {
            match by_chain
                .iter_mut()
                .find(|(chain, ..)| *chain == retry.chain)
            {
                Some((_, occurrences, failures)) => {
                    occurrences.push(retry.occurrence);
                    failures.push(retry.failures);
                }
                None => by_chain.push((retry.chain, vec![retry.occurrence], vec![retry.failures])),
            }
        }
        for (chain, occurrences, failures) in by_chain {
            let rest = self.run_chains(occurrences, Some(RetryRun { chain, failures }));
            self.send_rest(rest, None);
        }
    }

    /// Processes events in arrival order, then sends `ack` down every sink
    /// queue behind them (and behind everything processed before). Blocks
    /// while a sink's queue is full.
    pub fn process(&mut self, events: Vec<Event>, ack: Option<&Arc<Ack>>) {
        self.retry_due();
        self.stats.received += events.len() as u64;
        let mut chunk = Vec::with_capacity(events.len().min(256));
        let mut chunk_bytes = 0;
        for event in events {
            // The core takes the event: its counters are found first (by a
            // borrowed name, no allocation per event).
            let counters = self.counters.index(&event.cluster);
            self.counters[counters].received.inc();
            if self.cutter.cut_before(&event, chunk.len(), chunk_bytes) {
                let rest = self.run_chains(std::mem::take(&mut chunk), None);
                self.send_rest(rest, None);
                chunk_bytes = 0;
            }
            match self.core.admit(event) {
                Admission::New(occurrence) => {
                    if occurrence.event.resynced {
                        self.counters[counters].recovered.inc();
                    }
                    chunk_bytes += occurrence.event.heap_bytes();
                    chunk.push(occurrence);
                }
                Admission::Duplicate => {
                    self.stats.deduplicated += 1;
                    self.counters[counters].deduplicated.inc();
                }
            }
        }
        let rest = self.run_chains(chunk, None);
        self.send_rest(rest, ack);
        self.cache_sizes.publish(self.core.len());
    }

    /// Runs occurrences through every chain some sink takes (or, for a
    /// retry, through the one that dead-lettered them) and queues the
    /// results for the sinks; returns each sink's last, unsent batch.
    #[must_use = "the last batches are for `send_rest`"]
    fn run_chains(
        &mut self,
        occurrences: Vec<Arc<Occurrence>>,
        retry: Option<RetryRun>,
    ) -> Vec<Batch> {
        if occurrences.is_empty() {
            return Vec::new();
        }
        let started = std::time::Instant::now();
        let now = self.clock.now_ms();
        let mut batches: Vec<Batch> = self.routes.iter().map(|_| Batch::default()).collect();
        let mut published = vec![false; occurrences.len()];
        let mut dead_lettered = vec![false; occurrences.len()];
        let slot = |item: &Processed| item.slot;
        for chain in &mut self.chains {
            if retry
                .as_ref()
                .is_some_and(|retry| retry.chain != chain.name())
            {
                continue;
            }
            let items = occurrences
                .iter()
                .enumerate()
                .map(|(i, o)| Processed::new(o.clone(), i))
                .collect();
            let ChainOutput {
                passed,
                dead_letters,
                failures,
                ..
            } = chain.run(items);
            self.stats.plugin_failures += failures as u64;
            // Encode once per format, whatever the number of sinks.
            let mut encoded: [Option<Vec<Vec<u8>>>; 2] = [None, None];
            for (route, batch) in self.routes.iter().zip(&mut batches) {
                if route.chain != chain.name() {
                    continue;
                }
                let lines = encoded[format_index(route.format)].get_or_insert_with(|| {
                    passed
                        .iter()
                        .map(|item| output::encode(route.format, item, now))
                        .collect()
                });
                for (item, line) in passed.iter().zip(lines.iter()) {
                    if route.min_severity.is_none_or(|min| item.severity >= min) {
                        push(batch, route, item, line);
                        send_if_full(route, batch);
                        published[slot(item)] = true;
                    }
                }
            }
            for dead in &dead_letters {
                let i = slot(&dead.event);
                dead_lettered[i] = true;
                let failures = retry.as_ref().map_or(0, |retry| retry.failures[i]) + 1;
                self.retries
                    .failed(occurrences[i].clone(), chain.name(), failures, now);
                if retry.is_some() {
                    // Its dead letter was written when it first failed.
                    continue;
                }
                for (route, batch) in self.routes.iter().zip(&mut batches) {
                    if route.chain == DEAD_LETTER_CHAIN {
                        let line = output::encode_dead_letter(route.format, dead, now);
                        push(batch, route, &dead.event, &line);
                        send_if_full(route, batch);
                    }
                }
            }
        }
        for (i, was_published) in published.iter().enumerate() {
            let counters = self.counters.of(&occurrences[i].event.cluster);
            if retry.is_some() && !dead_lettered[i] {
                let result = if *was_published {
                    "published"
                } else {
                    "filtered"
                };
                metrics::DEAD_LETTER_RETRIES.inc(&[result]);
            }
            if *was_published {
                self.stats.published += 1;
                counters.processed.inc();
            } else if dead_lettered[i] {
                if retry.is_some() {
                    continue; // Counted when it first failed.
                }
                self.stats.dead_lettered += 1;
                counters.dead_lettered.inc();
            } else {
                self.stats.filtered += 1;
                counters.filtered.inc();
            }
        }
        let count = occurrences.len() as u64;
        metrics::observe_n(
            &self.processing_seconds,
            started.elapsed().as_secs_f64() / count as f64,
            count,
        );
        batches
    }
}

/// Bytes of encoded events a batch for one sink holds before it is sent,
/// even mid-chunk: ordinary batches are far smaller; a chunk of the largest
/// events goes in several.
const SINK_BATCH_BYTES: usize = 1024 * 1024;

/// Sends `batch` to its sink if it reached [`SINK_BATCH_BYTES`], and starts
/// a new one.
fn send_if_full(route: &SinkRoute, batch: &mut Batch) {
    if batch.bytes.len() >= SINK_BATCH_BYTES {
        send(route, std::mem::take(batch));
    }
}

/// Queues a batch for its sink within the queue's byte budget, blocking
/// while the sink is behind; or writes it, for a line sink.
fn send(route: &SinkRoute, mut batch: Batch) {
    if batch.events == 0 {
        return;
    }
    let (sender, budget) = match &route.outlet {
        Outlet::Queue { sender, budget } => (sender, budget),
        Outlet::Lines(outlet) => return outlet.write(batch),
    };
    batch.budget = Some(budget.acquire_blocking(batch.bytes.len()));
    if sender.blocking_send(SinkMessage::Batch(batch)).is_err() {
        tracing::error!(sink = %route.name, "sink stopped; its events from now on are lost");
    }
}

/// Appends one encoded line (and, for an addressing sink, its record).
fn push(batch: &mut Batch, route: &SinkRoute, item: &Processed, line: &[u8]) {
    let start = batch.bytes.len();
    batch.bytes.extend_from_slice(line);
    batch.events += 1;
    if let Some(subject) = &route.subject {
        batch.records.push(Record {
            start,
            end: batch.bytes.len(),
            id: item.occurrence.id.clone(),
            subject: subject.render(item),
            key: route.key.as_ref().map(|key| key.render(item)),
            severity: item.severity,
            cluster: item.occurrence.event.cluster.as_str().to_owned(),
        });
    }
}

fn format_index(format: OutputFormat) -> usize {
    match format {
        OutputFormat::Standard => 0,
        OutputFormat::Cloudevents => 1,
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::event::Severity;
    use crate::event::fixtures::warning;

    fn route(
        name: &str,
        min_severity: Option<Severity>,
    ) -> (SinkRoute, mpsc::Receiver<SinkMessage>) {
        let (sender, receiver) = mpsc::channel(64);
        let route = SinkRoute {
            name: name.into(),
            chain: "main".into(),
            format: OutputFormat::Standard,
            min_severity,
            subject: None,
            key: None,
            outlet: Outlet::Queue {
                sender,
                budget: crate::budget::ByteBudget::new(1 << 20),
            },
        };
        (route, receiver)
    }

    fn drain(receiver: &mut mpsc::Receiver<SinkMessage>) -> Vec<serde_json::Value> {
        let mut lines = Vec::new();
        while let Ok(message) = receiver.try_recv() {
            let SinkMessage::Batch(batch) = message else {
                continue;
            };
            for line in batch.bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                lines.push(serde_json::from_slice(line).unwrap());
            }
        }
        lines
    }

    #[test]
    fn routes_by_severity_and_counts_what_happened() {
        let (all, mut all_rx) = route("all", None);
        let (urgent, mut urgent_rx) = route("urgent", Some(Severity::High));
        let clock = ManualClock::new(0);
        let mut pipeline = Pipeline::new(
            DedupConfig::default(),
            vec![Chain::new("main".into(), Vec::new())],
            vec![all, urgent],
            PipelineClock::Replay(clock.clone()),
            2,
        );
        let start = 1_795_000_000_000;
        let mut events: Vec<Event> = (1..=6)
            .map(|count| {
                warning(
                    "BackOff",
                    "web",
                    "u1",
                    count,
                    start + i64::from(count) * 10_000,
                )
            })
            .collect();
        events.push(warning("BackOff", "web", "u1", 6, start + 70_000));
        pipeline.process(events, None);

        let stats = pipeline.stats();
        assert_eq!(
            (stats.received, stats.published, stats.deduplicated),
            (7, 6, 1)
        );
        let all = drain(&mut all_rx);
        assert_eq!(all.len(), 6);
        let urgent = drain(&mut urgent_rx);
        let counts: Vec<&str> = urgent
            .iter()
            .map(|e| e["labels"]["count"].as_str().unwrap())
            .collect();
        assert_eq!(
            counts,
            ["5", "6"],
            "only the escalated occurrences are high"
        );
        assert_eq!(
            clock.now_ms(),
            start + 70_000,
            "the replay clock followed the events"
        );
        assert_eq!(pipeline.cache_size(), 1);
    }

    #[test]
    fn a_mark_rides_behind_its_events_or_alone_where_none_went() {
        use crate::checkpoint::{Lag, Mark, WatchKey, acknowledger};

        let (all, mut all_rx) = route("all", None);
        let (urgent, mut urgent_rx) = route("urgent", Some(Severity::High));
        let mut pipeline = Pipeline::new(
            DedupConfig::default(),
            vec![Chain::new("main".into(), Vec::new())],
            vec![all, urgent],
            PipelineClock::Replay(ManualClock::new(0)),
            2,
        );
        let (acks, marks) = acknowledger(Lag::default());
        let mark = Mark {
            key: WatchKey {
                cluster: "a".into(),
                namespace: None,
            },
            resource_version: "7".into(),
        };
        let ack = acks.ack(mark.clone(), pipeline.sink_count());
        let event = warning("BackOff", "web", "u1", 1, 1_795_000_000_000);
        pipeline.process(vec![event], Some(&ack));
        drop(ack);

        // One message each: the event's batch carrying the mark for `all`;
        // the mark alone for `urgent`, whose severity floor the event missed.
        let Ok(SinkMessage::Batch(mut batch)) = all_rx.try_recv() else {
            panic!("a batch for `all`");
        };
        assert_eq!(batch.events, 1);
        assert!(all_rx.try_recv().is_err(), "no message of its own");
        let Ok(SinkMessage::Ack(alone)) = urgent_rx.try_recv() else {
            panic!("the mark alone for `urgent`");
        };
        assert!(urgent_rx.try_recv().is_err());

        alone.ack();
        assert!(marks.take().is_empty(), "`all` has not written the batch");
        batch.acknowledge();
        assert_eq!(marks.take(), [mark]);
    }
}
