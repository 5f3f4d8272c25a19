//! The host's own event type: a Kubernetes Event normalized from `core/v1` or
//! `events.k8s.io/v1`, and the severity scale.

mod limits;
pub mod lines;
mod normalize;
mod time;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use limits::{EventLimits, EventsConfig, MAX_FIELD, cut, with_message};
pub use normalize::{NormalizeError, decode, normalize};
pub use time::{Millis, format_millis, parse_timestamp};

/// How bad an event is, from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text field of an Event: stored inline up to 24 bytes (a reason, a
/// kind, a namespace, the type), so that most of an Event's fields cost no
/// allocation of their own; longer ones (a message, a uid) on the heap.
pub type Text = compact_str::CompactString;

/// The object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: Text,
    pub name: Text,
    pub namespace: Text,
    pub uid: Text,
    pub api_version: Text,
}

/// A normalized Kubernetes Event. Absent strings are empty.
#[derive(Debug, Clone)]
pub struct Event {
    /// The configured id of the cluster it came from.
    pub cluster: Text,
    /// `metadata.namespace` of the Event object.
    pub namespace: Text,
    /// `metadata.name` of the Event object.
    pub name: Text,
    /// `metadata.uid` of the Event object.
    pub uid: Text,
    /// `metadata.resourceVersion` of the Event object.
    pub resource_version: Text,
    pub involved: ObjectRef,
    pub reason: Text,
    /// `message` (core/v1) or `note` (events.k8s.io/v1).
    pub message: Text,
    /// `Normal` or `Warning`.
    pub event_type: Text,
    /// `count`, `series.count` or `deprecatedCount`; at least 1.
    pub count: u32,
    pub first_timestamp: Option<Millis>,
    pub last_timestamp: Option<Millis>,
    pub event_time: Option<Millis>,
    pub series_last_observed: Option<Millis>,
    pub source_component: Text,
    pub source_host: Text,
    pub reporting_controller: Text,
    /// The Event object exactly as it was received, unless it was too large
    /// (see `truncated`).
    pub raw: Box<RawValue>,
    /// What was cut to keep the event within `events` limits, for people
    /// (published as the annotation `truncated`); `None` for nearly every
    /// event.
    pub truncated: Option<String>,
    /// Read by a periodic relist (`resync_period`), not by the watch: most
    /// such events are duplicates; one that is not is something the watch
    /// missed, and is counted as such.
    pub resynced: bool,
}

impl Event {
    /// When this occurrence happened: the last timestamp, else the later of
    /// the event time and the series' last observation, else the first
    /// timestamp. `None` when the object carries no time at all.
    pub fn occurred_at(&self) -> Option<Millis> {
        self.last_timestamp
            .or(match (self.event_time, self.series_last_observed) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            })
            .or(self.first_timestamp)
    }

    /// Roughly the heap bytes this event holds, for byte-bounded queues.
    pub fn heap_bytes(&self) -> usize {
        self.raw.get().len()
            + self.message.len()
            + self.reason.len()
            + self.involved.name.len()
            + self.name.len()
            + 256
    }

    /// The severity an event has before any mapper: `info` for Normal,
    /// `low` for everything else.
    pub fn base_severity(&self) -> Severity {
        if self.event_type == "Normal" {
            Severity::Info
        } else {
            Severity::Low
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Events for unit tests across the crate.
    use super::*;

    /// A core/v1 Warning event about a pod, at `ts` milliseconds.
    pub fn warning(reason: &str, pod: &str, uid: &str, count: u32, ts: Millis) -> Event {
        let raw = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": { "name": format!("{pod}.1"), "namespace": "default", "uid": uid,
                          "resourceVersion": count.to_string() },
            "involvedObject": { "kind": "Pod", "name": pod, "namespace": "default", "uid": "pod-uid" },
            "reason": reason,
            "message": format!("{reason} happened"),
            "type": "Warning",
            "count": count,
            "firstTimestamp": format_millis(ts),
            "lastTimestamp": format_millis(ts),
        });
        normalize(raw.to_string().as_bytes(), "test").unwrap()
    }
}
