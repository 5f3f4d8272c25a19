//! `aetherius run`: watches the configured clusters and publishes their
//! events until told to stop, then stops watching, drains the chains, flushes
//! the sinks and writes the checkpoints.

mod clusters;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::checkpoint::{
    CheckpointError, CheckpointStores, Checkpointer, Lag, Store, acknowledger,
};
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::input::input_queue;
use crate::metrics;
use crate::pipeline::{PendingChains, PipelineClock, PipelineStats, StartError};
use crate::status::Status;
use crate::watch::ClientError;
use clusters::Clusters;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error(
        "shutting down took longer than server.shutdown_grace ({0}); exiting with work undone (nothing is lost: the checkpoint was not moved past it)"
    )]
    GraceExceeded(crate::config::HumanDuration),
}

/// Runs until `shutdown` completes, then shuts down cleanly and returns what
/// the pipeline did.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<PipelineStats, RunError> {
    let stores = CheckpointStores::default();
    let status = Status::new(stores.clone());
    // Probes answer from the start; /ready waits for every watch and sink.
    let mut servers = Vec::new();
    for (address, endpoints) in crate::server::listeners(&config.server) {
        let listener = crate::server::bind(address, endpoints).await?;
        servers.push(AbortOnDrop(Some(tokio::spawn(crate::server::serve(
            listener,
            endpoints,
            status.clone(),
        )))));
    }
    metrics::BUILD_INFO.set(&[env!("CARGO_PKG_VERSION")], 1.0);
    let grace = config.server.shutdown_grace;
    let clusters = config.watched_clusters();
    // The checkpoint file is read once, here, if any cluster keeps its
    // checkpoint there; one that cannot be read stops the start (it would
    // otherwise be overwritten).
    let file_store = Store::File(config.resolve(&config.checkpoint.file));
    for cluster in clusters.iter().filter(|c| c.checkpoint_configmap.is_none()) {
        stores.attach(&cluster.id, file_store.clone()).await?;
    }

    let clock: SharedClock = Arc::new(SystemClock);
    let workers = config.pipeline.workers;
    let metadata = crate::metadata::MetadataCache::new(config.metadata.max_objects);
    metrics::METADATA_OBJECTS.set(&[], 0.0);
    let (pipelines, sink_tasks, config) = crate::pipeline::start(
        config,
        PipelineClock::Live(clock.clone()),
        workers,
        metadata.clone(),
    )
    .await?;

    let lag = Lag::default();
    let (acks, marks) = acknowledger(lag.clone());
    let checkpointer = tokio::spawn(
        Checkpointer::new(stores.clone(), config.checkpoint.interval.0, lag.clone()).run(marks),
    );

    // Bounded: back-pressure reaches the API server connection, not memory.
    let (input, inputs) = input_queue(config.pipeline.buffer_size);
    let pending = PendingChains::new(workers);
    let (cluster_updates, mut cluster_changes) = mpsc::unbounded_channel();
    let _reloader = AbortOnDrop(config.source.clone().map(|path| {
        let reloader = crate::reload::Reloader::new(
            &path,
            config.clone(),
            clock.clone(),
            pending.clone(),
            cluster_updates,
            metadata.clone(),
        );
        tokio::spawn(reloader.run())
    }));
    let worker = crate::pipeline::spawn(pipelines, inputs, Some(acks), pending);
    // Parsing the config and loading (or compiling) the plugins is done:
    // their code and buffers go back before the initial lists start.
    crate::trim::release_soon().await;

    let identity = crate::lease::identity();
    let spread = config.replicas.announce_cluster(&clusters).map(|announce| {
        let elected = clusters
            .iter()
            .filter(|cluster| cluster.leader_election.is_some())
            .count();
        let hand_over = crate::lease::HandOver {
            lag: lag.clone(),
            checkpoint_interval: config.checkpoint.interval.0,
        };
        (
            crate::spread::Spread::new(&identity, elected),
            hand_over,
            announce.id.clone(),
        )
    });
    if spread.is_none() {
        metrics::REPLICAS.set(&[], 1.0);
        metrics::CLUSTER_SHARE.set(&[], clusters.len() as f64);
    }
    let mut clusters_running = Clusters::new(clusters::Shared {
        config: config.clone(),
        input: Some(input),
        stores,
        file_store,
        clock,
        identity,
        status,
        watch_runtime: worker.runtime(),
        spread,
        metadata,
    });
    // Everything that can be wrong with the credentials is found before the
    // first request to a cluster.
    clusters_running.start_all(clusters).await?;
    // What the initial lists needed goes back once every watch is synced.
    let _trim = AbortOnDrop(Some(tokio::spawn(crate::trim::release_when_ready(
        Duration::from_secs(1),
    ))));

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(changes) = cluster_changes.recv() => clusters_running.apply(changes).await,
        }
    }
    tracing::info!(grace = %grace, "shutting down: stopping the watches, draining the pipeline");
    let stop = async move {
        // Aborted between two hand-overs: a batch is either in the pipeline with
        // its mark, or was never taken from the API server's stream.
        // Also lets go of the pipeline's input: it drains and ends.
        clusters_running.stop_watching().await;
        let stats = worker.join().await;
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

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
