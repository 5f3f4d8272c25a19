//! `clusters:` — the clusters `aetherius run` watches, and how.

use std::path::PathBuf;

use serde::Deserialize;

use crate::checkpoint::ConfigMapRef;
use crate::lease::LeaseConfig;
use crate::units::HumanDuration;

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
    /// Relist this often, besides watching (none by default; the design
    /// document's `resync_period`, 30m). What a relist finds that the watch
    /// missed is published (`aetherius_resync_recovered_total`); what was
    /// already published is not published again, provided `dedup.ttl` is at
    /// least `max_age` (as by default: both 5m).
    #[serde(default)]
    pub resync_period: Option<HumanDuration>,
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
    /// What is wrong with this entry, `at` being its YAML path
    /// (`clusters[0]`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let id = &self.id;
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            problems.push(format!(
                "at `{at}.id`: `{id}` is not a valid id; expected letters, digits, `-`, `_` or `.`"
            ));
        }
        if self.in_cluster && (self.kubeconfig.is_some() || self.context.is_some()) {
            problems.push(format!(
                "at `{at}.in_cluster`: use either in-cluster credentials or `kubeconfig`/`context`, not both"
            ));
        }
        for (j, ns) in self.namespaces.iter().enumerate() {
            if !is_dns_label(ns) {
                problems.push(format!(
                    "at `{at}.namespaces[{j}]`: `{ns}` is not a namespace name"
                ));
            }
        }
        if self
            .resync_period
            .is_some_and(|period| period.0 < std::time::Duration::from_secs(1))
        {
            problems.push(format!(
                "at `{at}.resync_period`: at least 1s (a relist lists every Event)"
            ));
        }
        if let Some(lease) = &self.leader_election {
            if self.checkpoint_configmap.is_none() {
                problems.push(format!(
                    "at `{at}.leader_election`: the replicas must share the checkpoint; set `checkpoint_configmap` too"
                ));
            }
            problems.extend(lease.problems(&format!("{at}.leader_election")));
        }
        if !(1..=10_000).contains(&self.page_size) {
            problems.push(format!(
                "at `{at}.page_size`: {} is out of range; expected 1 to 10000",
                self.page_size
            ));
        }
        problems
    }

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
            resync_period: None,
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

/// DNS-1123 label: what Kubernetes accepts as a namespace name.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}
