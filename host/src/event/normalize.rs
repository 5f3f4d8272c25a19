//! Turns the JSON of a `core/v1` or `events.k8s.io/v1` Event into an [`Event`].
//!
//! One pass over the bytes: the fields of both API versions are read into one
//! struct and everything else (notably `managedFields`) is skipped unparsed,
//! at any depth. Sizes are bounded on the way ([`EventLimits`]); numbers out
//! of range are clamped rather than refused; text that is not valid UTF-8,
//! or escapes that are not valid UTF-16, are read with U+FFFD in their place,
//! as the API server itself reads them.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, de};
use serde_json::value::RawValue;

use super::limits::{self, EventLimits, MAX_FIELD, cut};
use super::time::parse_timestamp;
use super::{Event, Millis, ObjectRef, Text};

/// A line that is not a Kubernetes Event.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a Kubernetes Event: kind is `{kind}`, apiVersion `{api_version}`")]
    NotAnEvent { kind: String, api_version: String },
    #[error("the object is {bytes} bytes, more than events.max_size ({limit} bytes)")]
    TooLarge { bytes: usize, limit: usize },
}

impl NormalizeError {
    /// The `kind` label of `k8s_events_error_total` for this error.
    pub fn metric_kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            _ => "decode",
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Wire {
    api_version: Text,
    kind: Text,
    metadata: Metadata,
    // core/v1
    involved_object: Option<WireRef>,
    message: Option<Text>,
    #[serde(deserialize_with = "lenient_count")]
    count: Option<u32>,
    #[serde(deserialize_with = "lenient_time")]
    first_timestamp: Option<Millis>,
    #[serde(deserialize_with = "lenient_time")]
    last_timestamp: Option<Millis>,
    source: Option<Source>,
    // both
    reason: Text,
    #[serde(rename = "type")]
    event_type: Text,
    #[serde(deserialize_with = "lenient_time")]
    event_time: Option<Millis>,
    series: Option<Series>,
    reporting_component: Option<Text>,
    // events.k8s.io/v1
    regarding: Option<WireRef>,
    note: Option<Text>,
    #[serde(deserialize_with = "lenient_count")]
    deprecated_count: Option<u32>,
    #[serde(deserialize_with = "lenient_time")]
    deprecated_first_timestamp: Option<Millis>,
    #[serde(deserialize_with = "lenient_time")]
    deprecated_last_timestamp: Option<Millis>,
    deprecated_source: Option<Source>,
    reporting_controller: Option<Text>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Metadata {
    name: Text,
    namespace: Text,
    uid: Text,
    resource_version: Text,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireRef {
    kind: Text,
    name: Text,
    namespace: Text,
    uid: Text,
    api_version: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Source {
    component: Text,
    host: Text,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Series {
    #[serde(deserialize_with = "lenient_count")]
    count: Option<u32>,
    #[serde(deserialize_with = "lenient_time")]
    last_observed_time: Option<Millis>,
}

/// A timestamp, or nothing when it is absent, empty, not a string or not a
/// time this host can represent (the API server stores years 0001–9999; a
/// few hours at the very end of 9999 are beyond the time library). An Event
/// with a time nobody can read is still an Event: the time filter and the
/// output treat the time as absent.
///
/// Read in the one pass over the JSON, from the borrowed text: no string is
/// allocated for a time.
fn lenient_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Millis>, D::Error> {
    fn time(scalar: Scalar<'_>) -> Option<Millis> {
        match scalar {
            Scalar::Text(text) if !text.is_empty() => parse_timestamp(text),
            _ => None,
        }
    }
    deserializer.deserialize_any(Lenient(time))
}

/// A count as the API server may hold it (an `int32`: negative, or absurdly
/// large) or as a file may spell it (a float): clamped to `0..=u32::MAX`.
/// Anything else is absent.
fn lenient_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    fn count(scalar: Scalar<'_>) -> Option<u32> {
        match scalar {
            Scalar::Signed(i) => Some(u32::try_from(i.max(0)).unwrap_or(u32::MAX)),
            Scalar::Unsigned(u) => Some(u32::try_from(u).unwrap_or(u32::MAX)),
            // `as` saturates; NaN cannot occur in JSON.
            Scalar::Float(f) => Some(f.clamp(0.0, f64::from(u32::MAX)) as u32),
            Scalar::Text(_) => None,
        }
    }
    deserializer.deserialize_any(Lenient(count))
}

/// A JSON scalar as [`Lenient`] hands it over.
enum Scalar<'a> {
    Text(&'a str),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
}

/// Reads a value of any type in one pass: scalars go through the closure,
/// `null`, booleans, arrays and objects are absent (skipped without a depth
/// limit, as serde's `IgnoredAny` skips).
struct Lenient<F>(F);

impl<'de, T, F: for<'a> FnOnce(Scalar<'a>) -> Option<T>> de::Visitor<'de> for Lenient<F> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((self.0)(Scalar::Text(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok((self.0)(Scalar::Signed(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok((self.0)(Scalar::Unsigned(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok((self.0)(Scalar::Float(v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(None)
    }
}

/// Normalizes one Event object given as JSON bytes with the default
/// [`EventLimits`]; `cluster` is stamped on it.
pub fn normalize(json: &[u8], cluster: &str) -> Result<Event, NormalizeError> {
    decode(json, cluster, &EventLimits::default())
}

/// Normalizes one Event object given as JSON bytes, within `limits`;
/// `cluster` is stamped on it.
pub fn decode(json: &[u8], cluster: &str, limits: &EventLimits) -> Result<Event, NormalizeError> {
    if json.len() > limits.max_size {
        return Err(NormalizeError::TooLarge {
            bytes: json.len(),
            limit: limits.max_size,
        });
    }
    match decode_valid(json, cluster, limits) {
        Err(NormalizeError::Json(error)) if error.is_syntax() => match repair_unicode(json) {
            // Read again with U+FFFD for what was not Unicode.
            Cow::Owned(repaired) => decode_valid(&repaired, cluster, limits),
            Cow::Borrowed(_) => Err(NormalizeError::Json(error)),
        },
        result => result,
    }
}

fn decode_valid(json: &[u8], cluster: &str, limits: &EventLimits) -> Result<Event, NormalizeError> {
    let raw: &RawValue = serde_json::from_slice(json)?;
    let wire: Wire = serde_json::from_str(raw.get())?;
    let is_core = wire.api_version == "v1";
    let is_events_api = wire.api_version.starts_with("events.k8s.io/");
    if wire.kind != "Event" || !(is_core || is_events_api) {
        let mut kind = wire.kind;
        let mut api_version = wire.api_version;
        cut(&mut kind, MAX_FIELD);
        cut(&mut api_version, MAX_FIELD);
        return Err(NormalizeError::NotAnEvent {
            kind: kind.into_string(),
            api_version: api_version.into_string(),
        });
    }
    let involved = wire.involved_object.or(wire.regarding).unwrap_or_default();
    let source = wire.source.or(wire.deprecated_source).unwrap_or_default();
    let series_count = wire
        .series
        .as_ref()
        .and_then(|s| s.count)
        .filter(|c| *c > 0);
    let count = series_count
        .or(wire.count)
        .or(wire.deprecated_count)
        .unwrap_or(1)
        .max(1);
    let mut event = Event {
        cluster: cluster.into(),
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
        first_timestamp: wire.first_timestamp.or(wire.deprecated_first_timestamp),
        last_timestamp: wire.last_timestamp.or(wire.deprecated_last_timestamp),
        event_time: wire.event_time,
        series_last_observed: wire.series.and_then(|s| s.last_observed_time),
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
        truncated: None,
        resynced: false,
    };
    bound(&mut event, limits);
    Ok(event)
}

/// Cuts what is longer than `limits` allow; see [`super::limits`].
fn bound(event: &mut Event, limits: &EventLimits) {
    for field in [
        &mut event.cluster,
        &mut event.namespace,
        &mut event.name,
        &mut event.uid,
        &mut event.resource_version,
        &mut event.involved.kind,
        &mut event.involved.name,
        &mut event.involved.namespace,
        &mut event.involved.uid,
        &mut event.involved.api_version,
        &mut event.reason,
        &mut event.event_type,
        &mut event.source_component,
        &mut event.source_host,
        &mut event.reporting_controller,
    ] {
        cut(field, MAX_FIELD);
    }
    let message_bytes = event.message.len();
    let message_cut = cut(&mut event.message, limits.max_message);
    // The raw object was parsed once already: it is an object, so neither
    // rewrite can fail.
    if message_cut && let Some(raw) = limits::with_message(&event.raw, &event.message) {
        event.raw = raw;
    }
    let raw_bytes = event.raw.get().len();
    let raw_reduced = raw_bytes > limits.max_raw_data
        || limits::nested_deeper_than(event.raw.get(), limits::MAX_RAW_DEPTH);
    if raw_reduced && let Some(raw) = limits::reduced(&event.raw, &event.message) {
        event.raw = raw;
    }
    // A message of escapes (control characters are six bytes each in JSON)
    // can keep even the reduced object over the limit: then raw_data leaves
    // the message to annotations.message.
    if event.raw.get().len() > limits.max_raw_data
        && let Some(raw) = limits::reduced(&event.raw, limits::MESSAGE_ELSEWHERE)
    {
        event.raw = raw;
    }
    let mut what = Vec::new();
    if message_cut {
        what.push(format!("message cut from {message_bytes} bytes"));
    }
    if raw_reduced {
        what.push(format!(
            "raw_data reduced from {raw_bytes} bytes (too large or too deep)"
        ));
    }
    if !what.is_empty() {
        event.truncated = Some(what.join("; "));
    }
}

/// `json` with invalid UTF-8 and unpaired UTF-16 surrogate escapes replaced
/// by U+FFFD; borrowed when there is nothing to repair.
fn repair_unicode(json: &[u8]) -> Cow<'_, [u8]> {
    let text = String::from_utf8_lossy(json);
    let bytes = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    let mut copied = 0;
    let hex = |at: usize| -> Option<u16> {
        let digits = bytes.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        // An escape: `\\` and the other one-character escapes are skipped
        // whole, so that `\\ud800` is not taken for a surrogate.
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let lone = match hex(i + 2) {
            Some(0xD800..=0xDBFF) => {
                let low = if bytes.get(i + 6..i + 8) == Some(b"\\u") {
                    hex(i + 8)
                } else {
                    None
                };
                if matches!(low, Some(0xDC00..=0xDFFF)) {
                    i += 12;
                    continue;
                }
                true
            }
            Some(0xDC00..=0xDFFF) => true,
            _ => false,
        };
        if lone {
            let out = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            out.extend_from_slice(&bytes[copied..i]);
            out.extend_from_slice(b"\\ufffd");
            copied = i + 6;
        }
        i += 6;
    }
    if let Some(mut out) = out {
        out.extend_from_slice(&bytes[copied..]);
        return Cow::Owned(out);
    }
    match text {
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        Cow::Borrowed(_) => Cow::Borrowed(json),
    }
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
    }

    #[test]
    fn times_nobody_can_read_are_absent_not_fatal() {
        for time in [
            r#""soon""#,
            "12345",
            r#""9999-12-31T23:59:59Z""#,
            "{}",
            "[[[]]]",
        ] {
            let event = normalize(core_with("lastTimestamp", time).as_bytes(), "c")
                .unwrap_or_else(|e| panic!("lastTimestamp {time}: {e}"));
            assert_eq!(event.last_timestamp, None, "lastTimestamp {time}");
            assert_eq!(event.occurred_at(), event.first_timestamp);
        }
    }

    fn core_with(field: &str, value: &str) -> String {
        let mut json: serde_json::Value = serde_json::from_str(CORE).unwrap();
        json[field] = serde_json::from_str(value).unwrap();
        json.to_string()
    }

    #[test]
    fn counts_out_of_range_are_clamped_not_refused() {
        for (count, expected) in [
            ("-5", 1),
            ("0", 1),
            ("3.7", 3),
            ("1e30", u32::MAX),
            ("18446744073709551615", u32::MAX),
            ("\"5\"", 1),
            ("null", 1),
            ("{}", 1),
            (r#"{"n": [1, {"m": 2}]}"#, 1),
        ] {
            let event = normalize(core_with("count", count).as_bytes(), "c")
                .unwrap_or_else(|e| panic!("count {count}: {e}"));
            assert_eq!(event.count, expected, "count {count}");
        }
    }

    #[test]
    fn invalid_unicode_is_read_with_replacement_characters() {
        let lone = CORE.replace("Back-off restarting", "Back\\ud800off \\udc00 restarting");
        let event = normalize(lone.as_bytes(), "c").unwrap();
        assert_eq!(
            event.message,
            "Back\u{fffd}off \u{fffd} restarting failed container"
        );
        // A pair stays a pair; an escaped backslash before `ud800` is text.
        let fine = CORE.replace("Back-off", "\\ud83d\\ude00 \\\\ud800");
        let event = normalize(fine.as_bytes(), "c").unwrap();
        assert!(event.message.starts_with("😀 \\ud800"), "{}", event.message);

        let mut bytes = CORE.as_bytes().to_vec();
        let at = CORE.find("Back-off").unwrap();
        bytes[at] = 0xff;
        let event = normalize(&bytes, "c").unwrap();
        assert!(event.message.starts_with('\u{fffd}'), "{}", event.message);
        serde_json::from_str::<serde_json::Value>(event.raw.get()).unwrap();
    }

    #[test]
    fn control_characters_and_deep_nesting_in_ignored_fields_are_fine() {
        let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
        let json = CORE.replace(
            r#""eventTime":null"#,
            &format!(r#""eventTime":null,"x-ignored":{deep}"#),
        );
        let event = normalize(json.as_bytes(), "c").unwrap();
        assert_eq!(event.reason, "BackOff");
        // Published reduced: too deep for common JSON parsers.
        assert!(event.raw.get().len() < 1024, "{}", event.raw.get());
        assert!(event.truncated.unwrap().contains("too deep"));

        let control = core_with("message", r#""a\u0000b\u001b[31mc\r\n""#);
        let event = normalize(control.as_bytes(), "c").unwrap();
        assert_eq!(event.message, "a\0b\u{1b}[31mc\r\n");
    }

    #[test]
    fn a_long_message_is_cut_everywhere_it_is_published() {
        let message = format!("password=hunter2 {}", "x".repeat(1024 * 1024));
        let json = core_with("message", &serde_json::to_string(&message).unwrap());
        let event = normalize(json.as_bytes(), "c").unwrap();
        let limits = EventLimits::default();
        assert!(event.message.len() <= limits.max_message);
        assert!(
            event
                .message
                .ends_with(&format!("…[cut from {} bytes]", message.len()))
        );
        let raw: serde_json::Value = serde_json::from_str(event.raw.get()).unwrap();
        assert_eq!(
            raw["message"],
            event.message.as_str(),
            "raw_data carries the cut message"
        );
        assert_eq!(raw["metadata"]["managedFields"][0]["manager"], "kubelet");
        assert_eq!(
            event.truncated.as_deref(),
            Some(format!("message cut from {} bytes", message.len()).as_str())
        );
    }

    #[test]
    fn a_huge_object_keeps_its_event_fields_in_raw_data() {
        let labels: serde_json::Map<String, serde_json::Value> = (0..5000)
            .map(|i| (format!("tenant.example/label-{i}"), "v".repeat(50).into()))
            .collect();
        let mut json: serde_json::Value = serde_json::from_str(CORE).unwrap();
        json["metadata"]["labels"] = labels.into();
        json["reason"] = "R".repeat(5000).into();
        let text = json.to_string();
        let event = normalize(text.as_bytes(), "c").unwrap();
        assert!(event.reason.len() <= MAX_FIELD);
        assert!(event.raw.get().len() <= EventLimits::default().max_raw_data);
        let raw: serde_json::Value = serde_json::from_str(event.raw.get()).unwrap();
        assert_eq!(raw["metadata"]["uid"], "u1");
        assert!(raw["metadata"].get("labels").is_none());
        assert!(
            raw.get("reason").is_none(),
            "a member over 1 KiB is left out"
        );
        assert_eq!(raw["involvedObject"]["name"], "web-1");
        assert!(event.truncated.unwrap().contains("raw_data reduced from"));
    }

    #[test]
    fn a_message_of_escapes_stays_within_max_raw_data() {
        // Six JSON bytes for each byte of message: cut to 32 KiB, it is
        // still 192 KiB of raw_data.
        let message = "\u{1}".repeat(256 * 1024);
        let json = core_with("message", &serde_json::to_string(&message).unwrap());
        let event = normalize(json.as_bytes(), "c").unwrap();
        let limits = EventLimits::default();
        assert!(event.message.len() <= limits.max_message);
        assert!(
            event.raw.get().len() <= limits.max_raw_data,
            "{}",
            event.raw.get().len()
        );
        let raw: serde_json::Value = serde_json::from_str(event.raw.get()).unwrap();
        assert_eq!(raw["message"], "[in annotations.message]");
        assert_eq!(raw["reason"], "BackOff");
    }

    #[test]
    fn an_object_over_max_size_is_refused_before_parsing() {
        let limits = EventLimits {
            max_size: 100,
            ..EventLimits::default()
        };
        let error = decode(CORE.as_bytes(), "c", &limits).unwrap_err();
        assert!(matches!(error, NormalizeError::TooLarge { limit: 100, .. }));
        assert_eq!(error.metric_kind(), "too_large");
    }
}
