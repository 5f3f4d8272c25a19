//! The NATS sink against a real nats-server with JetStream (DESIGN.md §11),
//! fed by `aetherius replay`: what a consumer of the stream reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aetherius_tests::servers::NatsServer;
use aetherius_tests::{Scratch, compile_cache, repo_root};
use async_nats::jetstream::{self, stream};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

/// A config: the default plugins and chain, one NATS sink.
fn config(scratch: &Scratch, nats: &NatsServer, extra_sink_yaml: &str) -> PathBuf {
    let default = std::fs::read_to_string(repo_root().join("config/default.yaml")).unwrap();
    let head = &default[..default.find("\nsinks:").unwrap()];
    scratch.write(
        "config.yaml",
        format!(
            "{head}
sinks:
  bus:
    chain: default
    nats:
      url: {url}
      subject: 'event.k8s.{{cluster}}.{{severity}}'
      ack_timeout: 1s
    spool:
      dir: {spool}
      after: 1s
{extra_sink_yaml}
plugin_runtime: {{ cache_dir: {cache} }}
checkpoint: {{ file: {checkpoint}, interval: 50ms }}
",
            url = nats.url(),
            cache = compile_cache().display(),
            spool = scratch.path("spool").display(),
            checkpoint = scratch.path("checkpoints.json").display(),
        ),
    )
}

/// Runs `aetherius replay` to the end; returns its stderr.
fn replay(config: &Path, input: &Path) -> String {
    let output = Command::new(BINARY)
        .args(["--log-format", "json", "replay", "--config"])
        .arg(config)
        .arg("--input")
        .arg(input)
        .env("RUST_LOG", "info")
        .output()
        .expect("run aetherius replay");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "replay failed:\n{stderr}");
    stderr
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A file-backed stream taking `event.k8s.>`, deduplicating for 2 minutes.
async fn create_stream(nats: &NatsServer) -> jetstream::Context {
    let client = async_nats::connect(nats.url())
        .await
        .expect("connect to NATS");
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: "EVENTS".into(),
        subjects: vec!["event.k8s.>".into()],
        duplicate_window: Duration::from_secs(120),
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .expect("create the stream");
    js
}

/// Every message in the stream: subject, `Nats-Msg-Id`, payload.
async fn read_stream(js: &jetstream::Context) -> Vec<(String, String, Value)> {
    let mut stream = js.get_stream("EVENTS").await.unwrap();
    let count = stream.info().await.unwrap().state.messages;
    let mut messages = Vec::new();
    for sequence in 1..=count {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        messages.push((message.subject.to_string(), id, payload));
    }
    messages
}

fn schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schema/standard-event.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn golden() -> Vec<Value> {
    std::fs::read_to_string(repo_root().join("tests/golden/default-replay.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_occurrence_reaches_jetstream_once_on_its_subject_and_matches_the_schema() {
    let nats = NatsServer::start();
    let runtime = runtime();
    let js = runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config(&scratch, &nats, "");
    let input = repo_root().join("examples/events.jsonl");

    replay(&config, &input);
    let messages = runtime.block_on(read_stream(&js));
    let golden = golden();
    assert_eq!(
        messages.len(),
        golden.len(),
        "as many as the file sink publishes"
    );
    let validator = schema();
    let mut ids = BTreeSet::new();
    for ((subject, id, payload), expected) in messages.iter().zip(&golden) {
        let errors: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{payload} violates the schema: {errors:?}"
        );
        assert_eq!(
            *subject,
            format!("event.k8s.replay.{}", payload["severity"].as_str().unwrap())
        );
        assert_eq!(
            id,
            payload["id"].as_str().unwrap(),
            "Nats-Msg-Id is the occurrence id"
        );
        assert_eq!(
            payload["id"], expected["id"],
            "in the order they were published"
        );
        ids.insert(id.clone());
    }
    assert_eq!(ids.len(), messages.len());

    // The same occurrences again: JetStream drops them by their message ids.
    replay(&config, &input);
    assert_eq!(runtime.block_on(read_stream(&js)).len(), golden.len());
}

/// `count` distinct BackOff Warning events, one per line.
fn distinct_events(scratch: &Scratch, count: usize, big_message_at: Option<usize>) -> PathBuf {
    let mut lines = String::new();
    for i in 0..count {
        let message = if Some(i) == big_message_at {
            "x".repeat(700 * 1024)
        } else {
            format!("Back-off restarting failed container app in pod web-{i}")
        };
        let event = serde_json::json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": format!("web-{i}.1"), "namespace": "shop", "uid": format!("uid-{i}"), "resourceVersion": format!("{}", i + 1) },
            "involvedObject": { "kind": "Pod", "name": format!("web-{i}"), "namespace": "shop" },
            "reason": "BackOff", "message": message, "type": "Warning", "count": 1,
            "firstTimestamp": "2026-11-27T10:00:00Z", "lastTimestamp": "2026-11-27T10:00:00Z",
        });
        lines.push_str(&event.to_string());
        lines.push('\n');
    }
    scratch.write("events.jsonl", lines)
}

#[test]
fn without_a_spool_a_broker_outage_holds_the_pipeline_and_loses_nothing() {
    let mut nats = NatsServer::start();
    let runtime = runtime();
    let js = runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config(&scratch, &nats, "      enabled: false");
    let input = distinct_events(&scratch, 1000, None);

    nats.stop();
    let log = scratch.path("replay.log");
    let mut child = Command::new(BINARY)
        .args(["--log-format", "json", "replay", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .env("RUST_LOG", "info,aetherius=debug")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // It waits for the broker rather than dropping or exiting.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains("cannot publish to NATS")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "replay ended while NATS was down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nats.restart();
    let status = child.wait().unwrap();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{logs}");
    assert_eq!(
        logs.matches("\"ERROR\"").count(),
        1,
        "the outage is logged once:\n{logs}"
    );
    assert!(logs.contains("NATS takes messages again"), "{logs}");

    let js = runtime.block_on(async {
        drop(js);
        create_stream(&nats).await
    });
    let messages = runtime.block_on(read_stream(&js));
    let names: BTreeSet<String> = messages
        .iter()
        .map(|(_, _, p)| p["labels"]["involved_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 1000, "all 1,000 arrived");
    assert_eq!(messages.len(), 1000, "none twice");
}

#[test]
fn a_message_the_server_refuses_is_logged_and_does_not_block_the_others() {
    let nats = NatsServer::start();
    let runtime = runtime();
    let js = runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config(&scratch, &nats, "");
    let dead = scratch.path("dead-letter.jsonl");
    // No secret guard: scanning a 700 KiB message exceeds its fuel, and it
    // is fail-closed.
    let yaml = std::fs::read_to_string(&config).unwrap();
    let (head, sinks) = yaml.split_once("\nsinks:").unwrap();
    let yaml = format!(
        "{head}\n  small: [warnings-only, severity]\nsinks:{}",
        sinks.replacen("chain: default", "chain: small", 1)
    );
    let yaml = yaml.replace(
        "plugin_runtime:",
        &format!(
            "  failures:\n    chain: dead-letter\n    file: {{ path: {} }}\nplugin_runtime:",
            dead.display()
        ),
    );
    std::fs::write(&config, yaml).unwrap();
    // One event whose StandardEvent (message twice: annotation and raw)
    // exceeds the server's 1 MiB max_payload.
    let input = distinct_events(&scratch, 20, Some(7));
    let logs = replay(&config, &input);
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("NATS refused the message"))
        .collect();
    assert_eq!(refused.len(), 1, "{logs}");
    assert!(
        refused[0].contains("maximum payload") || refused[0].contains("max payload"),
        "{}",
        refused[0]
    );
    let messages = runtime.block_on(read_stream(&js));
    assert_eq!(messages.len(), 19);
    let letters: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "the refused message is dead-lettered");
    assert_eq!(letters[0]["labels"]["involved_name"], "web-7");
    assert_eq!(letters[0]["annotations"]["dead_letter_sink"], "bus");
    assert!(
        letters[0]["annotations"]["dead_letter_reason"]
            .as_str()
            .unwrap()
            .contains("payload"),
        "{}",
        letters[0]
    );
    assert!(
        !messages
            .iter()
            .any(|(_, _, p)| p["labels"]["involved_name"] == "web-7")
    );
}

#[test]
fn a_broker_outage_spools_to_disk_and_the_next_start_delivers_it() {
    let mut nats = NatsServer::start();
    let runtime = runtime();
    runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config(&scratch, &nats, "");
    let input = distinct_events(&scratch, 1000, None);

    nats.stop();
    // The broker stays down: after `spool.after` the messages go to disk and
    // the replay ends, leaving them there.
    let logs = replay(&config, &input);
    assert!(logs.contains("then spooling to disk"), "{logs}");
    assert!(
        logs.contains("stopping with messages in the spool"),
        "{logs}"
    );

    nats.restart();
    let logs = replay(&config, Path::new("/dev/null"));
    assert!(logs.contains("draining them first"), "{logs}");
    assert!(logs.contains("spool drained"), "{logs}");
    let js = runtime.block_on(create_stream(&nats));
    let messages = runtime.block_on(read_stream(&js));
    let names: BTreeSet<String> = messages
        .iter()
        .map(|(_, _, p)| p["labels"]["involved_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 1000, "all 1,000 arrived");
    assert_eq!(messages.len(), 1000, "none twice");
    // In the order they were read.
    let first: Vec<&str> = messages
        .iter()
        .take(3)
        .map(|(_, _, p)| p["labels"]["involved_name"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["web-0", "web-1", "web-2"]);
}

#[test]
fn a_crash_while_events_are_spooled_loses_nothing() {
    use aetherius_tests::running::{Running, warning_event};
    use aetherius_tests::servers::KubeCluster;

    let cluster = KubeCluster::start();
    cluster.create_namespace("shop");
    let mut nats = NatsServer::start();
    let runtime = runtime();
    runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig);
    let config = config(&scratch, &nats, "");
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str(&format!(
        "clusters:\n  - {{ id: test, kubeconfig: {} }}\n",
        kubeconfig.display()
    ));
    std::fs::write(&config, yaml).unwrap();
    let create = |range: std::ops::Range<u32>| {
        for i in range {
            let body = warning_event(
                "shop",
                &format!("e-{i}"),
                &format!("pod-{i}"),
                "BackOff",
                "Back-off restarting failed container app",
                1,
                0,
            );
            cluster.create_event("shop", &body);
        }
    };

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create(0..20);
    nats.stop();
    create(20..120);
    // Spooled to disk and checkpointed past them, then killed.
    run.wait_for_logs(&["then spooling to disk"], 1, Duration::from_secs(60));
    let spool = scratch.path("spool");
    let deadline = Instant::now() + Duration::from_secs(60);
    while spooled_lines(&spool) < 100 {
        assert!(Instant::now() < deadline, "{}", run.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    run.kill();

    nats.restart();
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create(120..130);
    let js = runtime.block_on(create_stream(&nats));
    let deadline = Instant::now() + Duration::from_secs(60);
    let messages = loop {
        let messages = runtime.block_on(read_stream(&js));
        if messages.len() >= 130 || Instant::now() > deadline {
            break messages;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    run.stop();
    let names: BTreeSet<String> = messages
        .iter()
        .map(|(_, _, p)| p["labels"]["involved_name"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<String> = (0..130)
        .map(|i| format!("pod-{i}"))
        .filter(|name| !names.contains(name))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(messages.len(), 130, "JetStream holds each once");
}

/// Lines in the spool's segment files.
fn spooled_lines(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "spool"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}
