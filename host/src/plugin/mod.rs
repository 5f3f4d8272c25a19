//! The plugin runtime: loads Wasm components that implement the plugin
//! contract (`wit/plugin.wit`) and runs them as sandboxed pipeline stages.
//!
//! One [`Engine`] for the process; each component is compiled once (and cached
//! on disk); each stage owns one Store and instance, reused across calls and
//! re-created after a trap. Every call is bounded by fuel, a memory cap and a
//! wall-clock deadline (`deadline`). Nothing is granted to a guest but the
//! contract's `log` and `now`: the WASI that std guests import is linked
//! empty or denying, with nothing that waits (`wasi`).

mod bindings;
mod breaker;
mod config;
mod deadline;
mod loader;
mod stage;
mod state;
mod validate;
mod wasi;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config as EngineConfig, Engine};

use bindings::{enricher, filter, severity_mapper};
pub use breaker::BreakerState;
pub use config::{
    BreakerConfig, FailurePolicy, Limits, MAX_TIMEOUT, MIN_TIMEOUT, PluginConfig,
    PluginRuntimeConfig, PluginSource,
};
use deadline::Watchdog;
pub use loader::{builtin_bytes, builtin_names, shipped_dir};
pub use stage::{Decision, Stage};

pub use crate::item::{Failure, FailureKind};
use state::StoreState;

use crate::clock::SharedClock;
use crate::metadata::MetadataCache;

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    Filter,
    SeverityMapper,
    Enricher,
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Filter => "filter",
            Self::SeverityMapper => "severity-mapper",
            Self::Enricher => "enricher",
        })
    }
}

/// A plugin that could not be loaded or started.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot set up the Wasm engine: {0}")]
    Engine(String),
    #[error("unknown built-in plugin `builtin:{name}`; available: {available}")]
    UnknownBuiltin { name: String, available: String },
    #[error("{plugin}: cannot read {}: {error}", path.display())]
    Read {
        plugin: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{plugin}: cannot write {}: {error}", path.display())]
    Write {
        plugin: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{plugin}: not a Wasm component: {reason}")]
    NotAComponent { plugin: String, reason: String },
    #[error(
        "{plugin}: implements none of the plugin worlds (aetherius:plugin@0.1 filter, severity-mapper, enricher); it exports: {exports}"
    )]
    WrongWorld { plugin: String, exports: String },
    #[error("{plugin}: cannot be linked: {reason}")]
    Link { plugin: String, reason: String },
    #[error("{plugin}: init rejected the config: {message}")]
    InitRejected { plugin: String, message: String },
    #[error("{plugin}: failed to start: {reason}")]
    Start { plugin: String, reason: String },
}

/// A compiled component, ready to be instantiated as any number of stages.
pub struct LoadedPlugin {
    source: String,
    kind: StageKind,
    pre: WorldPre,
    /// It imports the contract's `metadata` (0.1.4).
    reads_metadata: bool,
}

enum WorldPre {
    Filter(filter::FilterPre<StoreState>),
    SeverityMapper(severity_mapper::SeverityMapperPre<StoreState>),
    Enricher(enricher::EnricherPre<StoreState>),
}

impl LoadedPlugin {
    pub fn kind(&self) -> StageKind {
        self.kind
    }

    /// Where it came from, as written in the config.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it reads the metadata of involved objects (the contract's
    /// `metadata`): the host keeps its metadata cache only for such plugins.
    pub fn reads_metadata(&self) -> bool {
        self.reads_metadata
    }
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("source", &self.source)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The process-wide Wasm engine, its linker and the compiled-artifact cache.
pub struct PluginRuntime {
    engine: Engine,
    watchdog: Watchdog,
    linker: Linker<StoreState>,
    cache: loader::ComponentCache,
    clock: SharedClock,
    /// What the plugins that import the contract's `metadata` read.
    metadata: MetadataCache,
}

impl PluginRuntime {
    /// `cache_dir`: where compiled components are kept between runs (`None`
    /// to compile every time). `clock`: what plugins see as `now`.
    pub fn new(cache_dir: Option<PathBuf>, clock: SharedClock) -> Result<Self, PluginError> {
        let mut config = EngineConfig::new();
        config.wasm_component_model(true);
        // CPU limits are counted in fuel: deterministic, so a test of a
        // runaway plugin gives the same result on every machine. Epochs bound
        // the wall-clock time of a call (`deadline`).
        config.consume_fuel(true);
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let linker = Self::linker(&engine).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let watchdog = Watchdog::start(&engine)
            .map_err(|e| PluginError::Engine(format!("cannot start the deadline thread: {e}")))?;
        Ok(Self {
            engine,
            watchdog,
            linker,
            cache: loader::ComponentCache::new(cache_dir),
            clock,
            metadata: MetadataCache::default(),
        })
    }

    /// Plugins read `cache` through the contract's `metadata` (`run` keeps
    /// it; elsewhere it stays empty and every lookup misses).
    pub fn with_metadata(mut self, cache: MetadataCache) -> Self {
        self.metadata = cache;
        self
    }

    /// The cache the plugins read.
    pub fn metadata(&self) -> &MetadataCache {
        &self.metadata
    }

    /// What every plugin may import: the contract's `host`, `batch` and
    /// `types`, and the WASI surface of [`wasi`].
    fn linker(engine: &Engine) -> wasmtime::Result<Linker<StoreState>> {
        let mut linker = Linker::new(engine);
        wasi::add_to_linker(&mut linker)?;
        bindings::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        bindings::batch::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        bindings::metadata::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        bindings::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        Ok(linker)
    }

    /// Loads and compiles a plugin and finds out which world it implements.
    pub fn load(
        &self,
        source: &PluginSource,
        base_dir: &Path,
        plugin_dir: Option<&Path>,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let name = match loader::resolve_path(source, base_dir, plugin_dir) {
            Some(path) if !matches!(source, PluginSource::Path(_)) => {
                format!("{source} ({})", path.display())
            }
            _ => source.to_string(),
        };
        let bytes = loader::read_source(source, base_dir, plugin_dir)?;
        self.load_bytes(&bytes, name)
    }

    /// Compiles `source` (a built-in, or a component's path) into an
    /// artifact in `dir` that a runtime of this binary loads instead of
    /// compiling it, when `dir` is its [`loader::shipped_dir`]; returns the
    /// artifact's path.
    pub fn precompile(&self, source: &PluginSource, dir: &Path) -> Result<PathBuf, PluginError> {
        let bytes = loader::read_source(source, Path::new("."), None)?;
        loader::precompile_into(&self.engine, &bytes, &source.to_string(), dir)
    }

    /// Compiles a component from bytes; `source` names it in errors.
    pub fn load_bytes(
        &self,
        bytes: &[u8],
        source: String,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let component = self.cache.compile(&self.engine, bytes, &source)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| PluginError::Link {
                    plugin: source.clone(),
                    reason: wasi::describe_missing_import(&e),
                })?;
        let pre = if let Ok(pre) = filter::FilterPre::new(instance_pre.clone()) {
            WorldPre::Filter(pre)
        } else if let Ok(pre) = severity_mapper::SeverityMapperPre::new(instance_pre.clone()) {
            WorldPre::SeverityMapper(pre)
        } else if let Ok(pre) = enricher::EnricherPre::new(instance_pre) {
            WorldPre::Enricher(pre)
        } else {
            let ty = component.component_type();
            let exports: Vec<String> = ty
                .exports(&self.engine)
                .map(|(name, _)| name.to_owned())
                .collect();
            return Err(PluginError::WrongWorld {
                plugin: source,
                exports: if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                },
            });
        };
        let kind = match pre {
            WorldPre::Filter(_) => StageKind::Filter,
            WorldPre::SeverityMapper(_) => StageKind::SeverityMapper,
            WorldPre::Enricher(_) => StageKind::Enricher,
        };
        let reads_metadata = component
            .component_type()
            .imports(&self.engine)
            .any(|(name, _)| name.starts_with("aetherius:plugin/metadata@"));
        Ok(Arc::new(LoadedPlugin {
            source,
            kind,
            pre,
            reads_metadata,
        }))
    }

    /// Starts a stage: instantiates the plugin and calls `init` with the
    /// stage's config, which the plugin may reject.
    pub fn start_stage(
        &self,
        name: &str,
        plugin: Arc<LoadedPlugin>,
        config: &PluginConfig,
    ) -> Result<Stage, PluginError> {
        Stage::start(
            &self.engine,
            &self.watchdog,
            name,
            plugin,
            config,
            self.clock.clone(),
            self.metadata.clone(),
        )
    }
}
