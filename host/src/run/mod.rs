//! `aetherius run`: watches the configured clusters and publishes their
//! events until told to stop, then stops watching, drains the chains, flushes
//! the sinks and writes the checkpoints.

mod clusters;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::checkpoint::{Ack, CheckpointError, CheckpointStores, Checkpointer, Mark, Store};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::metrics;
use crate::pipeline::{
    Input, LoadError, Pipeline, PipelineClock, PipelineStats, StageError, input_queue, load_chains,
};
use crate::plugin::PluginError;
use crate::sink::{self, SinkError};
use crate::watch::ClientError;
use clusters::Clusters;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Runtime(#[from] PluginError),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Stages(Vec<StageError>),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error(
        "shutting down took longer than server.shutdown_grace ({0}); exiting with work undone (nothing is lost: the checkpoint was not moved past it)"
    )]
    GraceExceeded(crate::config::HumanDuration),
}

impl From<LoadError> for RunError {
    fn from(error: LoadError) -> Self {
        match error {
            LoadError::Runtime(error) => Self::Runtime(error),
            LoadError::Stages(errors) => Self::Stages(errors),
        }
    }
}

/// Runs until `shutdown` completes, then shuts down cleanly and returns what
/// the pipeline did.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<PipelineStats, RunError> {
    // Probes answer from the start; /ready waits for every watch and sink.
    let server = if config.server.listen.is_empty() {
        None
    } else {
        let listener = crate::server::bind(&config.server.listen).await?;
        Some(tokio::spawn(crate::server::serve(listener)))
    };
    let _server = AbortOnDrop(server);
    metrics::BUILD_INFO.set(&[env!("CARGO_PKG_VERSION")], 1.0);
    let grace = config.server.shutdown_grace;
    let clusters = clusters::wanted(&config);
    // A checkpoint file that cannot be read stops the start (it would
    // otherwise be overwritten).
    let file_store = Store::File(config.resolve(&config.checkpoint.file));
    let stores = CheckpointStores::default();
    if clusters.iter().any(|c| c.checkpoint_configmap.is_none()) {
        let document = file_store.load().await?;
        for cluster in clusters.iter().filter(|c| c.checkpoint_configmap.is_none()) {
            stores.register(file_store.clone(), document.clone(), &cluster.id);
        }
    }

    let clock: SharedClock = Arc::new(SystemClock);
    let (chains, config) = load_chains(config, clock.clone()).await?;
    let (routes, sink_tasks) = sink::start(&config).await?;
    let mut pipeline = Pipeline::new(
        config.dedup,
        chains,
        routes,
        PipelineClock::Live(clock.clone()),
        config.plugin_runtime.batch_size,
    );

    let (marks, marks_receiver) = mpsc::unbounded_channel::<Mark>();
    let checkpointer = tokio::spawn(
        Checkpointer::new(stores.clone(), config.checkpoint.interval.0).run(marks_receiver),
    );

    // Bounded: back-pressure reaches the API server connection, not memory.
    let (input, mut inputs) = input_queue();
    let pending: crate::reload::PendingChains = Default::default();
    let (cluster_updates, mut cluster_changes) = mpsc::unbounded_channel();
    let _reloader = AbortOnDrop(config.source.clone().map(|path| {
        let reloader = crate::reload::Reloader::new(
            &path,
            config.clone(),
            clock.clone(),
            pending.clone(),
            cluster_updates,
        );
        tokio::spawn(reloader.run())
    }));
    let worker = {
        let marks = marks.clone();
        let pending = pending.clone();
        std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || {
                while let Some(Input {
                    events,
                    mark,
                    budget: _budget,
                }) = inputs.blocking_recv()
                {
                    // A reload takes effect between two batches.
                    if let Some(chains) = pending.lock().expect("not poisoned").take() {
                        pipeline.replace_chains(chains);
                    }
                    if !events.is_empty() {
                        pipeline.process(events);
                    }
                    if let Some(mark) = mark {
                        let ack = Ack::new(mark, pipeline.sink_count(), marks.clone());
                        pipeline.acknowledge(&ack);
                    }
                }
                pipeline.stats()
            })
            .expect("spawn the pipeline thread")
    };

    let mut clusters_running = Clusters::new(clusters::Shared {
        config: config.clone(),
        input: Some(input),
        marks: Some(marks),
        stores,
        file_store,
        clock,
        identity: crate::lease::identity(),
    });
    // Everything that can be wrong with the credentials is found before the
    // first request to a cluster.
    clusters_running.start_all(clusters).await?;

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(clusters) = cluster_changes.recv() => clusters_running.apply(clusters).await,
        }
    }
    tracing::info!(grace = %grace, "shutting down: stopping the watches, draining the pipeline");
    let stop = async move {
        // Aborted between two hand-overs: a batch is either in the pipeline with
        // its mark, or was never taken from the API server's stream.
        // Also lets go of the pipeline's input: it drains and ends.
        clusters_running.stop_watching().await;
        let stats = tokio::task::spawn_blocking(move || worker.join())
            .await
            .expect("join the pipeline thread")
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let reports = sink_tasks.finish().await;
        checkpointer.await.expect("the checkpointer panicked");
        // Only now, with everything published and checkpointed, may another
        // replica take over.
        clusters_running.release_leases().await;
        for report in reports? {
            report.log();
        }
        Ok(stats)
    };
    match tokio::time::timeout(grace.0, stop).await {
        Ok(result) => result,
        Err(_) => Err(RunError::GraceExceeded(grace)),
    }
}

/// Stops the HTTP endpoint when `run` returns, however it returns.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// The clusters a config watches: the ones it lists, or the inferred one.
pub fn wanted_clusters(config: &Config) -> Vec<crate::config::ClusterConfig> {
    clusters::wanted(config)
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
