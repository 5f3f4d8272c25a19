//! `aetherius run`: watches the configured clusters and publishes their
//! events until told to stop, then stops watching, drains the chains, flushes
//! the sinks and writes the checkpoints.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::checkpoint::{Ack, CheckpointError, Checkpointer, Document, Mark, Store, WatchKey};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{ClusterConfig, Config};
use crate::metrics;
use crate::pipeline::{LoadError, Pipeline, PipelineClock, PipelineStats, StageError, load_chains};
use crate::plugin::PluginError;
use crate::sink::{self, SinkError};
use crate::watch::{Backoff, ClientError, Input, Watcher, connect, watches_of};

/// Inputs (watch batches) that may wait for the pipeline before watchers
/// block: back-pressure reaches the API server connection, not memory.
const INPUT_QUEUE: usize = 4;

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
    let clusters = if config.clusters.is_empty() {
        vec![ClusterConfig::inferred()]
    } else {
        config.clusters.clone()
    };
    // Probes answer from the start; /ready waits for every watch and sink.
    let server = if config.server.listen.is_empty() {
        None
    } else {
        let listener = crate::server::bind(&config.server.listen).await?;
        Some(tokio::spawn(crate::server::serve(listener)))
    };
    let _server = AbortOnDrop(server);
    metrics::BUILD_INFO.set(&[env!("CARGO_PKG_VERSION")], 1.0);
    for cluster in &clusters {
        let leads = if cluster.leader_election.is_some() {
            0.0
        } else {
            1.0
        };
        metrics::LEADER.set(&[&cluster.id], leads);
        for namespace in watches_of(cluster) {
            metrics::WATCH_SYNCED.set(&[&cluster.id, namespace.as_deref().unwrap_or("")], 0.0);
        }
    }
    let grace = config.server.shutdown_grace;
    // Everything that can be wrong with the configuration is found before
    // the first request to a cluster.
    let mut clients = Vec::with_capacity(clusters.len());
    for cluster in &clusters {
        clients.push(connect(cluster, &config).await?);
    }
    let file_store = Store::File(config.resolve(&config.checkpoint.file));
    let file_clusters: Vec<String> = clusters
        .iter()
        .filter(|c| c.checkpoint_configmap.is_none())
        .map(|c| c.id.clone())
        .collect();
    let file_document = if file_clusters.is_empty() {
        Document::default()
    } else {
        file_store.load().await?
    };

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

    let mut stores = vec![(file_store, file_document.clone(), file_clusters)];
    let mut configmap_stores = Vec::new();
    for (cluster, (client, _)) in clusters.iter().zip(&clients) {
        if let Some(configmap) = &cluster.checkpoint_configmap {
            let store = Store::ConfigMap {
                client: client.clone(),
                configmap: configmap.clone(),
            };
            configmap_stores.push((cluster.id.clone(), store.clone()));
            stores.push((store, Document::default(), vec![cluster.id.clone()]));
        }
    }
    let (marks, marks_receiver) = mpsc::unbounded_channel::<Mark>();
    let checkpointer =
        tokio::spawn(Checkpointer::new(stores, config.checkpoint.interval.0).run(marks_receiver));

    let (input, mut inputs) = mpsc::channel::<Input>(INPUT_QUEUE);
    let pending: crate::reload::PendingChains = Default::default();
    let _reloader = AbortOnDrop(config.source.clone().map(|path| {
        let reloader =
            crate::reload::Reloader::new(&path, config.clone(), clock.clone(), pending.clone());
        tokio::spawn(reloader.run())
    }));
    let worker = {
        let marks = marks.clone();
        let pending = pending.clone();
        std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || {
                while let Some(Input { events, mark }) = inputs.blocking_recv() {
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

    let identity = crate::lease::identity();
    let (stop_electing, stop_electing_rx) = tokio::sync::watch::channel(false);
    let mut electors = JoinSet::new();
    let mut watchers = JoinSet::new();
    for (cluster, (client, server)) in clusters.iter().zip(clients) {
        let leading = cluster.leader_election.clone().map(|lease| {
            let (leading, leading_rx) = tokio::sync::watch::channel(false);
            let elector =
                crate::lease::Elector::new(&cluster.id, client.clone(), lease, identity.clone());
            electors.spawn(elector.run(leading, stop_electing_rx.clone()));
            leading_rx
        });
        let configmap = configmap_stores
            .iter()
            .find(|(id, _)| *id == cluster.id)
            .map(|(_, store)| store.clone());
        let cluster = cluster.clone();
        let (input, marks, clock, file_document) = (
            input.clone(),
            marks.clone(),
            clock.clone(),
            file_document.clone(),
        );
        watchers.spawn(async move {
            let mut leading = leading;
            loop {
                // With leader election: only the leader watches.
                if let Some(leading) = &mut leading {
                    metrics::LEADER.set(&[&cluster.id], 0.0);
                    if !*leading.borrow() {
                        tracing::info!(cluster = %cluster.id, "standing by: another replica leads");
                    }
                    if leading.wait_for(|leading| *leading).await.is_err() {
                        return;
                    }
                    metrics::LEADER.set(&[&cluster.id], 1.0);
                }
                // Loaded now, not at start: a previous leader moved it.
                let document = match &configmap {
                    Some(store) => load_with_retry(&cluster, store, &marks).await,
                    None => file_document.clone(),
                };
                let mut watches = JoinSet::new();
                for namespace in watches_of(&cluster) {
                    let watcher = Watcher::new(
                        &cluster,
                        namespace,
                        client.clone(),
                        server.clone(),
                        clock.clone(),
                        input.clone(),
                    );
                    let checkpoint = document.get(watcher.key()).map(str::to_owned);
                    watches.spawn(watcher.run(checkpoint));
                }
                let Some(leading) = &mut leading else {
                    while watches.join_next().await.is_some() {}
                    return;
                };
                let lost = tokio::select! {
                    _ = async { while watches.join_next().await.is_some() {} } => false,
                    lost = leading.wait_for(|leading| !*leading) => lost.is_ok(),
                };
                if !lost {
                    return;
                }
                // Between two hand-overs, as on shutdown: what was handed
                // over is published and checkpointed; the rest is the new
                // leader's.
                watches.shutdown().await;
            }
        });
    }
    drop((input, marks));

    shutdown.await;
    tracing::info!(grace = %grace, "shutting down: stopping the watches, draining the pipeline");
    let stop = async move {
        // Aborted between two hand-overs: a batch is either in the pipeline with
        // its mark, or was never taken from the API server's stream.
        watchers.shutdown().await;
        let stats = tokio::task::spawn_blocking(move || worker.join())
            .await
            .expect("join the pipeline thread")
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let reports = sink_tasks.finish().await;
        checkpointer.await.expect("the checkpointer panicked");
        // Only now, with everything published and checkpointed, may another
        // replica take over.
        let _ = stop_electing.send(true);
        while electors.join_next().await.is_some() {}
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

/// Reads a cluster's checkpoint from its ConfigMap, retrying while the
/// cluster cannot be reached, and seeds the checkpointer with it so that a
/// write for one namespace never erases another's.
async fn load_with_retry(
    cluster: &ClusterConfig,
    store: &Store,
    marks: &mpsc::UnboundedSender<Mark>,
) -> Document {
    let mut backoff = Backoff::default();
    let mut logged = false;
    let document = loop {
        match store.load().await {
            Ok(document) => break document,
            Err(error) => {
                let delay = backoff.next_delay();
                if !std::mem::replace(&mut logged, true) {
                    tracing::error!(cluster = %cluster.id, %error, "cannot read the checkpoint; retrying with backoff");
                }
                tokio::time::sleep(delay.min(Duration::from_secs(30))).await;
            }
        }
    };
    for (scope, rv) in document.clusters.get(&cluster.id).into_iter().flatten() {
        let _ = marks.send(Mark {
            key: WatchKey {
                cluster: cluster.id.clone(),
                namespace: (scope != "*").then(|| scope.clone()),
            },
            resource_version: rv.clone(),
        });
    }
    document
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
