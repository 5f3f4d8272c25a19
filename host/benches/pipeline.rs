//! `cargo bench -p aetherius`: prints the numbers recorded in
//! docs/benchmarks.md.
//!
//! - replay throughput: events/s through the default chain into a file sink;
//! - JSON decode cost per event (the yardstick the Wasm chain must beat);
//! - the default Wasm chain's cost per event, beside the same logic compiled
//!   natively, and their ratio;
//! - ns per stage call, one event per call and per event in a batch;
//! - the pipeline threads with 1, 2 and 4 workers (`pipeline.workers`, the
//!   design document's `worker_count`), decoded events in, file sink out.
//!
//! `PIPELINE_BENCH_PROFILE=<stage name>` runs that stage's batched loop 400×
//! more (cloning its input in the loop) and ends there, to profile it
//! (`perf record -g`); `PIPELINE_BENCH_PROFILE=chain` does the same for the
//! whole default chain over the input.
//!
//! The input is synthetic but shaped like a cluster's stream: 70% Normal
//! events, Warning reasons from the default allow list, 1,000 events per
//! second of event time, every event a distinct object.

use std::collections::HashSet;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aetherius::chain::{Chain, Processed};
use aetherius::clock::ManualClock;
use aetherius::config::Config;
use aetherius::event::{Event, normalize};
use aetherius::occurrence::{Fingerprint, Occurrence, occurrence_id};
use aetherius::pipeline::{PendingChains, PipelineClock, build_chains};
use aetherius::plugin::PluginRuntime;
use aetherius::replay::{ReplayOptions, replay};

const EVENTS: usize = 200_000;
const START_MS: i64 = 1_795_000_000_000;

const NORMAL: &[&str] = &[
    "Scheduled",
    "Pulling",
    "Pulled",
    "Created",
    "Started",
    "Killing",
    "SuccessfulCreate",
];
const WARNING: &[(&str, &str)] = &[
    (
        "BackOff",
        "Back-off restarting failed container app in pod web-0_default(1a2b)",
    ),
    (
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    ),
    (
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available",
    ),
    (
        "FailedMount",
        "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found",
    ),
    ("Failed", "Error: ErrImagePull"),
    (
        "FailedSync",
        "error determining status: rpc error: code = Unknown",
    ),
];

fn line(i: usize) -> String {
    let ts = jiff::Timestamp::from_millisecond(START_MS + i as i64)
        .unwrap()
        .to_string();
    let (kind, reason, message) = if i % 10 < 7 {
        (
            "Normal",
            NORMAL[i % NORMAL.len()],
            format!("Successfully did {} for pod-{i}", NORMAL[i % NORMAL.len()]),
        )
    } else {
        let (reason, message) = WARNING[i % WARNING.len()];
        ("Warning", reason, message.to_owned())
    };
    serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": format!("pod-{i}.17f3a"), "namespace": format!("team-{}", i % 20),
                      "uid": format!("00000000-0000-4000-8000-{i:012}"), "resourceVersion": (1000 + i).to_string(),
                      "creationTimestamp": ts },
        "involvedObject": { "kind": "Pod", "name": format!("pod-{i}"), "namespace": format!("team-{}", i % 20),
                            "uid": format!("10000000-0000-4000-8000-{i:012}"), "apiVersion": "v1", "fieldPath": "spec.containers{app}" },
        "reason": reason, "message": message, "type": kind, "count": 1,
        "firstTimestamp": ts, "lastTimestamp": ts,
        "source": { "component": "kubelet", "host": format!("node-{}", i % 7) },
        "reportingComponent": "kubelet", "reportingInstance": format!("node-{}", i % 7), "eventTime": null,
    })
    .to_string()
}

fn processed(event: Event, slot: usize) -> Processed {
    let occurrence = Occurrence {
        id: occurrence_id(&event),
        fingerprint: Fingerprint::of(&event),
        repeated_count: None,
        event,
    };
    Processed::new(Arc::new(occurrence), slot)
}

fn default_config(sink_path: &Path) -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("config/default.yaml")).unwrap();
    let text = text.replace(
        "    stdout: {}",
        &format!(
            "    file: {{ path: {:?} }}",
            sink_path.display().to_string()
        ),
    );
    Config::from_yaml(&text, Path::new("default.yaml"), root.join("config")).unwrap()
}

/// The default chain's logic, compiled natively, for the ratio: the same
/// decisions, and the secret guard's own scanner.
struct NativeChain {
    reasons: HashSet<String>,
}

impl NativeChain {
    fn run(&self, now: i64, event: &Event) -> Option<(u8, bool)> {
        if event.event_type != "Warning" || !self.reasons.contains(event.reason.as_str()) {
            return None;
        }
        if event.occurred_at().is_some_and(|t| now - t > 300_000) || event.involved.kind == "Secret"
        {
            return None;
        }
        let m = &event.message;
        // The secret guard's own scanner, compiled natively.
        let redact = secret_guard::redact::redact(m).is_some();
        let severity = match event.reason.as_str() {
            "OOMKilled" | "CrashLoopBackOff" => 4,
            "BackOff" if m.contains("restarting failed container") => 4,
            "Failed" if m.contains("ErrImagePull") || m.contains("ImagePullBackOff") => 3,
            "ImagePullBackOff" | "ErrImagePull" | "FailedScheduling" => 3,
            "Unhealthy" | "BackOff" | "FailedMount" => 2,
            _ => 1,
        };
        Some((severity, redact))
    }
}

fn per_event(elapsed: std::time::Duration, n: usize) -> f64 {
    elapsed.as_nanos() as f64 / n as f64
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..EVENTS).map(line).collect();
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    println!(
        "machine: {} cores; {EVENTS} synthetic events (70% Normal)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // JSON decode (normalize), the yardstick.
    let start = Instant::now();
    let events: Vec<Event> = lines
        .iter()
        .map(|l| normalize(l.as_bytes(), "bench").unwrap())
        .collect();
    let decode_ns = per_event(start.elapsed(), EVENTS);
    println!(
        "decode (JSON -> Event):            {decode_ns:>8.0} ns/event  (all kept: first touch of their memory included)"
    );
    // As the pipeline decodes: a batch at a time, each dropped before the
    // next, so the allocator reuses the memory instead of the kernel
    // handing out fresh zeroed pages for every event.
    let start = Instant::now();
    for chunk in lines.chunks(128) {
        let batch: Vec<Event> = chunk
            .iter()
            .map(|l| normalize(l.as_bytes(), "bench").unwrap())
            .collect();
        black_box(batch);
    }
    let steady_ns = per_event(start.elapsed(), EVENTS);
    println!(
        "decode, batches of 128 dropped:    {steady_ns:>8.0} ns/event  (memory reused, as in the pipeline)"
    );

    // The default Wasm chain, batches of 128, against the native logic.
    let config = default_config(&dir.path().join("unused.jsonl"));
    let clock = ManualClock::new(START_MS + EVENTS as i64);
    let runtime = PluginRuntime::new(None, Arc::new(clock.clone())).unwrap();
    let mut chain: Chain = build_chains(&config, &runtime).unwrap().remove(0);
    let batches: Vec<Vec<Processed>> = events
        .chunks(128)
        .map(|chunk| {
            chunk
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, e)| processed(e, i))
                .collect()
        })
        .collect();
    // Cloning the batches is not the chain's work: done before the clock.
    let inputs = batches.clone();
    let start = Instant::now();
    let mut passed = 0;
    for batch in inputs {
        passed += chain.run(batch).passed.len();
    }
    let wasm_ns = per_event(start.elapsed(), EVENTS);
    // PIPELINE_BENCH_PROFILE=chain: the whole chain over the input 20× more,
    // for `perf record` (the clones of the input are made in the loop).
    if std::env::var("PIPELINE_BENCH_PROFILE").is_ok_and(|s| s == "chain") {
        for _ in 0..20 {
            for batch in batches.clone() {
                black_box(chain.run(batch));
            }
        }
        return;
    }
    // The same allow list as the Wasm reason filter.
    let allow = config.plugins["incident-reasons"].config["allow"]
        .as_array()
        .expect("default.yaml lists reasons");
    let native = NativeChain {
        reasons: allow
            .iter()
            .filter_map(|reason| Some(reason.as_str()?.to_owned()))
            .collect(),
    };
    let now = START_MS + EVENTS as i64;
    let start = Instant::now();
    let native_passed = events
        .iter()
        .filter(|e| black_box(native.run(now, e)).is_some())
        .count();
    let native_ns = per_event(start.elapsed(), EVENTS);
    println!("default chain, Wasm (5 stages):    {wasm_ns:>8.0} ns/event  ({passed} passed)");
    println!(
        "default chain, native:             {native_ns:>8.0} ns/event  ({native_passed} passed)"
    );
    println!(
        "Wasm / native:                     {:>8.1}x",
        wasm_ns / native_ns
    );
    println!(
        "Wasm chain / decode:               {:>8.2}x",
        wasm_ns / decode_ns
    );

    // Per stage: one event per call, and per event in a batch of 128.
    let warnings: Vec<Event> = events
        .iter()
        .filter(|e| e.event_type == "Warning")
        .take(128)
        .cloned()
        .collect();
    for stage in &config.chains["default"] {
        let mut yaml = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/default.yaml"),
        )
        .unwrap();
        yaml = yaml.replace(
            "  default: [warnings-only, incident-reasons, max-age, secret-guard, severity]",
            &format!("  default: [{stage}]"),
        );
        let one = Config::from_yaml(&yaml, Path::new("x.yaml"), ".".into()).unwrap();
        let mut chain = build_chains(&one, &runtime).unwrap().remove(0);
        let single: Vec<Processed> = vec![processed(warnings[0].clone(), 0)];
        let iterations = 20_000;
        let inputs: Vec<Vec<Processed>> = (0..iterations).map(|_| single.clone()).collect();
        let start = Instant::now();
        for input in inputs {
            black_box(chain.run(input));
        }
        let call_ns = per_event(start.elapsed(), iterations);
        let batch: Vec<Processed> = warnings
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, e)| processed(e, i))
            .collect();
        // PIPELINE_BENCH_PROFILE=<stage>: that stage's batched loop runs
        // 400× more first, for `perf record`.
        let profiled = std::env::var("PIPELINE_BENCH_PROFILE").is_ok_and(|s| s == *stage);
        if profiled {
            for _ in 0..400 * 500 {
                black_box(chain.run(batch.clone()));
            }
            return;
        }
        let rounds = 500;
        let inputs: Vec<Vec<Processed>> = (0..rounds).map(|_| batch.clone()).collect();
        let start = Instant::now();
        for input in inputs {
            black_box(chain.run(input));
        }
        let batched_ns = per_event(start.elapsed(), rounds * batch.len());
        println!(
            "stage {stage:<18} {call_ns:>8.0} ns/call (1 event)   {batched_ns:>6.0} ns/event (batch of {})",
            batch.len()
        );
    }

    // Whole replay: read, decode, dedup, default chain, StandardEvent to a file.
    let out = dir.path().join("out.jsonl");
    let config = default_config(&out);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let summary = rt
        .block_on(replay(
            config,
            ReplayOptions {
                input,
                strict: true,
                cluster: "bench".into(),
            },
        ))
        .unwrap();
    let elapsed = start.elapsed();
    println!(
        "replay, default chain -> file:     {:>8.0} events/s  ({summary}; {:.2} s)",
        EVENTS as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );

    // The pipeline threads alone (no reading or decoding), by worker count.
    for workers in [1, 2, 4] {
        let out = dir.path().join(format!("workers-{workers}.jsonl"));
        let config = default_config(&out);
        let chunks: Vec<Vec<Event>> = events.chunks(256).map(<[Event]>::to_vec).collect();
        let clock = ManualClock::new(START_MS + EVENTS as i64);
        let (elapsed, stats) = rt.block_on(async {
            let (pipelines, sinks, config) = aetherius::pipeline::start(
                config,
                PipelineClock::Live(Arc::new(clock)),
                workers,
                aetherius::metadata::MetadataCache::default(),
            )
            .await
            .unwrap();
            let (sender, receiver) = aetherius::input::input_queue(config.pipeline.buffer_size);
            let threads =
                aetherius::pipeline::spawn(pipelines, receiver, None, PendingChains::new(workers));
            let start = Instant::now();
            for chunk in chunks {
                sender.send(chunk, None).await.unwrap();
            }
            drop(sender);
            let stats = threads.join().await;
            sinks.finish().await.unwrap();
            (start.elapsed(), stats)
        });
        println!(
            "pipeline, {workers} worker(s) -> file:   {:>8.0} events/s  ({} published; {:.2} s)",
            EVENTS as f64 / elapsed.as_secs_f64(),
            stats.published,
            elapsed.as_secs_f64()
        );
    }

    // Counting an event: by label values (the family's lock and a lookup,
    // what every event paid before the pipeline kept its series' handles)
    // and through a kept handle (one atomic add).
    let metric = &aetherius::metrics::EVENTS_RECEIVED;
    let n = 5_000_000;
    let start = Instant::now();
    for _ in 0..n {
        metric.inc(&[std::hint::black_box("bench")]);
    }
    let by_labels = per_event(start.elapsed(), n);
    let handle = metric.series(&["bench"]);
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(&handle).inc();
    }
    let kept = per_event(start.elapsed(), n);
    println!("count an event, by label values:   {by_labels:>8.1} ns;  kept handle: {kept:.1} ns");
}
