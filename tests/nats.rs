//! The NATS sink against a real nats-server with JetStream (DESIGN.md §11),
//! fed by `aetherius replay`: what a consumer of the stream reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aetherius_tests::publishing::{
    self, BackgroundReplay, assert_valid, config_with_sinks, distinct_events, event_stream, golden,
    kill_once_spooled, read_event_stream, spooled_lines, standard_event_schema,
    with_dead_letter_file,
};
use aetherius_tests::servers::NatsServer;
use aetherius_tests::{Scratch, repo_root};
use async_nats::jetstream;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

/// A config: the default plugins and chain, one NATS sink `bus` with a
/// spool in the scratch dir (`extra_sink_yaml` goes under `spool:`).
fn config(scratch: &Scratch, nats: &NatsServer, extra_sink_yaml: &str) -> PathBuf {
    config_with_sinks(
        scratch,
        &format!(
            "  bus:
    chain: default
    nats:
      url: {url}
      subject: 'event.k8s.{{cluster}}.{{severity}}'
      ack_timeout: 1s
    spool:
      dir: {spool}
      after: 1s
{extra_sink_yaml}",
            url = nats.url(),
            spool = scratch.path("spool").display(),
        ),
    )
}

fn replay(config: &Path, input: &Path) -> String {
    publishing::replay(Path::new(BINARY), config, input)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn create_stream(nats: &NatsServer) -> jetstream::Context {
    event_stream(&nats.url(), async_nats::ConnectOptions::new()).await
}

async fn read_stream(js: &jetstream::Context) -> Vec<(String, String, Value)> {
    read_event_stream(js).await
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
    let validator = standard_event_schema();
    let mut ids = BTreeSet::new();
    for ((subject, id, payload), expected) in messages.iter().zip(&golden) {
        assert_valid(&validator, payload);
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

#[test]
fn with_format_cloudevents_each_message_is_a_valid_structured_cloudevent() {
    let nats = NatsServer::start();
    let runtime = runtime();
    let js = runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  bus:\n    chain: default\n    format: cloudevents\n    nats: {{ url: '{}' }}\n    spool: {{ dir: {} }}",
            nats.url(),
            scratch.path("spool").display()
        ),
    );
    replay(&config, &repo_root().join("examples/events.jsonl"));

    let mut stream = runtime.block_on(js.get_stream("EVENTS")).unwrap();
    let count = runtime.block_on(stream.info()).unwrap().state.messages;
    let golden = golden();
    assert_eq!(count as usize, golden.len());
    let validator = publishing::cloudevent_schema();
    for (sequence, expected) in (1..=count).zip(&golden) {
        let message = runtime.block_on(stream.get_raw_message(sequence)).unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_valid(&validator, &event);
        assert_eq!(event["id"], expected["id"]);
        assert_eq!(event["data"], *expected, "data is the StandardEvent");
        assert_eq!(
            message.headers.get("Content-Type").map(|v| v.as_str()),
            Some("application/cloudevents+json")
        );
        assert_eq!(
            message.subject.as_str(),
            format!("event.k8s.replay.{}", event["severity"].as_str().unwrap())
        );
    }
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
    let mut replay = BackgroundReplay::start(
        Path::new(BINARY),
        &config,
        &input,
        scratch.path("replay.log"),
    );
    // It waits for the broker rather than dropping or exiting.
    replay.wait_until("the outage is noticed", |logs| {
        logs.contains("cannot publish to NATS")
    });
    nats.restart();
    let logs = replay.finish();
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
    let dead = with_dead_letter_file(&scratch, &config);
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
    use aetherius_tests::publishing::{create_backoff_events, watch_cluster};
    use aetherius_tests::running::Running;
    use aetherius_tests::servers::KubeCluster;

    let cluster = KubeCluster::start();
    cluster.create_namespace("shop");
    let mut nats = NatsServer::start();
    let runtime = runtime();
    runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config(&scratch, &nats, "");
    watch_cluster(&scratch, &config, &cluster, "test");
    let create = |range| create_backoff_events(&cluster, "shop", range);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create(0..20);
    nats.stop();
    create(20..120);
    // Spooled to disk and checkpointed past them, then killed.
    kill_once_spooled(run, &scratch.path("spool"), 100);

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

/// The counters of the `sink finished` line in replay's logs.
fn sink_report(logs: &str) -> Value {
    let line = logs
        .lines()
        .find(|l| l.contains("sink finished"))
        .unwrap_or_else(|| panic!("no `sink finished` line:\n{logs}"));
    serde_json::from_str::<Value>(line).unwrap()["fields"].clone()
}

#[test]
fn a_full_spool_with_drop_new_drops_counts_and_says_so_once() {
    let mut nats = NatsServer::start();
    let runtime = runtime();
    runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config(
        &scratch,
        &nats,
        "      max_size: 64Ki\n      when_full: drop-new",
    );
    let input = distinct_events(&scratch, 1000, None);

    nats.stop();
    let logs = replay(&config, &input);
    assert_eq!(
        logs.matches("the spool is full; dropping new messages")
            .count(),
        1,
        "{logs}"
    );
    let report = sink_report(&logs);
    let spooled = report["spooled"].as_u64().unwrap();
    let dropped = report["spool_dropped"].as_u64().unwrap();
    assert!(spooled > 0 && dropped > 0, "{report}");
    assert_eq!(spooled + dropped, 1000, "{report}");
    assert_eq!(spooled_lines(&scratch.path("spool")) as u64, spooled);

    nats.restart();
    let logs = replay(&config, Path::new("/dev/null"));
    assert_eq!(sink_report(&logs)["drained"].as_u64(), Some(spooled));
    let js = runtime.block_on(create_stream(&nats));
    let messages = runtime.block_on(read_stream(&js));
    assert_eq!(messages.len() as u64, spooled, "what was spooled arrives");
}

#[test]
fn a_full_spool_with_block_holds_the_pipeline_until_the_broker_is_back() {
    let mut nats = NatsServer::start();
    let runtime = runtime();
    runtime.block_on(create_stream(&nats));
    let scratch = Scratch::new();
    let config = config(
        &scratch,
        &nats,
        "      max_size: 64Ki\n      when_full: block",
    );
    let input = distinct_events(&scratch, 1000, None);

    nats.stop();
    let mut replay = BackgroundReplay::start(
        Path::new(BINARY),
        &config,
        &input,
        scratch.path("replay.log"),
    );
    let spool = scratch.path("spool");
    replay.wait_until("spooling", |_| spooled_lines(&spool) > 0);
    // Blocked, not dropping: the spool stays within one batch of its bound
    // and the replay cannot finish while NATS is down.
    let spooled = spooled_lines(&spool);
    std::thread::sleep(Duration::from_secs(3));
    assert!(replay.is_running(), "replay ended while NATS was down");
    assert_eq!(spooled_lines(&spool), spooled, "the spool did not grow");

    nats.restart();
    let logs = replay.finish();
    let report = sink_report(&logs);
    assert_eq!(report["spool_dropped"].as_u64(), Some(0), "{report}");
    let js = runtime.block_on(create_stream(&nats));
    let messages = runtime.block_on(read_stream(&js));
    let names: BTreeSet<String> = messages
        .iter()
        .map(|(_, _, p)| p["labels"]["involved_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 1000, "all 1,000 arrived");
    assert_eq!(messages.len(), 1000, "none twice");
}

fn auth_config(scratch: &Scratch, name: &str, url: &str, auth_yaml: &str) -> PathBuf {
    let config = config_with_sinks(
        scratch,
        &format!(
            "  bus:\n    chain: default\n    nats:\n      url: {url}\n      ack_timeout: 1s\n{auth_yaml}\n    spool: {{ dir: {}, after: 1s }}",
            scratch.path(&format!("spool-{name}")).display()
        ),
    );
    let renamed = scratch.path(&format!("{name}.yaml"));
    std::fs::rename(config, &renamed).unwrap();
    renamed
}

#[test]
fn token_over_tls_and_user_password_connections_publish_and_bad_credentials_say_so() {
    use aetherius_tests::servers::TestCertificates;

    let scratch = Scratch::new();
    let certs = TestCertificates::generate(scratch.dir.path());
    let runtime = runtime();
    let input = repo_root().join("examples/events.jsonl");
    let expected = golden().len();

    // A token from a file, over TLS verified against the test CA.
    let nats = NatsServer::start_with(&[
        "--auth",
        "s3cret-token",
        "--tls",
        "--tlscert",
        certs.cert.to_str().unwrap(),
        "--tlskey",
        certs.key.to_str().unwrap(),
    ]);
    let url = format!("tls://127.0.0.1:{}", nats.port());
    let js = runtime.block_on(event_stream(
        &url,
        async_nats::ConnectOptions::with_token("s3cret-token".into())
            .require_tls(true)
            .add_root_certificates(certs.ca.clone()),
    ));
    let token = scratch.write("token", "s3cret-token\n");
    let config = auth_config(
        &scratch,
        "tls",
        &url,
        &format!(
            "      auth: {{ token_file: {} }}\n      tls: {{ ca_file: {} }}",
            token.display(),
            certs.ca.display()
        ),
    );
    replay(&config, &input);
    assert_eq!(runtime.block_on(read_stream(&js)).len(), expected);

    // User and password from a file.
    let nats = NatsServer::start_with(&["--user", "aetherius", "--pass", "pa55word"]);
    let js = runtime.block_on(event_stream(
        &nats.url(),
        async_nats::ConnectOptions::with_user_and_password("aetherius".into(), "pa55word".into()),
    ));
    let password = scratch.write("password", "pa55word\n");
    let config = auth_config(
        &scratch,
        "user",
        &nats.url(),
        &format!(
            "      auth: {{ user: aetherius, password_file: {} }}",
            password.display()
        ),
    );
    replay(&config, &input);
    assert_eq!(runtime.block_on(read_stream(&js)).len(), expected);

    // A wrong password: nothing published, the reason logged at ERROR.
    let config = auth_config(
        &scratch,
        "wrong",
        &nats.url(),
        "      auth: { user: aetherius, password: wrong }",
    );
    let logs = replay(&config, &input);
    let errors: Vec<&str> = logs.lines().filter(|l| l.contains("\"ERROR\"")).collect();
    assert_eq!(errors.len(), 1, "logged once:\n{logs}");
    assert!(
        errors[0].contains("authorization violation"),
        "{}",
        errors[0]
    );
    assert_eq!(runtime.block_on(read_stream(&js)).len(), expected);
}

#[test]
fn a_credentials_file_authenticates_against_an_operator_mode_server() {
    use aetherius_tests::servers::NatsCredentials;

    let scratch = Scratch::new();
    let credentials = NatsCredentials::generate(scratch.dir.path());
    let nats = NatsServer::start_with(&["--config", credentials.server_config.to_str().unwrap()]);
    let runtime = runtime();
    let subscriber = runtime.block_on(async {
        assert!(
            async_nats::connect(nats.url()).await.is_err(),
            "the server lets nobody in without credentials"
        );
        let client = async_nats::ConnectOptions::with_credentials_file(credentials.creds.clone())
            .await
            .expect("read the creds file")
            .connect(nats.url())
            .await
            .expect("the test's own client connects with the creds");
        let subscriber = client.subscribe("event.k8s.>").await.unwrap();
        client.flush().await.unwrap();
        (client, subscriber)
    });
    let config = auth_config(
        &scratch,
        "creds",
        &nats.url(),
        &format!(
            "      jetstream: false\n      auth: {{ credentials_file: {} }}",
            credentials.creds.display()
        ),
    );
    replay(&config, &repo_root().join("examples/events.jsonl"));
    let expected = golden().len();
    let received = runtime.block_on(async {
        let (_client, mut subscriber) = subscriber;
        let mut received = 0;
        while received < expected {
            tokio::time::timeout(
                Duration::from_secs(10),
                futures::StreamExt::next(&mut subscriber),
            )
            .await
            .expect("every message within 10 s")
            .expect("the subscription stays open");
            received += 1;
        }
        received
    });
    assert_eq!(received, expected);
}
