//! Marks and acks: "this watch has handed over everything up to
//! resourceVersion R", and that mark on its way down every sink queue.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::lag::Lag;

/// One watch: a cluster and a namespace (`None`: all namespaces).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchKey {
    pub cluster: String,
    pub namespace: Option<String>,
}

impl WatchKey {
    /// The key under the cluster in a checkpoint document.
    pub(super) fn scope(&self) -> &str {
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

/// Turns marks into acks: where a completed mark goes (the checkpointer)
/// and the lag they are counted in. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Acknowledger {
    completed: Completed,
    /// Held by the acknowledger and every ack: once all are gone, no mark
    /// can complete any more ([`Marks::closed`]).
    alive: mpsc::UnboundedSender<Infallible>,
    lag: Lag,
}

/// An acknowledger, and the checkpointer's end of it.
pub fn acknowledger(lag: Lag) -> (Acknowledger, Marks) {
    let completed = Completed::default();
    let (alive, closed) = mpsc::unbounded_channel();
    let acks = Acknowledger {
        completed: completed.clone(),
        alive,
        lag,
    };
    (acks, Marks { completed, closed })
}

impl Acknowledger {
    /// An ack for `mark` that completes once `sinks` sinks acked it.
    pub fn ack(&self, mark: Mark, sinks: usize) -> Arc<Ack> {
        let pending = self.lag.enter(&mark.key.cluster);
        let ack = Arc::new(Ack {
            mark,
            remaining: AtomicUsize::new(sinks),
            completed: self.completed.clone(),
            _alive: self.alive.clone(),
            lag: self.lag.clone(),
            pending,
        });
        if sinks == 0 {
            ack.complete();
        }
        ack
    }
}

/// Completed marks, the latest of each watch: an ack records its mark here
/// without waking anyone, and the checkpointer, which writes on an interval
/// anyway, takes them then. (A channel woke the async thread once per
/// watched event for nothing.) Marks of one watch complete in order — every
/// sink queue is FIFO — so the latest is the furthest.
#[derive(Debug, Clone, Default)]
struct Completed(Arc<Mutex<BTreeMap<WatchKey, String>>>);

impl Completed {
    fn record(&self, mark: &Mark) {
        let mut latest = self.0.lock().expect("not poisoned");
        match latest.get_mut(&mark.key) {
            Some(version) => version.clone_from(&mark.resource_version),
            None => {
                latest.insert(mark.key.clone(), mark.resource_version.clone());
            }
        }
    }
}

/// The checkpointer's end: the marks completed, and when no more can be.
#[derive(Debug)]
pub struct Marks {
    completed: Completed,
    closed: mpsc::UnboundedReceiver<Infallible>,
}

impl Marks {
    /// The marks completed since the last call, the latest of each watch.
    pub fn take(&self) -> Vec<Mark> {
        let latest = std::mem::take(&mut *self.completed.0.lock().expect("not poisoned"));
        latest
            .into_iter()
            .map(|(key, resource_version)| Mark {
                key,
                resource_version,
            })
            .collect()
    }

    /// Resolves once the acknowledger and every ack are gone: nothing more
    /// will complete. Cancel-safe.
    pub async fn closed(&mut self) {
        while self.closed.recv().await.is_some() {}
    }
}

/// A mark travelling down the sink queues; complete when every sink acked.
#[derive(Debug)]
pub struct Ack {
    mark: Mark,
    remaining: AtomicUsize,
    completed: Completed,
    _alive: mpsc::UnboundedSender<Infallible>,
    lag: Lag,
    /// Its entry in the lag.
    pending: u64,
}

impl Ack {
    /// One sink has written everything queued before this mark.
    pub fn ack(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.complete();
        }
    }

    fn complete(&self) {
        self.lag.leave(&self.mark.key.cluster, self.pending);
        self.completed.record(&self.mark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_completes_when_every_sink_acked() {
        let lag = Lag::default();
        let (acks, marks) = acknowledger(lag.clone());
        let mark = |rv: &str| Mark {
            key: WatchKey {
                cluster: "a".into(),
                namespace: None,
            },
            resource_version: rv.into(),
        };
        let ack = acks.ack(mark("7"), 2);
        ack.ack();
        assert!(marks.take().is_empty());
        assert_eq!(lag.by_cluster().len(), 1);
        ack.ack();
        assert_eq!(marks.take(), [mark("7")]);
        assert_eq!(lag.by_cluster()[0].1, std::time::Duration::ZERO);
        // Taken once; of several, the latest.
        assert!(marks.take().is_empty());
        acks.ack(mark("8"), 0);
        acks.ack(mark("9"), 0);
        assert_eq!(marks.take(), [mark("9")]);
    }

    #[tokio::test]
    async fn closed_once_no_ack_can_complete() {
        let (acks, mut marks) = acknowledger(Lag::default());
        let ack = acks.ack(
            Mark {
                key: WatchKey {
                    cluster: "a".into(),
                    namespace: None,
                },
                resource_version: "1".into(),
            },
            1,
        );
        drop(acks);
        let closed = marks.closed();
        tokio::pin!(closed);
        assert!(
            futures::poll!(closed.as_mut()).is_pending(),
            "an ack is out"
        );
        drop(ack);
        closed.await;
    }
}
