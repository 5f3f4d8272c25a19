//! `cargo bench -p aetherius --bench plugins`: the Python example plugin
//! (examples/python-plugin, built here with componentize-py) beside the Rust
//! plugin whose logic it mirrors, `builtin:reason-filter`, with the same
//! config (the default pipeline's reason allow list) and the same events:
//!
//! - component size;
//! - first load (compiling the component, no cache) and start (instantiate +
//!   `init`);
//! - resident memory the started instance added to the process;
//! - ns per call with one event, and per event in batches of 128.
//!
//! Numbers go to docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aetherius::chain::Processed;
use aetherius::clock::ManualClock;
use aetherius::config::{Config, PluginSource};
use aetherius::event::normalize;
use aetherius::occurrence::{Fingerprint, Occurrence, occurrence_id};
use aetherius::plugin::{PluginRuntime, builtin_bytes};
use aetherius_tests::repo_root;
use aetherius_tests::servers::ServerBinary;

const REASONS: &[&str] = &[
    "BackOff",
    "Pulled",
    "Unhealthy",
    "FailedScheduling",
    "Created",
    "FailedMount",
    "Scheduled",
    "OOMKilling",
];

fn event(i: usize) -> Processed {
    let json = serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": format!("e{i}"), "namespace": "default", "uid": format!("u{i}") },
        "involvedObject": { "kind": "Pod", "name": format!("pod-{i}"), "namespace": "default" },
        "reason": REASONS[i % REASONS.len()], "message": "m", "type": "Warning", "count": 1,
        "lastTimestamp": "2026-11-20T09:00:00Z",
    });
    let event = normalize(json.to_string().as_bytes(), "bench").unwrap();
    let occurrence = Occurrence {
        id: occurrence_id(&event),
        fingerprint: Fingerprint::of(&event),
        repeated_count: None,
        event,
    };
    Processed::new(Arc::new(occurrence), i)
}

/// Resident set size of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn per_event(elapsed: Duration, events: usize) -> f64 {
    elapsed.as_nanos() as f64 / events as f64
}

fn main() {
    // The default pipeline's `incident-reasons` config, for both plugins.
    let default: Config = Config::load(&repo_root().join("config/default.yaml")).unwrap();
    let config = default.plugins["incident-reasons"].clone();

    let dir = tempfile::tempdir().unwrap();
    let python = dir.path().join("reason_filter.wasm");
    let built = Command::new(ServerBinary::ComponentizePy.path())
        .arg("-d")
        .arg(repo_root().join("wit"))
        .args(["-w", "filter", "componentize", "app", "-o"])
        .arg(&python)
        .current_dir(repo_root().join("examples/python-plugin"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let candidates = [
        (
            "Rust   builtin:reason-filter",
            PluginSource::Builtin("reason-filter".into()),
            builtin_bytes("reason-filter").unwrap().len(),
            20_000,
        ),
        (
            "Python examples/python-plugin",
            PluginSource::Path(python.clone()),
            std::fs::metadata(&python).unwrap().len() as usize,
            2_000,
        ),
    ];
    let clock = ManualClock::new(1_795_000_000_000);
    for (label, source, size, iterations) in candidates {
        // No compile cache: the first load of a new plugin.
        let runtime = PluginRuntime::new(None, Arc::new(clock.clone())).unwrap();
        let start = Instant::now();
        let plugin = runtime.load(&source, Path::new("."), None).unwrap();
        let compile = start.elapsed();
        let rss_before = rss_kib();
        let start = Instant::now();
        let mut stage_config = config.clone();
        stage_config.source = source;
        let mut stage = runtime.start_stage("bench", plugin, &stage_config).unwrap();
        let instantiate = start.elapsed();
        // The first call warms what the guest does lazily.
        black_box(stage.process(&mut vec![event(0)]));
        let rss_added = rss_kib().saturating_sub(rss_before);

        let singles: Vec<Processed> = (0..iterations).map(event).collect();
        let start = Instant::now();
        for single in &singles {
            black_box(stage.process(&mut vec![single.clone()]));
        }
        let call_ns = per_event(start.elapsed(), iterations);
        let batch: Vec<Processed> = (0..128).map(event).collect();
        let rounds = iterations / 64;
        let start = Instant::now();
        for _ in 0..rounds {
            let decisions = stage.process(&mut batch.clone());
            assert!(
                !decisions
                    .iter()
                    .any(|d| matches!(d, aetherius::plugin::Decision::Failed(_))),
                "{label} failed: {decisions:?}"
            );
        }
        let batched_ns = per_event(start.elapsed(), rounds * batch.len());
        println!(
            "{label:<30} size {:>9} B  compile {:>7.0} ms  start {:>6.1} ms  +RSS {:>6} KiB  {call_ns:>8.0} ns/call (1 event)  {batched_ns:>7.0} ns/event (batch of 128)",
            size,
            compile.as_secs_f64() * 1e3,
            instantiate.as_secs_f64() * 1e3,
            rss_added,
        );
    }
}
