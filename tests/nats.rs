//! What only the NATS sink does, against a real nats-server with JetStream
//! (DESIGN.md §11), fed by `aetherius replay`: JetStream's deduplication,
//! CloudEvents headers, a bounded spool, authentication and TLS. What every
//! broker sink does is tested in brokers.rs, against NATS too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aetherius_tests::brokers::{Nats, TestBroker, broker_config};
use aetherius_tests::publishing::{
    self, BackgroundReplay, assert_valid, config_with_sinks, distinct_events, event_stream, golden,
    involved_names, read_event_stream, spooled_lines,
};
use aetherius_tests::servers::NatsServer;
use aetherius_tests::{Scratch, repo_root};
use async_nats::jetstream;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

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
fn jetstream_drops_the_same_occurrences_published_again_by_their_message_ids() {
    let nats = Nats::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(&scratch, &nats, "");
    let input = repo_root().join("examples/events.jsonl");

    replay(&config, &input);
    let golden = golden();
    assert_eq!(
        nats.read_all().len(),
        golden.len(),
        "as many as the file sink publishes"
    );
    // The same occurrences again: JetStream drops them by their message ids.
    replay(&config, &input);
    assert_eq!(nats.read_all().len(), golden.len());
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
    let mut nats = Nats::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(
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
    let messages = nats.read_all();
    assert_eq!(messages.len() as u64, spooled, "what was spooled arrives");
}

#[test]
fn a_full_spool_with_block_holds_the_pipeline_until_the_broker_is_back() {
    let mut nats = Nats::start("replay");
    let scratch = Scratch::new();
    let config = broker_config(
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
    let messages = nats.read_all();
    let names: BTreeSet<String> = involved_names(messages.iter().map(|m| &m.payload))
        .into_iter()
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
