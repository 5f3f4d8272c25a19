//! The clusters `aetherius run` watches: per cluster a task that (with
//! leader election, once this replica leads) loads its checkpoint and runs
//! its watches, started and stopped as the config says — at start and on
//! every reload.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::backoff::Backoff;
use crate::checkpoint::{CheckpointStores, Document, Store};
use crate::clock::SharedClock;
use crate::config::{ClusterChanges, ClusterConfig, Config};
use crate::event::EventLimits;
use crate::input::InputSender;
use crate::lease::{Elector, HandOver};
use crate::metrics;
use crate::spread::Spread;
use crate::status::Status;
use crate::watch::{ClientError, Clients, Watcher, connect, watches_of};

/// What every cluster task shares.
pub(super) struct Shared {
    /// For credentials and relative paths.
    pub config: Config,
    /// Taken by [`Clusters::stop_watching`], so that the pipeline sees its
    /// input end.
    pub input: Option<InputSender>,
    pub stores: CheckpointStores,
    pub file_store: Store,
    pub clock: SharedClock,
    pub identity: String,
    pub status: Status,
    /// The pipeline thread's: the watches run there
    /// ([`crate::pipeline::PipelineThread::runtime`]).
    pub watch_runtime: tokio::runtime::Handle,
    /// With `replicas.spread` and several clusters under leader election:
    /// this replica's share, what a hand-over waits for, and the cluster
    /// beside whose lease the replicas announce themselves.
    pub spread: Option<(Spread, HandOver, String)>,
    /// Kept, for the clusters this replica watches, while a chain reads it.
    pub metadata: crate::metadata::MetadataCache,
}

struct Running {
    watcher: JoinHandle<()>,
    /// Stops the election (releasing the lease) and its task.
    elector: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    /// In the announce cluster: stops announcing this replica (taking its
    /// beat out of the replicas' Lease) and the task.
    announcer: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

/// The running clusters.
pub(super) struct Clusters {
    shared: Shared,
    running: BTreeMap<String, Running>,
}

impl Clusters {
    pub fn new(shared: Shared) -> Self {
        Self {
            shared,
            running: BTreeMap::new(),
        }
    }

    /// Builds every cluster's client first, so that a configuration error
    /// stops the start before the first request; then starts them all.
    pub async fn start_all(&mut self, clusters: Vec<ClusterConfig>) -> Result<(), ClientError> {
        let mut clients = Vec::with_capacity(clusters.len());
        for cluster in &clusters {
            clients.push(
                connect(
                    cluster,
                    &self.shared.config.base_dir,
                    &self.shared.watch_runtime,
                )
                .await?,
            );
        }
        for (cluster, client) in clusters.into_iter().zip(clients) {
            self.start(cluster, client).await;
        }
        Ok(())
    }

    /// Stops the clusters a reload removed or changed, then starts the ones
    /// it added or changed.
    pub async fn apply(&mut self, changes: ClusterChanges) {
        for id in changes.stop {
            self.stop(&id).await;
            tracing::info!(cluster = %id, "stopped watching the cluster: the config no longer has it as it was");
        }
        for cluster in changes.start {
            let id = cluster.id.clone();
            if let Some((spread, _, _)) = &self.shared.spread {
                // Counted before it campaigns, so that no replica takes it
                // against the old count.
                spread
                    .set_clusters(self.elected() + usize::from(cluster.leader_election.is_some()));
            }
            let clients = connect(
                &cluster,
                &self.shared.config.base_dir,
                &self.shared.watch_runtime,
            );
            match clients.await {
                Ok(clients) => {
                    tracing::info!(cluster = %id, "the config adds the cluster: watching it");
                    self.start(cluster, clients).await;
                }
                Err(error) => {
                    tracing::error!(cluster = %id, %error, "cannot watch the cluster the config adds");
                }
            }
        }
        if let Some((spread, _, _)) = &self.shared.spread {
            // What did start (a cluster whose client failed does not count).
            spread.set_clusters(self.elected());
        }
    }

    async fn start(&mut self, cluster: ClusterConfig, clients: Clients) {
        let Clients { api, watch, server } = clients;
        let api_for_metadata = api.clone();
        let Some(input) = self.shared.input.clone() else {
            return; // Shutting down.
        };
        let store = match &cluster.checkpoint_configmap {
            Some(configmap) => Store::ConfigMap {
                client: api.clone(),
                configmap: configmap.clone(),
            },
            None => self.shared.file_store.clone(),
        };
        // Attached before the cluster's first mark can exist. The file is
        // shared: what it holds for other clusters survives our writes.
        if let Err(error) = self.shared.stores.attach(&cluster.id, store).await {
            tracing::error!(cluster = %cluster.id, %error, "not watching the cluster: its checkpoint file cannot be read");
            return;
        }
        let leads = if cluster.leader_election.is_some() {
            0.0
        } else {
            1.0
        };
        metrics::LEADER.set(&[&cluster.id], leads);
        metrics::touch_cluster(&cluster.id);
        self.shared
            .status
            .started(&cluster.id, cluster.leader_election.is_some());
        for namespace in watches_of(&cluster) {
            metrics::WATCH_SYNCED.set(&[&cluster.id, namespace.as_deref().unwrap_or("")], 0.0);
        }
        let announcer = match (&self.shared.spread, &cluster.leader_election) {
            (Some((spread, _, announce_in)), Some(lease)) if *announce_in == cluster.id => {
                let (stop, stop_rx) = watch::channel(false);
                let task = tokio::spawn(crate::spread::announce(
                    api.clone(),
                    lease.clone(),
                    self.shared.identity.clone(),
                    spread.clone(),
                    stop_rx,
                ));
                Some((stop, task))
            }
            _ => None,
        };
        let elector = cluster.leader_election.clone().map(|lease| {
            let (leading, leading_rx) = watch::channel(false);
            let (stop, stop_rx) = watch::channel(false);
            let mut elector = Elector::new(&cluster.id, api, lease, self.shared.identity.clone());
            if let Some((spread, hand_over, _)) = &self.shared.spread {
                elector = elector.spread(spread.clone(), hand_over.clone());
            }
            let task = tokio::spawn(elector.run(leading, stop_rx));
            (leading_rx, (stop, task))
        });
        let (leading, elector) = match elector {
            Some((leading, elector)) => (Some(leading), Some(elector)),
            None => (None, None),
        };
        let task = ClusterTask {
            cluster: cluster.clone(),
            client: watch,
            api: api_for_metadata,
            metadata: self.shared.metadata.clone(),
            metadata_kinds: self.shared.config.metadata.kinds.clone(),
            server,
            runtime: self.shared.watch_runtime.clone(),
            stores: self.shared.stores.clone(),
            input,
            limits: self.shared.config.events.limits(),
            clock: self.shared.clock.clone(),
            status: self.shared.status.clone(),
        };
        let watcher = tokio::spawn(task.run(leading));
        self.running.insert(
            cluster.id.clone(),
            Running {
                watcher,
                elector,
                announcer,
            },
        );
    }

    /// How many running clusters have an election.
    fn elected(&self) -> usize {
        self.running
            .values()
            .filter(|running| running.elector.is_some())
            .count()
    }

    /// Stops one cluster's watches (between two hand-overs) and its election.
    async fn stop(&mut self, id: &str) {
        let Some(running) = self.running.remove(id) else {
            return;
        };
        running.watcher.abort();
        let _ = running.watcher.await;
        if let Some((stop, task)) = running.elector {
            let _ = stop.send(true);
            let _ = task.await;
        }
        if let Some((stop, task)) = running.announcer {
            let _ = stop.send(true);
            let _ = task.await;
        }
        if let Some((spread, _, _)) = &self.shared.spread {
            spread.set_clusters(self.elected());
        }
        metrics::WATCH_SYNCED.retain(|labels| labels[0] != id);
        metrics::LEADER.retain(|labels| labels[0] != id);
        self.shared.status.stopped(id);
    }

    /// Stops every watch, between two hand-overs; elections go on until
    /// [`release_leases`](Self::release_leases).
    pub async fn stop_watching(&mut self) {
        self.shared.input = None;
        for running in self.running.values() {
            running.watcher.abort();
        }
        for running in self.running.values_mut() {
            let _ = (&mut running.watcher).await;
        }
    }

    /// Ends every election, releasing the leases this replica holds: call
    /// once everything handed over is published and checkpointed.
    pub async fn release_leases(&mut self) {
        let electors: Vec<_> = self
            .running
            .values_mut()
            .filter_map(|running| running.elector.take())
            .collect();
        for (stop, _) in &electors {
            let _ = stop.send(true);
        }
        for (_, task) in electors {
            let _ = task.await;
        }
        // Then, no longer leading anything, this replica leaves the count.
        for running in self.running.values_mut() {
            if let Some((stop, task)) = running.announcer.take() {
                let _ = stop.send(true);
                let _ = task.await;
            }
        }
    }
}

/// One cluster's watching.
struct ClusterTask {
    cluster: ClusterConfig,
    /// The watch client.
    client: kube::Client,
    /// The API client: for the metadata cache's lists and watches.
    api: kube::Client,
    metadata: crate::metadata::MetadataCache,
    metadata_kinds: Vec<crate::metadata::Kind>,
    server: String,
    /// Where the watches run.
    runtime: tokio::runtime::Handle,
    stores: CheckpointStores,
    input: InputSender,
    limits: EventLimits,
    clock: SharedClock,
    status: Status,
}

impl ClusterTask {
    /// Watches (while leading, with leader election) until aborted.
    async fn run(self, mut leading: Option<watch::Receiver<bool>>) {
        loop {
            if let Some(leading) = &mut leading {
                metrics::LEADER.set(&[&self.cluster.id], 0.0);
                if !*leading.borrow() {
                    tracing::info!(cluster = %self.cluster.id, "standing by: another replica leads");
                }
                if leading.wait_for(|leading| *leading).await.is_err() {
                    return;
                }
                metrics::LEADER.set(&[&self.cluster.id], 1.0);
            }
            // Loaded now, not at start: a previous leader may have moved it.
            let document = self.load_with_retry().await;
            let mut watches = JoinSet::new();
            // The metadata of this cluster's workloads, while a chain reads
            // it; forgotten when the watches stop.
            watches.spawn(keep_metadata(
                self.metadata.clone(),
                self.api.clone(),
                self.cluster.id.clone(),
                self.metadata_kinds.clone(),
                watches_of(&self.cluster),
            ));
            for namespace in watches_of(&self.cluster) {
                let watcher = Watcher::new(
                    &self.cluster,
                    namespace,
                    (self.client.clone(), self.server.clone()),
                    self.limits,
                    self.clock.clone(),
                    self.input.clone(),
                    self.status.clone(),
                );
                let checkpoint = document.get(watcher.key()).map(str::to_owned);
                watches.spawn_on(watcher.run(checkpoint), &self.runtime);
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
            // Between two hand-overs, as on shutdown: what was handed over
            // is published and checkpointed; the rest is the new leader's.
            watches.shutdown().await;
        }
    }

    /// Reads the cluster's checkpoint, retrying while its store cannot be
    /// read.
    async fn load_with_retry(&self) -> Document {
        let mut backoff = Backoff::default();
        let mut logged = false;
        loop {
            match self.stores.load(&self.cluster.id).await {
                Ok(document) => return document,
                Err(error) => {
                    let delay = backoff.next_delay();
                    if !std::mem::replace(&mut logged, true) {
                        tracing::error!(cluster = %self.cluster.id, %error, "cannot read the checkpoint; retrying with backoff");
                    }
                    tokio::time::sleep(delay.min(Duration::from_secs(30))).await;
                }
            }
        }
    }
}

/// Keeps `cluster`'s workload metadata in `cache` while a chain reads it
/// (a reload may add or remove such a plugin), until aborted.
async fn keep_metadata(
    cache: crate::metadata::MetadataCache,
    client: kube::Client,
    cluster: String,
    kinds: Vec<crate::metadata::Kind>,
    namespaces: Vec<Option<String>>,
) {
    const LOOK_EVERY: Duration = Duration::from_secs(5);
    loop {
        while !cache.wanted() {
            tokio::time::sleep(LOOK_EVERY).await;
        }
        let keeping = crate::metadata::run_cluster(
            cache.clone(),
            client.clone(),
            cluster.clone(),
            kinds.clone(),
            namespaces.clone(),
        );
        tokio::select! {
            () = keeping => {}
            () = async {
                while cache.wanted() {
                    tokio::time::sleep(LOOK_EVERY).await;
                }
            } => {}
        }
    }
}
