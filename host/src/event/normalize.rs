//! Turns the JSON of a `core/v1` or `events.k8s.io/v1` Event into an [`Event`].
//!
//! One pass over the bytes: the fields of both API versions are read into one
//! struct and everything else (notably `managedFields`) is skipped unparsed.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::time::parse_timestamp;
use super::{Event, ObjectRef};

/// A line that is not a Kubernetes Event.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a Kubernetes Event: kind is `{kind}`, apiVersion `{api_version}`")]
    NotAnEvent { kind: String, api_version: String },
    #[error("invalid `{field}` timestamp `{value}`")]
    Timestamp { field: &'static str, value: String },
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Wire {
    api_version: String,
    kind: String,
    metadata: Metadata,
    // core/v1
    involved_object: Option<WireRef>,
    message: Option<String>,
    count: Option<u32>,
    first_timestamp: Option<String>,
    last_timestamp: Option<String>,
    source: Option<Source>,
    // both
    reason: String,
    #[serde(rename = "type")]
    event_type: String,
    event_time: Option<String>,
    series: Option<Series>,
    reporting_component: Option<String>,
    // events.k8s.io/v1
    regarding: Option<WireRef>,
    note: Option<String>,
    deprecated_count: Option<u32>,
    deprecated_first_timestamp: Option<String>,
    deprecated_last_timestamp: Option<String>,
    deprecated_source: Option<Source>,
    reporting_controller: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Metadata {
    name: String,
    namespace: String,
    uid: String,
    resource_version: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireRef {
    kind: String,
    name: String,
    namespace: String,
    uid: String,
    api_version: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Source {
    component: String,
    host: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Series {
    count: u32,
    last_observed_time: Option<String>,
}

fn timestamp(
    field: &'static str,
    value: Option<String>,
) -> Result<Option<i64>, super::NormalizeError> {
    match value {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => parse_timestamp(&text)
            .map(Some)
            .ok_or(NormalizeError::Timestamp { field, value: text }),
    }
}

/// Normalizes one Event object given as JSON bytes; `cluster` is stamped on it.
pub fn normalize(json: &[u8], cluster: &str) -> Result<Event, NormalizeError> {
    let raw: &RawValue = serde_json::from_slice(json)?;
    let wire: Wire = serde_json::from_str(raw.get())?;
    let is_core = wire.api_version == "v1";
    let is_events_api = wire.api_version.starts_with("events.k8s.io/");
    if wire.kind != "Event" || !(is_core || is_events_api) {
        return Err(NormalizeError::NotAnEvent {
            kind: wire.kind,
            api_version: wire.api_version,
        });
    }
    let involved = wire.involved_object.or(wire.regarding).unwrap_or_default();
    let source = wire.source.or(wire.deprecated_source).unwrap_or_default();
    let series_count = wire.series.as_ref().map(|s| s.count).filter(|c| *c > 0);
    let count = series_count
        .or(wire.count)
        .or(wire.deprecated_count)
        .unwrap_or(1)
        .max(1);
    Ok(Event {
        cluster: cluster.to_owned(),
        namespace: wire.metadata.namespace,
        name: wire.metadata.name,
        uid: wire.metadata.uid,
        resource_version: wire.metadata.resource_version,
        involved: ObjectRef {
            kind: involved.kind,
            name: involved.name,
            namespace: involved.namespace,
            uid: involved.uid,
            api_version: involved.api_version,
        },
        reason: wire.reason,
        message: wire.message.or(wire.note).unwrap_or_default(),
        event_type: wire.event_type,
        count,
        first_timestamp: timestamp(
            "firstTimestamp",
            wire.first_timestamp.or(wire.deprecated_first_timestamp),
        )?,
        last_timestamp: timestamp(
            "lastTimestamp",
            wire.last_timestamp.or(wire.deprecated_last_timestamp),
        )?,
        event_time: timestamp("eventTime", wire.event_time)?,
        series_last_observed: timestamp(
            "series.lastObservedTime",
            wire.series.and_then(|s| s.last_observed_time),
        )?,
        source_component: if source.component.is_empty() {
            wire.reporting_component.clone().unwrap_or_default()
        } else {
            source.component
        },
        source_host: source.host,
        reporting_controller: wire
            .reporting_controller
            .or(wire.reporting_component)
            .unwrap_or_default(),
        raw: raw.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORE: &str = r#"{"apiVersion":"v1","kind":"Event","metadata":{"name":"web-1.17f","namespace":"payments","uid":"u1","resourceVersion":"42","managedFields":[{"manager":"kubelet"}]},"involvedObject":{"kind":"Pod","name":"web-1","namespace":"payments","uid":"p1","apiVersion":"v1"},"reason":"BackOff","message":"Back-off restarting failed container","type":"Warning","count":3,"firstTimestamp":"2026-11-20T09:00:00Z","lastTimestamp":"2026-11-20T09:02:00Z","source":{"component":"kubelet","host":"node-1"},"eventTime":null}"#;

    const EVENTS_API: &str = r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":{"name":"db.1","namespace":"checkout","uid":"u2","resourceVersion":"7"},"regarding":{"kind":"Pod","name":"db","namespace":"checkout"},"reason":"FailedScheduling","note":"0/3 nodes are available","type":"Warning","eventTime":"2026-11-20T09:00:01.123456Z","series":{"count":4,"lastObservedTime":"2026-11-20T09:03:00.000000Z"},"reportingController":"default-scheduler","reportingInstance":"default-scheduler-cp-1","action":"Scheduling"}"#;

    #[test]
    fn core_v1_event() {
        let event = normalize(CORE.as_bytes(), "prod").unwrap();
        assert_eq!(event.cluster, "prod");
        assert_eq!(event.namespace, "payments");
        assert_eq!(
            (event.uid.as_str(), event.resource_version.as_str()),
            ("u1", "42")
        );
        assert_eq!(event.involved.kind, "Pod");
        assert_eq!(event.involved.name, "web-1");
        assert_eq!(event.reason, "BackOff");
        assert_eq!(event.count, 3);
        assert_eq!(event.source_component, "kubelet");
        assert_eq!(event.source_host, "node-1");
        assert_eq!(event.event_time, None);
        assert_eq!(event.occurred_at(), event.last_timestamp);
        assert_eq!(event.raw.get(), CORE);
    }

    #[test]
    fn events_k8s_io_v1_event() {
        let event = normalize(EVENTS_API.as_bytes(), "prod").unwrap();
        assert_eq!(event.involved.name, "db");
        assert_eq!(event.message, "0/3 nodes are available");
        assert_eq!(event.count, 4, "series.count is the count");
        assert_eq!(event.reporting_controller, "default-scheduler");
        assert_eq!(event.last_timestamp, None);
        assert_eq!(
            event.occurred_at(),
            event.series_last_observed,
            "the series' last observation is later than eventTime"
        );
    }

    #[test]
    fn rejects_what_is_not_an_event() {
        let error = normalize(br#"{"apiVersion":"v1","kind":"Pod"}"#, "c").unwrap_err();
        assert!(matches!(error, NormalizeError::NotAnEvent { .. }));
        assert!(matches!(
            normalize(b"{not json", "c"),
            Err(NormalizeError::Json(_))
        ));
        let bad_time = CORE.replace("2026-11-20T09:02:00Z", "soon");
        assert!(matches!(
            normalize(bad_time.as_bytes(), "c"),
            Err(NormalizeError::Timestamp {
                field: "lastTimestamp",
                ..
            })
        ));
    }
}
