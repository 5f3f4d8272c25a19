//! The design document followed literally (../shared/design-document.md):
//! its `watcher-config.yaml` as written, its Deployment's flags, its
//! subject, against the test API server and a real NATS (JetStream) or
//! Kafka-protocol broker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aetherius_tests::publishing::{
    assert_valid, event_stream, read_event_stream, standard_event_schema,
};
use aetherius_tests::running::{Running, warning_event};
use aetherius_tests::servers::{KubeCluster, NatsServer, Tansu};
use aetherius_tests::{Scratch, repo_root};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

/// config/watcher-config.yaml — the document's file — watching `namespace`
/// (the control plane is shared with the other tests of this file) and
/// publishing to `bus`.
fn document_config(scratch: &Scratch, namespace: &str, bus: &str) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(repo_root().join("config/watcher-config.yaml"))
        .expect("config/watcher-config.yaml");
    let yaml = shipped
        .replace(
            "namespaces: []  # empty: all namespaces",
            &format!("namespaces: [{namespace}]"),
        )
        .replace(
            "message_bus_url: \"nats://${NATS_HOST:-localhost}:4222\"",
            &format!("message_bus_url: \"{bus}\""),
        );
    assert!(yaml.contains(bus) && yaml.contains(namespace), "{yaml}");
    scratch.write("watcher-config.yaml", yaml)
}

/// The events of the test: each of the document's six reasons once, a
/// Warning with a reason not in its list, a Normal event, and the BackOff
/// repeating until its count reaches 5.
fn create_events(cluster: &KubeCluster, namespace: &str) {
    let reasons = [
        ("OOMKilled", "Container app was OOM killed"),
        ("CrashLoopBackOff", "Container app keeps crashing"),
        ("ImagePullBackOff", "Back-off pulling image \"app:v2\""),
        ("FailedScheduling", "0/3 nodes are available"),
        ("Unhealthy", "Readiness probe failed"),
        // A BackOff the mapper cannot refine by its message (it maps
        // "Back-off pulling image" high and "Back-off restarting failed
        // container" critical): the table's medium.
        ("BackOff", "Back-off waiting for the volume"),
        // Not in reason_filters:
        ("FailedMount", "MountVolume.SetUp failed"),
    ];
    for (i, (reason, message)) in reasons.iter().enumerate() {
        let body = warning_event(
            namespace,
            &format!("e-{i}"),
            &format!("pod-{i}"),
            reason,
            message,
            1,
            0,
        );
        cluster.create_event(namespace, &body);
    }
    let mut normal: Value = serde_json::from_str(&warning_event(
        namespace, "normal", "pod-n", "Pulled", "pulled", 1, 0,
    ))
    .unwrap();
    normal["type"] = "Normal".into();
    cluster.create_event(namespace, &normal.to_string());
}

/// What the document's pipeline publishes for [`create_events`], then for the
/// BackOff's count bumps to 5, read back by `read` (every message on
/// `event.k8s.received`: its payload and the id the broker carries).
fn assert_the_documents_pipeline(
    cluster: &KubeCluster,
    namespace: &str,
    cluster_id: &str,
    run: &Running,
    read: impl Fn() -> Vec<(Option<String>, Value)>,
) {
    let wait_for = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let messages = read();
            if messages.len() >= count {
                // Anything more would arrive within a moment.
                std::thread::sleep(Duration::from_millis(500));
                return read();
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages: {messages:#?}\n{}",
                messages.len(),
                run.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    create_events(cluster, namespace);
    let messages = wait_for(6);
    let schema = standard_event_schema();
    let mut severities = BTreeMap::new();
    for (id, payload) in &messages {
        assert_valid(&schema, payload);
        let uuid = payload["id"].as_str().unwrap();
        assert_eq!(id.as_deref(), Some(uuid), "the broker's id is the event's");
        assert_eq!(uuid.len(), 36, "a UUID: {uuid}");
        assert_eq!(&uuid[14..15], "8", "version 8: {uuid}");
        assert_eq!(payload["cluster_id"], cluster_id);
        assert_eq!(payload["type"], "k8s_event");
        severities.insert(
            payload["labels"]["reason"].as_str().unwrap().to_owned(),
            payload["severity"].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(
        messages.len(),
        6,
        "the six reasons, once each: {severities:?}"
    );
    let expected: BTreeMap<String, String> = [
        ("OOMKilled", "critical"),
        ("CrashLoopBackOff", "critical"),
        ("ImagePullBackOff", "high"),
        ("FailedScheduling", "high"),
        ("Unhealthy", "medium"),
        ("BackOff", "medium"),
    ]
    .into_iter()
    .map(|(r, s)| (r.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(severities, expected, "the document's severity table");

    // The BackOff (e-5) repeats: every count bump is published, and at 5 it
    // is escalated.
    for count in 2..=5 {
        cluster.bump_event(namespace, "e-5", count);
    }
    let messages = wait_for(10);
    assert_eq!(messages.len(), 10, "four count bumps: {messages:#?}");
    let last = messages
        .iter()
        .map(|(_, payload)| payload)
        .find(|p| p["labels"]["reason"] == "BackOff" && p["labels"]["count"] == "5")
        .unwrap_or_else(|| panic!("no BackOff at count 5: {messages:#?}"));
    assert_eq!(last["labels"]["repeated_count"], "5");
    assert_eq!(last["severity"], "high", "escalated at 5");
}

#[test]
fn the_documents_config_and_flags_publish_on_event_k8s_received_over_nats() {
    let cluster = KubeCluster::shared();
    let namespace = cluster.fresh_namespace("doc-nats");
    let scratch = Scratch::new();
    let nats = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The document's consumer reads a JetStream stream on its subject.
    let stream = runtime.block_on(event_stream(&nats.url(), async_nats::ConnectOptions::new()));
    let config = document_config(&scratch, &namespace, &nats.url());
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig);

    // The Deployment's arguments, `--cluster-id=$(CLUSTER_ID)` expanded.
    let mut run = Running::start_args(
        std::path::Path::new(BINARY),
        &[
            "--cluster-id=prod-us-west-2",
            &format!("--config={}", config.display()),
            &format!("--kubeconfig={}", kubeconfig.display()),
        ],
        // The checkpoint and spool in this test's own state directory.
        &[("XDG_STATE_HOME", scratch.path("state").to_str().unwrap())],
    );
    run.wait_until_watching(1);
    assert_eq!(
        run.count_logs(&["cache synced", "prod-us-west-2", &namespace]),
        1,
        "the document's `grep \"cache sync\"` finds the sync"
    );
    assert_the_documents_pipeline(cluster, &namespace, "prod-us-west-2", &run, || {
        runtime
            .block_on(read_event_stream(&stream))
            .into_iter()
            .map(|(subject, id, payload)| {
                assert_eq!(subject, "event.k8s.received");
                (Some(id), payload)
            })
            .collect()
    });
    run.stop();
}

#[test]
fn the_documents_config_publishes_to_a_kafka_topic_with_its_cluster_id_from_the_environment() {
    let cluster = KubeCluster::shared();
    let namespace = cluster.fresh_namespace("doc-kafka");
    let scratch = Scratch::new();
    let tansu = Tansu::start();
    tansu.create_topics(&["event.k8s.received"]);
    let config = document_config(
        &scratch,
        &namespace,
        &format!("kafka://{}", tansu.bootstrap()),
    );
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig);

    // No flags but the config: the id comes from `cluster_id:
    // "${CLUSTER_ID:-…}"` in the file, the kubeconfig from the environment.
    let mut run = Running::start_args(
        std::path::Path::new(BINARY),
        &[&format!("--config={}", config.display())],
        &[
            ("CLUSTER_ID", "eu-central-1"),
            ("AETHERIUS_KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("XDG_STATE_HOME", scratch.path("state").to_str().unwrap()),
        ],
    );
    run.wait_until_watching(1);
    assert_the_documents_pipeline(cluster, &namespace, "eu-central-1", &run, || {
        tansu
            .read_topic("event.k8s.received")
            .into_iter()
            .map(|message| {
                (
                    message.headers.get("aetherius-id").cloned(),
                    message.payload,
                )
            })
            .collect()
    });
    run.stop();
}
