//! Sinks as declared in YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ByteSize, HumanDuration};
use crate::event::Severity;

/// One named sink (`sinks.NAME` in YAML). Exactly one of the output kinds
/// (`stdout`, `file`, `nats`, `kafka`) must be given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The chain whose output this sink publishes, or `dead-letter` for the
    /// events that a stage with `on_failure: dead-letter` could not process.
    pub chain: String,
    /// Wire format of each published line.
    #[serde(default)]
    pub format: OutputFormat,
    /// Publish only occurrences at least this severe (default: all).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Write JSON lines to standard output.
    #[serde(default)]
    pub stdout: Option<StdoutSinkConfig>,
    /// Append JSON lines to a file.
    #[serde(default)]
    pub file: Option<FileSinkConfig>,
    /// Publish to NATS (JetStream with acknowledgements by default).
    #[serde(default)]
    pub nats: Option<NatsSinkConfig>,
    /// Publish to Kafka (idempotent producer, `acks=all`).
    #[serde(default)]
    pub kafka: Option<KafkaSinkConfig>,
    /// Where a broker sink's messages wait while the broker is down.
    #[serde(default)]
    pub spool: SpoolConfig,
}

/// A broker sink's disk spool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Spool at all (default). Without a spool, a broker that is down holds
    /// the pipeline until it is back.
    pub enabled: bool,
    /// Directory for this sink's spool (default: `spool/SINK` in the state
    /// directory, next to the checkpoint file).
    pub dir: Option<PathBuf>,
    /// Undelivered bytes at most (default 256Mi).
    pub max_size: ByteSize,
    /// Retry in memory this long before spooling (default 10s).
    pub after: HumanDuration,
    /// When the spool is full: `block` (default; the pipeline and the watch
    /// wait, nothing is lost, the checkpoint stays put) or `drop-new` (new
    /// messages are dropped, counted and logged).
    pub when_full: WhenFull,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            max_size: ByteSize(256 << 20),
            after: HumanDuration::from_secs(10),
            when_full: WhenFull::Block,
        }
    }
}

/// What a full spool does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenFull {
    #[default]
    Block,
    DropNew,
}

/// The output kinds a sink can have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SinkKind<'a> {
    Stdout(&'a StdoutSinkConfig),
    File(&'a FileSinkConfig),
    Nats(&'a NatsSinkConfig),
    Kafka(&'a KafkaSinkConfig),
}

impl SinkConfig {
    /// The one output kind this sink has, or the names of all it has (zero
    /// or several), for the error message.
    pub fn kind(&self) -> Result<SinkKind<'_>, Vec<&'static str>> {
        let mut kinds = Vec::new();
        if let Some(stdout) = &self.stdout {
            kinds.push(SinkKind::Stdout(stdout));
        }
        if let Some(file) = &self.file {
            kinds.push(SinkKind::File(file));
        }
        if let Some(nats) = &self.nats {
            kinds.push(SinkKind::Nats(nats));
        }
        if let Some(kafka) = &self.kafka {
            kinds.push(SinkKind::Kafka(kafka));
        }
        match kinds.len() {
            1 => Ok(kinds.remove(0)),
            _ => Err(kinds
                .iter()
                .map(|kind| match kind {
                    SinkKind::Stdout(_) => "stdout",
                    SinkKind::File(_) => "file",
                    SinkKind::Nats(_) => "nats",
                    SinkKind::Kafka(_) => "kafka",
                })
                .collect()),
        }
    }
}

/// Standard output: nothing to configure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {}

/// A JSON-lines file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file to append to (created if missing; relative to the config file).
    pub path: PathBuf,
}

/// A NATS server (or cluster) to publish to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Server URL(s), comma-separated: `nats://host:4222`, `tls://host:4222`.
    pub url: String,
    /// Subject template (see `sink::template`): default
    /// `event.k8s.{cluster}.{severity}`.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Publish through JetStream and wait for the stream's acknowledgement
    /// (default). The occurrence id is the `Nats-Msg-Id`, so the stream drops
    /// a message it already has. `false`: core NATS, fire and forget.
    #[serde(default = "yes")]
    pub jetstream: bool,
    /// How long to wait for a JetStream acknowledgement (default 5s).
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: HumanDuration,
    /// Client name shown by the server (default `aetherius`).
    #[serde(default = "default_client_name")]
    pub name: String,
    #[serde(default)]
    pub auth: NatsAuth,
    /// TLS: given, the connection must use TLS.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// A Kafka cluster to publish to. The producer is idempotent with
/// `acks=all`: the brokers write each message once per attempt and in order
/// per partition, and acknowledge it only when every in-sync replica has it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, comma-separated: `kafka-0:9092,kafka-1:9092`.
    pub brokers: String,
    /// Topic template (fields as for NATS subjects): default
    /// `event.k8s.{cluster}.{severity}`. The topics must exist unless the
    /// brokers create them on first use.
    #[serde(default = "default_subject")]
    pub topic: String,
    /// Message key template: default `{fingerprint}`, so that every
    /// occurrence of one event lands on the same partition, in order.
    #[serde(default = "default_key")]
    pub key: String,
    /// How long the producer may keep trying one message (librdkafka's
    /// `message.timeout.ms`) before the sink retries it itself and, after
    /// `spool.after`, spools it (default 10s).
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout: HumanDuration,
    /// How long the producer waits to fill a batch (`linger.ms`, default 5ms).
    #[serde(default = "default_linger")]
    pub linger: HumanDuration,
    /// Client id shown by the brokers (default `aetherius`).
    #[serde(default = "default_client_name")]
    pub client_id: String,
    /// Further librdkafka producer properties, passed through as they are:
    /// TLS (`security.protocol: ssl`, `ssl.ca.location`, ...), SASL
    /// (`sasl.mechanism`, `sasl.username`, `sasl.password`), compression, ...
    /// See <https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md>.
    #[serde(default)]
    pub options: BTreeMap<String, Scalar>,
    /// Properties whose value is the (trimmed) content of a file, e.g.
    /// `sasl.password: /var/run/secrets/kafka/password` from a mounted
    /// Secret (relative to the config file).
    #[serde(default)]
    pub option_files: BTreeMap<String, PathBuf>,
}

/// Producer properties Aetherius sets itself; `options` must not.
pub const KAFKA_MANAGED_OPTIONS: &[(&str, &str)] = &[
    ("bootstrap.servers", "brokers"),
    ("metadata.broker.list", "brokers"),
    ("client.id", "client_id"),
    ("message.timeout.ms", "delivery_timeout"),
    ("delivery.timeout.ms", "delivery_timeout"),
    ("linger.ms", "linger"),
    ("queue.buffering.max.ms", "linger"),
    ("enable.idempotence", ""),
    ("acks", ""),
    ("request.required.acks", ""),
];

/// A YAML scalar taken as text: `9092`, `true` and `"gzip"` all work.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "ScalarValue")]
pub struct Scalar(pub String);

#[derive(Deserialize)]
#[serde(untagged)]
enum ScalarValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl From<ScalarValue> for Scalar {
    fn from(value: ScalarValue) -> Self {
        Self(match value {
            ScalarValue::Bool(b) => b.to_string(),
            ScalarValue::Int(i) => i.to_string(),
            ScalarValue::Float(f) => f.to_string(),
            ScalarValue::Text(t) => t,
        })
    }
}

/// NATS credentials: at most one way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A token, or a file holding it (`token_file`, e.g. a mounted Secret).
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub user: Option<String>,
    /// With `user`: the password, or a file holding it.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A `.creds` file (JWT + NKey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// Certificates for TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate(s) (PEM) to verify the server with; default: the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_subject() -> String {
    "event.k8s.{cluster}.{severity}".into()
}

fn default_key() -> String {
    "{fingerprint}".into()
}

fn default_delivery_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn default_linger() -> HumanDuration {
    HumanDuration::from_millis(5)
}

fn yes() -> bool {
    true
}

fn default_ack_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn default_client_name() -> String {
    "aetherius".into()
}

/// Wire format of a published event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// The `StandardEvent` JSON (schema: `schema/standard-event.schema.json`).
    #[default]
    Standard,
    /// CloudEvents 1.0, structured JSON mode, with the `StandardEvent` as `data`.
    Cloudevents,
}
