//! `builtin:workload-enricher`: says what an event is about in the terms an
//! incident tool routes by. From the host's metadata cache (contract 0.1.4,
//! [`Event::involved_object`]) it adds, when the host knows the object:
//!
//! - `workload_kind`, `workload_name`: the top controller (Deployment `api`
//!   for a Pod of its ReplicaSet; CronJob `nightly` for a Pod of its Job;
//!   the object itself when it has none);
//! - `node`: a Pod's node, once it is scheduled;
//! - each configured label of the object, under its own key.
//!
//! ```yaml
//! config:
//!   labels: [app.kubernetes.io/name, team]
//! ```
//!
//! An object the host does not know (gone, a kind not watched, not
//! allowed to list it) leaves the event as it is.

use aetherius_sdk::{Enricher, Enrichment, Event};
use serde::Deserialize;

/// The stage's config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Labels of the involved object copied onto the event, by key.
    pub labels: Vec<String>,
}

/// Labels events with their workload, node and object labels.
pub struct WorkloadEnricher {
    labels: Vec<String>,
}

impl Enricher for WorkloadEnricher {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if let Some(key) = config.labels.iter().find(|key| key.trim().is_empty()) {
            return Err(format!("labels: `{key}` is not a label key"));
        }
        Ok(Self {
            labels: config.labels,
        })
    }

    fn enrich(&mut self, event: &Event) -> Enrichment {
        let Some(object) = event.involved_object() else {
            return Enrichment::new();
        };
        let mut enrichment = Enrichment::new()
            .with_label("workload_kind", &object.workload.kind)
            .with_label("workload_name", &object.workload.name);
        if let Some(node) = &object.node {
            enrichment = enrichment.with_label("node", node);
        }
        for key in &self.labels {
            if let Some(pair) = object.labels.iter().find(|pair| pair.key == *key) {
                enrichment = enrichment.with_label(key, &pair.value);
            }
        }
        enrichment
    }
}

aetherius_sdk::export_enricher!(WorkloadEnricher);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, KeyValue, ObjectMetadata, ObjectName, parse_config};

    fn name(kind: &str, name: &str) -> ObjectName {
        ObjectName {
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn pod_of_api() -> ObjectMetadata {
        ObjectMetadata {
            uid: "u1".into(),
            labels: vec![
                KeyValue {
                    key: "app.kubernetes.io/name".into(),
                    value: "api".into(),
                },
                KeyValue {
                    key: "team".into(),
                    value: "payments".into(),
                },
                KeyValue {
                    key: "pod-template-hash".into(),
                    value: "7d9f".into(),
                },
            ],
            owners: vec![name("ReplicaSet", "api-7d9f"), name("Deployment", "api")],
            workload: name("Deployment", "api"),
            node: Some("n-12".into()),
        }
    }

    #[test]
    fn labels_the_workload_the_node_and_the_configured_labels() {
        let mut plugin = WorkloadEnricher::new(
            parse_config(r#"{"labels": ["app.kubernetes.io/name", "team", "absent"]}"#).unwrap(),
        )
        .unwrap();
        let event = Event::from_record(EventRecord::default()).with_involved_object(pod_of_api());
        assert_eq!(
            plugin.enrich(&event),
            Enrichment::new()
                .with_label("workload_kind", "Deployment")
                .with_label("workload_name", "api")
                .with_label("node", "n-12")
                .with_label("app.kubernetes.io/name", "api")
                .with_label("team", "payments")
        );
    }

    #[test]
    fn an_object_the_host_does_not_know_is_left_alone() {
        let mut plugin = WorkloadEnricher::new(parse_config("null").unwrap()).unwrap();
        assert!(
            plugin
                .enrich(&Event::from_record(EventRecord::default()))
                .is_empty()
        );
        assert!(WorkloadEnricher::new(parse_config(r#"{"labels": [" "]}"#).unwrap()).is_err());
    }
}
