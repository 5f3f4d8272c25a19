//! What every broker sink promises, against each real broker (DESIGN.md
//! §11): nats-server with JetStream, the Kafka-protocol broker Tansu, and
//! an HTTP server for the webhook sink (tests/src/servers/http.rs), fed
//! by `aetherius replay` and `aetherius run`. Each test is written once,
//! generic over [`TestBroker`], and run for each broker by `for_each_broker!`
//! at the end (`cargo test --test brokers nats::` runs NATS's). What only one
//! broker does is tested in nats.rs, kafka.rs or webhook.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use aetherius_tests::brokers::{Published, TestBroker, broker_config};
use aetherius_tests::publishing::{
    self, BackgroundReplay, assert_valid, create_backoff_events, distinct_events, golden,
    involved_names, kill_once_spooled, spooled_lines, standard_event_schema, watch_cluster,
    with_dead_letter_file,
};
use aetherius_tests::running::Running;
use aetherius_tests::servers::KubeCluster;
use aetherius_tests::{Scratch, repo_root};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

fn replay(config: &Path, input: &Path) -> String {
    publishing::replay(Path::new(BINARY), config, input)
}

fn payloads(messages: &[Published]) -> Vec<&Value> {
    messages.iter().map(|m| &m.payload).collect()
}

fn names(messages: &[Published]) -> Vec<String> {
    involved_names(payloads(messages))
}

/// The bundled sample: every occurrence the file sink publishes reaches the
/// broker once, on its cluster's and severity's destination, with its id
/// beside it, valid against the schema, in the order it was published.
fn every_occurrence_is_published_once_in_order_and_matches_the_schema<B: TestBroker>() {
    let broker = B::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(&scratch, &broker, "");

    replay(&config, &repo_root().join("examples/events.jsonl"));
    let messages = broker.read_all();
    let golden = golden();
    assert_eq!(
        messages.len(),
        golden.len(),
        "as many as the file sink publishes"
    );
    let validator = standard_event_schema();
    let mut ids = BTreeSet::new();
    for message in &messages {
        let payload = &message.payload;
        assert_valid(&validator, payload);
        assert_eq!(
            message.destination,
            B::destination("replay", payload["severity"].as_str().unwrap())
        );
        assert_eq!(
            message.id.as_deref(),
            payload["id"].as_str(),
            "the message carries the occurrence id"
        );
        ids.insert(payload["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), golden.len(), "every occurrence, once");

    // In the order they were published: across destinations where the
    // broker keeps one order, else destination by destination.
    let order = |severity: &Value| {
        if B::ONE_ORDER {
            String::new()
        } else {
            B::destination("replay", severity.as_str().unwrap())
        }
    };
    let mut published: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for payload in payloads(&messages) {
        published
            .entry(order(&payload["severity"]))
            .or_default()
            .push(&payload["id"]);
    }
    let mut expected: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for event in &golden {
        expected
            .entry(order(&event["severity"]))
            .or_default()
            .push(&event["id"]);
    }
    assert_eq!(published, expected, "in the order they were published");
}

fn without_a_spool_a_broker_outage_holds_the_pipeline_and_loses_nothing<B: TestBroker>() {
    let mut broker = B::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(&scratch, &broker, "      enabled: false");
    let input = distinct_events(&scratch, 1000, None);

    broker.stop();
    let mut replay = BackgroundReplay::start(
        Path::new(BINARY),
        &config,
        &input,
        scratch.path("replay.log"),
    );
    // It waits for the broker rather than dropping or exiting.
    let outage = format!("cannot publish to {}", B::NAME);
    replay.wait_until("the outage is noticed", |logs| logs.contains(&outage));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        replay.is_running(),
        "replay ended while {} was down",
        B::NAME
    );
    broker.restart();
    let logs = replay.finish();
    assert_eq!(
        logs.matches("\"ERROR\"").count(),
        1,
        "the outage is logged once:\n{logs}"
    );
    assert!(
        logs.contains(&format!("{} takes messages again", B::NAME)),
        "{logs}"
    );

    let messages = broker.read_all();
    let names: BTreeSet<String> = names(&messages).into_iter().collect();
    assert_eq!(names.len(), 1000, "all 1,000 arrived");
    assert_eq!(messages.len(), 1000, "none twice");
}

fn a_message_the_broker_refuses_is_dead_lettered_and_does_not_block_the_others<B: TestBroker>() {
    let broker = B::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(&scratch, &broker, "");
    let dead = with_dead_letter_file(&scratch, &config);
    // One event whose StandardEvent (its message twice: annotation and raw)
    // exceeds what the broker takes: NATS's max_payload of 1 MiB, Kafka's
    // message.max.bytes of 1,000,000.
    let input = distinct_events(&scratch, 20, Some(7));
    let logs = replay(&config, &input);
    let refused_line = format!("{} refused the message", B::NAME);
    let refused: Vec<&str> = logs.lines().filter(|l| l.contains(&refused_line)).collect();
    assert_eq!(refused.len(), 1, "{logs}");
    assert!(
        B::TOO_LARGE.iter().any(|why| refused[0].contains(why)),
        "{}",
        refused[0]
    );
    let messages = broker.read_all();
    assert_eq!(messages.len(), 19);
    assert!(!names(&messages).contains(&"web-7".to_owned()));
    let letters: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "the refused message is dead-lettered");
    assert_eq!(letters[0]["labels"]["involved_name"], "web-7");
    assert_eq!(letters[0]["annotations"]["dead_letter_sink"], "bus");
    let reason = letters[0]["annotations"]["dead_letter_reason"]
        .as_str()
        .unwrap();
    assert!(
        B::TOO_LARGE.iter().any(|why| reason.contains(why)),
        "{}",
        letters[0]
    );
}

fn a_broker_outage_spools_to_disk_and_the_next_start_delivers_it_in_order<B: TestBroker>() {
    let mut broker = B::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(&scratch, &broker, "");
    let input = distinct_events(&scratch, 1000, None);

    broker.stop();
    // The broker stays down: after `spool.after` the messages go to disk and
    // the replay ends, leaving them there.
    let logs = replay(&config, &input);
    assert!(logs.contains("then spooling to disk"), "{logs}");
    assert!(
        logs.contains("stopping with messages in the spool"),
        "{logs}"
    );
    assert_eq!(spooled_lines(&scratch.path("spool")), 1000);

    broker.restart();
    let logs = replay(&config, Path::new("/dev/null"));
    assert!(logs.contains("draining them first"), "{logs}");
    assert!(logs.contains("spool drained"), "{logs}");
    let messages = broker.read_all();
    let names = names(&messages);
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        1000,
        "all 1,000 arrived"
    );
    assert_eq!(messages.len(), 1000, "none twice");
    let expected: Vec<String> = (0..1000).map(|i| format!("web-{i}")).collect();
    assert_eq!(names, expected, "in the order they were read");
}

fn a_crash_while_events_are_spooled_loses_nothing<B: TestBroker>() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let mut broker = B::start("test");
    let scratch = Scratch::new();
    let config = broker_config(&scratch, &broker, "");
    watch_cluster(&scratch, &config, cluster, "test", &[&shop]);
    let create = |range| create_backoff_events(cluster, &shop, range);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create(0..20);
    let deadline = Instant::now() + Duration::from_secs(60);
    while broker.read_all().len() < 20 {
        assert!(Instant::now() < deadline, "{}", run.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.stop();
    create(20..120);
    // Spooled to disk and checkpointed past them, then killed.
    kill_once_spooled(run, &scratch.path("spool"), 100);

    broker.restart();
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create(120..130);
    // A broker that forgets on restart (Tansu) lost the first 20 with its
    // memory; what matters is what arrives after the crash.
    let expected = if B::DURABLE { 0..130 } else { 20..130 };
    let deadline = Instant::now() + Duration::from_secs(60);
    let messages = loop {
        let messages = broker.read_all();
        if messages.len() >= expected.len() || Instant::now() > deadline {
            break messages;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let logs = run.stop();
    let names: BTreeSet<String> = names(&messages).into_iter().collect();
    let missing: Vec<String> = expected
        .clone()
        .map(|i| format!("pod-{i}"))
        .filter(|name| !names.contains(name))
        .collect();
    // The restarted run's log tells a slow restart from a stuck one.
    assert!(
        missing.is_empty(),
        "lost: {missing:?}\nthe restarted run's log:\n{}",
        logs.join("\n")
    );
    assert_eq!(messages.len(), expected.len(), "each once");
}

/// A module per broker holding a `#[test]` per generic test above.
macro_rules! for_each_broker {
    ($($test:ident),+ $(,)?) => {
        mod nats {
            use aetherius_tests::brokers::Nats;
            $(#[test] fn $test() { super::$test::<Nats>() })+
        }
        mod kafka {
            use aetherius_tests::brokers::Kafka;
            $(#[test] fn $test() { super::$test::<Kafka>() })+
        }
        mod webhook {
            use aetherius_tests::brokers::Webhook;
            $(#[test] fn $test() { super::$test::<Webhook>() })+
        }
    };
}

for_each_broker!(
    every_occurrence_is_published_once_in_order_and_matches_the_schema,
    without_a_spool_a_broker_outage_holds_the_pipeline_and_loses_nothing,
    a_message_the_broker_refuses_is_dead_lettered_and_does_not_block_the_others,
    a_broker_outage_spools_to_disk_and_the_next_start_delivers_it_in_order,
    a_crash_while_events_are_spooled_loses_nothing,
);
