//! What one Event may bring into the pipeline. Anyone who may create Events
//! in any namespace writes what the pipeline reads, so sizes are bounded
//! where an Event is decoded, before the occurrence core, the plugins, the
//! queues and the sinks see it:
//!
//! - an object larger than [`EventLimits::max_size`] is not decoded at all
//!   (dropped, counted as `too_large`);
//! - a message longer than [`EventLimits::max_message`] is cut, at a
//!   character boundary, and says so at its end;
//! - the other text fields are cut at [`MAX_FIELD`];
//! - `raw_data` is the object as received, with the message as cut (so that
//!   nothing a plugin did not see is published), unless it is larger than
//!   [`EventLimits::max_raw_data`] or nested deeper than [`MAX_RAW_DEPTH`]
//!   (which common JSON parsers refuse: serde_json stops at 128): then it
//!   keeps only the Event's own fields of up to [`MAX_RAW_MEMBER`] bytes,
//!   and `metadata` only the object's identity (and, should a message of
//!   escapes still not fit, not the message: it is in `annotations.message`).

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::units::ByteSize;

/// Longest reason, type, object reference part, source or controller name
/// kept. Kubernetes names are at most 253 bytes; the events API limits
/// reasons and controllers to 128.
pub const MAX_FIELD: usize = 1024;
/// Largest top-level member kept in a reduced `raw_data` (other than the
/// message).
pub const MAX_RAW_MEMBER: usize = 1024;

/// Deepest nesting published in `raw_data` as received. Events nest about
/// eight levels deep (managedFields included); the API server stores
/// whatever depth a client sends in `managedFields`.
pub const MAX_RAW_DEPTH: usize = 64;

/// Whether the JSON text `json` nests arrays and objects deeper than `max`.
/// Text with fewer openings than `max` cannot (a count the compiler
/// vectorises, so an ordinary Event costs a few hundred nanoseconds less
/// than the walk); otherwise one pass, strings skipped.
pub fn nested_deeper_than(json: &str, max: usize) -> bool {
    let openings = json
        .as_bytes()
        .iter()
        .filter(|&&b| b == b'[' || b == b'{')
        .count();
    if openings <= max {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// What a reduced `raw_data` holds as its message when even that would
/// not fit: the message is published in `annotations.message` anyway.
pub const MESSAGE_ELSEWHERE: &str = "[in annotations.message]";

/// Bounds on one Event; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Largest Event object (its JSON) decoded at all. Above what an API
    /// server stores (etcd's default request limit is 1.5 MiB).
    pub max_size: usize,
    /// Longest message (`message` or `note`) kept whole.
    pub max_message: usize,
    /// Largest `raw_data` published as received.
    pub max_raw_data: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        Self {
            max_size: 3 * 1024 * 1024,
            max_message: 32 * 1024,
            max_raw_data: 64 * 1024,
        }
    }
}

/// `events:` — bounds on what one Event brings in (anyone who may create
/// Events writes what the pipeline reads). docs/limits.md has the whole
/// budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// An Event object (its JSON) larger than this is not decoded: dropped
    /// and counted (`k8s_events_error_total{kind="too_large"}`). Default 3Mi,
    /// above the 1.5 MiB an API server stores by default, so that only what
    /// no API server sends is refused.
    pub max_size: ByteSize,
    /// Longer messages are cut at a character boundary and end with
    /// `…[cut from N bytes]`, before any plugin sees them, and `raw_data`
    /// carries the cut message too. Default 32Ki (kubelet and controller
    /// messages are well under 4 KiB).
    pub max_message: ByteSize,
    /// `raw_data` is the Event as received up to this size; a larger one
    /// keeps only the Event's own fields (metadata: name, namespace, uid,
    /// resourceVersion, creationTimestamp). Default 64Ki. Either cut is
    /// named in the annotation `truncated`.
    pub max_raw_data: ByteSize,
}

impl EventsConfig {
    /// What is wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (field, size, min) in [
            ("max_size", self.max_size, 64 * 1024),
            ("max_message", self.max_message, 1024),
            ("max_raw_data", self.max_raw_data, 4096),
        ] {
            if size.0 < min {
                problems.push(format!(
                    "at `events.{field}`: {size} is too small; expected at least {}",
                    ByteSize(min)
                ));
            }
        }
        problems
    }
}

impl Default for EventsConfig {
    fn default() -> Self {
        let limits = EventLimits::default();
        Self {
            max_size: ByteSize(limits.max_size as u64),
            max_message: ByteSize(limits.max_message as u64),
            max_raw_data: ByteSize(limits.max_raw_data as u64),
        }
    }
}

impl EventsConfig {
    /// The limits the decoder applies.
    pub fn limits(&self) -> EventLimits {
        let bytes = |size: ByteSize| usize::try_from(size.0).unwrap_or(usize::MAX);
        EventLimits {
            max_size: bytes(self.max_size),
            max_message: bytes(self.max_message),
            max_raw_data: bytes(self.max_raw_data),
        }
    }
}

/// Text that [`cut`] can shorten in place.
pub trait Cuttable: std::ops::Deref<Target = str> {
    fn truncate(&mut self, len: usize);
    fn push_str(&mut self, text: &str);
}

impl Cuttable for String {
    fn truncate(&mut self, len: usize) {
        String::truncate(self, len);
    }
    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }
}

impl Cuttable for super::Text {
    fn truncate(&mut self, len: usize) {
        super::Text::truncate(self, len);
    }
    fn push_str(&mut self, text: &str) {
        super::Text::push_str(self, text);
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, ending it with
/// a note of its original length. Returns whether it cut.
pub fn cut(text: &mut impl Cuttable, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let note = format!("…[cut from {} bytes]", text.len());
    let mut end = max.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&note);
    true
}

/// The top-level members of a JSON object, in order, values unparsed (so
/// that nesting inside them costs nothing and has no depth limit).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Serializes members in order.
struct Object<'a>(Vec<(&'a str, Member<'a>)>);

enum Member<'a> {
    Raw(&'a RawValue),
    Text(&'a str),
    Reduced(Object<'a>),
}

impl serde::Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            match value {
                Member::Raw(raw) => map.serialize_entry(key, raw)?,
                Member::Text(text) => map.serialize_entry(key, text)?,
                Member::Reduced(object) => map.serialize_entry(key, object)?,
            }
        }
        map.end()
    }
}

/// Fields of an Event object (core/v1 and events.k8s.io/v1) a reduced
/// `raw_data` keeps.
const EVENT_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "involvedObject",
    "regarding",
    "related",
    "reason",
    "message",
    "note",
    "type",
    "count",
    "firstTimestamp",
    "lastTimestamp",
    "eventTime",
    "series",
    "source",
    "deprecatedSource",
    "deprecatedCount",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "reportingComponent",
    "reportingController",
    "reportingInstance",
    "action",
];

/// Metadata fields a reduced `raw_data` keeps: the object's identity.
const METADATA_FIELDS: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
];

/// `raw` with its message (`message` or `note`) replaced by `message`,
/// members in their order; `None` when `raw` is not a JSON object.
pub fn with_message(raw: &RawValue, message: &str) -> Option<Box<RawValue>> {
    let Members(members) = serde_json::from_str(raw.get()).ok()?;
    let object = Object(
        members
            .iter()
            .map(|(key, value)| match key.as_str() {
                "message" | "note" => (key.as_str(), Member::Text(message)),
                _ => (key.as_str(), Member::Raw(value)),
            })
            .collect(),
    );
    serde_json::value::to_raw_value(&object).ok()
}

/// Whether a member is kept in a reduced `raw_data`: at most
/// [`MAX_RAW_MEMBER`] bytes, and shallow enough that the whole stays within
/// [`MAX_RAW_DEPTH`].
fn small(value: &RawValue) -> bool {
    value.get().len() <= MAX_RAW_MEMBER && !nested_deeper_than(value.get(), MAX_RAW_DEPTH - 2)
}

/// `raw` reduced to the Event's own fields of at most [`MAX_RAW_MEMBER`]
/// bytes, `metadata` to the object's identity, and the message replaced by
/// `message`; `None` when `raw` is not a JSON object.
pub fn reduced(raw: &RawValue, message: &str) -> Option<Box<RawValue>> {
    let Members(members) = serde_json::from_str(raw.get()).ok()?;
    let metadata = members
        .iter()
        .find(|(key, _)| key == "metadata")
        .and_then(|(_, value)| serde_json::from_str::<Members>(value.get()).ok());
    let mut kept = Vec::new();
    for (key, value) in &members {
        let key = key.as_str();
        if !EVENT_FIELDS.contains(&key) {
            continue;
        }
        match key {
            "message" | "note" => kept.push((key, Member::Text(message))),
            "metadata" => {
                let Some(Members(fields)) = &metadata else {
                    continue;
                };
                let identity = fields
                    .iter()
                    .filter(|(field, value)| {
                        METADATA_FIELDS.contains(&field.as_str()) && small(value)
                    })
                    .map(|(field, value)| (field.as_str(), Member::Raw(value)))
                    .collect();
                kept.push((key, Member::Reduced(Object(identity))));
            }
            _ if small(value) => kept.push((key, Member::Raw(value))),
            _ => {}
        }
    }
    serde_json::value::to_raw_value(&Object(kept)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn cuts_at_a_character_boundary_and_says_so() {
        let mut short = "fine".to_owned();
        assert!(!cut(&mut short, 4));
        assert_eq!(short, "fine");

        let mut long = "é".repeat(100);
        assert!(cut(&mut long, 60));
        assert!(long.len() <= 60, "{}", long.len());
        assert!(long.ends_with("…[cut from 200 bytes]"), "{long}");
        assert!(long.starts_with("éé"));
    }

    #[test]
    fn measures_nesting_outside_strings() {
        assert!(!nested_deeper_than(r#"{"a":[1,{"b":"[[[[{{{{"}]}"#, 3));
        assert!(nested_deeper_than(r#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!nested_deeper_than(r#"{"a":"\\\"[[[[[[["}"#, 1));
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert!(nested_deeper_than(&deep, MAX_RAW_DEPTH));
    }

    #[test]
    fn replaces_the_message_keeping_order_and_deep_nesting() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let text =
            format!(r#"{{"kind":"Event","message":"password=hunter2","deep":{deep},"count":3}}"#);
        let replaced = with_message(&raw(&text), "password=[REDACTED]").unwrap();
        assert_eq!(
            replaced.get(),
            format!(
                r#"{{"kind":"Event","message":"password=[REDACTED]","deep":{deep},"count":3}}"#
            )
        );
        assert!(with_message(&raw("[1,2]"), "x").is_none());
    }

    #[test]
    fn reduces_to_the_event_fields_and_the_identity() {
        let labels: String = (0..2000)
            .map(|i| format!(r#""label-{i}":"value""#))
            .collect::<Vec<_>>()
            .join(",");
        let text = format!(
            r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"a.1","namespace":"n","uid":"u","resourceVersion":"7","labels":{{{labels}}},"managedFields":[]}},"involvedObject":{{"kind":"Pod","name":"a"}},"reason":"BackOff","message":"long","junk":"x","type":"Warning","count":2}}"#
        );
        let reduced = reduced(&raw(&text), "cut").unwrap();
        assert_eq!(
            reduced.get(),
            r#"{"apiVersion":"v1","kind":"Event","metadata":{"name":"a.1","namespace":"n","uid":"u","resourceVersion":"7"},"involvedObject":{"kind":"Pod","name":"a"},"reason":"BackOff","message":"cut","type":"Warning","count":2}"#
        );
    }
}
