//! Example Aetherius enricher: adds the label `team` to events whose
//! namespace matches one of the configured patterns.
//!
//! ```yaml
//! config:
//!   teams:
//!     "payments": payments
//!     "team-a-*": team-a
//!     "team-*": platform
//! ```
//!
//! When several patterns match, the most specific wins: a pattern without
//! wildcards first, then the longest pattern (`team-a-*` over `team-*`).
//! Events in no listed namespace get no label.

use std::collections::BTreeMap;

use aetherius_sdk::glob::Glob;
use aetherius_sdk::{Enricher, Enrichment, Event};
use serde::Deserialize;

/// The label this plugin adds.
pub const LABEL: &str = "team";

/// The stage's config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Namespace pattern (`*`, `?`) → team name.
    pub teams: BTreeMap<Glob, String>,
}

/// Labels events with their namespace's team.
pub struct TeamLabel {
    /// Most specific pattern first, so the first match wins.
    teams: Vec<(Glob, String)>,
}

impl TeamLabel {
    /// The team owning `namespace`, if any.
    pub fn team_of(&self, namespace: &str) -> Option<&str> {
        self.teams
            .iter()
            .find(|(pattern, _)| pattern.matches(namespace))
            .map(|(_, team)| team.as_str())
    }
}

impl Enricher for TeamLabel {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if let Some((pattern, _)) = config.teams.iter().find(|(_, team)| team.is_empty()) {
            return Err(format!("teams.{pattern}: the team name is empty"));
        }
        let mut teams: Vec<_> = config.teams.into_iter().collect();
        teams.sort_by_key(|(pattern, _)| {
            (
                !pattern.is_literal(),
                std::cmp::Reverse(pattern.as_str().len()),
            )
        });
        Ok(TeamLabel { teams })
    }

    fn enrich(&mut self, event: &Event) -> Enrichment {
        if self.teams.is_empty() {
            // Nothing configured: leave the namespaces in the host.
            return Enrichment::new();
        }
        // The namespace is the only field this plugin reads: one host call
        // per batch brings every event's namespace, this is a slice of it.
        match self.team_of(event.namespace()) {
            Some(team) => Enrichment::new().with_label(LABEL, team),
            None => Enrichment::new(),
        }
    }
}

aetherius_sdk::export_enricher!(TeamLabel);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, parse_config};

    fn plugin(config: &str) -> Result<TeamLabel, String> {
        TeamLabel::new(parse_config(config)?)
    }

    fn in_namespace(namespace: &str) -> Event {
        Event::from_record(EventRecord {
            namespace: namespace.into(),
            ..EventRecord::default()
        })
    }

    #[test]
    fn most_specific_pattern_wins() {
        let mut plugin = plugin(
            r#"{"teams": {"team-*": "platform", "team-a-*": "team-a", "team-a-dev": "devs"}}"#,
        )
        .unwrap();
        assert_eq!(plugin.team_of("team-a-dev"), Some("devs"));
        assert_eq!(plugin.team_of("team-a-prod"), Some("team-a"));
        assert_eq!(plugin.team_of("team-b-prod"), Some("platform"));
        assert_eq!(plugin.team_of("kube-system"), None);
        assert_eq!(
            plugin.enrich(&in_namespace("team-b-prod")),
            Enrichment::new().with_label("team", "platform")
        );
        assert!(plugin.enrich(&in_namespace("default")).is_empty());
    }

    #[test]
    fn no_config_labels_nothing() {
        let mut plugin = plugin("null").unwrap();
        assert!(plugin.enrich(&in_namespace("payments")).is_empty());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let err = plugin(r#"{"teams": {"x": ""}}"#).err().unwrap();
        assert!(err.contains("teams.x"), "{err}");
        let err = plugin(r#"{"team": {}}"#).err().unwrap();
        assert!(err.contains("unknown field `team`"), "{err}");
    }
}
