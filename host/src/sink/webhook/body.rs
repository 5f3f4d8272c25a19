//! `webhook.body`: the JSON sent for one event instead of the event itself,
//! written in YAML with templates for strings.

use serde_json::{Map, Value};

use crate::output::{Escape, PublishedEvent, Template};

/// A body: JSON whose strings (keys stay as written) are templates.
#[derive(Debug, Clone)]
pub enum BodyTemplate {
    /// `null`, a boolean or a number: sent as written.
    Fixed(Value),
    Text(Template),
    Array(Vec<BodyTemplate>),
    Object(Vec<(String, BodyTemplate)>),
}

impl BodyTemplate {
    /// Parses every string of `value` as a template.
    pub fn compile(value: &Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(text) => Self::Text(Template::parse_as(text, Escape::Text)?),
            Value::Array(items) => {
                Self::Array(items.iter().map(Self::compile).collect::<Result<_, _>>()?)
            }
            Value::Object(fields) => Self::Object(
                fields
                    .iter()
                    .map(|(key, value)| {
                        Self::compile(value)
                            .map(|value| (key.clone(), value))
                            .map_err(|error| format!("at `{key}`: {error}"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            fixed => Self::Fixed(fixed.clone()),
        })
    }

    /// The body for one event.
    pub fn render(&self, event: &PublishedEvent<'_>) -> Value {
        match self {
            Self::Fixed(value) => value.clone(),
            Self::Text(template) => Value::String(template.render_line(event)),
            Self::Array(items) => {
                Value::Array(items.iter().map(|item| item.render(event)).collect())
            }
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), value.render(event)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::OutputFormat;

    #[test]
    fn renders_strings_as_templates_and_keeps_the_rest() {
        let body: Value = serde_json::json!({
            "text": "[{severity}] {namespace}/{name} {reason}: {message}",
            "fields": [{"team": "{label.team}"}, 3, true, null],
            "{literal}": "{{not a field}}",
        });
        let error = BodyTemplate::compile(&serde_json::json!({"a": ["{colour}"]})).unwrap_err();
        assert!(
            error.contains("at `a`") && error.contains("{colour}"),
            "{error}"
        );
        let body = BodyTemplate::compile(&body).unwrap();
        let line = br#"{"id":"i","cluster_id":"c","namespace":"shop","severity":"high","fingerprint":"f","labels":{"reason":"BackOff","involved_name":"web","team":"pay"},"annotations":{"message":"line\none \"quoted\""},"raw_data":{"x":[1,{"y":2}]}}"#;
        let event = PublishedEvent::read(line, OutputFormat::Standard).unwrap();
        assert_eq!(
            body.render(&event),
            serde_json::json!({
                "text": "[high] shop/web BackOff: line one \"quoted\"",
                "fields": [{"team": "pay"}, 3, true, null],
                "{literal}": "{not a field}",
            })
        );
    }
}
