//! `clusters:` and `checkpoint:` — what `aetherius run` watches and where it
//! remembers how far it got.

use std::path::PathBuf;

use serde::Deserialize;

use super::HumanDuration;

/// One Kubernetes cluster whose Events are watched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Stamped on every event of this cluster (`cluster_id`) and keys its
    /// checkpoint: keep it stable.
    pub id: String,
    /// A kubeconfig file; relative paths are resolved against the config
    /// file's directory. Without it (and without `in_cluster`) the usual
    /// inference applies: `$KUBECONFIG`, `~/.kube/config`, then in-cluster.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[serde(default)]
    pub context: Option<String>,
    /// Use the pod's service-account token and `KUBERNETES_SERVICE_HOST`.
    #[serde(default)]
    pub in_cluster: bool,
    /// Namespaces to watch, one watch each; empty (the default) watches all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Which Event API to read.
    #[serde(default)]
    pub api: EventApi,
    /// On the first start (no checkpoint yet), events older than this are
    /// not published: the history already in the cluster is not replayed.
    #[serde(default = "default_max_age")]
    pub max_age: HumanDuration,
    /// Events per page of the initial list.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Where this cluster's checkpoint is kept, when not in the checkpoint
    /// file: a ConfigMap in the watched cluster.
    #[serde(default)]
    pub checkpoint_configmap: Option<ConfigMapRef>,
    /// With several replicas: elect one leader for this cluster through a
    /// Lease in it; the others stand by and take over when it dies. Needs
    /// `checkpoint_configmap`, the checkpoint they share.
    #[serde(default)]
    pub leader_election: Option<LeaseConfig>,
}

impl ClusterConfig {
    /// The cluster watched when `clusters` is empty: id `default`, the
    /// credentials kubectl would use (or the pod's), every namespace.
    pub fn inferred() -> Self {
        Self {
            id: "default".into(),
            kubeconfig: None,
            context: None,
            in_cluster: false,
            namespaces: Vec::new(),
            api: EventApi::default(),
            max_age: default_max_age(),
            page_size: default_page_size(),
            checkpoint_configmap: None,
            leader_election: None,
        }
    }
}

fn default_max_age() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn default_page_size() -> u32 {
    500
}

/// The Event API a cluster is read through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum EventApi {
    /// `core/v1` Events (`/api/v1/events`), what most tools read.
    #[default]
    #[serde(rename = "core/v1", alias = "v1", alias = "core")]
    CoreV1,
    /// `events.k8s.io/v1` Events.
    #[serde(rename = "events.k8s.io/v1", alias = "events.k8s.io")]
    EventsV1,
}

impl EventApi {
    /// The collection's URL path, in one namespace or in all of them.
    pub fn path(self, namespace: Option<&str>) -> String {
        let prefix = match self {
            Self::CoreV1 => "/api/v1",
            Self::EventsV1 => "/apis/events.k8s.io/v1",
        };
        match namespace {
            Some(ns) => format!("{prefix}/namespaces/{ns}/events"),
            None => format!("{prefix}/events"),
        }
    }

    /// `apiVersion` of the objects (list items come without it).
    pub fn api_version(self) -> &'static str {
        match self {
            Self::CoreV1 => "v1",
            Self::EventsV1 => "events.k8s.io/v1",
        }
    }
}

/// A ConfigMap by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapRef {
    pub namespace: String,
    pub name: String,
}

/// The Lease a cluster's replicas elect their leader with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// How long a lease not renewed stays the holder's (default 15s, as for
    /// Kubernetes' own controllers): the longest a failover takes.
    #[serde(default = "default_lease_duration")]
    pub duration: HumanDuration,
    /// How often the leader renews and the others look (default 2s).
    #[serde(default = "default_lease_retry")]
    pub retry_period: HumanDuration,
}

fn default_lease_duration() -> HumanDuration {
    HumanDuration::from_secs(15)
}

fn default_lease_retry() -> HumanDuration {
    HumanDuration::from_secs(2)
}

/// The checkpoint file and how often checkpoints are written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// The file holding every cluster's checkpoint (except those kept in a
    /// ConfigMap). Relative paths are resolved against the config file's
    /// directory. Default: `$XDG_STATE_HOME/aetherius/checkpoints.json` or
    /// `~/.local/state/aetherius/checkpoints.json`.
    pub file: PathBuf,
    /// At most one write per store per interval; a clean shutdown always
    /// writes. A crash replays at most this much, and the occurrence ids let
    /// the bus drop what it already has.
    pub interval: HumanDuration,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            file: default_checkpoint_file(),
            interval: HumanDuration::from_secs(1),
        }
    }
}

/// Where Aetherius keeps state by default: `$XDG_STATE_HOME/aetherius`, else
/// `~/.local/state/aetherius`, else `/var/lib/aetherius`.
pub fn state_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|dir| !dir.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        });
    match state {
        Some(dir) => dir.join("aetherius"),
        None => PathBuf::from("/var/lib/aetherius"),
    }
}

fn default_checkpoint_file() -> PathBuf {
    state_dir().join("checkpoints.json")
}

/// DNS-1123 label: what Kubernetes accepts as a namespace name.
pub(super) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}
