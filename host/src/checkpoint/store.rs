//! Where checkpoints are kept: one JSON document per store, a file or a
//! ConfigMap in the watched cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ack::{Mark, WatchKey};
use super::config::ConfigMapRef;

/// A checkpoint document: cluster id → scope (namespace or `*`) →
/// resourceVersion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub version: u32,
    pub clusters: BTreeMap<String, BTreeMap<String, String>>,
}

impl Document {
    pub fn get(&self, key: &WatchKey) -> Option<&str> {
        self.clusters
            .get(&key.cluster)?
            .get(key.scope())
            .map(String::as_str)
    }

    pub(super) fn set(&mut self, mark: &Mark) {
        self.version = 1;
        self.clusters
            .entry(mark.key.cluster.clone())
            .or_default()
            .insert(mark.key.scope().to_owned(), mark.resource_version.clone());
    }

    fn parse(text: &str, location: &str) -> Result<Self, CheckpointError> {
        serde_json::from_str(text).map_err(|error| CheckpointError::Corrupt {
            location: location.to_owned(),
            error: error.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint file {}: {error}", path.display())]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "checkpoint {location} is not a checkpoint document ({error}); move it away to start afresh"
    )]
    Corrupt { location: String, error: String },
    #[error("checkpoint ConfigMap {namespace}/{name}: {error}")]
    ConfigMap {
        namespace: String,
        name: String,
        error: kube::Error,
    },
}

/// Where checkpoints are kept.
#[derive(Clone)]
pub enum Store {
    /// One JSON file for every cluster that keeps its checkpoint there.
    File(PathBuf),
    /// A ConfigMap in the watched cluster, key `checkpoint.json`, holding
    /// that cluster's entries.
    ConfigMap {
        client: kube::Client,
        configmap: ConfigMapRef,
    },
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::ConfigMap { configmap, .. } => {
                write!(f, "ConfigMap {}/{}", configmap.namespace, configmap.name)
            }
        }
    }
}

const CONFIGMAP_KEY: &str = "checkpoint.json";

impl Store {
    /// Whether both are the same file. (A ConfigMap store belongs to one
    /// cluster: two clusters' ConfigMaps of the same name are in different
    /// API servers.)
    pub(super) fn same_place(&self, other: &Store) -> bool {
        matches!((self, other), (Self::File(a), Self::File(b)) if a == b)
    }

    /// Reads the store; a store that does not exist yet is empty.
    pub async fn load(&self) -> Result<Document, CheckpointError> {
        match self {
            Self::File(path) => match tokio::fs::read_to_string(path).await {
                Ok(text) => Document::parse(&text, &path.display().to_string()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Document::default())
                }
                Err(error) => Err(CheckpointError::File {
                    path: path.clone(),
                    error,
                }),
            },
            Self::ConfigMap { client, configmap } => {
                let request = kube::core::Request::new(configmap_collection(configmap))
                    .get(&configmap.name, &Default::default())
                    .expect("a GET request always builds");
                match crate::silence::bounded(client.request::<serde_json::Value>(request)).await {
                    Ok(object) => match object["data"][CONFIGMAP_KEY].as_str() {
                        Some(text) => Document::parse(
                            text,
                            &format!("ConfigMap {}/{}", configmap.namespace, configmap.name),
                        ),
                        None => Ok(Document::default()),
                    },
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(Document::default()),
                    Err(error) => Err(configmap_error(configmap, error)),
                }
            }
        }
    }

    /// Replaces the stored document: atomically for a file (write a sibling,
    /// fsync, rename), by merge patch (or create) for a ConfigMap.
    pub async fn save(&self, document: &Document) -> Result<(), CheckpointError> {
        let text = serde_json::to_string_pretty(document).expect("a document serializes");
        match self {
            Self::File(path) => write_atomically(path, text.as_bytes())
                .await
                .map_err(|error| CheckpointError::File {
                    path: path.clone(),
                    error,
                }),
            Self::ConfigMap { client, configmap } => {
                let collection = kube::core::Request::new(configmap_collection(configmap));
                let patch = serde_json::json!({ "data": { CONFIGMAP_KEY: text } });
                let request = collection
                    .patch(
                        &configmap.name,
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .expect("a PATCH request always builds");
                match crate::silence::bounded(client.request::<serde_json::Value>(request)).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        let object = serde_json::json!({
                            "apiVersion": "v1",
                            "kind": "ConfigMap",
                            "metadata": {
                                "name": configmap.name,
                                "namespace": configmap.namespace,
                                "labels": { "app.kubernetes.io/name": "aetherius" },
                            },
                            "data": { CONFIGMAP_KEY: text },
                        });
                        let request = collection
                            .create(
                                &Default::default(),
                                serde_json::to_vec(&object).expect("serializes"),
                            )
                            .expect("a POST request always builds");
                        crate::silence::bounded(client.request::<serde_json::Value>(request))
                            .await
                            .map(drop)
                            .map_err(|error| configmap_error(configmap, error))
                    }
                    Err(error) => Err(configmap_error(configmap, error)),
                }
            }
        }
    }
}

fn configmap_collection(configmap: &ConfigMapRef) -> String {
    format!("/api/v1/namespaces/{}/configmaps", configmap.namespace)
}

fn configmap_error(configmap: &ConfigMapRef, error: kube::Error) -> CheckpointError {
    CheckpointError::ConfigMap {
        namespace: configmap.namespace.clone(),
        name: configmap.name.clone(),
        error,
    }
}

async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (path, bytes) = (path.to_owned(), bytes.to_owned());
    tokio::task::spawn_blocking(move || crate::paths::write_atomically(&path, &bytes))
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        std::fs::write(&path, "not json").unwrap();
        let error = Store::File(path).load().await.unwrap_err().to_string();
        assert!(error.contains("move it away"), "{error}");
    }
}
