//! The contract's types, re-exported from the generated bindings, plus the
//! conveniences plugin authors reach for (parsing a severity from config,
//! building an enrichment, a blank record for tests).
//!
//! The WIT `event` record is [`EventRecord`] here: plugins see events through
//! the lazy [`Event`](crate::Event) view, and hold a whole record only when
//! they ask for one ([`Event::record`](crate::Event::record)) or build one in
//! a test.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer};

pub use crate::bindings::filter::aetherius::plugin::metadata::{ObjectMetadata, ObjectName};
pub use crate::bindings::filter::aetherius::plugin::types::{
    Enrichment, Event as EventRecord, KeyValue, LogLevel, ObjectRef, Severity, Timestamp, Verdict,
};

impl Severity {
    /// Every severity, from least to most severe.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The name used in configs and in the host's output (`info` … `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSeverity(pub String);

impl fmt::Display for UnknownSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown severity `{}`, expected one of info, low, medium, high, critical",
            self.0
        )
    }
}

impl std::error::Error for UnknownSeverity {}

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Parses `info`, `low`, `medium`, `high` or `critical`, ignoring ASCII case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownSeverity(text.to_owned()))
    }
}

/// Lets a plugin's config hold a `Severity` directly (`"high"`, `"Critical"`).
impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

impl KeyValue {
    /// A label or annotation.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl Default for Enrichment {
    fn default() -> Self {
        Enrichment::new()
    }
}

impl Enrichment {
    /// Adds nothing.
    pub fn new() -> Self {
        Enrichment {
            labels: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Adds (or overrides) a label. The key must be a valid Kubernetes label
    /// key (`[prefix/]name`, name ≤ 63 characters) or the host rejects it.
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(KeyValue::new(key, value));
        self
    }

    /// Adds (or overrides) an annotation.
    #[must_use]
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.push(KeyValue::new(key, value));
        self
    }

    /// Whether this enrichment adds nothing.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// An empty reference: every string empty.
impl Default for ObjectRef {
    fn default() -> Self {
        ObjectRef {
            kind: String::new(),
            name: String::new(),
            namespace: String::new(),
            uid: String::new(),
            api_version: String::new(),
        }
    }
}

/// A blank record (every string empty, no times, `count` 1, severity
/// `info`), for plugin tests:
/// `Event::from_record(EventRecord { reason: "BackOff".into(), ..Default::default() })`.
impl Default for EventRecord {
    fn default() -> Self {
        EventRecord {
            cluster: String::new(),
            namespace: String::new(),
            involved: ObjectRef::default(),
            reason: String::new(),
            message: String::new(),
            event_type: String::new(),
            count: 1,
            first_timestamp: None,
            last_timestamp: None,
            event_time: None,
            series_last_observed: None,
            source_component: String::new(),
            source_host: String::new(),
            reporting_controller: String::new(),
            labels: Vec::new(),
            annotations: Vec::new(),
            severity: Severity::Info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_parses_case_insensitively_and_round_trips() {
        for severity in Severity::ALL {
            assert_eq!(severity.as_str().parse::<Severity>(), Ok(severity));
            assert_eq!(
                severity.as_str().to_uppercase().parse::<Severity>(),
                Ok(severity)
            );
        }
        let err = "severe".parse::<Severity>().unwrap_err();
        assert!(err.to_string().contains("`severe`"), "{err}");
    }

    #[test]
    fn severity_deserializes_from_config() {
        let parsed: Vec<Severity> = serde_json::from_str(r#"["info", "Critical"]"#).unwrap();
        assert_eq!(parsed, [Severity::Info, Severity::Critical]);
        assert!(serde_json::from_str::<Severity>("\"urgent\"").is_err());
    }

    #[test]
    fn severities_are_ordered_by_badness() {
        assert!(Severity::ALL.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn enrichment_builder_and_label_lookup() {
        let enrichment = Enrichment::new()
            .with_label("team", "payments")
            .with_annotation("runbook", "https://example.test/rb");
        assert!(!enrichment.is_empty());
        assert_eq!(enrichment.labels, [KeyValue::new("team", "payments")]);
        assert!(Enrichment::default().is_empty());
    }
}
