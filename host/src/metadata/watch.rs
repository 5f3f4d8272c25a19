//! Keeping one cluster's part of the cache: per enabled kind and watched
//! namespace (or all), a paged list, then a watch from its resourceVersion
//! with bookmarks; relisted on `410 Gone`, retried with backoff on errors,
//! one error logged per kind until it recovers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::AsyncBufReadExt;
use serde::Deserialize;

use super::{Kind, MetadataCache, ObjectMeta};
use crate::backoff::Backoff;
use crate::event::lines::{Line, LineSplitter};
use crate::silence::{Silence, bounded};

/// The `Accept` header for the metadata-only form of a list and a watch.
const METADATA_ONLY: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const METADATA_ONLY_WATCH: &str =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
/// Objects per page of a list of metadata (a page is read whole).
const PAGE: u32 = 500;
/// Pods per page: they are read whole (for their node), ~10 KiB each, so
/// that a page stays near a megabyte.
const POD_PAGE: u32 = 100;
/// A Pod (read whole) larger than this is skipped.
const MAX_OBJECT: usize = 1024 * 1024;
/// An annotation value is cut here.
const MAX_ANNOTATION: usize = 1024;
/// Seconds after which the API server ends a watch.
const WATCH_TIMEOUT_SECS: u32 = 290;

/// Keeps `cluster`'s objects of `kinds` in `namespaces` (empty: all) in
/// `cache` until dropped (aborted); forgets them then.
pub async fn run_cluster(
    cache: MetadataCache,
    client: kube::Client,
    cluster: String,
    kinds: Vec<Kind>,
    namespaces: Vec<Option<String>>,
) {
    let cluster: Arc<str> = Arc::from(cluster);
    let _forget = Forget(cache.clone(), cluster.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for kind in kinds {
        for namespace in &namespaces {
            let watch = KindWatch {
                cache: cache.clone(),
                client: client.clone(),
                cluster: cluster.clone(),
                kind,
                namespace: namespace.clone(),
            };
            tasks.spawn(watch.run());
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Forgets the cluster's objects when its keeping ends.
struct Forget(MetadataCache, Arc<str>);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0.forget_cluster(&self.1);
    }
}

struct KindWatch {
    cache: MetadataCache,
    client: kube::Client,
    cluster: Arc<str>,
    kind: Kind,
    namespace: Option<String>,
}

/// Why a list or watch stopped.
enum Stop {
    /// 410 Gone: list again.
    Expired,
    Failed(kube::Error),
}

impl KindWatch {
    async fn run(self) {
        let mut backoff = Backoff::default();
        let mut api = 0;
        let mut failing: Option<String> = None;
        loop {
            let (path, resource) = self.kind.apis()[api];
            let result = match self.list(path, resource).await {
                Ok(version) => {
                    if let Some(previous) = failing.take() {
                        tracing::info!(cluster = %self.cluster, kind = self.kind.as_str(), recovered_from = %previous, "the workload metadata of this kind can be read again");
                    }
                    backoff.reset();
                    self.watch(path, resource, version).await
                }
                Err(stop) => Err(stop),
            };
            let error = match result {
                Ok(()) | Err(Stop::Expired) => continue,
                Err(Stop::Failed(error)) => error,
            };
            // An API the server does not have: the older one, if any.
            if let kube::Error::Api(status) = &error
                && status.code == 404
                && api + 1 < self.kind.apis().len()
            {
                api += 1;
                continue;
            }
            let said = self.describe(&error, path, resource);
            if failing.as_deref() != Some(said.as_str()) {
                tracing::error!(cluster = %self.cluster, kind = self.kind.as_str(), error = %said, "cannot read the workload metadata of this kind; events about these objects are published without it");
                failing = Some(said);
            }
            tokio::time::sleep(backoff.next_delay().min(Duration::from_secs(60))).await;
        }
    }

    /// The error as an operator reads it: a 403 names the permission.
    fn describe(&self, error: &kube::Error, path: &str, resource: &str) -> String {
        match error {
            kube::Error::Api(status) if status.code == 403 => {
                let group = path
                    .strip_prefix("apis/")
                    .and_then(|gv| gv.split('/').next())
                    .unwrap_or("");
                let scope = match &self.namespace {
                    Some(namespace) => format!("in namespace {namespace}"),
                    None => "cluster-wide".to_owned(),
                };
                format!(
                    "forbidden: grant `list` and `watch` on `{resource}` (apiGroup \"{group}\") {scope}: {}",
                    status.message
                )
            }
            other => crate::causes::chain(other),
        }
    }

    fn collection(&self, path: &str, resource: &str) -> kube::core::Request {
        kube::core::Request::new(match &self.namespace {
            Some(namespace) => format!("/{path}/namespaces/{namespace}/{resource}"),
            None => format!("/{path}/{resource}"),
        })
    }

    /// Lists every object, page by page, into the cache, and forgets what
    /// was kept but is no longer listed; returns the list's
    /// resourceVersion.
    async fn list(&self, path: &str, resource: &str) -> Result<String, Stop> {
        let collection = self.collection(path, resource);
        let mut listed: HashSet<(String, String)> = HashSet::new();
        let mut continue_token: Option<String> = None;
        loop {
            let params = kube::api::ListParams {
                limit: Some(if self.kind == Kind::Pod {
                    POD_PAGE
                } else {
                    PAGE
                }),
                continue_token: continue_token.take(),
                ..Default::default()
            };
            let mut request = collection
                .list(&params)
                .map_err(|e| Stop::Failed(kube::Error::BuildRequest(e)))?;
            self.accept(&mut request, METADATA_ONLY);
            let page: Page = bounded(self.client.request(request))
                .await
                .map_err(|error| match &error {
                    kube::Error::Api(status) if status.code == 410 => Stop::Expired,
                    _ => Stop::Failed(error),
                })?;
            for item in page.items.unwrap_or_default() {
                let Some((namespace, name, meta)) = item.into_meta() else {
                    continue;
                };
                if self
                    .cache
                    .put(&self.cluster, self.kind, &namespace, &name, meta)
                {
                    listed.insert((namespace, name));
                }
            }
            match page.metadata.continue_token.filter(|t| !t.is_empty()) {
                Some(token) => continue_token = Some(token),
                None => {
                    self.cache.retain_listed(
                        &self.cluster,
                        self.kind,
                        self.namespace.as_deref(),
                        |namespace, name| listed.contains(&(namespace.to_owned(), name.to_owned())),
                    );
                    return Ok(page.metadata.resource_version.unwrap_or_default());
                }
            }
        }
    }

    /// Follows changes from `version` until the server ends the watch.
    async fn watch(&self, path: &str, resource: &str, mut version: String) -> Result<(), Stop> {
        loop {
            let params = kube::api::WatchParams {
                bookmarks: true,
                timeout: Some(WATCH_TIMEOUT_SECS),
                ..Default::default()
            };
            let mut request = self
                .collection(path, resource)
                .watch(&params, &version)
                .map_err(|e| Stop::Failed(kube::Error::BuildRequest(e)))?;
            self.accept(&mut request, METADATA_ONLY_WATCH);
            let body = bounded(self.client.request_stream(request))
                .await
                .map_err(Stop::Failed)?;
            let mut body = Box::pin(body);
            let mut lines = LineSplitter::new(MAX_OBJECT);
            let mut silence = Silence::new();
            loop {
                let chunk = silence
                    .read(body.fill_buf())
                    .await
                    .map_err(|e| Stop::Failed(kube::Error::ReadEvents(e)))?;
                if chunk.is_empty() {
                    break;
                }
                let (taken, line) = lines.push(chunk);
                if let Some(Line::Text(line)) = line {
                    self.apply(line, &mut version)?;
                }
                body.consume_unpin(taken);
            }
        }
    }

    /// One line of a watch.
    fn apply(&self, line: &[u8], version: &mut String) -> Result<(), Stop> {
        let Ok(event) = serde_json::from_slice::<WatchEvent>(line) else {
            return Ok(());
        };
        match event.kind.as_str() {
            "ERROR" => {
                let code = event.object.code.unwrap_or_default();
                return Err(if code == 410 {
                    Stop::Expired
                } else {
                    let mut status = kube::core::Status::failure(
                        &event.object.message.unwrap_or_default(),
                        &event.object.reason.unwrap_or_default(),
                    );
                    status.code = code;
                    Stop::Failed(kube::Error::Api(status.boxed()))
                });
            }
            "BOOKMARK" => {}
            kind => {
                let deleted = kind == "DELETED";
                let resource_version = event.object.metadata.resource_version.clone();
                if let Some((namespace, name, meta)) = event.object.into_meta() {
                    if deleted {
                        self.cache
                            .remove(&self.cluster, self.kind, &namespace, &name);
                    } else {
                        self.cache
                            .put(&self.cluster, self.kind, &namespace, &name, meta);
                    }
                }
                if let Some(v) = resource_version {
                    *version = v;
                }
                return Ok(());
            }
        }
        if let Some(v) = event.object.metadata.resource_version {
            *version = v;
        }
        Ok(())
    }

    fn accept(&self, request: &mut hyper::Request<Vec<u8>>, accept: &str) {
        // Pods are read whole, for their node.
        if self.kind != Kind::Pod
            && let Ok(value) = hyper::header::HeaderValue::from_str(accept)
        {
            request.headers_mut().insert(hyper::header::ACCEPT, value);
        }
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    metadata: ListMeta,
    /// `null` in an empty metadata-only list.
    #[serde(default)]
    items: Option<Vec<Object>>,
}

#[derive(Deserialize, Default)]
struct ListMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: Object,
}

/// An object (or a Status, in an ERROR line) as far as the cache reads it.
#[derive(Deserialize, Default)]
struct Object {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
    // A Status's fields.
    code: Option<u16>,
    message: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
    #[serde(rename = "resourceVersion")]
    resource_version: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "ownerReferences")]
    owner_references: Vec<OwnerReference>,
}

#[derive(Deserialize)]
struct OwnerReference {
    kind: String,
    name: String,
    #[serde(default)]
    controller: bool,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(rename = "nodeName")]
    node_name: Option<String>,
}

impl Object {
    fn into_meta(self) -> Option<(String, String, ObjectMeta)> {
        let metadata = self.metadata;
        if metadata.name.is_empty() {
            return None;
        }
        let annotations = metadata
            .annotations
            .into_iter()
            .filter(|(key, _)| key != "kubectl.kubernetes.io/last-applied-configuration")
            .map(|(key, mut value)| {
                crate::event::cut(&mut value, MAX_ANNOTATION);
                (key, value)
            })
            .collect();
        let controller = metadata
            .owner_references
            .into_iter()
            .find(|owner| owner.controller)
            .map(|owner| (owner.kind, owner.name));
        Some((
            metadata.namespace,
            metadata.name,
            ObjectMeta {
                uid: metadata.uid,
                labels: metadata.labels.into_iter().collect(),
                annotations,
                controller,
                node: self.spec.node_name.filter(|node| !node.is_empty()),
            },
        ))
    }
}
