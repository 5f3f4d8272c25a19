//! `{{name}}`: an Aetherius severity mapper. The first rule whose `reason`
//! (and `namespace`, if given) matches the event sets its severity; events
//! no rule matches keep the severity they have.
//!
//! ```yaml
//! config:
//!   rules:
//!     - { reason: "OOMKill*", severity: critical }
//!     - { reason: FailedScheduling, namespace: payments, severity: critical }
//!     - { reason: BackOff, severity: high }
//! ```

use aetherius_sdk::glob::Glob;
use aetherius_sdk::{Event, Severity, SeverityMapper};
use serde::Deserialize;

/// The stage's `config` from the YAML.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Tried in order; the first match wins.
    pub rules: Vec<Rule>,
}

/// One rule: which events, and the severity they get.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub reason: Glob,
    /// Only events in a matching namespace (any namespace when absent).
    #[serde(default)]
    pub namespace: Option<Glob>,
    /// `info`, `low`, `medium`, `high` or `critical`.
    pub severity: Severity,
}

/// One instance per pipeline stage; `new` runs once, `map` per event.
pub struct {{Type}} {
    rules: Vec<Rule>,
}

impl SeverityMapper for {{Type}} {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.rules.is_empty() {
            aetherius_sdk::log::warn("no rules: every event keeps its severity");
        }
        Ok(Self {
            rules: config.rules,
        })
    }

    fn map(&mut self, event: &Event) -> Option<Severity> {
        // The namespace is read only if a rule needs it: a batch whose
        // rules never do leaves it in the host.
        let reason = event.reason();
        for rule in &self.rules {
            if !rule.reason.matches(reason) {
                continue;
            }
            if let Some(pattern) = &rule.namespace
                && !pattern.matches(event.namespace())
            {
                continue;
            }
            return Some(rule.severity);
        }
        None
    }
}

aetherius_sdk::export_severity_mapper!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, parse_config};

    fn plugin(config: &str) -> {{Type}} {
        {{Type}}::new(parse_config(config).unwrap()).unwrap()
    }

    fn event(reason: &str, namespace: &str) -> Event {
        Event::from_record(EventRecord {
            reason: reason.into(),
            namespace: namespace.into(),
            ..EventRecord::default()
        })
    }

    #[test]
    fn first_matching_rule_wins() {
        let mut plugin = plugin(
            r#"{"rules": [
                {"reason": "FailedScheduling", "namespace": "payments", "severity": "critical"},
                {"reason": "Failed*", "severity": "medium"}
            ]}"#,
        );
        let mut severity = |reason, namespace| plugin.map(&event(reason, namespace));
        assert_eq!(
            severity("FailedScheduling", "payments"),
            Some(Severity::Critical)
        );
        assert_eq!(severity("FailedScheduling", "shop"), Some(Severity::Medium));
        assert_eq!(severity("BackOff", "shop"), None);
    }

    #[test]
    fn an_unknown_severity_is_refused() {
        let error = parse_config::<Config>(r#"{"rules": [{"reason": "x", "severity": "urgent"}]}"#)
            .unwrap_err();
        assert!(error.contains("unknown severity `urgent`"), "{error}");
    }
}
