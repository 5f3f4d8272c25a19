//! Subject and topic templates: `event.k8s.{cluster}.{severity}`.
//!
//! Fields: `cluster`, `namespace`, `severity`, `reason`, `type`, `kind`
//! (the involved object's), `name` (the involved object's), `id`,
//! `fingerprint`, and `label.KEY` for any label (the built-in ones and what
//! enrichers added). A field that is empty renders as `_`. Values are made
//! safe for a NATS subject token or a Kafka topic name: anything but ASCII
//! letters, digits, `-` and `_` becomes `_`.

use std::fmt::Write as _;

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
    Label(String),
}

/// A parsed template (parsed once, when the config is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

const FIELDS: &str =
    "cluster, namespace, severity, reason, type, kind, name, id, fingerprint, label.KEY";

impl Template {
    /// Parses `text`; `{` and `}` delimit fields (`{{` and `}}` are literal).
    pub fn parse(text: &str) -> Result<Self, String> {
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
        if parts.is_empty() {
            return Err("the template is empty".into());
        }
        Ok(Self {
            text: text.to_owned(),
            parts,
        })
    }

    /// Whether the template has no fields: the same for every event.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// The template filled in for one processed event.
    pub fn render(&self, item: &Processed) -> String {
        let event = &item.occurrence.event;
        let mut out = String::with_capacity(64);
        for part in &self.parts {
            let value: std::borrow::Cow<'_, str> = match part {
                Part::Text(text) => {
                    out.push_str(text);
                    continue;
                }
                Part::Field(Field::Cluster) => event.cluster.as_str().into(),
                Part::Field(Field::Namespace) => event.namespace.as_str().into(),
                Part::Field(Field::Severity) => item.severity.as_str().into(),
                Part::Field(Field::Reason) => event.reason.as_str().into(),
                Part::Field(Field::Type) => event.event_type.as_str().into(),
                Part::Field(Field::Kind) => event.involved.kind.as_str().into(),
                Part::Field(Field::Name) => event.involved.name.as_str().into(),
                Part::Field(Field::Id) => item.occurrence.id.as_str().into(),
                Part::Field(Field::Fingerprint) => {
                    let mut hex = String::with_capacity(32);
                    for byte in item.occurrence.fingerprint.0 {
                        let _ = write!(hex, "{byte:02x}");
                    }
                    hex.into()
                }
                Part::Field(Field::Label(key)) => label(item, key).unwrap_or_default(),
            };
            push_safe(&mut out, &value);
        }
        out
    }
}

/// A label as published: the built-in ones, overridden by later additions.
fn label<'a>(item: &'a Processed, key: &str) -> Option<std::borrow::Cow<'a, str>> {
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
    fn rejects_unknown_fields_and_braces() {
        let error = Template::parse("a.{colour}").unwrap_err();
        assert!(error.contains("unknown field `{colour}`"), "{error}");
        assert!(Template::parse("a.{cluster").is_err());
        assert!(Template::parse("a}").is_err());
        assert!(Template::parse("").is_err());
    }
}
