//! `plugins:` and `plugin_runtime:` — plugin instances as declared in YAML
//! (where the component comes from, its configuration, its limits and what
//! happens when it fails) and the runtime's own settings.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, de};

use crate::units::{ByteSize, HumanDuration};

/// One named plugin instance (`plugins.NAME` in YAML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Where the component comes from: `builtin:NAME` (shipped in the binary),
    /// `dir:NAME` (`NAME.wasm` in `plugin_runtime.plugin_dir`), or a path to a
    /// `.wasm` file (relative paths are relative to the config file).
    pub source: PluginSource,
    /// Handed to the plugin's `init` as JSON text; `null` when absent. Its
    /// shape is the plugin's business: the plugin rejects what it does not
    /// understand.
    #[serde(default)]
    pub config: serde_json::Value,
    /// What this stage may consume per call.
    #[serde(default)]
    pub limits: Limits,
    /// What happens to an event when this stage traps, runs out of fuel or
    /// memory, or returns something invalid.
    #[serde(default)]
    pub on_failure: FailurePolicy,
    /// When to stop calling a stage that keeps failing.
    #[serde(default)]
    pub circuit_breaker: BreakerConfig,
}

/// Where a plugin's component is loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A default plugin embedded in the binary.
    Builtin(String),
    /// `NAME.wasm` in the plugin directory (a mounted ConfigMap).
    Directory(String),
    /// A `.wasm` file.
    Path(PathBuf),
}

impl PluginSource {
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(name) = text.strip_prefix("builtin:") {
            if name.is_empty() {
                return Err("`builtin:` needs a plugin name, e.g. `builtin:reason-filter`".into());
            }
            return Ok(Self::Builtin(name.to_owned()));
        }
        if let Some(name) = text.strip_prefix("dir:") {
            if name.is_empty() || name.contains('/') {
                return Err(format!(
                    "`{text}`: `dir:` needs a plugin file name without `.wasm` or slashes, e.g. `dir:team-filter`"
                ));
            }
            return Ok(Self::Directory(name.trim_end_matches(".wasm").to_owned()));
        }
        if text.is_empty() {
            return Err("a plugin source cannot be empty".into());
        }
        Ok(Self::Path(PathBuf::from(text)))
    }
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(name) => write!(f, "builtin:{name}"),
            Self::Directory(name) => write!(f, "dir:{name}"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for PluginSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

/// Per-stage resource limits. The defaults let every shipped plugin run with a
/// wide margin while stopping a runaway guest within milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Wasm fuel (roughly, instructions) a stage may burn per event in a call;
    /// a batch of N events gets N times this. The default plugins use a few
    /// thousand per event; the default (1M) stops an infinite loop after
    /// about 2 ms per event.
    pub fuel_per_event: u64,
    /// Further fuel per KiB of the events' messages, so that a plugin that
    /// reads a long message gets the fuel reading it takes. The default is
    /// about twice what the secret guard burns on the worst input measured
    /// (560k per KiB, a message of `password=` repeated; ordinary text takes
    /// 40k): a 32 KiB message gets 33M fuel, about 3 ms of the guard's
    /// work (docs/benchmarks.md).
    pub fuel_per_kib: u64,
    /// Wall-clock deadline of one call (a batch): whatever the guest does,
    /// the call ends by then and the failure policy applies (`timeout`).
    /// Fuel is the deterministic bound; this one also covers what fuel does
    /// not count. A batch of the default plugins takes well under 1 ms.
    /// Instantiation and `init` get ten times this.
    pub timeout: HumanDuration,
    /// Cap on the stage's linear memory. 32 MiB: a Rust guest starts at about
    /// 1.1 MiB and the default plugins stay below 2 MiB.
    pub memory: ByteSize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel_per_event: 1_000_000,
            fuel_per_kib: 1_000_000,
            timeout: HumanDuration::from_millis(100),
            memory: ByteSize::mebibytes(32),
        }
    }
}

/// What happens to an event a stage failed to process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Pass the event on as if the stage were not there. The default, because
    /// losing an event is worse than an unfiltered one for incident tooling.
    #[default]
    FailOpen,
    /// Drop the event (right for guards such as the secret guard).
    FailClosed,
    /// Take the event out of the chain and hand it to the sinks that take the
    /// `dead-letter` chain, with the failure attached.
    DeadLetter,
}

impl fmt::Display for FailurePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FailOpen => "fail-open",
            Self::FailClosed => "fail-closed",
            Self::DeadLetter => "dead-letter",
        })
    }
}

/// Circuit breaker for a stage that keeps failing: after `failures` failed
/// calls in a row the stage is skipped (its failure policy applies to every
/// event) for `cooldown`, then tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the breaker (default 5).
    pub failures: u32,
    /// How long the breaker stays open before one trial call (default 30s).
    pub cooldown: HumanDuration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: HumanDuration::from_secs(30),
        }
    }
}

/// Shortest `limits.timeout`: a few ticks of the deadline thread.
pub const MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(10);
/// Longest `limits.timeout`: every cluster's events wait while a call runs.
pub const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl PluginConfig {
    /// What is wrong with this instance on its own, `at` being its YAML path
    /// (`plugins.NAME`). (Whether its chain and policy fit the rest of the
    /// config is the config's to say.)
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.limits.fuel_per_event == 0 {
            problems.push(format!(
                "at `{at}.limits.fuel_per_event`: must be greater than 0"
            ));
        }
        if self.limits.memory.0 < 1 << 20 {
            problems.push(format!(
                "at `{at}.limits.memory`: {} is too small for any guest; expected at least 1Mi",
                self.limits.memory
            ));
        }
        if self.circuit_breaker.failures == 0 {
            problems.push(format!(
                "at `{at}.circuit_breaker.failures`: must be at least 1"
            ));
        }
        let timeout = self.limits.timeout.0;
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
            problems.push(format!(
                "at `{at}.limits.timeout`: {} is out of range; expected {} to {} (a plugin runs on the pipeline's thread)",
                self.limits.timeout,
                HumanDuration(MIN_TIMEOUT),
                HumanDuration(MAX_TIMEOUT),
            ));
        }
        problems
    }
}

/// Settings of the plugin runtime itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginRuntimeConfig {
    /// Directory of user plugins (every `*.wasm` in it is loaded), typically a
    /// ConfigMap with `binaryData` mounted into the pod. Referenced from
    /// `plugins.NAME.source` as `dir:NAME`. Relative to the config file.
    pub plugin_dir: Option<PathBuf>,
    /// Where compiled plugins are cached between runs; `null` disables the
    /// cache. Default: `$XDG_CACHE_HOME/aetherius` or `~/.cache/aetherius`.
    pub cache_dir: Option<PathBuf>,
    /// Events per call into a plugin. Larger batches amortise the fixed cost
    /// of crossing into Wasm; 128 keeps a batch's memory small.
    pub batch_size: usize,
}

impl Default for PluginRuntimeConfig {
    fn default() -> Self {
        Self {
            plugin_dir: None,
            cache_dir: default_cache_dir(),
            batch_size: 128,
        }
    }
}

impl PluginRuntimeConfig {
    /// What is wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        if self.batch_size == 0 || self.batch_size > 4096 {
            vec![format!(
                "at `plugin_runtime.batch_size`: {} is out of range; expected 1 to 4096",
                self.batch_size
            )]
        } else {
            Vec::new()
        }
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("aetherius"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            PluginSource::parse("builtin:reason-filter"),
            Ok(PluginSource::Builtin("reason-filter".into()))
        );
        assert_eq!(
            PluginSource::parse("dir:team.wasm"),
            Ok(PluginSource::Directory("team".into()))
        );
        assert_eq!(
            PluginSource::parse("./p.wasm"),
            Ok(PluginSource::Path("./p.wasm".into()))
        );
        assert!(PluginSource::parse("builtin:").is_err());
        assert!(PluginSource::parse("dir:a/b").is_err());
    }
}
