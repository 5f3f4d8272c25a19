//! Sustained publish throughput of the sinks: `aetherius replay` (release)
//! of N distinct Warning events through a chain that keeps them all, to a
//! file sink and to a real nats-server with JetStream (file storage, each
//! message acknowledged), to core NATS, and to a Kafka-protocol broker
//! (Tansu, in-memory storage) through the idempotent producer with acks=all,
//! and to a webhook (the tests' HTTP server on loopback), one event per
//! request and batched.
//!
//! `cargo bench -p aetherius --bench sinks` (after `scripts/test-servers.sh`).
//! `SINK_BENCH_EVENTS` (default 50000).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aetherius_tests::brokers::split_body;
use aetherius_tests::publishing::event_stream;
use aetherius_tests::servers::{HttpServer, NatsServer, Tansu};
use aetherius_tests::{Scratch, compile_cache};

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

fn events(scratch: &Scratch, count: usize) -> std::path::PathBuf {
    let mut text = String::with_capacity(count * 400);
    for i in 0..count {
        let event = serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": format!("web-{i}.1"), "namespace": "shop", "uid": format!("uid-{i}"), "resourceVersion": format!("{}", i + 1) },
            "involvedObject": { "kind": "Pod", "name": format!("web-{i}"), "namespace": "shop" },
            "reason": "BackOff", "message": format!("Back-off restarting failed container app in pod web-{i}"),
            "type": "Warning", "count": 1,
            "firstTimestamp": "2026-11-27T10:00:00Z", "lastTimestamp": "2026-11-27T10:00:00Z",
        });
        text.push_str(&event.to_string());
        text.push('\n');
    }
    scratch.write("events.jsonl", text)
}

/// Replays `input` with one sink (`sink_yaml` under `sinks.out`) and returns
/// the wall time.
fn replay(scratch: &Scratch, input: &Path, name: &str, sink_yaml: &str) -> Duration {
    let config = scratch.write(
        &format!("{name}.yaml"),
        format!(
            "plugins:
  warnings: {{ source: 'builtin:type-filter', config: {{ allow: [Warning] }} }}
  severity: {{ source: 'builtin:severity-mapper' }}
chains:
  main: [warnings, severity]
sinks:
  out:
    chain: main
{sink_yaml}
plugin_runtime: {{ cache_dir: {cache} }}
",
            cache = compile_cache().display()
        ),
    );
    let started = Instant::now();
    let output = Command::new(BINARY)
        .args(["replay", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(input)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run aetherius");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

fn main() {
    let count: usize = std::env::var("SINK_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let scratch = Scratch::new();
    let input = events(&scratch, count);
    let nats = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let js = runtime.block_on(event_stream(&nats.url(), async_nats::ConnectOptions::new()));

    println!(
        "{count} distinct Warning events, chain: type filter + severity mapper, replay (release)\n"
    );
    println!("| sink | wall time | events/s |\n|---|---|---|");
    let row = |name: &str, elapsed: Duration| {
        println!(
            "| {name} | {:.2} s | {:.0} |",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64()
        );
    };
    let file = scratch.path("out.jsonl");
    row(
        "file",
        replay(
            &scratch,
            &input,
            "file",
            &format!("    file: {{ path: {} }}", file.display()),
        ),
    );
    let spool = scratch.path("spool");
    row(
        "NATS JetStream (acked, file storage)",
        replay(
            &scratch,
            &input,
            "jetstream",
            &format!(
                "    nats: {{ url: '{}' }}\n    spool: {{ dir: {} }}",
                nats.url(),
                spool.display()
            ),
        ),
    );
    let stored = runtime.block_on(async {
        js.get_stream("EVENTS")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages
    });
    assert_eq!(stored as usize, count, "every event stored once");
    row(
        "NATS core (no acknowledgement)",
        replay(
            &scratch,
            &input,
            "core",
            &format!(
                "    nats: {{ url: '{}', jetstream: false, subject: 'bench.{{severity}}' }}\n    spool: {{ dir: {} }}",
                nats.url(),
                spool.display()
            ),
        ),
    );
    let kafka = Tansu::start();
    kafka.create_topics(&["bench"]);
    row(
        "Kafka (idempotent producer, acks=all)",
        replay(
            &scratch,
            &input,
            "kafka",
            &format!(
                "    kafka: {{ brokers: '{}', topic: bench }}\n    spool: {{ dir: {} }}",
                kafka.bootstrap(),
                spool.display()
            ),
        ),
    );
    let stored = kafka.read_topic("bench").len();
    assert_eq!(stored, count, "every event stored once");

    // The test HTTP server: a thread per connection, keeping every body.
    for (name, max_events, encoding) in [
        ("webhook, one event per request", 1, "json-lines"),
        (
            "webhook, 100 events per request as JSON lines",
            100,
            "json-lines",
        ),
        (
            "webhook, 100 events per request as a JSON array",
            100,
            "json-array",
        ),
    ] {
        let server = HttpServer::start();
        row(
            name,
            replay(
                &scratch,
                &input,
                "webhook",
                &format!(
                    "    webhook: {{ url: '{}/events', max_events: {max_events}, encoding: {encoding} }}\n    spool: {{ dir: {} }}",
                    server.url(),
                    spool.display()
                ),
            ),
        );
        let stored: usize = server.received().iter().map(|r| split_body(r).len()).sum();
        assert_eq!(stored, count, "every event received once");
    }
}
