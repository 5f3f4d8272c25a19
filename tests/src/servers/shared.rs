//! One control plane per test binary, for the tests that neither restart its
//! API server nor compact its etcd: each creates namespaces of its own
//! ([`KubeCluster::fresh_namespace`]) and watches only those, so that no
//! test sees another's Events.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::KubeCluster;

static SHARED: OnceLock<KubeCluster> = OnceLock::new();

impl KubeCluster {
    /// The control plane the tests of this binary share, started by the
    /// first one that asks (the others wait for it). Starting one takes
    /// ~5 s and two processes; a test that stops or restarts the API server,
    /// compacts etcd or changes cluster-wide state others would see starts
    /// its own with [`start`](Self::start).
    ///
    /// A `static` is never dropped: the servers are stopped and their
    /// directory removed when the test binary exits (`atexit`), and should it
    /// die otherwise, their watchdog kills them.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start); the next test to ask tries again.
    pub fn shared() -> &'static KubeCluster {
        SHARED.get_or_init(|| {
            let cluster = KubeCluster::start();
            // SAFETY: atexit(3) only records the pointer to a function that
            // takes and returns nothing, as its signature says.
            let registered = unsafe { libc::atexit(stop_shared) };
            assert_eq!(registered, 0, "atexit refused the shared cluster's cleanup");
            cluster
        })
    }

    /// Creates a namespace no other test of this process has used,
    /// `PREFIX-N`, and returns its name.
    ///
    /// # Panics
    ///
    /// Unless the API server created it.
    pub fn fresh_namespace(&self, prefix: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let name = format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.create_namespace(&name);
        name
    }
}

/// Stops the shared cluster, if one was started, as the process exits.
extern "C" fn stop_shared() {
    if let Some(cluster) = SHARED.get() {
        // Unwinding out of an `extern "C"` fn aborts the process, which
        // would turn a passed run into a crash; the watchdog still kills
        // what a failed stop leaves.
        let _ = std::panic::catch_unwind(|| cluster.stop_in_place());
    }
}
