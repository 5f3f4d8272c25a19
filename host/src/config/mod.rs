//! The YAML configuration file as a whole. Each section's type lives with
//! the code it configures and says itself what is wrong with it (the
//! plugins', the sinks', the clusters'...); this module reads the file,
//! checks what ties sections together (a chain's plugins, a sink's chain,
//! the dead-letter sinks), and reports every problem at once, each with its
//! YAML path. Unknown fields are errors.
//!
//! Two formats are read: the native one, and the design document's
//! `watcher-config.yaml` ([`legacy`]), which becomes the native config that
//! does the same. Either may reference the environment ([`env`]).

pub mod env;
pub mod legacy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::checkpoint::{CheckpointConfig, ConfigMapRef};
pub use crate::event::EventsConfig;
pub use crate::item::DEAD_LETTER_CHAIN;
pub use crate::lease::LeaseConfig;
pub use crate::occurrence::{DedupConfig, DedupWindow};
pub use crate::output::OutputFormat;
pub use crate::pipeline::PipelineConfig;
pub use crate::plugin::{
    BreakerConfig, FailurePolicy, Limits, PluginConfig, PluginRuntimeConfig, PluginSource,
};
pub use crate::server::ServerConfig;
pub use crate::sink::{
    FileSinkConfig, KAFKA_MANAGED_OPTIONS, KafkaSinkConfig, NatsAuth, NatsSinkConfig, Scalar,
    SinkConfig, SinkKind, SpoolConfig, StdoutSinkConfig, TlsFiles, WhenFull,
};
pub use crate::units::{ByteSize, HumanDuration, parse_byte_size, parse_duration};
pub use crate::watch::{ClusterConfig, EventApi};

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
    /// The queue into the pipeline and its workers.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// How replicas share the clusters under leader election.
    #[serde(default)]
    pub replicas: crate::spread::ReplicasConfig,
    /// The workload metadata kept for plugins that read it.
    #[serde(default)]
    pub metadata: crate::metadata::MetadataConfig,
    /// Which format the file was written in; set by [`Config::load`].
    #[serde(skip)]
    pub format: Format,
    /// What the command line set over the file; kept so that a reload
    /// applies it again.
    #[serde(skip)]
    pub overrides: Overrides,
    /// The directory relative paths in this file are resolved against; set by
    /// [`Config::load`], not read from YAML.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file this was loaded from (for hot reload); set by
    /// [`Config::load`].
    #[serde(skip)]
    pub source: Option<PathBuf>,
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
    #[error("{path}: {error}")]
    Env { path: PathBuf, error: env::EnvError },
    #[error("{path}: {error}")]
    Bus {
        path: PathBuf,
        error: legacy::BusUrlError,
    },
    #[error("{path}: {}", .problems.join("\n  "))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

/// The format a config file is written in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Format {
    /// Plugins, chains and sinks.
    #[default]
    Native,
    /// The design document's `watcher-config.yaml`, with the native config
    /// it was read as.
    WatcherConfig { native: String },
}

/// The top-level keys of the native format (a file with any of them is
/// read as native).
const NATIVE_KEYS: &[&str] = &[
    "plugins",
    "chains",
    "sinks",
    "dedup",
    "events",
    "plugin_runtime",
    "clusters",
    "checkpoint",
    "server",
    "pipeline",
    "replicas",
    "metadata",
];

/// What the command line sets over the file: `--cluster-id` and
/// `--kubeconfig` for the config's one cluster, and the HTTP addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The cluster's id.
    pub cluster_id: Option<String>,
    /// The cluster's kubeconfig file (absolute, or relative to the working
    /// directory); replaces in-cluster credentials.
    pub kubeconfig: Option<PathBuf>,
    /// `server.health_listen`.
    pub health_listen: Option<String>,
    /// `server.metrics_listen`.
    pub metrics_listen: Option<String>,
}

impl Overrides {
    /// Whether a cluster's settings are overridden.
    fn sets_cluster(&self) -> bool {
        self.cluster_id.is_some() || self.kubeconfig.is_some()
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &Overrides::default())
    }

    /// Reads a config file in either format, expands its environment
    /// references, applies `overrides`, and validates the result.
    pub fn load_with(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = env::expand(&text, |name| std::env::var(name).ok()).map_err(|error| {
            ConfigError::Env {
                path: path.to_owned(),
                error,
            }
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        let (mut config, format) = if is_watcher_config(&text) {
            let document: legacy::WatcherConfig = deserialize(&text, path)?;
            let native = document
                .to_native_yaml(&path.display().to_string())
                .map_err(|error| ConfigError::Bus {
                    path: path.to_owned(),
                    error,
                })?;
            let config = deserialize(&native, path)?;
            (config, Format::WatcherConfig { native })
        } else {
            (deserialize::<Config>(&text, path)?, Format::Native)
        };
        config.format = format;
        config.base_dir = base_dir;
        config.source = Some(path.to_owned());
        config.apply(overrides.clone());
        config.validated(path)
    }

    /// Parses and validates YAML text; `path` is only used in messages.
    pub fn from_yaml(text: &str, path: &Path, base_dir: PathBuf) -> Result<Self, ConfigError> {
        let mut config: Config = deserialize(text, path)?;
        config.base_dir = base_dir;
        config.validated(path)
    }

    fn validated(self, path: &Path) -> Result<Self, ConfigError> {
        let mut problems = self.problems();
        if matches!(self.format, Format::WatcherConfig { .. }) {
            for problem in &mut problems {
                problem.push_str(
                    " (in the native config this file is read as; `aetherius check --print-native` shows it)",
                );
            }
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// Sets the command line's values on the one cluster (the inferred one
    /// when none is listed); with several clusters, [`Config::problems`]
    /// says that they must be set in the file.
    fn apply(&mut self, overrides: Overrides) {
        if let Some(address) = &overrides.health_listen {
            self.server.health_listen.clone_from(address);
        }
        if let Some(address) = &overrides.metrics_listen {
            self.server.metrics_listen.clone_from(address);
        }
        if overrides.sets_cluster() && self.clusters.len() <= 1 {
            if self.clusters.is_empty() {
                self.clusters.push(ClusterConfig::inferred());
            }
            let cluster = &mut self.clusters[0];
            if let Some(id) = &overrides.cluster_id {
                cluster.id.clone_from(id);
            }
            if let Some(kubeconfig) = &overrides.kubeconfig {
                cluster.kubeconfig = Some(kubeconfig.clone());
                cluster.in_cluster = false;
            }
        }
        self.overrides = overrides;
    }

    /// Resolves a path from the config file against the file's directory;
    /// `~/` is the home directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        crate::paths::resolve(&self.base_dir, path)
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

    /// The clusters `aetherius run` watches: the ones listed, or the
    /// inferred one.
    pub fn watched_clusters(&self) -> Vec<ClusterConfig> {
        if self.clusters.is_empty() {
            vec![ClusterConfig::inferred()]
        } else {
            self.clusters.clone()
        }
    }

    /// What changes in the watched clusters from `self` to `next`: the ids
    /// to stop (removed, or changed) and the clusters to start (added, or
    /// changed), in id order.
    pub fn cluster_changes(&self, next: &Config) -> ClusterChanges {
        let now: BTreeMap<String, ClusterConfig> = self
            .watched_clusters()
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let then: BTreeMap<String, ClusterConfig> = next
            .watched_clusters()
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        ClusterChanges {
            stop: now
                .iter()
                .filter(|(id, cluster)| then.get(*id) != Some(cluster))
                .map(|(id, _)| id.clone())
                .collect(),
            start: then
                .into_iter()
                .filter(|(id, cluster)| now.get(id) != Some(cluster))
                .map(|(_, cluster)| cluster)
                .collect(),
        }
    }

    /// Every problem, each naming its YAML path: what ties the sections
    /// together here, and what each section says of itself.
    fn problems(&self) -> Vec<String> {
        let mut problems = self.reference_problems();
        if self.overrides.sets_cluster() && self.clusters.len() > 1 {
            problems.push(format!(
                "at `clusters`: --cluster-id and --kubeconfig set the one cluster of a config; this one lists {}: set them under `clusters` instead",
                self.clusters.len()
            ));
        }
        for (name, plugin) in &self.plugins {
            problems.extend(plugin.problems(&format!("plugins.{name}")));
        }
        for (name, sink) in &self.sinks {
            problems.extend(sink.problems(&format!("sinks.{name}")));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, cluster) in self.clusters.iter().enumerate() {
            if !ids.insert(cluster.id.as_str()) {
                problems.push(format!(
                    "at `clusters[{i}].id`: `{}` is used by another cluster; ids must be unique",
                    cluster.id
                ));
            }
            problems.extend(cluster.problems(&format!("clusters[{i}]")));
        }
        problems.extend(self.events.problems());
        problems.extend(self.plugin_runtime.problems());
        problems.extend(self.checkpoint.problems());
        problems.extend(self.dedup.problems());
        problems.extend(self.pipeline.problems());
        problems.extend(self.replicas.problems(&self.clusters));
        problems.extend(self.metadata.problems());
        problems
    }

    /// Names that must refer to something: a chain's plugins, a sink's
    /// chain, a dead-letter policy's sink, a `dir:` plugin's directory.
    fn reference_problems(&self) -> Vec<String> {
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
        for (name, sink) in &self.sinks {
            if sink.chain != DEAD_LETTER_CHAIN && !self.chains.contains_key(&sink.chain) {
                problems.push(format!(
                    "at `sinks.{name}.chain`: unknown chain `{}`; {}",
                    sink.chain,
                    known_chains()
                ));
            }
        }
        let dead_letter_sink = self.sinks.values().any(|s| s.chain == DEAD_LETTER_CHAIN);
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
        }
        problems
    }
}

/// What a new config changes in the watched clusters ([`Config::cluster_changes`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterChanges {
    /// Clusters to stop watching: removed, or changed.
    pub stop: Vec<String>,
    /// Clusters to start watching: added, or changed (after stopping).
    pub start: Vec<ClusterConfig>,
}

/// Whether `text` is the design document's format: a mapping with at least
/// one of its keys and none of the native ones. Anything else (including
/// YAML that does not parse) is read as native, whose errors then say what
/// is wrong.
fn is_watcher_config(text: &str) -> bool {
    let Ok(serde_yaml_ng::Value::Mapping(map)) = serde_yaml_ng::from_str(text) else {
        return false;
    };
    let has = |keys: &[&str]| {
        map.keys()
            .filter_map(serde_yaml_ng::Value::as_str)
            .any(|key| keys.contains(&key))
    };
    has(legacy::KEYS) && !has(NATIVE_KEYS)
}

/// Deserializes YAML text, errors naming the YAML path, line and column.
fn deserialize<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
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
    })
}

/// serde_yaml_ng puts its own path before and " at line L column C" after its
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
        let yaml = format!("{MINIMAL}dedup: {{ ttl: 5 fortnights }}\n");
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
    fn webhook_sinks_parse_with_defaults_and_say_what_is_wrong() {
        let yaml = MINIMAL.replace(
            "stdout: {}",
            "webhook: { url: 'https://o.example/api/{cluster}/events', headers: { X-Team: '{label.team}' }, body: { text: '{message}', n: 1 } }",
        );
        let config = parse(&yaml).unwrap();
        let Ok(SinkKind::Webhook(webhook)) = config.sinks["out"].kind() else {
            panic!("a webhook sink");
        };
        assert_eq!(webhook.url, "https://o.example/api/{cluster}/events");
        assert_eq!(webhook.max_events, 1);
        assert_eq!(webhook.encoding, crate::sink::Encoding::JsonLines);
        assert_eq!(webhook.timeout, HumanDuration::from_secs(10));
        assert_eq!(
            webhook.body,
            Some(serde_json::json!({"text": "{message}", "n": 1}))
        );

        let yaml = MINIMAL.replace(
            "stdout: {}",
            "webhook: { url: 'ftp://x/{bogus}', headers: { 'bad name': x, Host: y, Authorization: z, X-A: '{nope}' }, body: { t: '{colour}' }, max_events: 0, auth: { username: u, bearer_token_file: t }, tls: { cert_file: c } }",
        );
        let error = parse(&yaml).unwrap_err().to_string();
        for expected in [
            "`sinks.out.webhook.url`: `ftp://x/{bogus}`: expected an `http://` or `https://` URL",
            "`sinks.out.webhook.headers.bad name`: `bad name` is not a header name",
            "`sinks.out.webhook.headers.Host`: `host` is set by Aetherius",
            "`sinks.out.webhook.headers.X-A`: `{nope}`: unknown field",
            "`sinks.out.webhook.headers.Authorization`: `auth` sets it",
            "`sinks.out.webhook.body`: at `t`: `{colour}`: unknown field",
            "`sinks.out.webhook.max_events`: must be at least 1",
            "`sinks.out.webhook.auth`: give `bearer_token_file` or `username`",
            "`sinks.out.webhook.auth`: `username` and `password_file` go together",
            "`sinks.out.webhook.tls`: `cert_file` and `key_file` go together",
        ] {
            assert!(error.contains(expected), "{expected}\nin:\n{error}");
        }
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
