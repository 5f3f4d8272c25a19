//! What the host knows of the objects events are about: the labels,
//! annotations and controller of Pods and of the workloads that own them
//! (and a Pod's node), kept by list+watch of their metadata in every
//! watched cluster, for plugins that import the contract's `metadata`
//! interface (0.1.4; `builtin:workload-enricher` is one).
//!
//! - The cache is kept only while a chain has such a plugin, and only for
//!   the kinds `metadata.kinds` enables; only metadata is kept (a Pod's
//!   node besides), bounded by `metadata.max_objects`.
//! - Workloads are listed and watched as `PartialObjectMetadata` (no spec or
//!   status crosses the wire). A Pod's node is in its spec, which the
//!   metadata form leaves out, so Pods are read whole and only their
//!   metadata and `spec.nodeName` kept.
//! - A lookup is a read of the cache on the pipeline thread: a miss (the
//!   object is gone, its kind is not watched, the replica may not list it,
//!   it is not known yet) is an empty answer, never an API request.
//! - Without `list`/`watch` on a kind the cache logs one error naming the
//!   permission and the kind's events go on unenriched.

mod watch;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Deserialize;

pub use watch::run_cluster;

/// `metadata:` — what the cache watches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// The kinds whose metadata is kept (default: Pod, ReplicaSet,
    /// Deployment, StatefulSet, DaemonSet, Job, CronJob).
    pub kinds: Vec<Kind>,
    /// Objects kept at most, over every cluster (default 20,000: about
    /// 11 MiB, docs/benchmarks.md); past it new objects are not kept
    /// (counted in `aetherius_metadata_objects_refused_total`), and events
    /// about them go on without their workload.
    pub max_objects: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            kinds: Kind::ALL.to_vec(),
            max_objects: 20_000,
        }
    }
}

impl MetadataConfig {
    pub fn problems(&self) -> Vec<String> {
        if self.max_objects == 0 {
            vec!["at `metadata.max_objects`: must be at least 1".to_owned()]
        } else {
            Vec::new()
        }
    }
}

/// A kind the cache can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum Kind {
    Pod,
    ReplicaSet,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Pod,
        Kind::ReplicaSet,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Job,
        Kind::CronJob,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
        }
    }

    pub fn parse(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Where the kind is listed, newest API first: (group/version path,
    /// resource). CronJob is `batch/v1` from Kubernetes 1.21 and
    /// `batch/v1beta1` before.
    fn apis(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Pod => &[("api/v1", "pods")],
            Kind::ReplicaSet => &[("apis/apps/v1", "replicasets")],
            Kind::Deployment => &[("apis/apps/v1", "deployments")],
            Kind::StatefulSet => &[("apis/apps/v1", "statefulsets")],
            Kind::DaemonSet => &[("apis/apps/v1", "daemonsets")],
            Kind::Job => &[("apis/batch/v1", "jobs")],
            Kind::CronJob => &[
                ("apis/batch/v1", "cronjobs"),
                ("apis/batch/v1beta1", "cronjobs"),
            ],
        }
    }
}

/// An object's metadata, as the watches read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    pub uid: String,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    /// Its controller (the owner reference with `controller: true`).
    pub controller: Option<(String, String)>,
    /// A Pod's `spec.nodeName`.
    pub node: Option<String>,
}

/// An object's metadata as kept: what repeats across objects (label and
/// annotation keys, kinds, node names) shared, the rest boxed to its size.
#[derive(Debug, PartialEq, Eq)]
pub struct Kept {
    pub uid: Box<str>,
    pub labels: Box<[(Arc<str>, Box<str>)]>,
    pub annotations: Box<[(Arc<str>, Box<str>)]>,
    pub controller: Option<(Arc<str>, Box<str>)>,
    pub node: Option<Arc<str>>,
}

/// What a plugin gets for an involved object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub meta: Arc<Kept>,
    /// Controllers, nearest first, as far as the cache knows them.
    pub owners: Vec<(String, String)>,
    /// The top of the chain, or the object itself.
    pub workload: (String, String),
}

/// Objects by cluster, kind, namespace and name: nested, so that a lookup
/// borrows its keys instead of building one.
type ByName = HashMap<Box<str>, Arc<Kept>>;
type ByNamespace = HashMap<Box<str>, ByName>;
type ByKind = HashMap<Kind, ByNamespace>;

#[derive(Debug, Default)]
struct Objects {
    clusters: HashMap<Box<str>, ByKind>,
    len: usize,
    /// The shared strings ([`Kept`]). Label and annotation keys, kinds and
    /// node names are few; they are kept for the process's life.
    strings: std::collections::HashSet<Arc<str>>,
}

impl Objects {
    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.strings.insert(shared.clone());
        shared
    }

    fn keep(&mut self, meta: ObjectMeta) -> Kept {
        let mut pairs = |pairs: Vec<(String, String)>| -> Box<[(Arc<str>, Box<str>)]> {
            pairs
                .into_iter()
                .map(|(key, value)| (self.intern(&key), value.into_boxed_str()))
                .collect()
        };
        let labels = pairs(meta.labels);
        let annotations = pairs(meta.annotations);
        Kept {
            uid: meta.uid.into_boxed_str(),
            labels,
            annotations,
            controller: meta
                .controller
                .map(|(kind, name)| (self.intern(&kind), name.into_boxed_str())),
            node: meta.node.map(|node| self.intern(&node)),
        }
    }

    fn get(&self, cluster: &str, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Kept>> {
        self.clusters
            .get(cluster)?
            .get(&kind)?
            .get(namespace)?
            .get(name)
    }

    fn publish(&self) {
        crate::metrics::METADATA_OBJECTS.set(&[], self.len as f64);
    }
}

/// The cache; cheap to clone, clones share it.
#[derive(Debug, Clone, Default)]
pub struct MetadataCache {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    objects: RwLock<Objects>,
    /// Whether a chain's plugin imports the contract's `metadata`.
    wanted: std::sync::atomic::AtomicBool,
    max_objects: std::sync::atomic::AtomicUsize,
}

/// How far up an owner chain the cache looks (a cycle cannot hold it).
const MAX_OWNERS: usize = 8;

impl MetadataCache {
    pub fn new(max_objects: usize) -> Self {
        let cache = Self::default();
        cache
            .inner
            .max_objects
            .store(max_objects, std::sync::atomic::Ordering::Relaxed);
        cache
    }

    /// Whether a chain's plugin imports the contract's `metadata`: the
    /// cache is to be kept (set by every build of the chains, so a reload
    /// that adds or removes such a plugin starts or stops it).
    pub fn set_wanted(&self, wanted: bool) {
        self.inner
            .wanted
            .store(wanted, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn wanted(&self) -> bool {
        self.inner.wanted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Objects kept.
    pub fn len(&self) -> usize {
        self.read().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Objects> {
        self.inner
            .objects
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Objects> {
        self.inner
            .objects
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps (or replaces) an object; `false` if the cache is full.
    pub fn put(
        &self,
        cluster: &str,
        kind: Kind,
        namespace: &str,
        name: &str,
        meta: ObjectMeta,
    ) -> bool {
        let max = self
            .inner
            .max_objects
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut objects = self.write();
        let known = objects.get(cluster, kind, namespace, name).is_some();
        if !known && objects.len >= max {
            drop(objects);
            crate::metrics::METADATA_REFUSED.inc(&[cluster]);
            return false;
        }
        let kept = Arc::new(objects.keep(meta));
        let names = objects
            .clusters
            .entry(cluster.into())
            .or_default()
            .entry(kind)
            .or_default()
            .entry(namespace.into())
            .or_default();
        names.insert(name.into(), kept);
        if !known {
            objects.len += 1;
        }
        objects.publish();
        true
    }

    pub fn remove(&self, cluster: &str, kind: Kind, namespace: &str, name: &str) {
        let mut objects = self.write();
        let removed = objects
            .clusters
            .get_mut(cluster)
            .and_then(|kinds| kinds.get_mut(&kind))
            .and_then(|namespaces| namespaces.get_mut(namespace))
            .and_then(|names| names.remove(name))
            .is_some();
        if removed {
            objects.len -= 1;
            objects.publish();
        }
    }

    /// Forgets what a list of `kind` in `namespace` (`None`: all) of
    /// `cluster` did not return: `keep` says which names it did.
    pub fn retain_listed(
        &self,
        cluster: &str,
        kind: Kind,
        namespace: Option<&str>,
        keep: impl Fn(&str, &str) -> bool,
    ) {
        let mut objects = self.write();
        let mut removed = 0;
        if let Some(namespaces) = objects
            .clusters
            .get_mut(cluster)
            .and_then(|kinds| kinds.get_mut(&kind))
        {
            for (ns, names) in namespaces.iter_mut() {
                if namespace.is_some_and(|only| only != &**ns) {
                    continue;
                }
                let before = names.len();
                names.retain(|name, _| keep(ns, name));
                removed += before - names.len();
            }
            namespaces.retain(|_, names| !names.is_empty());
        }
        objects.len -= removed;
        objects.publish();
    }

    /// Forgets everything of `cluster` (it is no longer watched or led).
    pub fn forget_cluster(&self, cluster: &str) {
        let mut objects = self.write();
        if let Some(kinds) = objects.clusters.remove(cluster) {
            let removed: usize = kinds
                .values()
                .flat_map(HashMap::values)
                .map(HashMap::len)
                .sum();
            objects.len -= removed;
            objects.publish();
        }
    }

    /// The object `kind`/`name` in `namespace` of `cluster`, with its
    /// owner chain; `uid` (if not empty) must match.
    pub fn resolve(
        &self,
        cluster: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        uid: &str,
    ) -> Option<Resolved> {
        let kind = Kind::parse(kind)?;
        let objects = self.read();
        let meta = objects.get(cluster, kind, namespace, name)?.clone();
        if !uid.is_empty() && !meta.uid.is_empty() && &*meta.uid != uid {
            return None;
        }
        // Borrowed from the cache while its lock is held: one allocation per
        // owner, for the answer.
        fn controller(meta: &Kept) -> Option<(&str, &str)> {
            meta.controller
                .as_ref()
                .map(|(kind, name)| (&**kind, &**name))
        }
        let mut owners: Vec<(String, String)> = Vec::new();
        let mut next = controller(&meta);
        while let Some((owner_kind, owner_name)) = next.take() {
            if owners.len() >= MAX_OWNERS {
                break;
            }
            next = Kind::parse(owner_kind)
                .and_then(|kind| objects.get(cluster, kind, namespace, owner_name))
                .and_then(|owner| controller(owner));
            owners.push((owner_kind.to_owned(), owner_name.to_owned()));
        }
        let workload = owners
            .last()
            .cloned()
            .unwrap_or_else(|| (kind.as_str().to_owned(), name.to_owned()));
        Some(Resolved {
            meta,
            owners,
            workload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned_by(kind: &str, name: &str) -> ObjectMeta {
        ObjectMeta {
            uid: format!("uid-{name}"),
            controller: Some((kind.to_owned(), name.to_owned())),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn resolves_the_owner_chain_to_the_top_controller() {
        let cache = MetadataCache::new(10);
        let c = "prod";
        let mut pod = owned_by("ReplicaSet", "api-7d9f");
        pod.node = Some("n-12".into());
        pod.labels.push(("team".into(), "payments".into()));
        cache.put(c, Kind::Pod, "shop", "api-7d9f-x2k", pod);
        cache.put(
            c,
            Kind::ReplicaSet,
            "shop",
            "api-7d9f",
            owned_by("Deployment", "api"),
        );
        cache.put(c, Kind::Deployment, "shop", "api", ObjectMeta::default());
        let resolved = cache
            .resolve("prod", "Pod", "shop", "api-7d9f-x2k", "uid-api-7d9f")
            .unwrap();
        assert_eq!(
            resolved.owners,
            [
                ("ReplicaSet".to_owned(), "api-7d9f".to_owned()),
                ("Deployment".to_owned(), "api".to_owned())
            ]
        );
        assert_eq!(
            resolved.workload,
            ("Deployment".to_owned(), "api".to_owned())
        );
        assert_eq!(resolved.meta.node.as_deref(), Some("n-12"));
        // Another uid: another object of the same name.
        assert!(
            cache
                .resolve("prod", "Pod", "shop", "api-7d9f-x2k", "other")
                .is_none()
        );
        // Not in this cluster, or a kind not kept.
        assert!(
            cache
                .resolve("dev", "Pod", "shop", "api-7d9f-x2k", "")
                .is_none()
        );
        assert!(
            cache
                .resolve("prod", "Service", "shop", "api", "")
                .is_none()
        );
        // An owner the cache does not have ends the chain there.
        cache.put(
            c,
            Kind::Pod,
            "shop",
            "job-pod",
            owned_by("Job", "nightly-123"),
        );
        let resolved = cache.resolve("prod", "Pod", "shop", "job-pod", "").unwrap();
        assert_eq!(
            resolved.workload,
            ("Job".to_owned(), "nightly-123".to_owned())
        );
        // Without a controller, the object is its own workload.
        let resolved = cache
            .resolve("prod", "Deployment", "shop", "api", "")
            .unwrap();
        assert!(resolved.owners.is_empty());
        assert_eq!(
            resolved.workload,
            ("Deployment".to_owned(), "api".to_owned())
        );
    }

    #[test]
    fn is_bounded_and_forgets_what_a_list_no_longer_has() {
        let cache = MetadataCache::new(2);
        let c = "prod";
        assert!(cache.put(c, Kind::Pod, "a", "p1", ObjectMeta::default()));
        assert!(cache.put(c, Kind::Pod, "b", "p2", ObjectMeta::default()));
        assert!(
            !cache.put(c, Kind::Pod, "a", "p3", ObjectMeta::default()),
            "full"
        );
        assert!(
            cache.put(c, Kind::Pod, "a", "p1", ObjectMeta::default()),
            "a replacement fits"
        );
        cache.retain_listed(c, Kind::Pod, Some("a"), |_, name| name != "p1");
        assert_eq!(
            cache.len(),
            1,
            "p1 is gone from namespace a; b is another scope"
        );
        cache.forget_cluster("prod");
        assert!(cache.is_empty());
    }
}
