//! The design document's `watcher-config.yaml` (its `WatcherConfig` plus
//! `message_bus_url`), loaded as written. It is read into its own type, with
//! the document's defaults, and then written out as the native config that
//! does the same thing — so there is one pipeline, and `aetherius check
//! --print-native` can show a user the config to grow into.
//!
//! What each key becomes:
//!
//! | document | native |
//! |---|---|
//! | `cluster_id`, `kubeconfig`, `namespaces`, `resync_period` | `clusters[0]` |
//! | `event_types` | a `builtin:type-filter` stage (none when empty) |
//! | `reason_filters` | a `builtin:reason-filter` stage (none when empty) |
//! | (always) | the 5-minute `builtin:time-filter`, `builtin:secret-guard`, `builtin:severity-mapper` |
//! | `min_severity` | the sink's `min_severity` (`Warning` = `low`: every Warning) |
//! | `worker_count`, `buffer_size` | `pipeline.workers`, `pipeline.buffer_size` |
//! | `message_bus_url` | a NATS (JetStream) or Kafka sink on `event.k8s.received`; stdout without it |
//! | (always) | `dedup.window: fixed`, 5 minutes: the document's deduplicator |

use std::path::PathBuf;

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::event::Severity;
use crate::units::HumanDuration;

/// The keys that make a file the document's format: any of them, and none
/// of the native top-level keys.
pub const KEYS: &[&str] = &[
    "cluster_id",
    "kubeconfig",
    "namespaces",
    "resync_period",
    "event_types",
    "reason_filters",
    "min_severity",
    "worker_count",
    "buffer_size",
    "message_bus_url",
];

/// The subject (NATS) or topic (Kafka) the document publishes to.
pub const SUBJECT: &str = "event.k8s.received";

/// The design document's watcher config. Every key is optional; the defaults
/// are the document's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatcherConfig {
    /// The cluster's id (default `default`).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// A kubeconfig file (default: `$KUBECONFIG`, `~/.kube/config`, then
    /// in-cluster).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces to watch; empty: all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// How often the watch relists (default 30m).
    #[serde(default = "default_resync")]
    pub resync_period: HumanDuration,
    /// Event types to keep (`Warning`, `Normal`); empty: all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Reasons to keep; empty: all.
    #[serde(default)]
    pub reason_filters: Vec<String>,
    /// The least severe event published (default `Warning`).
    #[serde(default)]
    pub min_severity: MinSeverity,
    /// Parallel pipeline workers (default 5).
    #[serde(default = "default_workers")]
    pub worker_count: usize,
    /// Events that may wait between the watches and the pipeline (default
    /// 1000).
    #[serde(default = "default_buffer")]
    pub buffer_size: usize,
    /// `nats://host:4222` (JetStream), `kafka://host:9092`; none: stdout.
    #[serde(default)]
    pub message_bus_url: Option<String>,
}

fn default_resync() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}
fn default_workers() -> usize {
    5
}
fn default_buffer() -> usize {
    1000
}

/// `min_severity` as the document writes it (`Warning`, `Normal`) or on the
/// severity scale (`info` … `critical`, any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinSeverity(pub Severity);

impl Default for MinSeverity {
    fn default() -> Self {
        Self(Severity::Low)
    }
}

impl<'de> Deserialize<'de> for MinSeverity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let severity = match text.to_ascii_lowercase().as_str() {
            // Every Warning is at least `low`; a Normal event is `info`.
            "warning" => Severity::Low,
            "normal" | "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => {
                return Err(serde::de::Error::custom(format!(
                    "unknown severity `{text}`; expected Warning, Normal, or one of info, low, medium, high, critical"
                )));
            }
        };
        Ok(Self(severity))
    }
}

/// A `message_bus_url` that names no bus Aetherius speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "at `message_bus_url`: `{0}` is not a NATS or Kafka URL; expected nats://HOST:PORT (tls:// for TLS) or kafka://HOST:PORT[,HOST:PORT]"
)]
pub struct BusUrlError(String);

impl WatcherConfig {
    /// The native config that runs the same pipeline, as YAML with a header
    /// saying where it came from.
    pub fn to_native_yaml(&self, from: &str) -> Result<String, BusUrlError> {
        let mut root = Mapping::new();

        let mut cluster = Mapping::new();
        insert(
            &mut cluster,
            "id",
            self.cluster_id.as_deref().unwrap_or("default"),
        );
        if let Some(kubeconfig) = &self.kubeconfig {
            insert(&mut cluster, "kubeconfig", kubeconfig.display().to_string());
        }
        if !self.namespaces.is_empty() {
            insert(&mut cluster, "namespaces", strings(&self.namespaces));
        }
        insert(
            &mut cluster,
            "resync_period",
            self.resync_period.to_string(),
        );
        insert(&mut root, "clusters", vec![Value::Mapping(cluster)]);

        let mut plugins = Mapping::new();
        let mut chain = Vec::new();
        let mut stage = |name: &str, source: &str, config: Option<Value>, fail_closed: bool| {
            let mut plugin = Mapping::new();
            insert(&mut plugin, "source", source);
            if let Some(config) = config {
                insert(&mut plugin, "config", config);
            }
            if fail_closed {
                insert(&mut plugin, "on_failure", "fail-closed");
            }
            insert(&mut plugins, name, plugin);
            chain.push(Value::from(name));
        };
        let allow = |list: &[String]| {
            let mut config = Mapping::new();
            insert(&mut config, "allow", strings(list));
            Some(Value::Mapping(config))
        };
        if !self.event_types.is_empty() {
            stage(
                "event-types",
                "builtin:type-filter",
                allow(&self.event_types),
                false,
            );
        }
        if !self.reason_filters.is_empty() {
            stage(
                "reasons",
                "builtin:reason-filter",
                allow(&self.reason_filters),
                false,
            );
        }
        let mut max_age = Mapping::new();
        insert(&mut max_age, "max_age", "5m");
        stage(
            "max-age",
            "builtin:time-filter",
            Some(Value::Mapping(max_age)),
            false,
        );
        // A guard that cannot run must not let a secret through.
        stage("secret-guard", "builtin:secret-guard", None, true);
        stage("severity", "builtin:severity-mapper", None, false);
        insert(&mut root, "plugins", plugins);
        let mut chains = Mapping::new();
        insert(&mut chains, "default", chain);
        insert(&mut root, "chains", chains);

        let mut sink = Mapping::new();
        insert(&mut sink, "chain", "default");
        if self.min_severity.0 > Severity::Info {
            insert(&mut sink, "min_severity", self.min_severity.0.as_str());
        }
        let (name, output) = self.output()?;
        insert(&mut sink, name, output);
        let mut sinks = Mapping::new();
        insert(&mut sinks, name, sink);
        insert(&mut root, "sinks", sinks);

        let mut dedup = Mapping::new();
        insert(&mut dedup, "ttl", "5m");
        insert(&mut dedup, "window", "fixed");
        insert(&mut root, "dedup", dedup);
        let mut pipeline = Mapping::new();
        insert(&mut pipeline, "workers", self.worker_count as u64);
        insert(&mut pipeline, "buffer_size", self.buffer_size as u64);
        insert(&mut root, "pipeline", pipeline);

        let body = serde_yaml_ng::to_string(&Value::Mapping(root))
            .expect("a YAML mapping of strings and numbers serializes");
        Ok(format!(
            "# The native Aetherius config equivalent to {from}\n\
             # (the design document's watcher-config.yaml format).\n{body}"
        ))
    }

    /// The sink kind and its settings for `message_bus_url`.
    fn output(&self) -> Result<(&'static str, Mapping), BusUrlError> {
        let mut output = Mapping::new();
        let Some(url) = self.message_bus_url.as_deref().map(str::trim) else {
            return Ok(("stdout", output));
        };
        let error = || BusUrlError(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(error)?;
        if rest.is_empty() {
            return Err(error());
        }
        match scheme {
            "nats" | "tls" => {
                insert(&mut output, "url", url);
                insert(&mut output, "subject", SUBJECT);
                Ok(("nats", output))
            }
            "kafka" => {
                // Each comma-separated broker may repeat the scheme.
                let brokers: Vec<&str> = rest
                    .split(',')
                    .map(|b| b.trim().trim_start_matches("kafka://"))
                    .collect();
                if brokers.iter().any(|b| b.is_empty() || b.contains('/')) {
                    return Err(error());
                }
                insert(&mut output, "brokers", brokers.join(","));
                insert(&mut output, "topic", SUBJECT);
                Ok(("kafka", output))
            }
            _ => Err(error()),
        }
    }
}

fn insert(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::from(key), value.into());
}

fn strings(list: &[String]) -> Vec<Value> {
    list.iter().map(|s| Value::from(s.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The design document's watcher-config.yaml, section 5.1, verbatim.
    pub const DOCUMENT: &str = r#"
# watcher-config.yaml
cluster_id: "prod-us-west-2"
kubeconfig: "/path/to/kubeconfig"

# 监听配置
namespaces: []  # 空表示所有namespace
resync_period: 30m

# 过滤配置
event_types:
  - "Warning"
reason_filters:
  - "OOMKilled"
  - "CrashLoopBackOff"
  - "ImagePullBackOff"
  - "FailedScheduling"
  - "Unhealthy"
  - "BackOff"
min_severity: "Warning"

# 性能配置
worker_count: 5
buffer_size: 1000

# 消息总线
message_bus_url: "nats://localhost:4222"
"#;

    fn native(yaml: &str) -> Value {
        let config: WatcherConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let text = config.to_native_yaml("test.yaml").unwrap();
        serde_yaml_ng::from_str(&text).unwrap()
    }

    #[test]
    fn the_documents_file_becomes_the_default_pipeline_on_its_subject() {
        let native = native(DOCUMENT);
        let cluster = &native["clusters"][0];
        assert_eq!(cluster["id"], "prod-us-west-2");
        assert_eq!(cluster["kubeconfig"], "/path/to/kubeconfig");
        assert_eq!(cluster["resync_period"], "30m");
        assert!(cluster.get("namespaces").is_none());
        let chain: Vec<&str> = native["chains"]["default"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            chain,
            [
                "event-types",
                "reasons",
                "max-age",
                "secret-guard",
                "severity"
            ]
        );
        assert_eq!(
            native["plugins"]["reasons"]["config"]["allow"][5],
            "BackOff"
        );
        let sink = &native["sinks"]["nats"];
        assert_eq!(sink["min_severity"], "low");
        assert_eq!(sink["nats"]["url"], "nats://localhost:4222");
        assert_eq!(sink["nats"]["subject"], SUBJECT);
        assert_eq!(native["dedup"]["window"], "fixed");
        assert_eq!(native["pipeline"]["workers"], 5);
        assert_eq!(native["pipeline"]["buffer_size"], 1000);
    }

    #[test]
    fn every_key_is_optional_and_kafka_urls_name_brokers() {
        let empty = native("{}");
        assert_eq!(empty["clusters"][0]["id"], "default");
        assert!(empty["plugins"].get("event-types").is_none());
        assert!(empty["sinks"]["stdout"]["stdout"].is_mapping());

        let native =
            native("message_bus_url: kafka://k1:9092,kafka://k2:9092\nmin_severity: high\n");
        let sink = &native["sinks"]["kafka"];
        assert_eq!(sink["kafka"]["brokers"], "k1:9092,k2:9092");
        assert_eq!(sink["kafka"]["topic"], SUBJECT);
        assert_eq!(sink["min_severity"], "high");
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let config: WatcherConfig =
            serde_yaml_ng::from_str("message_bus_url: amqp://rabbit:5672").unwrap();
        let error = config.to_native_yaml("x").unwrap_err().to_string();
        assert!(error.contains("at `message_bus_url`"), "{error}");
        let error = serde_yaml_ng::from_str::<WatcherConfig>("min_severity: Severe")
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected Warning, Normal"), "{error}");
        let error = serde_yaml_ng::from_str::<WatcherConfig>("reason_filter: [x]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `reason_filter`"), "{error}");
    }
}
