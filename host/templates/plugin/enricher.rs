//! `{{name}}`: an Aetherius enricher. It labels events with the team that
//! owns their namespace (`team`), unless an earlier stage already did, and
//! adds a `runbook` annotation pointing at the page for the event's reason.
//!
//! ```yaml
//! config:
//!   owners: { shop: web, "payments*": payments, "kube-*": platform }
//!   runbook_url: "https://runbooks.example.com/{reason}"
//! ```

use std::collections::BTreeMap;

use aetherius_sdk::glob::Glob;
use aetherius_sdk::{Enricher, Enrichment, Event};
use serde::Deserialize;

/// The stage's `config` from the YAML.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Namespace pattern (`*`, `?`) → owning team. The first match in
    /// pattern order wins.
    pub owners: BTreeMap<Glob, String>,
    /// Annotation `runbook`, with `{reason}` replaced by the event's reason.
    pub runbook_url: Option<String>,
}

/// One instance per pipeline stage; `new` runs once, `enrich` per event.
pub struct {{Type}} {
    config: Config,
}

impl Enricher for {{Type}} {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if let Some((pattern, _)) = config.owners.iter().find(|(_, team)| team.is_empty()) {
            return Err(format!("owners.{pattern}: the team is empty"));
        }
        Ok(Self { config })
    }

    fn enrich(&mut self, event: &Event) -> Enrichment {
        let mut enrichment = Enrichment::new();
        // An earlier enricher may have set the team already: keep its answer.
        if !self.config.owners.is_empty() && event.label("team").is_none() {
            let namespace = event.namespace();
            if let Some((_, team)) = self
                .config
                .owners
                .iter()
                .find(|(g, _)| g.matches(namespace))
            {
                enrichment = enrichment.with_label("team", team);
            }
        }
        if let Some(url) = &self.config.runbook_url {
            enrichment =
                enrichment.with_annotation("runbook", url.replace("{reason}", event.reason()));
        }
        enrichment
    }
}

aetherius_sdk::export_enricher!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, KeyValue, parse_config};

    fn plugin(config: &str) -> {{Type}} {
        {{Type}}::new(parse_config(config).unwrap()).unwrap()
    }

    fn event(reason: &str, namespace: &str) -> EventRecord {
        EventRecord {
            reason: reason.into(),
            namespace: namespace.into(),
            ..EventRecord::default()
        }
    }

    #[test]
    fn labels_the_owner_and_links_the_runbook() {
        let mut plugin = plugin(
            r#"{"owners": {"payments*": "payments"}, "runbook_url": "https://rb/{reason}"}"#,
        );
        let enrichment = plugin.enrich(&Event::from_record(event("BackOff", "payments-eu")));
        assert_eq!(
            enrichment,
            Enrichment::new()
                .with_label("team", "payments")
                .with_annotation("runbook", "https://rb/BackOff")
        );
        assert!(
            plugin
                .enrich(&Event::from_record(event("BackOff", "shop")))
                .labels
                .is_empty()
        );
    }

    #[test]
    fn keeps_a_team_set_by_an_earlier_stage() {
        let mut plugin = plugin(r#"{"owners": {"*": "everyone"}}"#);
        let mut record = event("BackOff", "shop");
        record.labels.push(KeyValue::new("team", "web"));
        assert!(plugin.enrich(&Event::from_record(record)).is_empty());
    }

    #[test]
    fn an_empty_team_is_refused() {
        let error = {{Type}}::new(parse_config(r#"{"owners": {"shop": ""}}"#).unwrap()).err();
        assert_eq!(error.as_deref(), Some("owners.shop: the team is empty"));
    }
}
