//! The YAML configuration: plugin instances, chains, sinks and the occurrence
//! core's settings. Unknown fields are errors, and every error names the YAML
//! path and what was expected.

mod cluster;
mod plugin;
mod sink;
mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::EventLimits;

pub use cluster::{
    CheckpointConfig, ClusterConfig, ConfigMapRef, EventApi, LeaseConfig, state_dir,
};
pub use plugin::{
    BreakerConfig, FailurePolicy, Limits, PluginConfig, PluginRuntimeConfig, PluginSource,
};
pub use sink::{
    FileSinkConfig, KAFKA_MANAGED_OPTIONS, KafkaSinkConfig, NatsAuth, NatsSinkConfig, OutputFormat,
    Scalar, SinkConfig, SinkKind, SpoolConfig, StdoutSinkConfig, TlsFiles, WhenFull,
};
pub use units::{ByteSize, HumanDuration, parse_byte_size, parse_duration};

/// The name of the pseudo-chain that carries dead-lettered events.
pub const DEAD_LETTER_CHAIN: &str = "dead-letter";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named plugin instances, referenced by name from `chains`.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
    /// Named chains: the plugin instances an event passes through, in order.
    /// An event dropped by one stage skips the rest of its chain.
    #[serde(default)]
    pub chains: BTreeMap<String, Vec<String>>,
    /// Named sinks; each publishes the output of one chain.
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Duplicate suppression and repeat escalation.
    #[serde(default)]
    pub dedup: DedupConfig,
    /// How large one Event may be, and what is cut when it is larger.
    #[serde(default)]
    pub events: EventsConfig,
    /// Where plugins come from and how they are run.
    #[serde(default)]
    pub plugin_runtime: PluginRuntimeConfig,
    /// The clusters `aetherius run` watches. Empty: one cluster, `default`,
    /// with the credentials kubectl would use (or the pod's, in a cluster).
    #[serde(default)]
    pub clusters: Vec<ClusterConfig>,
    /// Where watch progress is remembered across restarts.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// The HTTP endpoint of `aetherius run` (metrics and probes) and how it
    /// stops.
    #[serde(default)]
    pub server: ServerConfig,
    /// The directory relative paths in this file are resolved against; set by
    /// [`Config::load`], not read from YAML.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this was loaded from (for hot reload); set by
    /// [`Config::load`].
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// `server:` — the HTTP endpoint and shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where `/metrics`, `/health` and `/ready` are served (default
    /// `0.0.0.0:9464`). Empty: no HTTP endpoint.
    pub listen: String,
    /// On SIGTERM, how long stopping the watches, draining the chains,
    /// flushing the sinks and writing the checkpoints may take before the
    /// process exits anyway (default 25s: within Kubernetes' default 30s
    /// termination grace period).
    pub shutdown_grace: HumanDuration,
    /// How often the config file and the plugin directory are checked for
    /// changes, which are then reloaded without a restart: plugins, chains
    /// and clusters (default 2s; the kubelet itself refreshes mounted
    /// ConfigMaps about once a minute).
    pub reload_interval: HumanDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:9464".into(),
            shutdown_grace: HumanDuration::from_secs(25),
            reload_interval: HumanDuration::from_secs(2),
        }
    }
}

/// Settings of the occurrence core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// How long a fingerprint is remembered after it was last seen (default 5m,
    /// the design document's TTL).
    pub ttl: HumanDuration,
    /// Most fingerprints remembered at once; the least recently seen are
    /// forgotten first. 100k fingerprints take about 20 MiB.
    pub max_entries: usize,
    /// At this many occurrences of one fingerprint the occurrence is escalated
    /// to `high` and labelled `repeated_count` (default 5). 0 disables it.
    pub repeat_threshold: u32,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            ttl: HumanDuration::from_secs(300),
            max_entries: 100_000,
            repeat_threshold: 5,
        }
    }
}

/// `events:` — bounds on what one Event brings in (anyone who may create
/// Events writes what the pipeline reads). docs/limits.md has the whole
/// budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// An Event object (its JSON) larger than this is not decoded: dropped
    /// and counted (`k8s_events_error_total{kind="too_large"}`). Default 3Mi,
    /// above the 1.5 MiB an API server stores by default, so that only what
    /// no API server sends is refused.
    pub max_size: ByteSize,
    /// Longer messages are cut at a character boundary and end with
    /// `…[cut from N bytes]`, before any plugin sees them, and `raw_data`
    /// carries the cut message too. Default 32Ki (kubelet and controller
    /// messages are well under 4 KiB).
    pub max_message: ByteSize,
    /// `raw_data` is the Event as received up to this size; a larger one
    /// keeps only the Event's own fields (metadata: name, namespace, uid,
    /// resourceVersion, creationTimestamp). Default 64Ki. Either cut is
    /// named in the annotation `truncated`.
    pub max_raw_data: ByteSize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        let limits = EventLimits::default();
        Self {
            max_size: ByteSize(limits.max_size as u64),
            max_message: ByteSize(limits.max_message as u64),
            max_raw_data: ByteSize(limits.max_raw_data as u64),
        }
    }
}

impl EventsConfig {
    /// The limits the decoder applies.
    pub fn limits(&self) -> EventLimits {
        let bytes = |size: ByteSize| usize::try_from(size.0).unwrap_or(usize::MAX);
        EventLimits {
            max_size: bytes(self.max_size),
            max_message: bytes(self.max_message),
            max_raw_data: bytes(self.max_raw_data),
        }
    }
}

/// A configuration that could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: at `{at}`: {message}")]
    Parse {
        path: PathBuf,
        at: String,
        message: String,
    },
    #[error("{path}: {}", .problems.join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut config = Self::from_yaml(&text, path, base_dir)?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Parses and validates YAML text; `path` is only used in messages.
    pub fn from_yaml(text: &str, path: &Path, base_dir: PathBuf) -> Result<Self, ConfigError> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let mut config: Config =
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                let at = error.path().to_string();
                let inner = error.into_inner();
                let location = inner
                    .location()
                    .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                    .unwrap_or_default();
                ConfigError::Parse {
                    path: path.to_owned(),
                    at: if at == "." { "(top level)".into() } else { at },
                    message: format!("{}{location}", strip_serde_location(&inner.to_string())),
                }
            })?;
        config.base_dir = base_dir;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// Resolves a path from the config file against the file's directory;
    /// `~/` is the home directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if let Ok(rest) = path.strip_prefix("~")
            && let Some(home) = std::env::var_os("HOME")
        {
            return PathBuf::from(home).join(rest);
        }
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The chains some sink takes, in name order (the dead-letter pseudo-chain
    /// excluded).
    pub fn used_chains(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .sinks
            .values()
            .map(|sink| sink.chain.as_str())
            .filter(|chain| *chain != DEAD_LETTER_CHAIN)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Every cross-reference problem, each naming its YAML path.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let known_chains = || {
            let names: Vec<&str> = self.chains.keys().map(String::as_str).collect();
            if names.is_empty() {
                "no chains are defined".to_owned()
            } else {
                format!("expected one of: {}", names.join(", "))
            }
        };
        if self.sinks.is_empty() {
            problems.push("at `sinks`: at least one sink is needed".to_owned());
        }
        for (name, stages) in &self.chains {
            if name == DEAD_LETTER_CHAIN {
                problems.push(format!(
                    "at `chains.{name}`: `{DEAD_LETTER_CHAIN}` is reserved for dead-lettered events; rename the chain"
                ));
            }
            for (i, stage) in stages.iter().enumerate() {
                if !self.plugins.contains_key(stage) {
                    problems.push(format!(
                        "at `chains.{name}[{i}]`: unknown plugin `{stage}`; define it under `plugins`"
                    ));
                }
            }
        }
        let mut dead_letter_sink = false;
        for (name, sink) in &self.sinks {
            if sink.chain == DEAD_LETTER_CHAIN {
                dead_letter_sink = true;
            } else if !self.chains.contains_key(&sink.chain) {
                problems.push(format!(
                    "at `sinks.{name}.chain`: unknown chain `{}`; {}",
                    sink.chain,
                    known_chains()
                ));
            }
            if let Err(kinds) = sink.kind() {
                problems.push(if kinds.is_empty() {
                    format!(
                        "at `sinks.{name}`: no output given; expected one of `stdout`, `file`, `nats`, `kafka`"
                    )
                } else {
                    format!(
                        "at `sinks.{name}`: one output per sink, found {}; make one sink for each",
                        kinds.join(" and ")
                    )
                });
            }
        }
        for (name, sink) in &self.sinks {
            if let Some(nats) = &sink.nats {
                if let Err(error) = crate::sink::Template::parse(&nats.subject) {
                    problems.push(format!("at `sinks.{name}.nats.subject`: {error}"));
                }
                let auth = &nats.auth;
                let ways = [
                    auth.token.is_some() || auth.token_file.is_some(),
                    auth.user.is_some(),
                    auth.credentials_file.is_some(),
                ];
                if ways.iter().filter(|w| **w).count() > 1
                    || (auth.token.is_some() && auth.token_file.is_some())
                    || (auth.password.is_some() && auth.password_file.is_some())
                {
                    problems.push(format!(
                        "at `sinks.{name}.nats.auth`: give one of `token`, `token_file`, `user` (with `password` or `password_file`), `credentials_file`"
                    ));
                }
                if (auth.password.is_some() || auth.password_file.is_some()) && auth.user.is_none()
                {
                    problems.push(format!(
                        "at `sinks.{name}.nats.auth`: a password needs `user`"
                    ));
                }
                if let Some(tls) = &nats.tls
                    && tls.cert_file.is_some() != tls.key_file.is_some()
                {
                    problems.push(format!(
                        "at `sinks.{name}.nats.tls`: `cert_file` and `key_file` go together"
                    ));
                }
            }
        }
        for (name, sink) in &self.sinks {
            let Some(kafka) = &sink.kafka else { continue };
            for (field, template) in [("topic", &kafka.topic), ("key", &kafka.key)] {
                if let Err(error) = crate::sink::Template::parse(template) {
                    problems.push(format!("at `sinks.{name}.kafka.{field}`: {error}"));
                }
            }
            if kafka.brokers.trim().is_empty() {
                problems.push(format!(
                    "at `sinks.{name}.kafka.brokers`: give at least one `host:port`"
                ));
            }
            if kafka.delivery_timeout.0 < std::time::Duration::from_millis(1) {
                problems.push(format!(
                    "at `sinks.{name}.kafka.delivery_timeout`: must be at least 1ms"
                ));
            }
            for key in kafka.options.keys().chain(kafka.option_files.keys()) {
                if let Some((_, field)) = KAFKA_MANAGED_OPTIONS.iter().find(|(k, _)| k == key) {
                    problems.push(if field.is_empty() {
                        format!(
                            "at `sinks.{name}.kafka.options.{key}`: always set by Aetherius (idempotent producer, acks=all); remove it"
                        )
                    } else {
                        format!(
                            "at `sinks.{name}.kafka.options.{key}`: set by Aetherius; use `kafka.{field}`"
                        )
                    });
                }
            }
        }
        for (name, plugin) in &self.plugins {
            if plugin.on_failure == FailurePolicy::DeadLetter && !dead_letter_sink {
                problems.push(format!(
                    "at `plugins.{name}.on_failure`: `dead-letter` needs a sink with `chain: {DEAD_LETTER_CHAIN}`"
                ));
            }
            if matches!(plugin.source, PluginSource::Directory(_))
                && self.plugin_runtime.plugin_dir.is_none()
            {
                problems.push(format!(
                    "at `plugins.{name}.source`: `{}` needs `plugin_runtime.plugin_dir`",
                    plugin.source
                ));
            }
            if plugin.limits.fuel_per_event == 0 {
                problems.push(format!(
                    "at `plugins.{name}.limits.fuel_per_event`: must be greater than 0"
                ));
            }
            if plugin.limits.memory.0 < 1 << 20 {
                problems.push(format!(
                    "at `plugins.{name}.limits.memory`: {} is too small for any guest; expected at least 1Mi",
                    plugin.limits.memory
                ));
            }
            if plugin.circuit_breaker.failures == 0 {
                problems.push(format!(
                    "at `plugins.{name}.circuit_breaker.failures`: must be at least 1"
                ));
            }
            let timeout = plugin.limits.timeout.0;
            if timeout < crate::plugin::MIN_TIMEOUT || timeout > crate::plugin::MAX_TIMEOUT {
                problems.push(format!(
                    "at `plugins.{name}.limits.timeout`: {} is out of range; expected {} to {} (a plugin runs on the pipeline's thread)",
                    plugin.limits.timeout,
                    HumanDuration(crate::plugin::MIN_TIMEOUT),
                    HumanDuration(crate::plugin::MAX_TIMEOUT),
                ));
            }
        }
        for (field, size, min) in [
            ("max_size", self.events.max_size, 64 * 1024),
            ("max_message", self.events.max_message, 1024),
            ("max_raw_data", self.events.max_raw_data, 4096),
        ] {
            if size.0 < min {
                problems.push(format!(
                    "at `events.{field}`: {size} is too small; expected at least {}",
                    ByteSize(min)
                ));
            }
        }
        if self.plugin_runtime.batch_size == 0 || self.plugin_runtime.batch_size > 4096 {
            problems.push(format!(
                "at `plugin_runtime.batch_size`: {} is out of range; expected 1 to 4096",
                self.plugin_runtime.batch_size
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, cluster) in self.clusters.iter().enumerate() {
            let id = &cluster.id;
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                problems.push(format!(
                    "at `clusters[{i}].id`: `{id}` is not a valid id; expected letters, digits, `-`, `_` or `.`"
                ));
            }
            if !ids.insert(id.as_str()) {
                problems.push(format!(
                    "at `clusters[{i}].id`: `{id}` is used by another cluster; ids must be unique"
                ));
            }
            if cluster.in_cluster && (cluster.kubeconfig.is_some() || cluster.context.is_some()) {
                problems.push(format!(
                    "at `clusters[{i}].in_cluster`: use either in-cluster credentials or `kubeconfig`/`context`, not both"
                ));
            }
            for (j, ns) in cluster.namespaces.iter().enumerate() {
                if !cluster::is_dns_label(ns) {
                    problems.push(format!(
                        "at `clusters[{i}].namespaces[{j}]`: `{ns}` is not a namespace name"
                    ));
                }
            }
            if let Some(lease) = &cluster.leader_election {
                if cluster.checkpoint_configmap.is_none() {
                    problems.push(format!(
                        "at `clusters[{i}].leader_election`: the replicas must share the checkpoint; set `checkpoint_configmap` too"
                    ));
                }
                if lease.retry_period.0 * 3 > lease.duration.0 * 2 || lease.retry_period.0.is_zero()
                {
                    problems.push(format!(
                        "at `clusters[{i}].leader_election.retry_period`: must be above 0 and at most two thirds of `duration`, so that a leader renews before it must give up"
                    ));
                }
            }
            if !(1..=10_000).contains(&cluster.page_size) {
                problems.push(format!(
                    "at `clusters[{i}].page_size`: {} is out of range; expected 1 to 10000",
                    cluster.page_size
                ));
            }
        }
        if self.checkpoint.interval.0 < std::time::Duration::from_millis(10) {
            problems.push(format!(
                "at `checkpoint.interval`: {} is too short; expected at least 10ms",
                self.checkpoint.interval
            ));
        }
        if self.dedup.max_entries == 0 {
            problems.push("at `dedup.max_entries`: must be at least 1".to_owned());
        }
        problems
    }
}

/// serde_yaml puts its own path before and " at line L column C" after its
/// messages; we print both ourselves, once.
fn strip_serde_location(message: &str) -> &str {
    let message = match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => rest,
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(yaml, Path::new("test.yaml"), PathBuf::from("."))
    }

    const MINIMAL: &str = "
plugins:
  warnings: { source: 'builtin:type-filter', config: { allow: [Warning] } }
chains:
  main: [warnings]
sinks:
  out: { chain: main, stdout: {} }
";

    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = parse(MINIMAL).unwrap();
        let plugin = &config.plugins["warnings"];
        assert_eq!(plugin.on_failure, FailurePolicy::FailOpen);
        assert_eq!(plugin.limits, Limits::default());
        assert_eq!(plugin.config, serde_json::json!({"allow": ["Warning"]}));
        assert_eq!(config.dedup.repeat_threshold, 5);
        assert_eq!(config.used_chains(), vec!["main"]);
    }

    #[test]
    fn unknown_field_names_its_path() {
        let error = parse(&MINIMAL.replace("stdout: {}", "stdout: {}, colour: red"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("at `sinks.out.colour`"), "{error}");
        assert!(error.contains("unknown field `colour`"), "{error}");
        assert!(error.contains("line "), "{error}");
    }

    #[test]
    fn wrong_type_names_its_path_and_expectation() {
        let yaml = MINIMAL.replace(
            "config: { allow: [Warning] }",
            "limits: { fuel_per_event: lots }",
        );
        let error = parse(&yaml).unwrap_err().to_string();
        assert!(
            error.contains("plugins.warnings.limits.fuel_per_event"),
            "{error}"
        );
        assert!(error.contains("expected u64"), "{error}");
    }

    #[test]
    fn bad_duration_says_what_is_expected() {
        let yaml = format!("{MINIMAL}dedup: {{ ttl: 5 minutes }}\n");
        let error = parse(&yaml).unwrap_err().to_string();
        assert!(error.contains("dedup.ttl"), "{error}");
        assert!(error.contains("unknown duration unit"), "{error}");
    }

    #[test]
    fn dangling_references_are_all_reported() {
        let yaml = "
plugins:
  a: { source: 'builtin:type-filter', on_failure: dead-letter }
  b: { source: 'dir:x' }
chains:
  main: [a, missing]
sinks:
  out: { chain: nope, stdout: {}, file: { path: x } }
";
        let error = parse(yaml).unwrap_err().to_string();
        for expected in [
            "at `chains.main[1]`: unknown plugin `missing`",
            "at `sinks.out.chain`: unknown chain `nope`; expected one of: main",
            "at `sinks.out`: one output per sink, found stdout and file",
            "at `plugins.a.on_failure`: `dead-letter` needs a sink",
            "at `plugins.b.source`: `dir:x` needs `plugin_runtime.plugin_dir`",
        ] {
            assert!(
                error.contains(expected),
                "missing {expected:?} in:\n{error}"
            );
        }
    }

    #[test]
    fn clusters_parse_and_are_checked() {
        let yaml = format!(
            "{MINIMAL}clusters:
  - {{ id: prod, kubeconfig: kc, context: prod, namespaces: [a, b], api: events.k8s.io/v1 }}
  - {{ id: prod, in_cluster: true, context: x, namespaces: [Bad_NS] }}
  - {{ id: 'x y' }}
"
        );
        let error = parse(&yaml).unwrap_err().to_string();
        for expected in [
            "at `clusters[1].id`: `prod` is used by another cluster",
            "at `clusters[1].in_cluster`: use either",
            "at `clusters[1].namespaces[0]`: `Bad_NS` is not a namespace name",
            "at `clusters[2].id`: `x y` is not a valid id",
        ] {
            assert!(
                error.contains(expected),
                "missing {expected:?} in:\n{error}"
            );
        }
        let config = parse(&format!(
            "{MINIMAL}clusters: [{{ id: a }}]\ncheckpoint: {{ file: cp.json }}\n"
        ))
        .unwrap();
        let cluster = &config.clusters[0];
        assert_eq!(cluster.api, EventApi::CoreV1);
        assert_eq!(cluster.max_age, HumanDuration::from_secs(300));
        assert_eq!(cluster.page_size, 500);
        assert_eq!(config.checkpoint.file, PathBuf::from("cp.json"));
        assert_eq!(config.checkpoint.interval, HumanDuration::from_secs(1));
    }

    #[test]
    fn kafka_sinks_parse_with_defaults_and_keep_their_guarantees() {
        let yaml = MINIMAL.replace(
            "stdout: {}",
            "kafka: { brokers: 'k:9092', options: { compression.type: lz4, batch.num.messages: 100, socket.nagle.disable: true } }",
        );
        let config = parse(&yaml).unwrap();
        let Ok(SinkKind::Kafka(kafka)) = config.sinks["out"].kind() else {
            panic!("a Kafka sink");
        };
        assert_eq!(kafka.topic, "event.k8s.{cluster}.{severity}");
        assert_eq!(kafka.key, "{fingerprint}");
        assert_eq!(kafka.delivery_timeout, HumanDuration::from_secs(10));
        assert_eq!(kafka.options["batch.num.messages"], Scalar("100".into()));
        assert_eq!(kafka.options["socket.nagle.disable"], Scalar("true".into()));

        let yaml = MINIMAL.replace(
            "stdout: {}",
            "kafka: { brokers: 'k:9092', topic: 'x.{bogus}', options: { acks: 1, linger.ms: 100 } }",
        );
        let error = parse(&yaml).unwrap_err().to_string();
        assert!(error.contains("`sinks.out.kafka.topic`"), "{error}");
        assert!(
            error.contains("`sinks.out.kafka.options.acks`: always set"),
            "{error}"
        );
        assert!(
            error.contains(
                "`sinks.out.kafka.options.linger.ms`: set by Aetherius; use `kafka.linger`"
            ),
            "{error}"
        );
    }

    #[test]
    fn shipped_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
        assert!(
            seen >= 2,
            "expected config/default.yaml and config/example.yaml"
        );
    }
}
