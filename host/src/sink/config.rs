//! `sinks.NAME` — one sink as declared in YAML: the chain it publishes, its
//! format, its spool, and exactly one output kind. The kinds are registered
//! here, once: a field of [`SinkConfig`] and a variant of [`SinkKind`] each;
//! everything else about a kind is in its folder.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::embedded::EmbeddedSinkConfig;
use super::file::FileSinkConfig;
use super::kafka::KafkaSinkConfig;
use super::nats::NatsSinkConfig;
use super::stdout::StdoutSinkConfig;
use super::webhook::WebhookSinkConfig;
use super::{Setup, SinkError, Started};
use crate::event::Severity;
use crate::output::OutputFormat;
use crate::units::{ByteSize, HumanDuration};

/// One named sink (`sinks.NAME` in YAML). Exactly one of the output kinds
/// (`stdout`, `file`, `nats`, `kafka`, `webhook`, or for an embedding
/// program `embedded`) must be given.
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
    /// POST to an HTTP(S) endpoint.
    #[serde(default)]
    pub webhook: Option<WebhookSinkConfig>,
    /// Hand events to the program that embeds Aetherius (`aetherius::agent`).
    #[serde(default)]
    pub embedded: Option<EmbeddedSinkConfig>,
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
    Webhook(&'a WebhookSinkConfig),
    Embedded(&'a EmbeddedSinkConfig),
}

impl SinkConfig {
    /// A sink of chain `chain` handing its events to an embedding program,
    /// every other setting at its default.
    pub fn embedded(chain: &str, embedded: EmbeddedSinkConfig) -> Self {
        Self {
            chain: chain.to_owned(),
            format: OutputFormat::default(),
            min_severity: None,
            stdout: None,
            file: None,
            nats: None,
            kafka: None,
            webhook: None,
            embedded: Some(embedded),
            spool: SpoolConfig::default(),
        }
    }

    /// The one output kind this sink has, or the names of all it has (zero
    /// or several), for the error message.
    pub fn kind(&self) -> Result<SinkKind<'_>, Vec<&'static str>> {
        let kinds: Vec<SinkKind<'_>> = [
            self.stdout.as_ref().map(SinkKind::Stdout),
            self.file.as_ref().map(SinkKind::File),
            self.nats.as_ref().map(SinkKind::Nats),
            self.kafka.as_ref().map(SinkKind::Kafka),
            self.webhook.as_ref().map(SinkKind::Webhook),
            self.embedded.as_ref().map(SinkKind::Embedded),
        ]
        .into_iter()
        .flatten()
        .collect();
        match kinds.as_slice() {
            [kind] => Ok(*kind),
            _ => Err(kinds.iter().map(|kind| kind.name()).collect()),
        }
    }

    /// What is wrong with this sink on its own, `at` being its YAML path
    /// (`sinks.NAME`). Whether its chain exists is the config's to say.
    pub fn problems(&self, at: &str) -> Vec<String> {
        match self.kind() {
            Ok(kind) => kind.problems(at),
            Err(kinds) if kinds.is_empty() => vec![format!(
                "at `{at}`: no output given; expected one of `stdout`, `file`, `nats`, `kafka`, `webhook`"
            )],
            Err(kinds) => vec![format!(
                "at `{at}`: one output per sink, found {}; make one sink for each",
                kinds.join(" and ")
            )],
        }
    }

    /// The spool's settings, for a broker sink named `name`, if it spools.
    pub(super) fn spool_settings(&self, name: &str, base_dir: &Path) -> Option<SpoolSettings> {
        let spool = &self.spool;
        spool.enabled.then(|| SpoolSettings {
            dir: spool
                .dir
                .as_ref()
                .map(|dir| crate::paths::resolve(base_dir, dir))
                .unwrap_or_else(|| crate::paths::state_dir().join("spool").join(name)),
            max_bytes: spool.max_size.0,
            after: spool.after.0,
            when_full: spool.when_full,
        })
    }
}

/// The spool as configured for one sink.
#[derive(Debug, Clone)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// How long to retry in memory before spooling.
    pub after: std::time::Duration,
    pub when_full: WhenFull,
}

impl SinkKind<'_> {
    /// As written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdout(_) => "stdout",
            Self::File(_) => "file",
            Self::Nats(_) => "nats",
            Self::Kafka(_) => "kafka",
            Self::Webhook(_) => "webhook",
            Self::Embedded(_) => "embedded",
        }
    }

    fn problems(self, at: &str) -> Vec<String> {
        match self {
            Self::Stdout(_) | Self::File(_) => Vec::new(),
            Self::Nats(nats) => nats.problems(&format!("{at}.nats")),
            Self::Kafka(kafka) => kafka.problems(&format!("{at}.kafka")),
            Self::Webhook(webhook) => webhook.problems(&format!("{at}.webhook")),
            Self::Embedded(embedded) => embedded.problems(&format!("{at}.embedded")),
        }
    }

    /// Opens the output and starts the sink's task.
    pub(super) async fn start(self, setup: Setup) -> Result<Started, SinkError> {
        match self {
            Self::Stdout(stdout) => stdout.start(setup).await,
            Self::File(file) => file.start(setup).await,
            Self::Nats(nats) => nats.start(setup).await,
            Self::Kafka(kafka) => kafka.start(setup).await,
            Self::Webhook(webhook) => webhook.start(setup).await,
            Self::Embedded(embedded) => embedded.start(setup).await,
        }
    }

    /// `aetherius check`'s line for the sink, after checking what can be
    /// checked without connecting.
    pub fn describe(self, name: &str, base_dir: &Path) -> Result<String, SinkError> {
        match self {
            Self::Stdout(stdout) => stdout.describe(name, base_dir),
            Self::File(file) => file.describe(name, base_dir),
            Self::Nats(nats) => nats.describe(name, base_dir),
            Self::Kafka(kafka) => kafka.describe(name, base_dir),
            Self::Webhook(webhook) => webhook.describe(name, base_dir),
            Self::Embedded(embedded) => embedded.describe(name, base_dir),
        }
    }
}
