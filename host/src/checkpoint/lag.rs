//! The checkpoint lag: per cluster, how long its oldest hand-over has been
//! waiting for every sink to acknowledge it. Acks enter and leave it; the
//! checkpointer publishes it as `aetherius_checkpoint_lag_seconds`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Hand-overs not yet acknowledged by every sink, per cluster, by when they
/// were made. Cheap to clone; the clones share it.
#[derive(Debug, Clone, Default)]
pub struct Lag(Arc<Mutex<Pending>>);

#[derive(Debug, Default)]
struct Pending {
    next: u64,
    by_cluster: BTreeMap<String, BTreeMap<u64, Instant>>,
}

impl Lag {
    /// A hand-over of `cluster` starts waiting; its id is for [`leave`](Self::leave).
    pub(super) fn enter(&self, cluster: &str) -> u64 {
        let mut pending = self.0.lock().expect("not poisoned");
        let id = pending.next;
        pending.next += 1;
        match pending.by_cluster.get_mut(cluster) {
            Some(acks) => acks.insert(id, Instant::now()),
            None => pending
                .by_cluster
                .entry(cluster.to_owned())
                .or_default()
                .insert(id, Instant::now()),
        };
        id
    }

    /// Every sink acknowledged the hand-over.
    pub(super) fn leave(&self, cluster: &str, id: u64) {
        if let Some(acks) = self
            .0
            .lock()
            .expect("not poisoned")
            .by_cluster
            .get_mut(cluster)
        {
            acks.remove(&id);
        }
    }

    /// For every cluster that has handed something over: the age of its
    /// oldest hand-over not yet acknowledged by every sink (zero when caught
    /// up).
    pub fn by_cluster(&self) -> Vec<(String, Duration)> {
        let pending = self.0.lock().expect("not poisoned");
        pending
            .by_cluster
            .iter()
            .map(|(cluster, acks)| {
                let oldest = acks.values().min().map_or(Duration::ZERO, Instant::elapsed);
                (cluster.clone(), oldest)
            })
            .collect()
    }

    /// Whether every sink acknowledged every hand-over of `cluster`.
    pub fn caught_up(&self, cluster: &str) -> bool {
        self.0
            .lock()
            .expect("not poisoned")
            .by_cluster
            .get(cluster)
            .is_none_or(BTreeMap::is_empty)
    }

    /// Sets `aetherius_checkpoint_lag_seconds` for every cluster.
    pub fn publish(&self) {
        for (cluster, lag) in self.by_cluster() {
            crate::metrics::CHECKPOINT_LAG.set(&[&cluster], lag.as_secs_f64());
        }
    }
}
