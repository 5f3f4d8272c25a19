//! `aetherius check`: validates a config and loads every plugin it names,
//! without touching a cluster or a sink.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::{Config, ConfigError, Format, Overrides};
use crate::pipeline::{StageErrors, build_chains};
use crate::plugin::{PluginError, PluginRuntime};

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Runtime(#[from] PluginError),
    #[error("{}: {}", .path, .error)]
    Sink {
        path: String,
        error: crate::sink::SinkError,
    },
    #[error("{}: {} plugin problem(s):\n  {}", .path, .errors.0.len(), .errors)]
    Stages { path: String, errors: StageErrors },
}

/// Checks the config at `path`; on success returns a short report of the
/// chains and their stages.
pub fn check(path: &Path) -> Result<String, CheckError> {
    check_with(path, &Overrides::default())
}

/// As [`check`], with the command line's `--cluster-id` and `--kubeconfig`.
pub fn check_with(path: &Path, overrides: &Overrides) -> Result<String, CheckError> {
    let config = Config::load_with(path, overrides)?;
    let runtime = PluginRuntime::new(
        config.plugin_runtime.cache_dir.clone(),
        Arc::new(SystemClock),
    )?;
    let chains = build_chains(&config, &runtime).map_err(|errors| CheckError::Stages {
        path: path.display().to_string(),
        errors: StageErrors(errors),
    })?;
    let mut report = format!("{}: OK\n", path.display());
    let _ = writeln!(
        report,
        "format: {}",
        match config.format {
            Format::Native => "native",
            Format::WatcherConfig { .. } =>
                "the design document's watcher-config.yaml (`--print-native` shows the native config it is read as)",
        }
    );
    for chain in &chains {
        let _ = writeln!(report, "chain {}:", chain.name());
        for (name, kind, source) in chain.describe() {
            let _ = writeln!(report, "  {name:<20} {kind:<16} {source}");
        }
    }
    for (name, sink) in &config.sinks {
        let Ok(kind) = sink.kind() else {
            unreachable!("Config::load rejects sinks without exactly one output")
        };
        let output = kind
            .describe(name, &config.base_dir)
            .map_err(|error| CheckError::Sink {
                path: path.display().to_string(),
                error,
            })?;
        let _ = writeln!(report, "sink {name} <- chain {}: {output}", sink.chain);
    }
    for cluster in &config.watched_clusters() {
        let credentials = match (&cluster.kubeconfig, cluster.in_cluster) {
            (_, true) => "in-cluster service account".to_owned(),
            (Some(path), _) => format!("kubeconfig {}", config.resolve(path).display()),
            (None, _) => "kubeconfig as kubectl finds it, else in-cluster".to_owned(),
        };
        let context = cluster
            .context
            .as_deref()
            .map(|c| format!(" (context {c})"))
            .unwrap_or_default();
        let namespaces = if cluster.namespaces.is_empty() {
            "all namespaces".to_owned()
        } else {
            format!("namespaces {}", cluster.namespaces.join(", "))
        };
        let checkpoint = match &cluster.checkpoint_configmap {
            Some(cm) => format!("ConfigMap {}/{}", cm.namespace, cm.name),
            None => config
                .resolve(&config.checkpoint.file)
                .display()
                .to_string(),
        };
        let _ = writeln!(
            report,
            "cluster {}: {credentials}{context}, {namespaces}, checkpoint in {checkpoint}",
            cluster.id
        );
    }
    let used: Vec<&String> = config.chains.values().flatten().collect();
    for name in config.plugins.keys().filter(|name| !used.contains(name)) {
        let _ = writeln!(
            report,
            "warning: plugin `{name}` is defined but no chain uses it"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a user runs first on a fresh clone: every shipped config checks,
    /// its plugins (built-in and the example in examples/plugins) loaded.
    #[test]
    fn every_shipped_config_passes_check() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let report = check(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(report.contains(": OK"), "{report}");
                checked += 1;
            }
        }
        assert!(
            checked >= 3,
            "config/default.yaml, config/example.yaml and config/watcher-config.yaml"
        );
    }
}
