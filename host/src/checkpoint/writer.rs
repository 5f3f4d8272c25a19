//! The checkpointer: collects completed marks into the document of each
//! cluster's store and writes what changed, at most once per interval and
//! once more on shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ack::{Mark, Marks};
use super::lag::Lag;
use super::store::{CheckpointError, Document, Store};

/// Where each cluster's checkpoint lives, with each store's document as
/// last read or written: shared by the checkpointer and whoever starts
/// watching a cluster (at start, or when a reload adds one). A file is read
/// once, when its first cluster is attached; a ConfigMap when its cluster's
/// watches start ([`load`](Self::load)), because another replica may have
/// moved it.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStores(Arc<Mutex<Registry>>);

#[derive(Debug, Default)]
struct Registry {
    /// Each store with its document and whether that changed since it was
    /// last written.
    stores: Vec<(Store, Document, bool)>,
    /// Which store a cluster's checkpoint lives in.
    store_of: BTreeMap<String, usize>,
    /// When each store was last written by this process (for `/status`).
    written_at: BTreeMap<usize, std::time::SystemTime>,
}

impl CheckpointStores {
    /// Keeps `cluster`'s checkpoint in `store`. A file already attached (the
    /// one checkpoint file of several clusters) is shared, as read then; a
    /// new one is read now. Fails if the file cannot be read: it would
    /// otherwise be overwritten.
    pub async fn attach(&self, cluster: &str, store: Store) -> Result<(), CheckpointError> {
        let known = self.index_of(&store);
        let index = match known {
            Some(index) => index,
            None => {
                let document = match &store {
                    Store::File(_) => store.load().await?,
                    Store::ConfigMap { .. } => Document::default(),
                };
                let mut registry = self.0.lock().expect("not poisoned");
                // Attached meanwhile by another cluster: keep that one.
                match registry
                    .stores
                    .iter()
                    .position(|(s, _, _)| s.same_place(&store))
                {
                    Some(index) => index,
                    None => {
                        registry.stores.push((store, document, false));
                        registry.stores.len() - 1
                    }
                }
            }
        };
        self.0
            .lock()
            .expect("not poisoned")
            .store_of
            .insert(cluster.to_owned(), index);
        Ok(())
    }

    /// `cluster`'s checkpoint as held here — the resourceVersion of each of
    /// its watches (`*` for all namespaces) — and when its store was last
    /// written; `None` for a cluster without a store.
    pub fn checkpoint_of(
        &self,
        cluster: &str,
    ) -> Option<(BTreeMap<String, String>, Option<std::time::SystemTime>)> {
        let registry = self.0.lock().expect("not poisoned");
        let &index = registry.store_of.get(cluster)?;
        let versions = registry.stores[index]
            .1
            .clusters
            .get(cluster)
            .cloned()
            .unwrap_or_default();
        Some((versions, registry.written_at.get(&index).copied()))
    }

    fn index_of(&self, store: &Store) -> Option<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .stores
            .iter()
            .position(|(s, _, _)| s.same_place(store))
    }

    /// The checkpoint document `cluster`'s watches resume from: a file's as
    /// held here; a ConfigMap's read now (and held from now on, so that a
    /// write for one namespace never erases another's).
    pub async fn load(&self, cluster: &str) -> Result<Document, CheckpointError> {
        let (index, store) = {
            let registry = self.0.lock().expect("not poisoned");
            let Some(&index) = registry.store_of.get(cluster) else {
                return Ok(Document::default());
            };
            (index, registry.stores[index].0.clone())
        };
        match &store {
            Store::File(_) => Ok(self.0.lock().expect("not poisoned").stores[index].1.clone()),
            Store::ConfigMap { .. } => {
                let document = store.load().await?;
                let mut registry = self.0.lock().expect("not poisoned");
                let (_, held, _) = &mut registry.stores[index];
                // Marks of this process since it last led are newer than
                // what the ConfigMap says only for watches it still runs:
                // none, when it starts leading; take the stored document.
                *held = document.clone();
                Ok(document)
            }
        }
    }

    fn set(&self, mark: &Mark) {
        let mut registry = self.0.lock().expect("not poisoned");
        if let Some(&i) = registry.store_of.get(&mark.key.cluster) {
            let (_, document, dirty) = &mut registry.stores[i];
            document.set(mark);
            *dirty = true;
        }
    }
}

/// Collects completed marks and writes them to their stores; publishes the
/// checkpoint lag on the same tick.
#[derive(Debug)]
pub struct Checkpointer {
    stores: CheckpointStores,
    interval: Duration,
    lag: Lag,
}

impl Checkpointer {
    pub fn new(stores: CheckpointStores, interval: Duration, lag: Lag) -> Self {
        Self {
            stores,
            interval,
            lag,
        }
    }

    /// Takes the completed marks and writes them every interval until no
    /// more can complete, then writes once more. A failed write is logged
    /// and retried at the next interval.
    pub async fn run(self, mut marks: Marks) {
        for result in ["ok", "error"] {
            crate::metrics::CHECKPOINT_WRITES.touch(&[result]);
        }
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = BTreeMap::new();
        loop {
            tokio::select! {
                () = marks.closed() => break,
                _ = tick.tick() => {
                    self.collect(&marks);
                    self.flush(&mut failing).await;
                    self.lag.publish();
                }
            }
        }
        self.collect(&marks);
        self.flush(&mut failing).await;
        self.lag.publish();
    }

    fn collect(&self, marks: &Marks) {
        for mark in marks.take() {
            self.stores.set(&mark);
        }
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
                    self.stores
                        .0
                        .lock()
                        .expect("not poisoned")
                        .written_at
                        .insert(i, std::time::SystemTime::now());
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
    use super::super::ack::{WatchKey, acknowledger};
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

    #[tokio::test]
    async fn file_store_round_trips_and_writes_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/checkpoints.json");
        let store = Store::File(path.clone());
        assert_eq!(store.load().await.unwrap(), Document::default());

        let stores = CheckpointStores::default();
        stores.attach("a", store.clone()).await.unwrap();
        let checkpointer = Checkpointer::new(stores, Duration::from_secs(3600), Lag::default());
        let (acks, marks) = acknowledger(Lag::default());
        for mark in [
            mark("a", None, "5"),
            mark("a", Some("web"), "9"),
            mark("a", None, "12"),
            mark("elsewhere", None, "1"),
        ] {
            acks.ack(mark, 0);
        }
        drop(acks);
        checkpointer.run(marks).await;

        let document = store.load().await.unwrap();
        assert_eq!(document.get(&mark("a", None, "").key), Some("12"));
        assert_eq!(document.get(&mark("a", Some("web"), "").key), Some("9"));
        assert_eq!(document.get(&mark("elsewhere", None, "").key), None);
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[tokio::test]
    async fn a_file_is_read_once_and_shared_by_its_clusters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        std::fs::write(
            &path,
            r#"{"version":1,"clusters":{"a":{"*":"5"},"b":{"web":"7"}}}"#,
        )
        .unwrap();
        let stores = CheckpointStores::default();
        stores.attach("a", Store::File(path.clone())).await.unwrap();
        // Changed on disk after the first attach: not read again.
        std::fs::write(&path, "not json any more").unwrap();
        stores.attach("b", Store::File(path.clone())).await.unwrap();
        let b = stores.load("b").await.unwrap();
        assert_eq!(b.get(&mark("b", Some("web"), "").key), Some("7"));
        assert_eq!(b.get(&mark("a", None, "").key), Some("5"));
    }
}
