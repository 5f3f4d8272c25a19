//! What only the Kafka sink does, against a real Kafka-protocol broker
//! (Tansu, DESIGN.md §11), fed by `aetherius replay`: message keys and
//! headers, producer options. What every broker sink does is tested in
//! brokers.rs, against Kafka too.

use std::path::Path;

use aetherius_tests::brokers::{Kafka, TestBroker, broker_config};
use aetherius_tests::publishing::{self, assert_valid, config_with_sinks, golden};
use aetherius_tests::servers::Tansu;
use aetherius_tests::{Scratch, repo_root};

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

fn replay(config: &Path, input: &Path) -> String {
    publishing::replay(Path::new(BINARY), config, input)
}

#[test]
fn every_message_is_keyed_by_fingerprint_and_carries_its_severity_and_cluster() {
    let kafka = Kafka::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(&scratch, &kafka, "");

    replay(&config, &repo_root().join("examples/events.jsonl"));
    let mut read = 0;
    for topic in kafka.topics() {
        let severity = topic.rsplit('.').next().unwrap();
        for message in kafka.tansu().read_topic(&topic) {
            let payload = &message.payload;
            assert_eq!(
                message.key.as_deref(),
                payload["fingerprint"].as_str(),
                "keyed by fingerprint"
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
            read += 1;
        }
    }
    assert_eq!(read, golden().len());
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

/// Kafka over TLS with a client certificate — Tansu behind stunnel, which
/// terminates TLS on the port the broker advertises: the sink publishes
/// every event through it; with a CA that did not sign the broker's
/// certificate, it says once, at ERROR, that the certificate cannot be
/// verified, and loses nothing (the events wait in the spool).
#[test]
fn publishes_over_tls_with_a_client_certificate_and_refuses_a_wrong_ca() {
    use aetherius_tests::servers::TestCertificates;

    let scratch = Scratch::new();
    std::fs::create_dir_all(scratch.path("pki")).unwrap();
    std::fs::create_dir_all(scratch.path("other-pki")).unwrap();
    let certificates = TestCertificates::generate(&scratch.path("pki"));
    let kafka = Tansu::start_tls(&certificates);
    kafka.create_topics(&["events"]);
    let sink = |ca: &Path, spool: &str| {
        format!(
            "  bus:\n    chain: default\n    kafka:\n      brokers: {}\n      topic: events\n      delivery_timeout: 2s\n      options: {{ security.protocol: ssl, ssl.ca.location: {}, ssl.certificate.location: {}, ssl.key.location: {} }}\n    spool: {{ dir: {}, after: 1s }}",
            kafka.bootstrap(),
            ca.display(),
            certificates.client_cert.display(),
            certificates.client_key.display(),
            scratch.path(spool).display()
        )
    };

    let config = config_with_sinks(&scratch, &sink(&certificates.ca, "spool"));
    let logs = replay(&config, &repo_root().join("examples/events.jsonl"));
    let messages = kafka.read_topic("events");
    assert_eq!(messages.len(), golden().len(), "{logs}");
    assert!(!logs.contains("\"ERROR\""), "{logs}");

    let wrong = TestCertificates::generate(&scratch.path("other-pki"));
    std::fs::remove_file(scratch.path("config.yaml")).unwrap();
    let config = config_with_sinks(&scratch, &sink(&wrong.ca, "wrong-spool"));
    let logs = replay(&config, &repo_root().join("examples/events.jsonl"));
    let errors: Vec<&str> = logs.lines().filter(|l| l.contains("\"ERROR\"")).collect();
    assert_eq!(errors.len(), 1, "one clear error:\n{logs}");
    assert!(
        errors[0].contains("certificate verify failed"),
        "it says why:\n{}",
        errors[0]
    );
    assert!(
        logs.contains("stopping with messages in the spool"),
        "{logs}"
    );
    assert_eq!(
        kafka.read_topic("events").len(),
        golden().len(),
        "nothing more reached the broker"
    );
}
