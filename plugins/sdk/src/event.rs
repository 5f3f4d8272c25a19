//! [`Event`]: a view of one event of the current batch.

use crate::types::{EventRecord, KeyValue, ObjectMetadata, Severity, Timestamp};

#[cfg(target_arch = "wasm32")]
use std::rc::Rc;

#[cfg(target_arch = "wasm32")]
use crate::columns::{Batch, Text, Time};

/// One event of the batch the host is asking about.
///
/// The events stay in the host; an `Event` is their index in the batch. The
/// first time a plugin reads a field of any event of a batch, the SDK fetches
/// that field of **every** event of the batch in one host call
/// (`batch.texts`, `batch.times`, ...); every other read of it in the same
/// batch is a plain slice of that copy. So reading a field costs about the
/// same as reading a `&str` you own, and a plugin pays once per batch for
/// each field it uses, not once per event:
///
/// - read the fields you need; there is no need to hoist reads into locals;
/// - [`record`](Event::record) copies every field of one event in one call:
///   convenient, but much more expensive than the accessors;
/// - [`label`](Event::label), [`annotation`](Event::annotation),
///   [`labels`](Event::labels) and [`annotations`](Event::annotations) are
///   one host call per event.
///
/// In native unit tests, build events from an owned record with
/// [`Event::from_record`]; the accessors then read its fields.
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
    /// An event of the host's current batch.
    #[cfg(target_arch = "wasm32")]
    Batch { batch: Rc<Batch>, index: u32 },
    /// An owned record (tests, or a plugin building events itself), and
    /// what [`Event::involved_object`] answers for it.
    Record(Box<EventRecord>, Option<Box<ObjectMetadata>>),
}

#[cfg(target_arch = "wasm32")]
use crate::bindings::filter::aetherius::plugin::batch as host_batch;

/// Accessors of one text field: a slice of the batch's column, or of the
/// owned record's field.
macro_rules! texts {
    ($($(#[$doc:meta])* $name:ident = $column:ident, $($field:ident).+;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> &str {
                match &self.source {
                    #[cfg(target_arch = "wasm32")]
                    Source::Batch { batch, index } => batch.text(Text::$column, *index),
                    Source::Record(record, _) => &record.$($field).+,
                }
            }
        )*
    };
}

/// Accessors of one time field.
macro_rules! times {
    ($($(#[$doc:meta])* $name:ident = $column:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Option<Timestamp> {
                match &self.source {
                    #[cfg(target_arch = "wasm32")]
                    Source::Batch { batch, index } => batch.time(Time::$column, *index),
                    Source::Record(record, _) => record.$name,
                }
            }
        )*
    };
}

impl Event {
    /// The event at `index` of the host's current batch.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn at(batch: Rc<Batch>, index: u32) -> Self {
        Event {
            source: Source::Batch { batch, index },
        }
    }

    /// An event backed by an owned record instead of the host's batch, for
    /// unit tests: `Event::from_record(EventRecord { reason: "X".into(),
    /// ..Default::default() })`.
    pub fn from_record(record: EventRecord) -> Self {
        Event {
            source: Source::Record(Box::new(record), None),
        }
    }

    /// The same event, with `object` as what the host knows of its involved
    /// object ([`involved_object`](Event::involved_object)): for unit tests
    /// of plugins that read it.
    pub fn with_involved_object(self, object: ObjectMetadata) -> Self {
        match self.source {
            Source::Record(record, _) => Event {
                source: Source::Record(record, Some(Box::new(object))),
            },
            #[cfg(target_arch = "wasm32")]
            source => Event { source },
        }
    }

    /// What the host knows of the object the event is about — its labels,
    /// its controllers up to the workload (Deployment
    /// `api` for a Pod of it), a Pod's node — from the metadata cache it
    /// keeps while a plugin reads it (contract 0.1.4; one host call). `None`
    /// when the host does not have it: the object is gone, its kind is not
    /// watched, or the host may not list it. Never waits for the API
    /// server.
    pub fn involved_object(&self) -> Option<ObjectMetadata> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { index, .. } => {
                crate::bindings::filter::aetherius::plugin::metadata::involved_object(*index)
            }
            Source::Record(_, object) => object.as_deref().cloned(),
        }
    }

    /// The annotations of the object the event is about, as the host's
    /// metadata cache has them (without `last-applied-configuration`, each
    /// value cut at 1 KiB); empty when it does not have the object. One
    /// host call, apart from [`involved_object`](Event::involved_object) so
    /// that a plugin that needs no annotations copies none. Record-backed
    /// events (tests) have none.
    pub fn involved_annotations(&self) -> Vec<KeyValue> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { index, .. } => {
                crate::bindings::filter::aetherius::plugin::metadata::involved_annotations(*index)
            }
            Source::Record(..) => Vec::new(),
        }
    }

    /// The whole record, every field copied into the plugin (`batch.get`,
    /// one call for this one event).
    pub fn record(&self) -> EventRecord {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { index, .. } => host_batch::get(*index),
            Source::Record(record, _) => EventRecord::clone(record),
        }
    }

    texts! {
        /// The `id` of the cluster the event came from.
        cluster = Cluster, cluster;
        /// The namespace of the Event object.
        namespace = Namespace, namespace;
        /// The kind of the object the event is about (`Pod`, `Node`, ...).
        involved_kind = InvolvedKind, involved.kind;
        /// The name of the object the event is about.
        involved_name = InvolvedName, involved.name;
        /// The namespace of the object the event is about.
        involved_namespace = InvolvedNamespace, involved.namespace;
        /// The uid of the object the event is about.
        involved_uid = InvolvedUid, involved.uid;
        /// The `apiVersion` of the object the event is about.
        involved_api_version = InvolvedApiVersion, involved.api_version;
        /// Machine-readable reason, e.g. `BackOff`.
        reason = Reason, reason;
        /// The message as it stands (redacted if an earlier stage redacted it).
        message = Message, message;
        /// `Normal` or `Warning` (empty if absent).
        event_type = EventType, event_type;
        /// `source.component`.
        source_component = SourceComponent, source_component;
        /// `source.host`.
        source_host = SourceHost, source_host;
        /// `reportingController` (events.k8s.io/v1).
        reporting_controller = ReportingController, reporting_controller;
    }

    times! {
        /// `firstTimestamp`, ms since the epoch.
        first_timestamp = FirstTimestamp;
        /// `lastTimestamp`, ms since the epoch.
        last_timestamp = LastTimestamp;
        /// `eventTime` (events.k8s.io/v1), ms since the epoch.
        event_time = EventTime;
        /// `series.lastObservedTime` (events.k8s.io/v1), ms since the epoch.
        series_last_observed = SeriesLastObserved;
    }

    /// How many times this event has happened.
    pub fn count(&self) -> u32 {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { batch, index } => batch.count(*index),
            Source::Record(record, _) => record.count,
        }
    }

    /// The severity so far.
    pub fn severity(&self) -> Severity {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { batch, index } => batch.severity(*index),
            Source::Record(record, _) => record.severity,
        }
    }

    /// Labels added so far (`repeated_count` when the host escalated a
    /// repeating event, and whatever earlier enrichers added); one host call.
    pub fn labels(&self) -> Vec<KeyValue> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { index, .. } => host_batch::labels(*index),
            Source::Record(record, _) => record.labels.clone(),
        }
    }

    /// Annotations added so far by earlier enrichers; one host call.
    pub fn annotations(&self) -> Vec<KeyValue> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { index, .. } => host_batch::annotations(*index),
            Source::Record(record, _) => record.annotations.clone(),
        }
    }

    /// The value of one label the event carries so far, if any (one host
    /// call; only that label's value is copied).
    pub fn label(&self, key: &str) -> Option<String> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { index, .. } => host_batch::label(*index, key),
            Source::Record(record, _) => find(&record.labels, key),
        }
    }

    /// The value of one annotation the event carries so far, if any (one
    /// host call; only that annotation's value is copied).
    pub fn annotation(&self, key: &str) -> Option<String> {
        match &self.source {
            #[cfg(target_arch = "wasm32")]
            Source::Batch { index, .. } => host_batch::annotation(*index, key),
            Source::Record(record, _) => find(&record.annotations, key),
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
