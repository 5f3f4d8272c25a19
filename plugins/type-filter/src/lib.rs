//! Default plugin `builtin:type-filter`: keeps events whose type is allowed.
//!
//! ```yaml
//! - plugin: builtin:type-filter
//!   config: { allow: [Warning] }   # default: [Normal, Warning]
//! ```

use aetherius_sdk::{Event, Filter, Verdict, Verdicts};
use serde::Deserialize;

/// The event types Kubernetes defines; anything else in `allow` is a typo.
const KNOWN_TYPES: [&str; 2] = ["Normal", "Warning"];

/// The stage's config.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Event types to keep (`Normal`, `Warning`). Defaults to both, so the
    /// stage does nothing until it is told what to drop.
    pub allow: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow: KNOWN_TYPES.map(String::from).to_vec(),
        }
    }
}

/// Keeps events whose `event-type` is in `allow`.
pub struct TypeFilter {
    allow: Vec<String>,
    /// The last type dropped and its drop reason, made once: most events
    /// of a stream have one of two types.
    dropped: (String, String),
}

impl Filter for TypeFilter {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if let Some(unknown) = config
            .allow
            .iter()
            .find(|t| !KNOWN_TYPES.contains(&t.as_str()))
        {
            return Err(format!(
                "allow: unknown event type `{unknown}`, expected Normal or Warning (case matters)"
            ));
        }
        Ok(TypeFilter {
            allow: config.allow,
            dropped: (String::new(), reason("")),
        })
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        match self.drop_reason(event.event_type()) {
            None => Verdict::Keep,
            Some(reason) => Verdict::Drop(reason.to_owned()),
        }
    }

    /// Most events of a stream are dropped here: no `String` per drop.
    fn filter_into(&mut self, events: &[Event], verdicts: &mut Verdicts) {
        for event in events {
            match self.drop_reason(event.event_type()) {
                None => verdicts.keep(),
                Some(reason) => verdicts.drop(reason),
            }
        }
    }
}

impl TypeFilter {
    /// Why an event of `event_type` is dropped, or `None` to keep it.
    fn drop_reason(&mut self, event_type: &str) -> Option<&str> {
        if self.allow.iter().any(|allowed| allowed == event_type) {
            return None;
        }
        if self.dropped.0 != event_type {
            self.dropped = (event_type.to_owned(), reason(event_type));
        }
        Some(&self.dropped.1)
    }
}

/// Why an event of `event_type` is dropped.
fn reason(event_type: &str) -> String {
    let shown = if event_type.is_empty() {
        "(empty)"
    } else {
        event_type
    };
    format!("type {shown} not allowed")
}

aetherius_sdk::export_filter!(TypeFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, parse_config};

    fn filter_for(config: &str) -> Result<TypeFilter, String> {
        TypeFilter::new(parse_config(config)?)
    }

    fn of_type(event_type: &str) -> Event {
        Event::from_record(EventRecord {
            event_type: event_type.into(),
            ..EventRecord::default()
        })
    }

    #[test]
    fn default_keeps_both_types() {
        let mut filter = filter_for("null").unwrap();
        assert_eq!(filter.filter(&of_type("Normal")), Verdict::Keep);
        assert_eq!(filter.filter(&of_type("Warning")), Verdict::Keep);
    }

    #[test]
    fn drops_types_not_allowed() {
        let mut filter = filter_for(r#"{"allow": ["Warning"]}"#).unwrap();
        assert_eq!(filter.filter(&of_type("Warning")), Verdict::Keep);
        assert_eq!(
            filter.filter(&of_type("Normal")),
            Verdict::Drop("type Normal not allowed".into())
        );
        assert_eq!(
            filter.filter(&of_type("")),
            Verdict::Drop("type (empty) not allowed".into())
        );
    }

    #[test]
    fn a_batch_gets_the_verdicts_one_event_at_a_time_gets() {
        let mut filter = filter_for(r#"{"allow": ["Warning"]}"#).unwrap();
        let events: Vec<Event> = ["Normal", "Warning", "Normal", "", "Normal"]
            .map(of_type)
            .into();
        let mut verdicts = Verdicts::default();
        filter.filter_into(&events, &mut verdicts);
        let one_by_one: Vec<Verdict> = events.iter().map(|e| filter.filter(e)).collect();
        assert_eq!(verdicts.to_vec(), one_by_one);
    }

    #[test]
    fn rejects_unknown_types_and_fields() {
        let err = filter_for(r#"{"allow": ["warning"]}"#).err().unwrap();
        assert!(err.contains("`warning`"), "{err}");
        let err = filter_for(r#"{"types": []}"#).err().unwrap();
        assert!(err.contains("unknown field `types`"), "{err}");
    }
}
