//! A throwaway Kubernetes control plane for trying Aetherius by hand: the
//! same etcd + kube-apiserver v1.20.2 the integration tests use, on free
//! loopback ports, with an admin kubeconfig written where you say.
//!
//! ```sh
//! cargo run -p aetherius-tests --bin dev-cluster -- /tmp/aetherius-dev/kubeconfig
//! export KUBECONFIG=/tmp/aetherius-dev/kubeconfig   # in another terminal
//! ```
//!
//! Stops (and deletes its data) on Ctrl-C or SIGTERM.

use std::path::PathBuf;

use aetherius_tests::servers::KubeCluster;

fn main() {
    let kubeconfig = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/aetherius-dev/kubeconfig"));
    if let Some(dir) = kubeconfig.parent() {
        std::fs::create_dir_all(dir).expect("create the kubeconfig's directory");
    }
    eprintln!("starting etcd and kube-apiserver…");
    let cluster = KubeCluster::start();
    cluster.write_kubeconfig(&kubeconfig);
    eprintln!(
        "kube-apiserver {} is ready; admin kubeconfig: {}\n\n  export KUBECONFIG={}\n\nCtrl-C stops it.",
        cluster.server_url(),
        kubeconfig.display(),
        kubeconfig.display()
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install the SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        });
    eprintln!("stopping");
    drop(cluster);
    let _ = std::fs::remove_file(&kubeconfig);
}
