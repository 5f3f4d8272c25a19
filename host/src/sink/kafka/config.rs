//! `sinks.NAME.kafka` — a Kafka cluster to publish to.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::output::Template;
use crate::units::{Checked, HumanDuration};

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
    #[serde(default = "default_topic")]
    pub topic: Checked<Template>,
    /// Message key template: default `{fingerprint}`, so that every
    /// occurrence of one event lands on the same partition, in order.
    #[serde(default = "default_key")]
    pub key: Checked<Template>,
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

impl KafkaSinkConfig {
    /// What is wrong with it, `at` being its YAML path. (Whether librdkafka
    /// takes `options` is `aetherius check`'s to find out.)
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, template) in [("topic", &self.topic), ("key", &self.key)] {
            if let Some(error) = template.problem() {
                problems.push(format!("at `{at}.{field}`: {error}"));
            }
        }
        if self.brokers.trim().is_empty() {
            problems.push(format!("at `{at}.brokers`: give at least one `host:port`"));
        }
        if self.delivery_timeout.0 < std::time::Duration::from_millis(1) {
            problems.push(format!("at `{at}.delivery_timeout`: must be at least 1ms"));
        }
        for key in self.options.keys().chain(self.option_files.keys()) {
            if let Some((_, field)) = KAFKA_MANAGED_OPTIONS.iter().find(|(k, _)| k == key) {
                problems.push(if field.is_empty() {
                    format!(
                        "at `{at}.options.{key}`: always set by Aetherius (idempotent producer, acks=all); remove it"
                    )
                } else {
                    format!("at `{at}.options.{key}`: set by Aetherius; use `kafka.{field}`")
                });
            }
        }
        problems
    }
}

fn default_topic() -> Checked<Template> {
    Checked::from("event.k8s.{cluster}.{severity}")
}

fn default_key() -> Checked<Template> {
    Checked::from("{fingerprint}")
}

fn default_delivery_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn default_linger() -> HumanDuration {
    HumanDuration::from_millis(5)
}

fn default_client_name() -> String {
    "aetherius".into()
}
