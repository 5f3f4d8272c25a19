//! Hot reload: the config file and the plugin directory are polled; when
//! either changes — a plain edit, or the kubelet writing a new timestamped
//! folder of a mounted ConfigMap and swapping its `..data` symlink — the new
//! config is validated and its plugins compiled beside the running ones.
//! Only then are the new chains handed to the pipeline thread, which swaps
//! them in between two batches: every event runs through exactly one set of
//! chains, none is dropped or run twice. A config or plugin that does not
//! load leaves the running chains alone and says why (an ERROR log line,
//! `aetherius_config_reloads_total{result="error"}`,
//! `aetherius_config_reload_failing`); `/ready` does not change.
//!
//! What a reload changes: plugins, their config and limits, chains, and
//! clusters (added ones are watched, removed ones no longer, changed ones
//! restarted). Changes to sinks, checkpoints, deduplication or the server
//! are reported and take effect at the next start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::chain::Chain;
use crate::clock::SharedClock;
use crate::config::{ClusterChanges, Config, DEAD_LETTER_CHAIN};
use crate::metadata::MetadataCache;
use crate::metrics;
use crate::pipeline::{PendingChains, load_chains};

/// Polls and reloads.
pub struct Reloader {
    path: PathBuf,
    running: Config,
    clock: SharedClock,
    pending: PendingChains,
    /// Where the cluster changes of a reloaded config go (`run` starts and
    /// stops them).
    clusters: mpsc::UnboundedSender<ClusterChanges>,
    /// What the reloaded plugins read of involved objects.
    metadata: MetadataCache,
    interval: Duration,
    seen: [u8; 32],
}

impl Reloader {
    /// `running`: the config the pipeline was built from (loaded from
    /// `path`).
    pub fn new(
        path: &Path,
        running: Config,
        clock: SharedClock,
        pending: PendingChains,
        clusters: mpsc::UnboundedSender<ClusterChanges>,
        metadata: MetadataCache,
    ) -> Self {
        let interval = running.server.reload_interval.0;
        let seen = fingerprint(path, &running);
        Self {
            path: path.to_owned(),
            running,
            clock,
            pending,
            clusters,
            metadata,
            interval,
            seen,
        }
    }

    /// Polls until the task is dropped.
    pub async fn run(mut self) {
        metrics::CONFIG_RELOAD_FAILING.set(&[], 0.0);
        metrics::CONFIG_RELOADS.touch(&["ok"]);
        metrics::CONFIG_RELOADS.touch(&["error"]);
        loop {
            tokio::time::sleep(self.interval).await;
            let path = self.path.clone();
            let running = self.running.clone();
            let now = tokio::task::spawn_blocking(move || fingerprint(&path, &running))
                .await
                .expect("hashing does not panic");
            if now == self.seen {
                continue;
            }
            self.seen = now;
            self.reload().await;
        }
    }

    async fn reload(&mut self) {
        tracing::info!(config = %self.path.display(), "the config or a plugin changed: reloading");
        // The command line's overrides apply to every reading of the file.
        let mut config = match Config::load_with(&self.path, &self.running.overrides) {
            Ok(config) => config,
            Err(error) => return self.rejected(&error.to_string()),
        };
        let restart_only = restart_only_changes(&self.running, &config);
        // The running sinks stay, so the new chains are built for them.
        config.sinks = self.running.sinks.clone();
        if let Some((sink, chain)) = config.sinks.iter().find(|(_, sink)| {
            sink.chain != DEAD_LETTER_CHAIN && !config.chains.contains_key(&sink.chain)
        }) {
            let error = format!(
                "the running sink `{sink}` takes chain `{chain}`, which the new config no longer has (sinks change at the next start)",
                chain = chain.chain
            );
            return self.rejected(&error);
        }
        let (chain_sets, config) = match load_chains(
            config,
            self.clock.clone(),
            self.pending.workers(),
            self.metadata.clone(),
        )
        .await
        {
            Ok(loaded) => loaded,
            Err(error) => return self.rejected(&error.to_string()),
        };
        for section in restart_only {
            tracing::warn!(
                section,
                "`{section}` changed: that takes effect at the next start; the rest is reloaded"
            );
        }
        let names: Vec<&str> = chain_sets[0].iter().map(Chain::name).collect();
        tracing::info!(chains = ?names, "reloaded: the new chains take over from the next batch");
        self.pending.offer(chain_sets);
        let changes = self.running.cluster_changes(&config);
        if changes != ClusterChanges::default() {
            let _ = self.clusters.send(changes);
        }
        metrics::CONFIG_RELOADS.inc(&["ok"]);
        metrics::CONFIG_RELOAD_FAILING.set(&[], 0.0);
        // The compile of the new plugins touched code and heap the running
        // pipeline does not need.
        crate::trim::release_soon().await;
        // Keep the sections a reload does not apply as they run (the sinks
        // are already the running ones).
        let running = std::mem::replace(&mut self.running, config);
        self.running.checkpoint = running.checkpoint;
        self.running.dedup = running.dedup;
        self.running.server = running.server;
    }

    fn rejected(&self, error: &str) {
        tracing::error!(
            config = %self.path.display(),
            "reload rejected; the running chains stay: {error}"
        );
        metrics::CONFIG_RELOADS.inc(&["error"]);
        metrics::CONFIG_RELOAD_FAILING.set(&[], 1.0);
    }
}

/// The sections of `new` that differ from `running` and need a restart.
fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    // Debug output stands in for equality: these types are compared only here.
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    if differs(&running.sinks, &new.sinks) {
        changed.push("sinks");
    }
    if differs(&running.checkpoint, &new.checkpoint) {
        changed.push("checkpoint");
    }
    if differs(&running.dedup, &new.dedup) {
        changed.push("dedup");
    }
    if differs(&running.server, &new.server) {
        changed.push("server");
    }
    if differs(&running.pipeline, &new.pipeline) {
        changed.push("pipeline");
    }
    changed
}

/// A hash of the config file's content and of every `*.wasm` in the plugin
/// directory (names and contents), following symlinks as the kubelet lays
/// them out.
fn fingerprint(path: &Path, config: &Config) -> [u8; 32] {
    let mut hash = Sha256::new();
    match std::fs::read(path) {
        Ok(bytes) => hash.update(&bytes),
        Err(error) => hash.update(error.to_string()),
    }
    if let Some(dir) = &config.plugin_runtime.plugin_dir {
        let dir = config.resolve(dir);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".wasm") && !name.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            hash.update(name.as_bytes());
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) => hash.update(Sha256::digest(&bytes)),
                Err(error) => hash.update(error.to_string()),
            }
        }
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const CONFIG: &str = "
plugins:
  warnings: { source: 'builtin:type-filter', config: { allow: [Warning] } }
chains:
  main: [warnings]
sinks:
  out: { chain: main, stdout: {} }
plugin_runtime: { cache_dir: null }
";

    #[tokio::test]
    async fn a_config_whose_chains_no_longer_serve_the_running_sinks_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, CONFIG).unwrap();
        let running = Config::load(&path).unwrap();
        let pending = PendingChains::new(1);
        let (clusters, _) = mpsc::unbounded_channel();
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let mut reloader = Reloader::new(
            &path,
            running,
            clock,
            pending.clone(),
            clusters,
            MetadataCache::default(),
        );

        // Valid on its own, but the running sink `out` would lose its chain.
        std::fs::write(&path, CONFIG.replace("main", "other")).unwrap();
        reloader.reload().await;
        assert!(pending.is_empty(), "nothing swapped in");
        assert_eq!(metrics::CONFIG_RELOAD_FAILING.get(&[]), Some(1.0));
        assert_eq!(reloader.running.chains.keys().collect::<Vec<_>>(), ["main"]);
    }

    /// `--cluster-id` and `--kubeconfig` hold across a reload: a reload of an
    /// unchanged cluster neither restarts nor renames it.
    #[tokio::test]
    async fn the_command_line_overrides_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, CONFIG).unwrap();
        let overrides = crate::config::Overrides {
            cluster_id: Some("from-flag".into()),
            ..Default::default()
        };
        let running = Config::load_with(&path, &overrides).unwrap();
        let pending = PendingChains::new(1);
        let (clusters, mut changes) = mpsc::unbounded_channel();
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let mut reloader = Reloader::new(
            &path,
            running,
            clock,
            pending.clone(),
            clusters,
            MetadataCache::default(),
        );

        std::fs::write(&path, CONFIG.replace("[Warning]", "[Warning, Normal]")).unwrap();
        reloader.reload().await;
        assert!(!pending.is_empty(), "the new chains are offered");
        assert!(changes.try_recv().is_err(), "no cluster stops or starts");
        assert_eq!(reloader.running.watched_clusters()[0].id, "from-flag");
    }
}
