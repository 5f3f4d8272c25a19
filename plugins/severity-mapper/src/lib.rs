//! Default plugin `builtin:severity-mapper`: decides how bad an event is.
//!
//! `Normal` events get `normal_default`. Every other event goes through, in
//! order: the message `rules` (first match wins), the reason `table`, and
//! `warning_default`. The defaults are the design document's table plus rules
//! for what kubelet writes into messages rather than reasons: a crash loop is
//! reported as reason `BackOff` with "Back-off restarting failed container",
//! an image pull failure as `Failed`/`BackOff` with "ErrImagePull" or
//! "ImagePullBackOff".
//!
//! An event the host has escalated for repeating (it carries the
//! `repeated_count` label) is never mapped to a lower severity than it has.
//!
//! ```yaml
//! - plugin: builtin:severity-mapper
//!   config:
//!     table: { FailedMount: high }        # merged over the default table
//!     rules:
//!       - { reason: "Failed*", message_contains: "quota", severity: high }
//! ```

mod config;

use std::collections::HashMap;

use aetherius_sdk::{Event, Severity, SeverityMapper};

pub use config::{Config, Rule};

/// Label the host adds when it escalates a repeating event.
const ESCALATION_LABEL: &str = "repeated_count";

/// Maps events to severities by message rules, then by reason.
pub struct ReasonSeverity {
    rules: Vec<Rule>,
    table: HashMap<String, Severity>,
    warning_default: Severity,
    normal_default: Severity,
}

impl ReasonSeverity {
    /// The severity `event` deserves, before the escalation guard.
    ///
    /// Reads the type, then the reason, and the message only if a rule for
    /// that reason looks at messages: a batch whose rules never do leaves
    /// the messages in the host.
    fn severity_of(&self, event: &Event) -> Severity {
        if event.event_type() == "Normal" {
            return self.normal_default;
        }
        let reason = event.reason();
        self.rules
            .iter()
            .find(|rule| rule.matches(reason, || event.message()))
            .map(|rule| rule.severity)
            .or_else(|| self.table.get(reason).copied())
            .unwrap_or(self.warning_default)
    }
}

impl SeverityMapper for ReasonSeverity {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let mut table = if config.replace_table {
            HashMap::new()
        } else {
            config::default_table()
        };
        table.extend(config.table);
        let mut rules = config.rules;
        if !config.replace_rules {
            // The operator's rules first: they are the more specific intent.
            rules.extend(config::default_rules());
        }
        Ok(ReasonSeverity {
            rules,
            table,
            warning_default: config.warning_default,
            normal_default: config.normal_default,
        })
    }

    fn map(&mut self, event: &Event) -> Option<Severity> {
        let severity = self.severity_of(event);
        // The label only matters (and is only read) when it would be lowered.
        if severity < event.severity() && event.label(ESCALATION_LABEL).is_some() {
            return None;
        }
        Some(severity)
    }
}

aetherius_sdk::export_severity_mapper!(ReasonSeverity);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, KeyValue, parse_config};

    fn mapper_for(config: &str) -> ReasonSeverity {
        ReasonSeverity::new(parse_config(config).unwrap()).unwrap()
    }

    fn warning_record(reason: &str, message: &str) -> EventRecord {
        EventRecord {
            event_type: "Warning".into(),
            reason: reason.into(),
            message: message.into(),
            severity: Severity::Low,
            ..EventRecord::default()
        }
    }

    fn warning(reason: &str, message: &str) -> Event {
        Event::from_record(warning_record(reason, message))
    }

    fn map(mapper: &mut ReasonSeverity, event: Event) -> Option<Severity> {
        mapper.map(&event)
    }

    #[test]
    fn default_table() {
        let mut mapper = mapper_for("null");
        let expect = [
            ("OOMKilled", Severity::Critical),
            ("CrashLoopBackOff", Severity::Critical),
            ("OOMKilling", Severity::Critical),
            ("SystemOOM", Severity::Critical),
            ("ImagePullBackOff", Severity::High),
            ("ErrImagePull", Severity::High),
            ("FailedScheduling", Severity::High),
            ("Unhealthy", Severity::Medium),
            ("BackOff", Severity::Medium),
            ("FailedMount", Severity::Medium),
            ("NodeNotReady", Severity::Low),
            ("", Severity::Low),
        ];
        for (reason, severity) in expect {
            assert_eq!(
                map(&mut mapper, warning(reason, "")),
                Some(severity),
                "{reason}"
            );
        }
    }

    #[test]
    fn normal_events_get_normal_default_whatever_the_reason() {
        let mut mapper = mapper_for("null");
        let normal = |reason: &str, message: &str| {
            Event::from_record(EventRecord {
                event_type: "Normal".into(),
                ..warning_record(reason, message)
            })
        };
        assert_eq!(map(&mut mapper, normal("Pulled", "")), Some(Severity::Info));
        // kubelet reports image pull back-off as a Normal BackOff.
        assert_eq!(
            map(
                &mut mapper,
                normal("BackOff", "Back-off pulling image \"x\"")
            ),
            Some(Severity::Info)
        );
        let mut mapper = mapper_for(r#"{"normal_default": "low"}"#);
        assert_eq!(map(&mut mapper, normal("Pulled", "")), Some(Severity::Low));
    }

    #[test]
    fn default_rules_read_kubelet_messages() {
        let mut mapper = mapper_for("null");
        let crash = "Back-off restarting failed container api in pod payments-api-6d9f7c8b5-x2x9k_payments(…)";
        assert_eq!(
            map(&mut mapper, warning("BackOff", crash)),
            Some(Severity::Critical)
        );
        for message in [
            "Error: ErrImagePull",
            "Error: ImagePullBackOff",
            "Back-off pulling image \"registry.example/report-api:v9\"",
        ] {
            assert_eq!(
                map(&mut mapper, warning("Failed", message)),
                Some(Severity::High)
            );
            assert_eq!(
                map(&mut mapper, warning("BackOff", message)),
                Some(Severity::High)
            );
        }
        // Other Failed messages fall through to the table (Failed: low).
        assert_eq!(
            map(
                &mut mapper,
                warning("Failed", "Error: failed to create containerd task")
            ),
            Some(Severity::Low)
        );
        // The rule is about BackOff; the same words under another reason don't count.
        assert_eq!(
            map(
                &mut mapper,
                warning("Killing", "restarting failed container")
            ),
            Some(Severity::Low)
        );
    }

    #[test]
    fn table_merges_over_defaults_or_replaces_them() {
        let mut mapper = mapper_for(r#"{"table": {"FailedMount": "high", "Evicted": "critical"}}"#);
        assert_eq!(
            map(&mut mapper, warning("FailedMount", "")),
            Some(Severity::High)
        );
        assert_eq!(
            map(&mut mapper, warning("Evicted", "")),
            Some(Severity::Critical)
        );
        assert_eq!(
            map(&mut mapper, warning("OOMKilled", "")),
            Some(Severity::Critical)
        );

        let mut mapper = mapper_for(
            r#"{"table": {"Evicted": "critical"}, "replace_table": true, "warning_default": "medium"}"#,
        );
        assert_eq!(
            map(&mut mapper, warning("OOMKilled", "")),
            Some(Severity::Medium)
        );
        assert_eq!(
            map(&mut mapper, warning("Evicted", "")),
            Some(Severity::Critical)
        );
    }

    #[test]
    fn rules_come_before_the_table_and_can_replace_the_defaults() {
        let config = r#"{"rules": [{"reason": "Failed*", "message_contains": ["quota", "exceeded"], "severity": "critical"}]}"#;
        let mut mapper = mapper_for(config);
        assert_eq!(
            map(
                &mut mapper,
                warning("FailedCreate", "exceeded quota: compute")
            ),
            Some(Severity::Critical)
        );
        assert_eq!(
            map(&mut mapper, warning("FailedScheduling", "0/3 nodes")),
            Some(Severity::High)
        );
        // Default rules still apply after the configured ones.
        assert_eq!(
            map(
                &mut mapper,
                warning("BackOff", "Back-off restarting failed container")
            ),
            Some(Severity::Critical)
        );

        let mut mapper = mapper_for(r#"{"replace_rules": true}"#);
        assert_eq!(
            map(
                &mut mapper,
                warning("BackOff", "Back-off restarting failed container")
            ),
            Some(Severity::Medium)
        );
    }

    #[test]
    fn a_rule_without_message_contains_matches_every_message() {
        let config = r#"{"rules": [{"reason": "Evicted", "severity": "high"}]}"#;
        let mut mapper = mapper_for(config);
        assert_eq!(
            map(&mut mapper, warning("Evicted", "anything")),
            Some(Severity::High)
        );
    }

    #[test]
    fn escalated_events_are_never_lowered() {
        let mut mapper = mapper_for("null");
        let escalated = |reason: &str| {
            Event::from_record(EventRecord {
                severity: Severity::High,
                labels: vec![KeyValue::new(ESCALATION_LABEL, "5")],
                ..warning_record(reason, "")
            })
        };
        assert_eq!(map(&mut mapper, escalated("Unhealthy")), None);
        assert_eq!(
            map(&mut mapper, escalated("OOMKilled")),
            Some(Severity::Critical)
        );
        // Without the label the mapper decides alone.
        let plain = Event::from_record(EventRecord {
            severity: Severity::High,
            ..warning_record("Unhealthy", "")
        });
        assert_eq!(map(&mut mapper, plain), Some(Severity::Medium));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let err = parse_config::<Config>(r#"{"table": {"X": "urgent"}}"#).unwrap_err();
        assert!(err.contains("table.X") && err.contains("`urgent`"), "{err}");
        let err = parse_config::<Config>(r#"{"rules": [{"reason": "X"}]}"#).unwrap_err();
        assert!(
            err.contains("rules[0]") && err.contains("severity"),
            "{err}"
        );
        let err = parse_config::<Config>(
            r#"{"rules": [{"reason": "X", "severity": "low", "msg": "y"}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("unknown field `msg`"), "{err}");
        let err = parse_config::<Config>(r#"{"tabel": {}}"#).unwrap_err();
        assert!(err.contains("unknown field `tabel`"), "{err}");
    }
}
