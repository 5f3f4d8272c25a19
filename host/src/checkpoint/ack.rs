//! Marks and acks: "this watch has handed over everything up to
//! resourceVersion R", and that mark on its way down every sink queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    done: mpsc::UnboundedSender<Mark>,
    lag: Lag,
}

impl Acknowledger {
    pub fn new(done: mpsc::UnboundedSender<Mark>, lag: Lag) -> Self {
        Self { done, lag }
    }

    /// An ack for `mark` that completes once `sinks` sinks acked it.
    pub fn ack(&self, mark: Mark, sinks: usize) -> Arc<Ack> {
        let pending = self.lag.enter(&mark.key.cluster);
        let ack = Arc::new(Ack {
            mark,
            remaining: AtomicUsize::new(sinks),
            done: self.done.clone(),
            lag: self.lag.clone(),
            pending,
        });
        if sinks == 0 {
            ack.complete();
        }
        ack
    }
}

/// A mark travelling down the sink queues; complete when every sink acked.
#[derive(Debug)]
pub struct Ack {
    mark: Mark,
    remaining: AtomicUsize,
    done: mpsc::UnboundedSender<Mark>,
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
        // The checkpointer gone means shutdown is past writing: nothing
        // left to do with the mark.
        let _ = self.done.send(self.mark.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_completes_when_every_sink_acked() {
        let (done, mut marks) = mpsc::unbounded_channel();
        let lag = Lag::default();
        let acks = Acknowledger::new(done, lag.clone());
        let mark = Mark {
            key: WatchKey {
                cluster: "a".into(),
                namespace: None,
            },
            resource_version: "7".into(),
        };
        let ack = acks.ack(mark, 2);
        ack.ack();
        assert!(marks.try_recv().is_err());
        assert_eq!(lag.by_cluster().len(), 1);
        ack.ack();
        assert_eq!(marks.try_recv().unwrap().resource_version, "7");
        assert_eq!(lag.by_cluster()[0].1, std::time::Duration::ZERO);
    }
}
