//! Checkpoints: per watch (cluster and namespace), the resourceVersion up to
//! which every event has been handed to every sink and every sink has
//! written it.
//!
//! A watcher sends a [`Mark`] after each batch; the pipeline passes it down
//! every sink queue behind that batch as an [`Ack`]; when the last sink has
//! written everything before it, the mark reaches the [`Checkpointer`], which
//! writes what it has at most once per interval and once more on shutdown.
//! Sinks are FIFO and marks are sent in watch order, so a checkpoint never
//! gets ahead of an event a sink has not written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::ConfigMapRef;

/// One watch: a cluster and a namespace (`None`: all namespaces).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchKey {
    pub cluster: String,
    pub namespace: Option<String>,
}

impl WatchKey {
    /// The key under the cluster in a checkpoint document.
    fn scope(&self) -> &str {
        self.namespace.as_deref().unwrap_or("*")
    }
}

impl std::fmt::Display for WatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.cluster, self.scope())
    }
}

/// "Everything of this watch up to `resource_version` has been handed over."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub key: WatchKey,
    pub resource_version: String,
}

/// A mark travelling down the sink queues; complete when every sink acked.
#[derive(Debug)]
pub struct Ack {
    mark: Mark,
    remaining: AtomicUsize,
    done: mpsc::UnboundedSender<Mark>,
    /// Its entry among the pending hand-overs (the checkpoint lag).
    pending: u64,
}

impl Ack {
    pub fn new(mark: Mark, sinks: usize, done: mpsc::UnboundedSender<Mark>) -> Arc<Self> {
        let pending = Pending::add(&mark.key.cluster);
        let ack = Arc::new(Self {
            mark,
            remaining: AtomicUsize::new(sinks),
            done,
            pending,
        });
        if sinks == 0 {
            ack.complete();
        }
        ack
    }

    /// One sink has written everything queued before this mark.
    pub fn ack(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.complete();
        }
    }

    fn complete(&self) {
        Pending::remove(&self.mark.key.cluster, self.pending);
        // The checkpointer gone means shutdown is past writing: nothing
        // left to do with the mark.
        let _ = self.done.send(self.mark.clone());
    }
}

/// Hand-overs whose acks are not complete, per cluster, by when they were
/// made: the checkpoint lag.
struct Pending;

static PENDING: Mutex<BTreeMap<String, BTreeMap<u64, Instant>>> = Mutex::new(BTreeMap::new());
static NEXT_PENDING: AtomicU64 = AtomicU64::new(0);

impl Pending {
    fn add(cluster: &str) -> u64 {
        let id = NEXT_PENDING.fetch_add(1, Ordering::Relaxed);
        let mut pending = PENDING.lock().expect("not poisoned");
        match pending.get_mut(cluster) {
            Some(acks) => acks.insert(id, Instant::now()),
            None => pending
                .entry(cluster.to_owned())
                .or_default()
                .insert(id, Instant::now()),
        };
        id
    }

    fn remove(cluster: &str, id: u64) {
        if let Some(acks) = PENDING.lock().expect("not poisoned").get_mut(cluster) {
            acks.remove(&id);
        }
    }
}

/// For every cluster that has handed something over: the age of its oldest
/// hand-over not yet acknowledged by every sink (zero when caught up).
pub fn lag_by_cluster() -> Vec<(String, Duration)> {
    let pending = PENDING.lock().expect("not poisoned");
    pending
        .iter()
        .map(|(cluster, acks)| {
            let oldest = acks.values().min().map_or(Duration::ZERO, Instant::elapsed);
            (cluster.clone(), oldest)
        })
        .collect()
}

/// A checkpoint document: cluster id → scope (namespace or `*`) →
/// resourceVersion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub version: u32,
    pub clusters: BTreeMap<String, BTreeMap<String, String>>,
}

impl Document {
    pub fn get(&self, key: &WatchKey) -> Option<&str> {
        self.clusters
            .get(&key.cluster)?
            .get(key.scope())
            .map(String::as_str)
    }

    fn set(&mut self, mark: &Mark) {
        self.version = 1;
        self.clusters
            .entry(mark.key.cluster.clone())
            .or_default()
            .insert(mark.key.scope().to_owned(), mark.resource_version.clone());
    }

    fn parse(text: &str, location: &str) -> Result<Self, CheckpointError> {
        serde_json::from_str(text).map_err(|error| CheckpointError::Corrupt {
            location: location.to_owned(),
            error: error.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint file {}: {error}", path.display())]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "checkpoint {location} is not a checkpoint document ({error}); move it away to start afresh"
    )]
    Corrupt { location: String, error: String },
    #[error("checkpoint ConfigMap {namespace}/{name}: {error}")]
    ConfigMap {
        namespace: String,
        name: String,
        error: kube::Error,
    },
}

/// Where checkpoints are kept.
#[derive(Clone)]
pub enum Store {
    /// One JSON file for every cluster that keeps its checkpoint there.
    File(PathBuf),
    /// A ConfigMap in the watched cluster, key `checkpoint.json`, holding
    /// that cluster's entries.
    ConfigMap {
        client: kube::Client,
        configmap: ConfigMapRef,
    },
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::ConfigMap { configmap, .. } => {
                write!(f, "ConfigMap {}/{}", configmap.namespace, configmap.name)
            }
        }
    }
}

const CONFIGMAP_KEY: &str = "checkpoint.json";

impl Store {
    /// Whether both are the same file. (A ConfigMap store belongs to one
    /// cluster: two clusters' ConfigMaps of the same name are in different
    /// API servers.)
    fn same_place(&self, other: &Store) -> bool {
        matches!((self, other), (Self::File(a), Self::File(b)) if a == b)
    }

    /// Reads the store; a store that does not exist yet is empty.
    pub async fn load(&self) -> Result<Document, CheckpointError> {
        match self {
            Self::File(path) => match tokio::fs::read_to_string(path).await {
                Ok(text) => Document::parse(&text, &path.display().to_string()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Document::default())
                }
                Err(error) => Err(CheckpointError::File {
                    path: path.clone(),
                    error,
                }),
            },
            Self::ConfigMap { client, configmap } => {
                let request = kube::core::Request::new(configmap_collection(configmap))
                    .get(&configmap.name, &Default::default())
                    .expect("a GET request always builds");
                match client.request::<serde_json::Value>(request).await {
                    Ok(object) => match object["data"][CONFIGMAP_KEY].as_str() {
                        Some(text) => Document::parse(
                            text,
                            &format!("ConfigMap {}/{}", configmap.namespace, configmap.name),
                        ),
                        None => Ok(Document::default()),
                    },
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(Document::default()),
                    Err(error) => Err(configmap_error(configmap, error)),
                }
            }
        }
    }

    /// Replaces the stored document: atomically for a file (write a sibling,
    /// fsync, rename), by merge patch (or create) for a ConfigMap.
    pub async fn save(&self, document: &Document) -> Result<(), CheckpointError> {
        let text = serde_json::to_string_pretty(document).expect("a document serializes");
        match self {
            Self::File(path) => write_atomically(path, text.as_bytes())
                .await
                .map_err(|error| CheckpointError::File {
                    path: path.clone(),
                    error,
                }),
            Self::ConfigMap { client, configmap } => {
                let collection = kube::core::Request::new(configmap_collection(configmap));
                let patch = serde_json::json!({ "data": { CONFIGMAP_KEY: text } });
                let request = collection
                    .patch(
                        &configmap.name,
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .expect("a PATCH request always builds");
                match client.request::<serde_json::Value>(request).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        let object = serde_json::json!({
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "metadata": {
                                "name": configmap.name,
                                "namespace": configmap.namespace,
                                "labels": { "app.kubernetes.io/name": "aetherius" },
                            },
                            "data": { CONFIGMAP_KEY: text },
                        });
                        let request = collection
                            .create(
                                &Default::default(),
                                serde_json::to_vec(&object).expect("serializes"),
                            )
                            .expect("a POST request always builds");
                        client
                            .request::<serde_json::Value>(request)
                            .await
                            .map(drop)
                            .map_err(|error| configmap_error(configmap, error))
                    }
                    Err(error) => Err(configmap_error(configmap, error)),
                }
            }
        }
    }
}

fn configmap_collection(configmap: &ConfigMapRef) -> String {
    format!("/api/v1/namespaces/{}/configmaps", configmap.namespace)
}

fn configmap_error(configmap: &ConfigMapRef, error: kube::Error) -> CheckpointError {
    CheckpointError::ConfigMap {
        namespace: configmap.namespace.clone(),
        name: configmap.name.clone(),
        error,
    }
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = tokio::fs::File::create(&tmp).await?;
    let mut file = tokio::io::BufWriter::new(file);
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    file.into_inner().sync_all().await?;
    tokio::fs::rename(&tmp, path).await
}

/// Where each cluster's checkpoint lives, shared by the checkpointer and
/// whoever starts watching a cluster (at start, or when a reload adds one):
/// registering happens before the cluster's first mark can exist.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStores(Arc<Mutex<Registry>>);

#[derive(Debug, Default)]
struct Registry {
    /// Each store with the document last loaded or written, and whether it
    /// changed since it was last written.
    stores: Vec<(Store, Document, bool)>,
    /// Which store a cluster's checkpoint lives in.
    store_of: BTreeMap<String, usize>,
}

impl CheckpointStores {
    /// Keeps `cluster`'s checkpoint in `store`. A store already registered
    /// (the one file, say) is shared: its document, as loaded, stays.
    pub fn register(&self, store: Store, document: Document, cluster: &str) {
        let mut registry = self.0.lock().expect("not poisoned");
        let index = match registry
            .stores
            .iter()
            .position(|(s, _, _)| s.same_place(&store))
        {
            Some(index) => index,
            None => {
                registry.stores.push((store, document, false));
                registry.stores.len() - 1
            }
        };
        registry.store_of.insert(cluster.to_owned(), index);
    }
}

/// Collects completed marks and writes them to their stores.
#[derive(Debug)]
pub struct Checkpointer {
    stores: CheckpointStores,
    interval: Duration,
}

impl Checkpointer {
    pub fn new(stores: CheckpointStores, interval: Duration) -> Self {
        Self { stores, interval }
    }

    /// Runs until every sender of `marks` is gone, then writes once more.
    /// A failed write is logged and retried at the next interval.
    pub async fn run(self, mut marks: mpsc::UnboundedReceiver<Mark>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = BTreeMap::new();
        loop {
            tokio::select! {
                mark = marks.recv() => match mark {
                    Some(mark) => {
                        let mut registry = self.stores.0.lock().expect("not poisoned");
                        if let Some(&i) = registry.store_of.get(&mark.key.cluster) {
                            let (_, document, dirty) = &mut registry.stores[i];
                            document.set(&mark);
                            *dirty = true;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.flush(&mut failing).await,
            }
        }
        self.flush(&mut failing).await;
    }

    async fn flush(&self, failing: &mut BTreeMap<usize, bool>) {
        // Written outside the lock: a write may take a while.
        let due: Vec<(usize, Store, Document)> = {
            let mut registry = self.stores.0.lock().expect("not poisoned");
            registry
                .stores
                .iter_mut()
                .enumerate()
                .filter(|(_, (_, _, dirty))| *dirty)
                .map(|(i, (store, document, dirty))| {
                    *dirty = false;
                    (i, store.clone(), document.clone())
                })
                .collect()
        };
        for (i, store, document) in due {
            let failed = failing.entry(i).or_default();
            match store.save(&document).await {
                Ok(()) => {
                    crate::metrics::CHECKPOINT_WRITES.inc(&["ok"]);
                    if std::mem::take(failed) {
                        tracing::info!(store = ?store, "checkpoint written again");
                    }
                }
                Err(error) => {
                    crate::metrics::CHECKPOINT_WRITES.inc(&["error"]);
                    self.stores.0.lock().expect("not poisoned").stores[i].2 = true;
                    if !std::mem::replace(failed, true) {
                        tracing::error!(%error, "cannot write the checkpoint; will retry");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(cluster: &str, ns: Option<&str>, rv: &str) -> Mark {
        Mark {
            key: WatchKey {
                cluster: cluster.into(),
                namespace: ns.map(Into::into),
            },
            resource_version: rv.into(),
        }
    }

    #[test]
    fn an_ack_completes_when_every_sink_acked() {
        let (done, mut marks) = mpsc::unbounded_channel();
        let ack = Ack::new(mark("a", None, "7"), 2, done);
        ack.ack();
        assert!(marks.try_recv().is_err());
        ack.ack();
        assert_eq!(marks.try_recv().unwrap().resource_version, "7");
    }

    #[tokio::test]
    async fn file_store_round_trips_and_writes_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/checkpoints.json");
        let store = Store::File(path.clone());
        assert_eq!(store.load().await.unwrap(), Document::default());

        let stores = CheckpointStores::default();
        stores.register(store.clone(), Document::default(), "a");
        let checkpointer = Checkpointer::new(stores, Duration::from_secs(3600));
        let (done, marks) = mpsc::unbounded_channel();
        done.send(mark("a", None, "5")).unwrap();
        done.send(mark("a", Some("web"), "9")).unwrap();
        done.send(mark("a", None, "12")).unwrap();
        done.send(mark("elsewhere", None, "1")).unwrap();
        drop(done);
        checkpointer.run(marks).await;

        let document = store.load().await.unwrap();
        assert_eq!(document.get(&mark("a", None, "").key), Some("12"));
        assert_eq!(document.get(&mark("a", Some("web"), "").key), Some("9"));
        assert_eq!(document.get(&mark("elsewhere", None, "").key), None);
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        std::fs::write(&path, "not json").unwrap();
        let error = Store::File(path).load().await.unwrap_err().to_string();
        assert!(error.contains("move it away"), "{error}");
    }
}
