//! Agent mode: the whole pipeline — watches, occurrence core, plugin chains,
//! checkpoints — inside another Rust program, which receives each published
//! event on a channel (the design document's "Agent 代理模式").
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use aetherius::agent::Agent;
//! use aetherius::config::Config;
//!
//! let config = Config::load("watcher-config.yaml".as_ref())?;
//! let mut agent = Agent::new(config);
//! // Every event the `default` chain publishes, 100 at most waiting (or
//! // a sink the config declares with `embedded: {}`, by its name).
//! let mut events = agent.subscribe("default", 100)?;
//! let running = tokio::spawn(agent.run(async {
//!     tokio::signal::ctrl_c().await.ok();
//! }));
//! while let Some(event) = events.recv().await {
//!     println!("{} {} {}", event.cluster_id, event.severity, event.id);
//! }
//! running.await??;
//! # Ok(()) }
//! ```
//!
//! What the program receives is what a sink would publish: the event in the
//! sink's format (StandardEvent JSON by default), with its id, cluster and
//! severity beside it. Delivery is ordered; while the program does not keep
//! up, its channel fills and the watches wait (nothing is dropped). The
//! checkpoint moves once an event is in the channel: a program that must not
//! lose an event across a crash should act on it before taking the next.

use std::future::Future;

use tokio::sync::mpsc;

use crate::config::{Config, SinkConfig};
use crate::pipeline::PipelineStats;
use crate::run::RunError;
use crate::sink::EmbeddedSinkConfig;

pub use crate::sink::Published;

/// A name [`Agent::subscribe`] cannot take.
#[derive(Debug, thiserror::Error)]
#[error("`{name}` is neither an `embedded` sink nor a chain of the config; it has: {known}")]
pub struct UnknownName {
    name: String,
    known: String,
}

/// A pipeline to run inside this program.
#[derive(Debug)]
pub struct Agent {
    config: Config,
}

impl Agent {
    /// The pipeline `config` describes (either format; its sinks publish as
    /// they would under `aetherius run`).
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// Delivers to the returned receiver, in order, at most `capacity`
    /// waiting: what the sink `name` publishes, if the config declares it
    /// with `embedded: {}` (and its chain, format and `min_severity`), else
    /// everything the chain `name` publishes. Call before
    /// [`run`](Self::run); each call adds a subscriber.
    pub fn subscribe(
        &mut self,
        name: &str,
        capacity: usize,
    ) -> Result<mpsc::Receiver<Published>, UnknownName> {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        if let Some(embedded) = self
            .config
            .sinks
            .get_mut(name)
            .and_then(|sink| sink.embedded.as_mut())
        {
            embedded.sender = Some(sender);
            return Ok(receiver);
        }
        if !self.config.chains.contains_key(name) {
            let sinks = self
                .config
                .sinks
                .iter()
                .filter(|(_, sink)| sink.embedded.is_some())
                .map(|(name, _)| format!("sink {name}"));
            let chains = self
                .config
                .chains
                .keys()
                .map(|name| format!("chain {name}"));
            return Err(UnknownName {
                name: name.to_owned(),
                known: sinks.chain(chains).collect::<Vec<_>>().join(", "),
            });
        }
        let sink_name = format!("embedded-{}", self.config.sinks.len());
        self.config.sinks.insert(
            sink_name,
            SinkConfig::embedded(name, EmbeddedSinkConfig::new(sender)),
        );
        Ok(receiver)
    }

    /// Runs until `shutdown` completes, then stops as `aetherius run` does
    /// on SIGTERM (drain, flush, checkpoint) and returns what it did. The
    /// receivers end when it has stopped.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<PipelineStats, RunError> {
        crate::run::run(self.config, shutdown).await
    }
}
