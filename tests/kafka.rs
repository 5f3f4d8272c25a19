//! The Kafka sink against a real Kafka-protocol broker (Tansu, DESIGN.md
//! §11), fed by `aetherius replay` and `aetherius run`: what a consumer of
//! the topics reads.
//!
//! Tansu keeps topics in memory: after a restart the tests create them
//! again, and the sink meanwhile hears "unknown topic" and retries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aetherius_tests::publishing::{
    self, BackgroundReplay, assert_valid, config_with_sinks, distinct_events, golden,
    involved_names, kill_once_spooled, spooled_lines, standard_event_schema, with_dead_letter_file,
};
use aetherius_tests::servers::{KafkaMessage, Tansu};
use aetherius_tests::{Scratch, repo_root};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// A config: the default plugins and chain, one Kafka sink `bus` on topics
/// `k8s.{cluster}.{severity}` with a spool in the scratch dir
/// (`extra_sink_yaml` goes under `spool:`).
fn config(scratch: &Scratch, kafka: &Tansu, extra_sink_yaml: &str) -> PathBuf {
    config_with_sinks(
        scratch,
        &format!(
            "  bus:
    chain: default
    kafka:
      brokers: {brokers}
      topic: 'k8s.{{cluster}}.{{severity}}'
      delivery_timeout: 1s
    spool:
      dir: {spool}
      after: 1s
{extra_sink_yaml}",
            brokers = kafka.bootstrap(),
            spool = scratch.path("spool").display(),
        ),
    )
}

fn replay(config: &Path, input: &Path) -> String {
    publishing::replay(Path::new(BINARY), config, input)
}

/// Creates `k8s.CLUSTER.SEVERITY` for every severity.
fn create_topics(kafka: &Tansu, cluster: &str) {
    let names: Vec<String> = SEVERITIES
        .iter()
        .map(|s| format!("k8s.{cluster}.{s}"))
        .collect();
    kafka.create_topics(&names.iter().map(String::as_str).collect::<Vec<_>>());
}

/// Every message on `k8s.CLUSTER.*`, by topic.
fn read_all(kafka: &Tansu, cluster: &str) -> BTreeMap<String, Vec<KafkaMessage>> {
    SEVERITIES
        .iter()
        .map(|s| {
            let topic = format!("k8s.{cluster}.{s}");
            let messages = kafka.read_topic(&topic);
            (topic, messages)
        })
        .collect()
}

fn payloads(topics: &BTreeMap<String, Vec<KafkaMessage>>) -> Vec<Value> {
    topics
        .values()
        .flatten()
        .map(|m| m.payload.clone())
        .collect()
}

#[test]
fn every_occurrence_reaches_its_topic_once_keyed_and_with_headers() {
    let kafka = Tansu::start();
    create_topics(&kafka, "replay");
    let scratch = Scratch::new();
    let config = config(&scratch, &kafka, "");

    replay(&config, &repo_root().join("examples/events.jsonl"));
    let topics = read_all(&kafka, "replay");
    let golden = golden();
    let validator = standard_event_schema();
    let mut seen = BTreeSet::new();
    for (topic, messages) in &topics {
        let severity = topic.rsplit('.').next().unwrap();
        // In the order they were published, per topic.
        let expected: Vec<&Value> = golden
            .iter()
            .filter(|e| e["severity"] == severity)
            .collect();
        assert_eq!(
            messages
                .iter()
                .map(|m| &m.payload["id"])
                .collect::<Vec<_>>(),
            expected.iter().map(|e| &e["id"]).collect::<Vec<_>>(),
            "{topic}"
        );
        for message in messages {
            let payload = &message.payload;
            assert_valid(&validator, payload);
            assert_eq!(payload["severity"], severity);
            assert_eq!(
                message.key.as_deref(),
                payload["fingerprint"].as_str(),
                "keyed by fingerprint"
            );
            assert_eq!(
                message.headers.get("aetherius-id").map(String::as_str),
                payload["id"].as_str()
            );
            assert_eq!(
                message
                    .headers
                    .get("aetherius-severity")
                    .map(String::as_str),
                Some(severity)
            );
            assert_eq!(
                message.headers.get("aetherius-cluster").map(String::as_str),
                Some("replay")
            );
            assert_eq!(
                message.headers.get("content-type").map(String::as_str),
                Some("application/json")
            );
            assert!(seen.insert(payload["id"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(seen.len(), golden.len(), "every occurrence, once");
}

#[test]
fn a_key_template_and_cloudevents_format_are_honoured() {
    let kafka = Tansu::start();
    kafka.create_topics(&["events"]);
    let scratch = Scratch::new();
    // A property read from a file, as from a mounted Secret.
    let compression = scratch.write("compression", "lz4\n");
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  bus:\n    chain: default\n    format: cloudevents\n    kafka:\n      brokers: {}\n      topic: events\n      key: '{{namespace}}/{{name}}'\n      options: {{ batch.num.messages: 100 }}\n      option_files: {{ compression.type: {} }}\n    spool: {{ dir: {} }}",
            kafka.bootstrap(),
            compression.display(),
            scratch.path("spool").display()
        ),
    );
    replay(&config, &repo_root().join("examples/events.jsonl"));
    let messages = kafka.read_topic("events");
    let golden = golden();
    assert_eq!(messages.len(), golden.len());
    let validator = publishing::cloudevent_schema();
    for (message, expected) in messages.iter().zip(&golden) {
        assert_valid(&validator, &message.payload);
        assert_eq!(message.payload["data"], *expected);
        let raw = &expected["raw_data"]["k8s_event"];
        let object = if raw["involvedObject"].is_object() {
            &raw["involvedObject"]
        } else {
            &raw["regarding"]
        };
        let name: String = object["name"]
            .as_str()
            .unwrap()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        assert_eq!(
            message.key.as_deref(),
            Some(format!("{}/{name}", expected["namespace"].as_str().unwrap()).as_str())
        );
        assert_eq!(
            message.headers.get("content-type").map(String::as_str),
            Some("application/cloudevents+json")
        );
    }
}

#[test]
fn without_a_spool_a_broker_outage_holds_the_pipeline_and_loses_nothing() {
    let mut kafka = Tansu::start();
    let scratch = Scratch::new();
    let config = config(&scratch, &kafka, "      enabled: false");
    let input = distinct_events(&scratch, 1000, None);

    kafka.stop();
    let mut replay = BackgroundReplay::start(
        Path::new(BINARY),
        &config,
        &input,
        scratch.path("replay.log"),
    );
    // It waits for the broker rather than dropping or exiting.
    replay.wait_until("the outage is noticed", |logs| {
        logs.contains("cannot publish to Kafka")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(replay.is_running(), "replay ended while Kafka was down");
    kafka.restart();
    create_topics(&kafka, "replay");
    let logs = replay.finish();
    assert_eq!(
        logs.matches("\"ERROR\"").count(),
        1,
        "the outage is logged once:\n{logs}"
    );
    assert!(logs.contains("Kafka takes messages again"), "{logs}");

    let events = payloads(&read_all(&kafka, "replay"));
    let names: BTreeSet<String> = involved_names(&events).into_iter().collect();
    assert_eq!(names.len(), 1000, "all 1,000 arrived");
    assert_eq!(events.len(), 1000, "none twice");
}

#[test]
fn a_message_the_producer_refuses_is_dead_lettered_and_does_not_block_the_others() {
    let kafka = Tansu::start();
    create_topics(&kafka, "replay");
    let scratch = Scratch::new();
    let config = config(&scratch, &kafka, "");
    let dead = with_dead_letter_file(&scratch, &config);
    // One event whose StandardEvent exceeds message.max.bytes (1,000,000).
    let input = distinct_events(&scratch, 20, Some(7));
    let logs = replay(&config, &input);
    let refused: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("Kafka refused the message"))
        .collect();
    assert_eq!(refused.len(), 1, "{logs}");
    assert!(refused[0].contains("too large"), "{}", refused[0]);
    let events = payloads(&read_all(&kafka, "replay"));
    assert_eq!(events.len(), 19);
    assert!(!involved_names(&events).contains(&"web-7".to_owned()));
    let letters: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "the refused message is dead-lettered");
    assert_eq!(letters[0]["labels"]["involved_name"], "web-7");
    assert_eq!(letters[0]["annotations"]["dead_letter_sink"], "bus");
}

#[test]
fn a_broker_outage_spools_to_disk_and_the_next_start_delivers_it_in_order() {
    let mut kafka = Tansu::start();
    let scratch = Scratch::new();
    let config = config(&scratch, &kafka, "");
    let input = distinct_events(&scratch, 1000, None);

    kafka.stop();
    let logs = replay(&config, &input);
    assert!(logs.contains("then spooling to disk"), "{logs}");
    assert!(
        logs.contains("stopping with messages in the spool"),
        "{logs}"
    );
    assert_eq!(spooled_lines(&scratch.path("spool")), 1000);

    kafka.restart();
    create_topics(&kafka, "replay");
    let logs = replay(&config, Path::new("/dev/null"));
    assert!(logs.contains("draining them first"), "{logs}");
    assert!(logs.contains("spool drained"), "{logs}");
    let events = payloads(&read_all(&kafka, "replay"));
    let names = involved_names(&events);
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), 1000);
    assert_eq!(events.len(), 1000, "none twice");
    let expected: Vec<String> = (0..1000).map(|i| format!("web-{i}")).collect();
    assert_eq!(names, expected, "in the order they were read");
}

#[test]
fn a_crash_while_events_are_spooled_loses_nothing() {
    use aetherius_tests::publishing::{create_backoff_events, watch_cluster};
    use aetherius_tests::running::Running;
    use aetherius_tests::servers::KubeCluster;

    let cluster = KubeCluster::start();
    cluster.create_namespace("shop");
    let mut kafka = Tansu::start();
    create_topics(&kafka, "test");
    let scratch = Scratch::new();
    let config = config(&scratch, &kafka, "");
    watch_cluster(&scratch, &config, &cluster, "test");
    let create = |range| create_backoff_events(&cluster, "shop", range);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create(0..20);
    let deadline = Instant::now() + Duration::from_secs(60);
    while payloads(&read_all(&kafka, "test")).len() < 20 {
        assert!(Instant::now() < deadline, "{}", run.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
    kafka.stop();
    create(20..120);
    // Spooled to disk and checkpointed past them, then killed.
    kill_once_spooled(run, &scratch.path("spool"), 100);

    // Tansu lost the first 20 with its memory; what matters is what arrives
    // after the crash.
    kafka.restart();
    create_topics(&kafka, "test");
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create(120..130);
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = payloads(&read_all(&kafka, "test"));
        if events.len() >= 110 || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    run.stop();
    let names: BTreeSet<String> = involved_names(&events).into_iter().collect();
    let missing: Vec<String> = (20..130)
        .map(|i| format!("pod-{i}"))
        .filter(|name| !names.contains(name))
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(events.len(), 110, "each once");
}
