//! Wire formats: the `StandardEvent` JSON of the design document (schema in
//! `schema/standard-event.schema.json`) and CloudEvents 1.0 structured JSON.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;

use serde::Deserialize;

pub use template::{Escape, PublishedAnnotations, PublishedEvent, Template};

use crate::event::{Millis, format_millis};
use crate::item::{DeadLetter, Processed};

mod template;

/// Wire format of a published event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// The `StandardEvent` JSON (schema: `schema/standard-event.schema.json`).
    #[default]
    Standard,
    /// CloudEvents 1.0, structured JSON mode, with the `StandardEvent` as `data`.
    Cloudevents,
}

/// `type` of every StandardEvent.
pub const EVENT_TYPE: &str = "k8s_event";
/// `source` of every StandardEvent.
pub const EVENT_SOURCE: &str = "kubernetes";

#[derive(Serialize)]
struct StandardEvent<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    source: &'static str,
    timestamp: String,
    cluster_id: &'a str,
    namespace: &'a str,
    severity: &'static str,
    labels: BTreeMap<&'a str, Cow<'a, str>>,
    annotations: BTreeMap<&'a str, Cow<'a, str>>,
    fingerprint: String,
    raw_data: RawData<'a>,
}

#[derive(Serialize)]
struct RawData<'a> {
    k8s_event: Cow<'a, RawValue>,
}

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: String,
    #[serde(rename = "type")]
    kind: &'static str,
    subject: String,
    time: &'a str,
    datacontenttype: &'static str,
    severity: &'static str,
    data: &'a StandardEvent<'a>,
}

/// Encodes one processed event as a JSON line (with the trailing newline).
/// `now` stands in for the timestamp of an event that carries no time.
pub fn encode(format: OutputFormat, item: &Processed, now: Millis) -> Vec<u8> {
    encode_with(format, item, now, &[])
}

/// Encodes a dead-lettered event: the StandardEvent with annotations saying
/// which chain and stage failed and why.
pub fn encode_dead_letter(format: OutputFormat, dead: &DeadLetter, now: Millis) -> Vec<u8> {
    let failure = dead.failure.to_string();
    let extra = [
        ("dead_letter_chain", dead.chain.as_str()),
        ("dead_letter_stage", dead.stage.as_str()),
        ("dead_letter_reason", failure.as_str()),
    ];
    encode_with(format, &dead.event, now, &extra)
}

fn encode_with(
    format: OutputFormat,
    item: &Processed,
    now: Millis,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let event = &item.occurrence.event;
    let message = item.message();
    let mut labels: BTreeMap<&str, Cow<'_, str>> = BTreeMap::from([
        ("event_type", Cow::Borrowed(event.event_type.as_str())),
        ("reason", Cow::Borrowed(event.reason.as_str())),
        ("involved_kind", Cow::Borrowed(event.involved.kind.as_str())),
        ("involved_name", Cow::Borrowed(event.involved.name.as_str())),
        ("count", Cow::Owned(event.count.to_string())),
    ]);
    for (key, value) in &item.labels {
        labels.insert(key, Cow::Borrowed(value));
    }
    let time = |t: Option<Millis>| t.map(format_millis).unwrap_or_default();
    let mut annotations: BTreeMap<&str, Cow<'_, str>> = BTreeMap::from([
        ("message", Cow::Borrowed(message)),
        ("first_timestamp", Cow::Owned(time(event.first_timestamp))),
        (
            "last_timestamp",
            Cow::Owned(time(event.last_timestamp.or(event.occurred_at()))),
        ),
    ]);
    for (key, value) in &item.annotations {
        annotations.insert(key, Cow::Borrowed(value));
    }
    if let Some(truncated) = &event.truncated {
        annotations.insert("truncated", Cow::Borrowed(truncated));
    }
    for (key, value) in extra {
        annotations.insert(key, Cow::Borrowed(value));
    }
    let standard = StandardEvent {
        id: &item.occurrence.id,
        kind: EVENT_TYPE,
        source: EVENT_SOURCE,
        timestamp: format_millis(event.occurred_at().unwrap_or(now)),
        cluster_id: &event.cluster,
        namespace: &event.namespace,
        severity: item.severity.as_str(),
        labels,
        annotations,
        fingerprint: item.occurrence.fingerprint.to_string(),
        raw_data: RawData {
            k8s_event: match &item.message {
                Some(redacted) => Cow::Owned(redact_raw(&event.raw, redacted)),
                None => Cow::Borrowed(&*event.raw),
            },
        },
    };
    let mut line = match format {
        OutputFormat::Standard => serde_json::to_vec(&standard),
        OutputFormat::Cloudevents => serde_json::to_vec(&CloudEvent {
            specversion: "1.0",
            id: standard.id,
            source: format!("/aetherius/clusters/{}", event.cluster),
            kind: "io.aetherius.k8s_event",
            subject: format!(
                "{}/{}/{}",
                event.namespace, event.involved.kind, event.involved.name
            ),
            time: &standard.timestamp,
            datacontenttype: "application/json",
            severity: standard.severity,
            data: &standard,
        }),
    }
    // Serializing strings and maps of strings cannot fail.
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// A published line a broker refused, as the dead-letter sinks get it: the
/// same event with the annotations `dead_letter_sink` and
/// `dead_letter_reason` added where `format` keeps annotations. `None` if
/// `line` is not one this module encoded.
pub fn refused(format: OutputFormat, line: &[u8], sink: &str, reason: &str) -> Option<Vec<u8>> {
    let mut event: serde_json::Value = serde_json::from_slice(line).ok()?;
    let standard = match format {
        OutputFormat::Standard => &mut event,
        OutputFormat::Cloudevents => event.get_mut("data")?,
    };
    let annotations = standard.get_mut("annotations")?.as_object_mut()?;
    annotations.insert("dead_letter_sink".into(), sink.into());
    annotations.insert("dead_letter_reason".into(), reason.into());
    let mut bytes = serde_json::to_vec(&event).ok()?;
    bytes.push(b'\n');
    Some(bytes)
}

/// The raw Event with its message (`message` or `note`) replaced, so that a
/// redacted secret does not leak through `raw_data`. Should the raw object
/// not be an object (it always is: it was decoded), the message is left out
/// rather than published unredacted.
fn redact_raw(raw: &RawValue, message: &str) -> Box<RawValue> {
    crate::event::with_message(raw, message).unwrap_or_else(|| {
        serde_json::value::to_raw_value(&serde_json::Value::Null).unwrap_or_else(|_| raw.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::fixtures::warning;
    use crate::occurrence::{Fingerprint, Occurrence, occurrence_id};

    fn processed(message: Option<&str>) -> Processed {
        let event = warning("BackOff", "web", "u1", 5, 1_763_629_200_000);
        let occurrence = Occurrence {
            id: occurrence_id(&event),
            fingerprint: Fingerprint::of(&event),
            repeated_count: Some(5),
            event,
        };
        let mut item = Processed::new(Arc::new(occurrence), 0);
        item.message = message.map(str::to_owned);
        item
    }

    #[test]
    fn standard_event_has_the_documented_shape() {
        let line = encode(OutputFormat::Standard, &processed(None), 0);
        let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(json["type"], "k8s_event");
        assert_eq!(json["source"], "kubernetes");
        assert_eq!(json["cluster_id"], "test");
        assert_eq!(json["severity"], "high");
        assert_eq!(json["timestamp"], "2025-11-20T09:00:00Z");
        assert_eq!(json["labels"]["reason"], "BackOff");
        assert_eq!(json["labels"]["count"], "5");
        assert_eq!(json["labels"]["repeated_count"], "5");
        assert_eq!(json["annotations"]["message"], "BackOff happened");
        assert_eq!(json["raw_data"]["k8s_event"]["kind"], "Event");
        assert_eq!(json["fingerprint"].as_str().unwrap().len(), 32);
        assert!(line.ends_with(b"\n"));
    }

    #[test]
    fn redaction_reaches_raw_data() {
        let line = encode(
            OutputFormat::Standard,
            &processed(Some("token=[REDACTED]")),
            0,
        );
        let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(json["annotations"]["message"], "token=[REDACTED]");
        assert_eq!(json["raw_data"]["k8s_event"]["message"], "token=[REDACTED]");
    }

    #[test]
    fn cloudevents_wraps_the_standard_event() {
        let line = encode(OutputFormat::Cloudevents, &processed(None), 0);
        let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["source"], "/aetherius/clusters/test");
        assert_eq!(json["subject"], "default/Pod/web");
        assert_eq!(json["data"]["type"], "k8s_event");
        assert_eq!(json["id"], json["data"]["id"]);
    }

    #[test]
    fn a_refused_line_gets_its_dead_letter_annotations_in_either_format() {
        for format in [OutputFormat::Standard, OutputFormat::Cloudevents] {
            let line = encode(format, &processed(None), 0);
            let letter = refused(format, &line, "bus", "too large").unwrap();
            let json: serde_json::Value = serde_json::from_slice(&letter).unwrap();
            let standard = match format {
                OutputFormat::Standard => &json,
                OutputFormat::Cloudevents => &json["data"],
            };
            assert_eq!(standard["annotations"]["dead_letter_sink"], "bus");
            assert_eq!(standard["annotations"]["dead_letter_reason"], "too large");
            assert_eq!(standard["annotations"]["message"], "BackOff happened");
            assert!(letter.ends_with(b"\n"));
        }
        assert!(refused(OutputFormat::Standard, b"not json", "bus", "x").is_none());
    }
}
