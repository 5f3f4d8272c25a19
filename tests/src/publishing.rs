//! What the broker-sink tests share: configs around the default chain, a
//! `replay` run to the end or in the background, generated events, the
//! golden output, the JSON Schemas of the output, a look into a sink's
//! spool, and a cluster to watch with events to create.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use serde_json::Value;

use crate::running::{Running, warning_event};
use crate::servers::KubeCluster;
use crate::{Scratch, compile_cache, repo_root};

/// A config: the default plugins and chain, `sinks` (YAML under `sinks:`),
/// the test plugin cache and a checkpoint file in `scratch`.
pub fn config_with_sinks(scratch: &Scratch, sinks: &str) -> PathBuf {
    let default = std::fs::read_to_string(repo_root().join("config/default.yaml"))
        .expect("read config/default.yaml");
    let head = &default[..default.find("\nsinks:").expect("default.yaml has sinks")];
    scratch.write(
        "config.yaml",
        format!(
            "{head}
sinks:
{sinks}
plugin_runtime: {{ cache_dir: {cache} }}
checkpoint: {{ file: {checkpoint}, interval: 50ms }}
",
            cache = compile_cache().display(),
            checkpoint = scratch.path("checkpoints.json").display(),
        ),
    )
}

/// Rewrites `config` so that its first sink takes a chain without the
/// secret guard, a `failures` file sink takes the dead-letter chain, and
/// messages of up to 1 MiB go through uncut (`events:`), so that a 700 KiB
/// one makes an output line the broker refuses; returns the `failures` file.
pub fn with_dead_letter_file(scratch: &Scratch, config: &Path) -> PathBuf {
    let dead = scratch.path("dead-letter.jsonl");
    let yaml = std::fs::read_to_string(config).expect("read the config");
    let (head, sinks) = yaml.split_once("\nsinks:").expect("a sinks section");
    let yaml = format!(
        "{head}\n  small: [warnings-only, severity]\nsinks:{}",
        sinks.replacen("chain: default", "chain: small", 1)
    );
    let yaml = yaml.replace(
        "plugin_runtime:",
        &format!(
            "  failures:\n    chain: dead-letter\n    file: {{ path: {} }}\nevents: {{ max_message: 1Mi, max_raw_data: 2Mi }}\nplugin_runtime:",
            dead.display()
        ),
    );
    std::fs::write(config, yaml).expect("write the config");
    dead
}

/// Runs `aetherius replay` to the end with JSON logs at INFO; returns its
/// stderr.
///
/// # Panics
///
/// If it fails; the message carries its stderr.
pub fn replay(binary: &Path, config: &Path, input: &Path) -> String {
    let output = Command::new(binary)
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

/// Writes `count` distinct BackOff Warning events (pods `web-0`...), one per
/// line; the one at `big_message_at` has a 700 KiB message, which makes its
/// `StandardEvent` larger than 1 MiB (the message appears twice).
pub fn distinct_events(scratch: &Scratch, count: usize, big_message_at: Option<usize>) -> PathBuf {
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

/// What the default chain publishes for `examples/events.jsonl`.
pub fn golden() -> Vec<Value> {
    std::fs::read_to_string(repo_root().join("tests/golden/default-replay.jsonl"))
        .expect("read the golden output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("golden lines are JSON"))
        .collect()
}

/// A validator for `schema/standard-event.schema.json`.
pub fn standard_event_schema() -> jsonschema::Validator {
    schema("standard-event.schema.json")
}

/// A validator for `schema/cloudevent.schema.json` (which refers to the
/// StandardEvent schema for `data`).
pub fn cloudevent_schema() -> jsonschema::Validator {
    schema("cloudevent.schema.json")
}

/// A validator for `schema/NAME`; references between the repository's
/// schemas (by their `$id`) resolve offline.
pub fn schema(name: &str) -> jsonschema::Validator {
    let read = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("schema").join(name))
                .unwrap_or_else(|e| panic!("read schema/{name}: {e}")),
        )
        .unwrap_or_else(|e| panic!("schema/{name} is not JSON: {e}"))
    };
    let mut registry = jsonschema::Registry::new();
    for other in ["standard-event.schema.json", "cloudevent.schema.json"] {
        let contents = read(other);
        let id = contents["$id"]
            .as_str()
            .expect("schemas have an $id")
            .to_owned();
        registry = registry.add(id, contents).expect("register a schema");
    }
    let registry = registry.prepare().expect("the schemas resolve");
    jsonschema::options()
        .with_registry(&registry)
        .should_validate_formats(true)
        .build(&read(name))
        .unwrap_or_else(|e| panic!("schema/{name} is not a valid JSON Schema: {e}"))
}

/// Panics with every violation if `value` does not match `validator`.
pub fn assert_valid(validator: &jsonschema::Validator, value: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{value} violates the schema: {errors:?}");
}

/// The pod names (`labels.involved_name`) of published events.
pub fn involved_names<'a>(events: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    events
        .into_iter()
        .map(|e| {
            e["labels"]["involved_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Lines in a spool's segment files.
pub fn spooled_lines(dir: &Path) -> usize {
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

/// `aetherius replay` running in the background, its JSON logs (INFO) going
/// to a file: for tests that stop and start a broker under it.
pub struct BackgroundReplay {
    child: Child,
    log: PathBuf,
}

impl BackgroundReplay {
    /// Starts `aetherius replay --config CONFIG --input INPUT`, logging to
    /// `log`.
    pub fn start(binary: &Path, config: &Path, input: &Path, log: PathBuf) -> Self {
        let child = Command::new(binary)
            .args(["--log-format", "json", "replay", "--config"])
            .arg(config)
            .arg("--input")
            .arg(input)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).expect("create the replay log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start aetherius replay");
        Self { child, log }
    }

    /// What it has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("check on replay").is_none()
    }

    /// Polls `ready` (given the logs so far) until it holds.
    ///
    /// # Panics
    ///
    /// If the replay ends first or a minute passes; the message carries
    /// the logs.
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let logs = self.logs();
            if ready(&logs) {
                return;
            }
            assert!(self.is_running(), "replay ended before {what}:\n{logs}");
            assert!(
                Instant::now() < deadline,
                "no {what} within a minute:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for it to end and returns its logs.
    ///
    /// # Panics
    ///
    /// If it fails; the message carries the logs.
    pub fn finish(mut self) -> String {
        let status = self.child.wait().expect("wait for replay");
        let logs = self.logs();
        assert!(status.success(), "replay failed ({status}):\n{logs}");
        logs
    }
}

/// Appends a `clusters:` entry watching `namespaces` of `cluster` (id `id`)
/// to `config`; every namespace if `namespaces` is empty.
pub fn watch_cluster(
    scratch: &Scratch,
    config: &Path,
    cluster: &KubeCluster,
    id: &str,
    namespaces: &[&str],
) {
    let kubeconfig = scratch.path(&format!("kubeconfig-{id}"));
    cluster.write_kubeconfig(&kubeconfig);
    let namespaces = if namespaces.is_empty() {
        String::new()
    } else {
        format!(", namespaces: [{}]", namespaces.join(", "))
    };
    let mut yaml = std::fs::read_to_string(config).expect("read the config");
    yaml.push_str(&format!(
        "clusters:\n  - {{ id: {id}, kubeconfig: {}{namespaces} }}\n",
        kubeconfig.display()
    ));
    std::fs::write(config, yaml).expect("write the config");
}

/// Creates a BackOff Warning event `e-I` about pod `pod-I` in `namespace`
/// for each I in `range`.
pub fn create_backoff_events(cluster: &KubeCluster, namespace: &str, range: Range<u32>) {
    for i in range {
        let body = warning_event(
            namespace,
            &format!("e-{i}"),
            &format!("pod-{i}"),
            "BackOff",
            "Back-off restarting failed container app",
            1,
            0,
        );
        cluster.create_event(namespace, &body);
    }
}

/// Connects with `options` and creates (or finds) the stream `EVENTS` that
/// takes `event.k8s.>`: file storage, duplicates dropped for 2 minutes.
pub async fn event_stream(url: &str, options: async_nats::ConnectOptions) -> jetstream::Context {
    let client = options.connect(url).await.expect("connect to NATS");
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

/// Every message in `EVENTS`, in order: subject, `Nats-Msg-Id`, payload.
pub async fn read_event_stream(js: &jetstream::Context) -> Vec<(String, String, Value)> {
    let mut stream = js.get_stream("EVENTS").await.expect("the stream exists");
    let count = stream.info().await.expect("stream info").state.messages;
    let mut messages = Vec::new();
    for sequence in 1..=count {
        let message = stream
            .get_raw_message(sequence)
            .await
            .expect("read a message");
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let payload: Value = serde_json::from_slice(&message.payload).expect("JSON payloads");
        messages.push((message.subject.to_string(), id, payload));
    }
    messages
}

/// Waits until the spool in `dir` holds `lines` messages (and a moment for
/// the checkpoint to pass them), then kills `run` with SIGKILL.
///
/// # Panics
///
/// If that does not happen within a minute; the message carries the logs.
pub fn kill_once_spooled(mut run: Running, dir: &Path, lines: usize) {
    run.wait_for_logs(&["then spooling to disk"], 1, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while spooled_lines(dir) < lines {
        assert!(Instant::now() < deadline, "{}", run.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    run.kill();
}
