//! [`Event`]: a lazy view of one event of the current batch.

use crate::types::{EventRecord, KeyValue, Severity, Timestamp};

/// One event of the batch the host is asking about.
///
/// The events stay in the host; an `Event` is only their index in the batch.
/// Each accessor is **one call into the host**, and each string accessor
/// also copies that string into the plugin, so:
///
/// - read only the fields you need, and read each one **once** into a local
///   (`let reason = event.reason();`), not once per comparison;
/// - read the cheap fields first and the rest only when the decision still
///   depends on them (`involved_kind()` before `message()`);
/// - [`record`](Event::record) copies every field of the event: convenient,
///   but it costs as much as all the other accessors together.
///
/// In native unit tests, build events from an owned record with
/// [`Event::from_record`]; the accessors then read (clones of) its fields.
///
/// ```
/// use aetherius_sdk::{Event, EventRecord};
///
/// let event = Event::from_record(EventRecord {
///     reason: "BackOff".into(),
///     event_type: "Warning".into(),
///     ..Default::default()
/// });
/// assert_eq!(event.reason(), "BackOff");
/// assert!(event.is_warning());
/// assert_eq!(event.count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Event {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// Index into the host's current batch.
    #[cfg(target_arch = "wasm32")]
    Batch(u32),
    /// An owned record (tests, or a plugin building events itself).
    Record(Box<EventRecord>),
}

#[cfg(target_arch = "wasm32")]
use crate::bindings::filter::aetherius::plugin::batch;

/// Accessors that read one field: `batch.<field>(index)` in the host, or the
/// field of the owned record.
macro_rules! accessors {
    ($($(#[$doc:meta])* $name:ident -> $ty:ty = $($field:ident).+;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> $ty {
                match &self.source {
                    #[cfg(target_arch = "wasm32")]
                    Source::Batch(index) => batch::$name(*index),
                    Source::Record(record) => <$ty as Clone>::clone(&record.$($field).+),
                }
            }
        )*
    };
}

impl Event {
    /// The event at `index` of the host's current batch. Only valid during
    /// the stage call that was given at least `index + 1` events; any other
    /// use traps on the first accessor call.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn at(index: u32) -> Self {
        Event {
            source: Source::Batch(index),
        }
    }

    /// An event backed by an owned record instead of the host's batch, for
    /// unit tests: `Event::from_record(EventRecord { reason: "X".into(),
    /// ..Default::default() })`.
    pub fn from_record(record: EventRecord) -> Self {
        Event {
            source: Source::Record(Box::new(record)),
        }
    }

    /// The whole record, every field copied into the plugin (`batch.get`).
    /// Much more expensive than the accessors of the few fields a plugin
    /// usually needs.
    pub fn record(&self) -> EventRecord {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch(index) => batch::get(*index),
            Source::Record(record) => EventRecord::clone(record),
        }
    }

    accessors! {
        /// The `id` of the cluster the event came from.
        cluster -> String = cluster;
        /// The namespace of the Event object.
        namespace -> String = namespace;
        /// The kind of the object the event is about (`Pod`, `Node`, ...).
        involved_kind -> String = involved.kind;
        /// The name of the object the event is about.
        involved_name -> String = involved.name;
        /// The namespace of the object the event is about.
        involved_namespace -> String = involved.namespace;
        /// The uid of the object the event is about.
        involved_uid -> String = involved.uid;
        /// The `apiVersion` of the object the event is about.
        involved_api_version -> String = involved.api_version;
        /// Machine-readable reason, e.g. `BackOff`.
        reason -> String = reason;
        /// The message as it stands (redacted if an earlier stage redacted it).
        message -> String = message;
        /// `Normal` or `Warning` (empty if absent).
        event_type -> String = event_type;
        /// How many times this event has happened.
        count -> u32 = count;
        /// `firstTimestamp`, ms since the epoch.
        first_timestamp -> Option<Timestamp> = first_timestamp;
        /// `lastTimestamp`, ms since the epoch.
        last_timestamp -> Option<Timestamp> = last_timestamp;
        /// `eventTime` (events.k8s.io/v1), ms since the epoch.
        event_time -> Option<Timestamp> = event_time;
        /// `series.lastObservedTime` (events.k8s.io/v1), ms since the epoch.
        series_last_observed -> Option<Timestamp> = series_last_observed;
        /// `source.component`.
        source_component -> String = source_component;
        /// `source.host`.
        source_host -> String = source_host;
        /// `reportingController` (events.k8s.io/v1).
        reporting_controller -> String = reporting_controller;
        /// Labels added so far (`repeated_count` when the host escalated a
        /// repeating event, and whatever earlier enrichers added).
        labels -> Vec<KeyValue> = labels;
        /// Annotations added so far by earlier enrichers.
        annotations -> Vec<KeyValue> = annotations;
        /// The severity so far.
        severity -> Severity = severity;
    }

    /// The value of one label the event carries so far, if any (one host
    /// call; only that label's value is copied).
    pub fn label(&self, key: &str) -> Option<String> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch(index) => batch::label(*index, key),
            Source::Record(record) => find(&record.labels, key),
        }
    }

    /// The value of one annotation the event carries so far, if any (one
    /// host call; only that annotation's value is copied). Needs a host that
    /// speaks `aetherius:plugin@0.1.1`.
    pub fn annotation(&self, key: &str) -> Option<String> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch(index) => batch::annotation(*index, key),
            Source::Record(record) => find(&record.annotations, key),
        }
    }

    /// Whether the event's type is `Warning` (reads
    /// [`event_type`](Event::event_type)).
    pub fn is_warning(&self) -> bool {
        self.event_type() == "Warning"
    }
}

impl From<EventRecord> for Event {
    fn from(record: EventRecord) -> Self {
        Event::from_record(record)
    }
}

fn find(pairs: &[KeyValue], key: &str) -> Option<String> {
    // The last entry wins, as it does when the host applies enrichments.
    pairs
        .iter()
        .rev()
        .find(|pair| pair.key == key)
        .map(|pair| pair.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ObjectRef;

    #[test]
    fn accessors_read_the_record() {
        let event = Event::from_record(EventRecord {
            cluster: "prod".into(),
            namespace: "payments".into(),
            involved: ObjectRef {
                kind: "Pod".into(),
                name: "api-1".into(),
                api_version: "v1".into(),
                ..ObjectRef::default()
            },
            reason: "BackOff".into(),
            event_type: "Warning".into(),
            count: 7,
            last_timestamp: Some(42),
            labels: vec![KeyValue::new("a", "1"), KeyValue::new("a", "2")],
            annotations: vec![KeyValue::new("runbook", "x")],
            severity: Severity::High,
            ..EventRecord::default()
        });
        assert_eq!(event.cluster(), "prod");
        assert_eq!(event.namespace(), "payments");
        assert_eq!(event.involved_kind(), "Pod");
        assert_eq!(event.involved_name(), "api-1");
        assert_eq!(event.involved_api_version(), "v1");
        assert_eq!(event.involved_uid(), "");
        assert_eq!(event.reason(), "BackOff");
        assert!(event.is_warning());
        assert_eq!(event.count(), 7);
        assert_eq!(event.last_timestamp(), Some(42));
        assert_eq!(event.first_timestamp(), None);
        assert_eq!(event.label("a").as_deref(), Some("2"));
        assert_eq!(event.label("b"), None);
        assert_eq!(event.annotation("runbook").as_deref(), Some("x"));
        assert_eq!(event.severity(), Severity::High);
        assert_eq!(event.record().involved.name, "api-1");
    }
}
