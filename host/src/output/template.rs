//! Templates: subjects and topics (`event.k8s.{cluster}.{severity}`), and a
//! webhook's URL, headers and body.
//!
//! Fields: `cluster`, `namespace`, `severity`, `reason`, `type`, `kind`
//! (the involved object's), `name` (the involved object's), `id`,
//! `fingerprint`, `message` (as published: redacted if a stage redacted
//! it), and `label.KEY` for any label (the built-in ones and what enrichers
//! added). How a value is written depends on where the template goes
//! ([`Escape`]): made safe for a NATS subject token or a Kafka topic name by
//! default, percent-encoded in a URL, as it is in a header or a body.
//!
//! A template is filled in from a processed event ([`Template::render`], in
//! the pipeline) or from a published line ([`Template::render_line`], in a
//! webhook sink, which has only the line, also when it comes back from the
//! spool).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::item::Processed;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Cluster,
    Namespace,
    Severity,
    Reason,
    Type,
    Kind,
    Name,
    Id,
    Fingerprint,
    Message,
    Label(String),
}

/// How a field's value is written into a template's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Escape {
    /// Safe for a NATS subject token or a Kafka topic name: anything but
    /// ASCII letters, digits, `-` and `_` becomes `_`, and an empty value
    /// `_`.
    #[default]
    Token,
    /// Percent-encoded (RFC 3986): all but ASCII letters, digits, `-`, `.`,
    /// `_` and `~`, so that a value stays one path segment or query value.
    Url,
    /// As it is, control characters replaced by spaces: header values and
    /// a body's strings (which JSON escapes).
    Text,
}

/// A parsed template (parsed once, when the config is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
    escape: Escape,
}

const FIELDS: &str =
    "cluster, namespace, severity, reason, type, kind, name, id, fingerprint, message, label.KEY";

impl Template {
    /// Parses `text`; `{` and `}` delimit fields (`{{` and `}}` are literal).
    /// Values are written for a subject or topic ([`Escape::Token`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_as(text, Escape::Token)
    }

    /// Parses `text`, its values to be written as `escape` says. Unlike a
    /// subject, a header or a body may be empty.
    pub fn parse_as(text: &str, escape: Escape) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("`{text}`: `{{` without `}}`")),
                        }
                    }
                    let field = match name.trim() {
                        "cluster" => Field::Cluster,
                        "namespace" => Field::Namespace,
                        "severity" => Field::Severity,
                        "reason" => Field::Reason,
                        "type" => Field::Type,
                        "kind" => Field::Kind,
                        "name" => Field::Name,
                        "id" => Field::Id,
                        "fingerprint" => Field::Fingerprint,
                        "message" => Field::Message,
                        other => match other.strip_prefix("label.") {
                            Some(key) if !key.is_empty() => Field::Label(key.to_owned()),
                            _ => {
                                return Err(format!(
                                    "`{text}`: unknown field `{{{other}}}`; expected one of {FIELDS}"
                                ));
                            }
                        },
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(field));
                }
                '}' => return Err(format!("`{text}`: `}}` without `{{`")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        if parts.is_empty() && escape == Escape::Token {
            return Err("the template is empty".into());
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
            escape,
        })
    }

    /// Whether the template has no fields: the same for every event.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// The template filled in for one processed event.
    pub fn render(&self, item: &Processed) -> String {
        let event = &item.occurrence.event;
        self.fill(|field| match field {
            Field::Cluster => event.cluster.as_str().into(),
            Field::Namespace => event.namespace.as_str().into(),
            Field::Severity => item.severity.as_str().into(),
            Field::Reason => event.reason.as_str().into(),
            Field::Type => event.event_type.as_str().into(),
            Field::Kind => event.involved.kind.as_str().into(),
            Field::Name => event.involved.name.as_str().into(),
            Field::Id => item.occurrence.id.as_str().into(),
            Field::Fingerprint => {
                let mut hex = String::with_capacity(32);
                for byte in item.occurrence.fingerprint.0 {
                    let _ = write!(hex, "{byte:02x}");
                }
                hex.into()
            }
            Field::Message => item.message().into(),
            Field::Label(key) => label(item, key).unwrap_or_default(),
        })
    }

    /// The template filled in from a published event: a StandardEvent, or
    /// the `data` of a CloudEvent.
    pub fn render_line(&self, event: &PublishedEvent<'_>) -> String {
        self.fill(|field| {
            let label = |key: &str| event.labels.get(key).cloned().unwrap_or_default();
            match field {
                Field::Cluster => event.cluster_id.clone(),
                Field::Namespace => event.namespace.clone(),
                Field::Severity => event.severity.clone(),
                Field::Reason => label("reason"),
                Field::Type => label("event_type"),
                Field::Kind => label("involved_kind"),
                Field::Name => label("involved_name"),
                Field::Id => event.id.clone(),
                Field::Fingerprint => event.fingerprint.clone(),
                Field::Message => event.annotations.message.clone(),
                Field::Label(key) => label(key),
            }
        })
    }

    fn fill<'a>(&'a self, mut value: impl FnMut(&'a Field) -> Cow<'a, str>) -> String {
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => self.push(&mut out, &value(field)),
            }
        }
        out
    }

    fn push(&self, out: &mut String, value: &str) {
        match self.escape {
            Escape::Token => push_safe(out, value),
            Escape::Url => {
                for byte in value.bytes() {
                    if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                        out.push(char::from(byte));
                    } else {
                        let _ = write!(out, "%{byte:02X}");
                    }
                }
            }
            Escape::Text => out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c })),
        }
    }
}

/// What a template reads of a published line ([`Template::render_line`]):
/// the StandardEvent's fields, borrowed from the line where they need no
/// unescaping; `raw_data` is skipped.
#[derive(Debug, Default, Deserialize)]
pub struct PublishedEvent<'a> {
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub cluster_id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    pub severity: Cow<'a, str>,
    #[serde(borrow, default)]
    pub fingerprint: Cow<'a, str>,
    #[serde(borrow, default)]
    pub labels: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow, default)]
    pub annotations: PublishedAnnotations<'a>,
}

/// The annotations a template reads.
#[derive(Debug, Default, Deserialize)]
pub struct PublishedAnnotations<'a> {
    #[serde(borrow, default)]
    pub message: Cow<'a, str>,
}

impl<'a> PublishedEvent<'a> {
    /// Reads a line of `format`; `None` if it is not one (it always is: the
    /// pipeline encoded it).
    pub fn read(line: &'a [u8], format: super::OutputFormat) -> Option<Self> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            data: PublishedEvent<'a>,
        }
        match format {
            super::OutputFormat::Standard => serde_json::from_slice(line).ok(),
            super::OutputFormat::Cloudevents => serde_json::from_slice::<Envelope<'a>>(line)
                .ok()
                .map(|envelope| envelope.data),
        }
    }
}

/// A label as published: the built-in ones, overridden by later additions.
fn label<'a>(item: &'a Processed, key: &str) -> Option<Cow<'a, str>> {
    if let Some((_, value)) = item.labels.iter().rev().find(|(k, _)| k == key) {
        return Some(value.as_str().into());
    }
    let event = &item.occurrence.event;
    match key {
        "event_type" => Some(event.event_type.as_str().into()),
        "reason" => Some(event.reason.as_str().into()),
        "involved_kind" => Some(event.involved.kind.as_str().into()),
        "involved_name" => Some(event.involved.name.as_str().into()),
        "count" => Some(event.count.to_string().into()),
        _ => None,
    }
}

fn push_safe(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('_');
        return;
    }
    out.extend(value.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

impl std::str::FromStr for Template {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

/// As written.
impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::Severity;
    use crate::event::fixtures::warning;
    use crate::occurrence::{Fingerprint, Occurrence};

    fn item() -> Processed {
        let mut event = warning("BackOff", "web.1", "u1", 3, 1_795_000_000_000);
        event.cluster = "prod-eu".into();
        event.namespace = "shop".into();
        let occurrence = Occurrence {
            fingerprint: Fingerprint::of(&event),
            id: "abc".into(),
            repeated_count: None,
            event,
        };
        let mut item = Processed::new(Arc::new(occurrence), 0);
        item.severity = Severity::Critical;
        item.labels.push(("team".into(), "payments".into()));
        item
    }

    #[test]
    fn renders_fields_safely() {
        let template = Template::parse("event.k8s.{cluster}.{severity}").unwrap();
        assert_eq!(template.render(&item()), "event.k8s.prod-eu.critical");
        let template =
            Template::parse("{namespace}.{kind}.{name}.{label.team}.{label.missing}.{{x}}")
                .unwrap();
        assert_eq!(template.render(&item()), "shop.Pod.web_1.payments._.{x}");
        assert_eq!(
            Template::parse("k8s.events").unwrap().literal(),
            Some("k8s.events")
        );
        assert_eq!(
            Template::parse("{fingerprint}")
                .unwrap()
                .render(&item())
                .len(),
            32
        );
    }

    #[test]
    fn urls_are_percent_encoded_and_text_kept() {
        let mut item = item();
        item.message = Some("a/b c\nd é".into());
        let url = Template::parse_as("https://h/x/{name}?m={message}", Escape::Url).unwrap();
        assert_eq!(
            url.render(&item),
            "https://h/x/web.1?m=a%2Fb%20c%0Ad%20%C3%A9"
        );
        let text = Template::parse_as("{severity}: {message}", Escape::Text).unwrap();
        assert_eq!(text.render(&item), "critical: a/b c d é");
        // An empty value stays empty outside a subject.
        let empty = Template::parse_as("[{label.missing}]", Escape::Text).unwrap();
        assert_eq!(empty.render(&item), "[]");
        assert_eq!(
            Template::parse_as("", Escape::Text).unwrap().literal(),
            Some("")
        );
    }

    #[test]
    fn renders_a_published_line_of_either_format() {
        let standard = br#"{"id":"i-1","type":"k8s_event","cluster_id":"prod","namespace":"shop","severity":"high","fingerprint":"ff","labels":{"reason":"BackOff","event_type":"Warning","involved_kind":"Pod","involved_name":"web-1","team":"a\"b"},"annotations":{"message":"x\ny"},"raw_data":{"deep":[{"a":1}]}}"#;
        let cloud = format!(
            r#"{{"specversion":"1.0","id":"i-1","data":{}}}"#,
            std::str::from_utf8(standard).unwrap()
        );
        let template = Template::parse_as(
            "{cluster}/{namespace}/{severity}/{reason}/{type}/{kind}/{name}/{id}/{fingerprint}/{label.team}/{message}",
            Escape::Text,
        )
        .unwrap();
        for (line, format) in [
            (&standard[..], crate::output::OutputFormat::Standard),
            (cloud.as_bytes(), crate::output::OutputFormat::Cloudevents),
        ] {
            let event = PublishedEvent::read(line, format).unwrap();
            assert_eq!(
                template.render_line(&event),
                "prod/shop/high/BackOff/Warning/Pod/web-1/i-1/ff/a\"b/x y"
            );
        }
    }

    #[test]
    fn rejects_unknown_fields_and_braces() {
        let error = Template::parse("a.{colour}").unwrap_err();
        assert!(error.contains("unknown field `{colour}`"), "{error}");
        assert!(Template::parse("a.{cluster").is_err());
        assert!(Template::parse("a}").is_err());
        assert!(Template::parse("").is_err());
    }
}
