//! A kube client for one configured cluster.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use std::path::Path;

use super::ClusterConfig;

/// Credentials that cannot even be loaded: a configuration error, reported
/// before anything is watched.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cluster `{cluster}`: cannot load kubeconfig {}: {error}", path.display())]
    Kubeconfig {
        cluster: String,
        path: PathBuf,
        error: kube::config::KubeconfigError,
    },
    #[error("cluster `{cluster}`: {error}")]
    KubeconfigContext {
        cluster: String,
        error: kube::config::KubeconfigError,
    },
    #[error(
        "cluster `{cluster}`: in-cluster credentials unavailable ({error}); is this running in a pod with a service account?"
    )]
    InCluster {
        cluster: String,
        error: kube::config::InClusterError,
    },
    #[error(
        "cluster `{cluster}`: no credentials found ({error}); set `kubeconfig`, or `in_cluster: true` in a pod"
    )]
    Infer {
        cluster: String,
        error: kube::config::InferConfigError,
    },
    #[error("cluster `{cluster}`: cannot build a client: {error}")]
    Client { cluster: String, error: kube::Error },
}

/// The clients of one cluster, with the server's URL (for messages).
pub struct Clients {
    /// For leases and checkpoint ConfigMaps, on the runtime that built it.
    pub api: kube::Client,
    /// For the watches alone, on `watch_runtime` (see [`connect`]).
    pub watch: kube::Client,
    pub server: String,
}

/// Builds the clients of `cluster`. Nothing is sent to the server yet.
///
/// The watch client queues its requests on `watch_runtime`, the pipeline
/// thread's, where the watches run. It shares no connection with the API
/// client: a lease renewal must not wait on a connection driven by a thread
/// that may be busy in a plugin.
pub async fn connect(
    cluster: &ClusterConfig,
    base_dir: &Path,
    watch_runtime: &tokio::runtime::Handle,
) -> Result<Clients, ClientError> {
    let id = || cluster.id.clone();
    let mut kube_config = if cluster.in_cluster {
        kube::Config::incluster().map_err(|error| ClientError::InCluster {
            cluster: id(),
            error,
        })?
    } else if let Some(path) = &cluster.kubeconfig {
        let path = crate::paths::resolve(base_dir, path);
        let kubeconfig = Kubeconfig::read_from(&path).map_err(|error| ClientError::Kubeconfig {
            cluster: id(),
            path: path.clone(),
            error,
        })?;
        let options = KubeConfigOptions {
            context: cluster.context.clone(),
            ..Default::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|error| ClientError::Kubeconfig {
                cluster: id(),
                path,
                error,
            })?
    } else if cluster.context.is_some() {
        let options = KubeConfigOptions {
            context: cluster.context.clone(),
            ..Default::default()
        };
        kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|error| ClientError::KubeconfigContext {
                cluster: id(),
                error,
            })?
    } else {
        kube::Config::infer()
            .await
            .map_err(|error| ClientError::Infer {
                cluster: id(),
                error,
            })?
    };
    // Bounded by `crate::silence` instead.
    kube_config.read_timeout = None;
    let server = kube_config.cluster_url.to_string();
    let client = |config| {
        kube::Client::try_from(config).map_err(|error| ClientError::Client {
            cluster: id(),
            error,
        })
    };
    let api = client(kube_config.clone())?;
    let watch = {
        let _on = watch_runtime.enter();
        client(kube_config)?
    };
    Ok(Clients {
        api,
        watch,
        server: server.trim_end_matches('/').to_owned(),
    })
}
