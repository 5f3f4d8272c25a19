//! Turns a config into a pipeline: its plugin instances and chains into
//! running stages, its sinks into running sink tasks.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{Pipeline, PipelineClock};
use crate::chain::Chain;
use crate::clock::SharedClock;
use crate::config::{Config, PluginSource};
use crate::metadata::MetadataCache;
use crate::plugin::{LoadedPlugin, PluginError, PluginRuntime};
use crate::sink::{self, SinkError, SinkTasks};

/// A plugin instance that could not be loaded or started, with its YAML path.
#[derive(Debug, thiserror::Error)]
#[error("at `{at}`: {error}")]
pub struct StageError {
    pub at: String,
    #[source]
    pub error: PluginError,
}

/// Every plugin instance that could not be loaded or started, one a line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
pub struct StageErrors(pub Vec<StageError>);

/// Why the chains could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Runtime(PluginError),
    #[error(transparent)]
    Stages(StageErrors),
}

/// Why the pipeline could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Builds the chains of `config` and starts its sinks: `workers` pipelines
/// (each with its own plugin instances), ready for [`spawn`](super::spawn),
/// the sink tasks they share, and the config back.
/// `metadata`: what plugins read of involved objects (kept by `run`).
pub async fn start(
    config: Config,
    clock: PipelineClock,
    workers: usize,
    metadata: MetadataCache,
) -> Result<(Vec<Pipeline>, SinkTasks, Config), StartError> {
    let plugin_clock: SharedClock = match &clock {
        PipelineClock::Live(clock) => clock.clone(),
        PipelineClock::Replay(clock) => Arc::new(clock.clone()),
    };
    let (chain_sets, config) = load_chains(config, plugin_clock, workers, metadata).await?;
    let (routes, sink_tasks) = sink::start(&config.sinks, &config.base_dir).await?;
    let pipelines = Pipeline::workers(
        config.dedup,
        chain_sets,
        routes,
        clock,
        config.plugin_runtime.batch_size,
        config.pipeline.dead_letter_retry,
    );
    Ok((pipelines, sink_tasks, config))
}

/// Starts the plugin runtime and builds the chains of `config` on a
/// blocking thread (Wasm compilation must not block the async runtime);
/// hands the config back with them.
pub async fn load_chains(
    config: Config,
    clock: SharedClock,
    workers: usize,
    metadata: MetadataCache,
) -> Result<(Vec<Vec<Chain>>, Config), LoadError> {
    tokio::task::spawn_blocking(move || {
        let runtime = PluginRuntime::new(config.plugin_runtime.cache_dir.clone(), clock)
            .map_err(LoadError::Runtime)?
            .with_metadata(metadata);
        let chains = build_chain_sets(&config, &runtime, workers)
            .map_err(|errors| LoadError::Stages(StageErrors(errors)))?;
        Ok((chains, config))
    })
    .await
    .expect("plugin start-up panicked")
}

/// Every chain some sink takes, with its stages started, in name order.
/// Reports every broken plugin, not just the first.
pub fn build_chains(
    config: &Config,
    runtime: &PluginRuntime,
) -> Result<Vec<Chain>, Vec<StageError>> {
    let mut sets = build_chain_sets(config, runtime, 1)?;
    Ok(sets.pop().expect("one set"))
}

/// [`build_chains`] `copies` times: each plugin loaded (compiled) once, its
/// stages started once per copy, so that each pipeline worker has instances
/// of its own.
pub fn build_chain_sets(
    config: &Config,
    runtime: &PluginRuntime,
    copies: usize,
) -> Result<Vec<Vec<Chain>>, Vec<StageError>> {
    let copies = copies.max(1);
    let mut errors = Vec::new();
    let directory = load_directory(config, runtime, &mut errors);
    let mut loaded: BTreeMap<String, Arc<LoadedPlugin>> = BTreeMap::new();
    let mut sets: Vec<Vec<Chain>> = (0..copies).map(|_| Vec::new()).collect();
    for chain_name in config.used_chains() {
        let mut stages: Vec<Vec<_>> = (0..copies).map(|_| Vec::new()).collect();
        for stage_name in &config.chains[chain_name] {
            let plugin_config = &config.plugins[stage_name];
            let at = format!("plugins.{stage_name}");
            let key = plugin_config.source.to_string();
            let plugin = match loaded.get(&key) {
                Some(plugin) => plugin.clone(),
                None => {
                    let result = match &plugin_config.source {
                        PluginSource::Directory(name) => {
                            directory.get(name).cloned().ok_or_else(|| {
                                missing_in_directory(
                                    config,
                                    name,
                                    directory.keys().map(String::as_str).collect(),
                                )
                            })
                        }
                        source => runtime.load(source, &config.base_dir, None),
                    };
                    match result {
                        Ok(plugin) => {
                            loaded.insert(key, plugin.clone());
                            plugin
                        }
                        Err(error) => {
                            errors.push(StageError {
                                at: format!("{at}.source"),
                                error,
                            });
                            continue;
                        }
                    }
                }
            };
            for copy in &mut stages {
                match runtime.start_stage(stage_name, plugin.clone(), plugin_config) {
                    Ok(stage) => copy.push(stage),
                    Err(error) => {
                        errors.push(StageError {
                            at: at.clone(),
                            error,
                        });
                        break;
                    }
                }
            }
        }
        for (set, stages) in sets.iter_mut().zip(stages) {
            set.push(Chain::new(chain_name.to_owned(), stages));
        }
    }
    if errors.is_empty() {
        // The metadata cache is kept while a chain reads it.
        runtime
            .metadata()
            .set_wanted(loaded.values().any(|plugin| plugin.reads_metadata()));
        Ok(sets)
    } else {
        Err(errors)
    }
}

/// Compiles every `*.wasm` in the plugin directory, so that a broken file is
/// reported even when no chain uses it yet.
fn load_directory(
    config: &Config,
    runtime: &PluginRuntime,
    errors: &mut Vec<StageError>,
) -> BTreeMap<String, Arc<LoadedPlugin>> {
    let mut plugins = BTreeMap::new();
    let Some(dir) = &config.plugin_runtime.plugin_dir else {
        return plugins;
    };
    let dir = config.resolve(dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(StageError {
                at: "plugin_runtime.plugin_dir".into(),
                error: PluginError::Read {
                    plugin: "plugin directory".into(),
                    path: dir,
                    error,
                },
            });
            return plugins;
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        // A mounted ConfigMap also holds `..data` and `..2026_…` entries.
        .filter(|name| name.ends_with(".wasm") && !name.starts_with('.'))
        .collect();
    names.sort();
    for file in names {
        let name = file.trim_end_matches(".wasm").to_owned();
        let source = PluginSource::Directory(name.clone());
        // `dir` is resolved already: joining it to the base again would
        // double a relative base (`config/config/..`).
        match runtime.load(&source, Path::new(""), Some(&dir)) {
            Ok(plugin) => {
                plugins.insert(name, plugin);
            }
            Err(error) => errors.push(StageError {
                at: "plugin_runtime.plugin_dir".into(),
                error,
            }),
        }
    }
    plugins
}

fn missing_in_directory(config: &Config, name: &str, available: Vec<&str>) -> PluginError {
    let dir = config
        .plugin_runtime
        .plugin_dir
        .as_deref()
        .map(|d| config.resolve(d))
        .unwrap_or_default();
    PluginError::Read {
        plugin: format!("dir:{name}"),
        path: dir.join(format!("{name}.wasm")),
        error: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            if available.is_empty() {
                "the plugin directory holds no .wasm files".to_owned()
            } else {
                format!("not found; the directory holds: {}", available.join(", "))
            },
        ),
    }
}
