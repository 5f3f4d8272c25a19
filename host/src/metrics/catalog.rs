//! Every metric Aetherius exports: name, help and labels, in one place.
//! `docs/metrics.md` lists them (a test keeps the two in step). Labels carry
//! clusters, namespaces, plugins, sinks and fixed kinds — never an object
//! name, so the number of series stays bounded.

use super::registry::{Counter, Gauge, Histogram, Metric};

/// Seconds: 10 µs … 1 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

// The pipeline (the design document's counters).

pub static EVENTS_RECEIVED: Counter = Counter::new(
    "k8s_events_received_total",
    "Events read from the API servers, before duplicate suppression.",
    &["cluster_id"],
);
pub static EVENTS_DEDUPLICATED: Counter = Counter::new(
    "k8s_events_deduplicated_total",
    "Events suppressed as repeats of an occurrence already seen (same object, same count).",
    &["cluster_id"],
);
pub static EVENTS_PROCESSED: Counter = Counter::new(
    "k8s_events_processed_total",
    "Occurrences published to at least one sink.",
    &["cluster_id"],
);
pub static EVENTS_FILTERED: Counter = Counter::new(
    "k8s_events_filtered_total",
    "Occurrences no sink published: dropped by a filter or a fail-closed stage, or below every sink's min_severity.",
    &["cluster_id"],
);
pub static EVENTS_ERRORS: Counter = Counter::new(
    "k8s_events_error_total",
    "Things that went wrong with an event, by kind: plugin (a stage failed on it and its failure policy applied), dead_letter (handed to the dead-letter sinks), decode (an object from the API server that is not a readable Event), too_large (an object larger than events.max_size, dropped unread).",
    &["cluster_id", "kind"],
);
pub static PROCESSING_SECONDS: Histogram = Histogram::new(
    "k8s_events_processing_seconds",
    "Time to run one occurrence through the chains and encode it (each batch's average per occurrence).",
    &[],
    LATENCY_BUCKETS,
);
pub static DEDUP_CACHE_SIZE: Gauge = Gauge::new(
    "k8s_events_dedup_cache_size",
    "Fingerprints the duplicate suppression remembers.",
    &[],
);

// Plugins.

pub static PLUGIN_CALLS: Counter = Counter::new(
    "aetherius_plugin_calls_total",
    "Calls into a plugin stage (each with a batch of events), the circuit breaker's skips excluded.",
    &["plugin"],
);
pub static PLUGIN_CALL_SECONDS: Histogram = Histogram::new(
    "aetherius_plugin_call_seconds",
    "Duration of one call into a plugin stage.",
    &["plugin"],
    LATENCY_BUCKETS,
);
pub static PLUGIN_FAILURES: Counter = Counter::new(
    "aetherius_plugin_failures_total",
    "Events a plugin stage failed on, by kind: timeout, trap, out_of_fuel, out_of_memory, invalid_output, breaker_open.",
    &["plugin", "kind"],
);
pub static PLUGIN_BREAKER_OPEN: Gauge = Gauge::new(
    "aetherius_plugin_breaker_open",
    "1 while the stage's circuit breaker is open: its failure policy applies without calling the plugin.",
    &["plugin"],
);

// Sinks.

pub static SINK_PUBLISHED: Counter = Counter::new(
    "aetherius_sink_published_total",
    "Messages the sink delivered (written and flushed, or acknowledged by the broker).",
    &["sink"],
);
pub static SINK_FAILED: Counter = Counter::new(
    "aetherius_sink_failed_total",
    "Messages a publish attempt failed for; they are retried (and spooled after spool.after).",
    &["sink"],
);
pub static SINK_REJECTED: Counter = Counter::new(
    "aetherius_sink_rejected_total",
    "Messages the broker refused for good (too large, invalid subject or topic); never retried.",
    &["sink"],
);
pub static SINK_DEAD_LETTERED: Counter = Counter::new(
    "aetherius_sink_dead_lettered_total",
    "Refused messages handed to the dead-letter sinks.",
    &["sink"],
);
pub static SINK_SPOOLED: Counter = Counter::new(
    "aetherius_sink_spooled_total",
    "Messages written to the sink's disk spool while its broker was down.",
    &["sink"],
);
pub static SINK_DRAINED: Counter = Counter::new(
    "aetherius_sink_drained_total",
    "Messages delivered from the disk spool.",
    &["sink"],
);
pub static SINK_SPOOL_DROPPED: Counter = Counter::new(
    "aetherius_sink_spool_dropped_total",
    "Messages dropped because the spool was full (when_full: drop-new).",
    &["sink"],
);
pub static SINK_SPOOL_BYTES: Gauge = Gauge::new(
    "aetherius_sink_spool_bytes",
    "Undelivered bytes in the sink's disk spool.",
    &["sink"],
);
pub static SINK_UP: Gauge = Gauge::new(
    "aetherius_sink_up",
    "1 while the sink's broker takes messages (always 1 for stdout and file sinks), 0 while publishing fails.",
    &["sink"],
);

// Watching and checkpoints.

pub static WATCH_SYNCED: Gauge = Gauge::new(
    "aetherius_watch_synced",
    "1 once the watch's initial list is done and while the API server answers; 0 before and while it fails. namespace is empty for a watch of all namespaces.",
    &["cluster_id", "namespace"],
);
pub static WATCH_RESTARTS: Counter = Counter::new(
    "aetherius_watch_restarts_total",
    "Watches started again, by reason: expired (410 Gone, relisted), closed (the API server ended the stream), error (a request failed).",
    &["cluster_id", "reason"],
);
pub static WATCH_RESYNCS: Counter = Counter::new(
    "aetherius_watch_resyncs_total",
    "Periodic relists (a cluster's resync_period) completed.",
    &["cluster_id"],
);
pub static RESYNC_RECOVERED: Counter = Counter::new(
    "aetherius_resync_recovered_total",
    "Occurrences a periodic relist found that the watch had missed (they go through the chains like any other; everything else it relisted was a duplicate).",
    &["cluster_id"],
);
pub static DEAD_LETTER_RETRIES: Counter = Counter::new(
    "aetherius_dead_letter_retries_total",
    "Dead-lettered occurrences run through their chain again (pipeline.dead_letter_retry), by result: published, filtered, failed (again; retried later), exhausted (every attempt failed), dropped (too many waiting).",
    &["result"],
);
pub static CHECKPOINT_LAG: Gauge = Gauge::new(
    "aetherius_checkpoint_lag_seconds",
    "Age of the oldest hand-over not yet acknowledged by every sink (0 when caught up): how far the checkpoint is behind the watch. Refreshed every checkpoint.interval.",
    &["cluster_id"],
);
pub static CHECKPOINT_WRITES: Counter = Counter::new(
    "aetherius_checkpoint_writes_total",
    "Checkpoint writes, by result: ok or error.",
    &["result"],
);

// The process.

pub static CONFIG_RELOADS: Counter = Counter::new(
    "aetherius_config_reloads_total",
    "Reloads of the config file and plugin directory after they changed, by result: ok (the new chains took over) or error (the running ones stay).",
    &["result"],
);
pub static CONFIG_RELOAD_FAILING: Gauge = Gauge::new(
    "aetherius_config_reload_failing",
    "1 while the config or plugins on disk are rejected and older ones run.",
    &[],
);

pub static LEADER: Gauge = Gauge::new(
    "aetherius_leader",
    "1 while this replica watches the cluster (without leader election, always).",
    &["cluster_id"],
);
pub static METADATA_OBJECTS: Gauge = Gauge::new(
    "aetherius_metadata_objects",
    "Objects whose metadata the workload cache keeps, over every cluster (0 while no plugin imports the contract's metadata).",
    &[],
);
pub static METADATA_REFUSED: Counter = Counter::new(
    "aetherius_metadata_objects_refused_total",
    "Objects the workload cache did not keep because it held metadata.max_objects.",
    &["cluster_id"],
);
pub static REPLICAS: Gauge = Gauge::new(
    "aetherius_replicas",
    "Live replicas this replica counts, sharing the clusters under leader election (without replicas.spread, or with fewer than two such clusters: 1).",
    &[],
);
pub static CLUSTER_SHARE: Gauge = Gauge::new(
    "aetherius_cluster_share",
    "The most clusters this replica leads while the others have room: ceil(clusters under leader election / replicas); without spreading, every cluster.",
    &[],
);
pub static READY: Gauge = Gauge::new(
    "aetherius_ready",
    "1 while /ready answers 200: every watch synced and every sink up.",
    &[],
);
pub static BUILD_INFO: Gauge = Gauge::new(
    "aetherius_build_info",
    "Always 1; the version is in the label.",
    &["version"],
);

/// The `kind`s of `k8s_events_error_total`.
pub const ERROR_KINDS: [&str; 4] = ["plugin", "dead_letter", "decode", "too_large"];
/// The `reason`s of `aetherius_watch_restarts_total`.
pub const RESTART_REASONS: [&str; 3] = ["expired", "closed", "error"];

/// Makes every per-cluster counter of `cluster` exist at 0 when its watch
/// starts, so that `rate()` and `increase()` see its first increment.
pub fn touch_cluster(cluster: &str) {
    let labels = &[cluster];
    for counter in [
        &EVENTS_RECEIVED,
        &EVENTS_DEDUPLICATED,
        &EVENTS_PROCESSED,
        &EVENTS_FILTERED,
        &WATCH_RESYNCS,
        &RESYNC_RECOVERED,
        &METADATA_REFUSED,
    ] {
        counter.touch(labels);
    }
    for kind in ERROR_KINDS {
        EVENTS_ERRORS.touch(&[cluster, kind]);
    }
    for reason in RESTART_REASONS {
        WATCH_RESTARTS.touch(&[cluster, reason]);
    }
}

/// Every metric, in the order `/metrics` shows them.
pub static ALL: &[Metric] = &[
    Metric::Counter(&EVENTS_RECEIVED),
    Metric::Counter(&EVENTS_DEDUPLICATED),
    Metric::Counter(&EVENTS_PROCESSED),
    Metric::Counter(&EVENTS_FILTERED),
    Metric::Counter(&EVENTS_ERRORS),
    Metric::Histogram(&PROCESSING_SECONDS),
    Metric::Gauge(&DEDUP_CACHE_SIZE),
    Metric::Counter(&PLUGIN_CALLS),
    Metric::Histogram(&PLUGIN_CALL_SECONDS),
    Metric::Counter(&PLUGIN_FAILURES),
    Metric::Gauge(&PLUGIN_BREAKER_OPEN),
    Metric::Counter(&SINK_PUBLISHED),
    Metric::Counter(&SINK_FAILED),
    Metric::Counter(&SINK_REJECTED),
    Metric::Counter(&SINK_DEAD_LETTERED),
    Metric::Counter(&SINK_SPOOLED),
    Metric::Counter(&SINK_DRAINED),
    Metric::Counter(&SINK_SPOOL_DROPPED),
    Metric::Gauge(&SINK_SPOOL_BYTES),
    Metric::Gauge(&SINK_UP),
    Metric::Gauge(&WATCH_SYNCED),
    Metric::Counter(&WATCH_RESTARTS),
    Metric::Counter(&WATCH_RESYNCS),
    Metric::Counter(&RESYNC_RECOVERED),
    Metric::Counter(&DEAD_LETTER_RETRIES),
    Metric::Gauge(&CHECKPOINT_LAG),
    Metric::Counter(&CHECKPOINT_WRITES),
    Metric::Counter(&CONFIG_RELOADS),
    Metric::Gauge(&CONFIG_RELOAD_FAILING),
    Metric::Gauge(&LEADER),
    Metric::Gauge(&METADATA_OBJECTS),
    Metric::Counter(&METADATA_REFUSED),
    Metric::Gauge(&REPLICAS),
    Metric::Gauge(&CLUSTER_SHARE),
    Metric::Gauge(&READY),
    Metric::Gauge(&BUILD_INFO),
];
