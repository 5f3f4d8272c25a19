//! `{{name}}`: an Aetherius filter. It drops events whose reason matches one
//! of `reasons`, except in the namespaces matching `except_namespaces`.
//!
//! ```yaml
//! config:
//!   reasons: [Unhealthy, Pulled]     # `*` and `?` wildcards
//!   except_namespaces: ["kube-*"]    # never drop events from these
//! ```

use aetherius_sdk::glob::Glob;
use aetherius_sdk::{Event, Filter, Verdict};
use serde::Deserialize;

/// The stage's `config` from the YAML; `{}` or no config gives the defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Reasons to drop.
    pub reasons: Vec<Glob>,
    /// Namespaces whose events are always kept.
    pub except_namespaces: Vec<Glob>,
}

/// One instance per pipeline stage; `new` runs once, `filter` per event.
pub struct {{Type}} {
    config: Config,
}

impl Filter for {{Type}} {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        // Refuse a config that cannot be right: the message reaches the
        // operator through `aetherius check`, with the stage's name.
        if let Some(empty) = config.reasons.iter().position(|g| g.as_str().is_empty()) {
            return Err(format!("reasons[{empty}] is empty"));
        }
        Ok(Self { config })
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        // The first read of a field fetches it for the whole batch in one
        // host call; a field no event needs is never copied into the plugin.
        let reason = event.reason();
        let Some(pattern) = self.config.reasons.iter().find(|g| g.matches(reason)) else {
            return Verdict::Keep;
        };
        let namespace = event.namespace();
        if self
            .config
            .except_namespaces
            .iter()
            .any(|g| g.matches(namespace))
        {
            aetherius_sdk::log::debug(&format!("kept {reason} in {namespace}: excepted namespace"));
            return Verdict::Keep;
        }
        Verdict::Drop(format!("reason `{reason}` matches `{pattern}`"))
    }
}

aetherius_sdk::export_filter!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, parse_config};

    fn plugin(config: &str) -> {{Type}} {
        {{Type}}::new(parse_config(config).unwrap()).unwrap()
    }

    fn event(reason: &str, namespace: &str) -> Event {
        Event::from_record(EventRecord {
            reason: reason.into(),
            namespace: namespace.into(),
            ..EventRecord::default()
        })
    }

    #[test]
    fn drops_listed_reasons_except_in_excepted_namespaces() {
        let mut plugin = plugin(r#"{"reasons": ["Unhealthy"], "except_namespaces": ["kube-*"]}"#);
        assert!(matches!(
            plugin.filter(&event("Unhealthy", "shop")),
            Verdict::Drop(_)
        ));
        assert_eq!(
            plugin.filter(&event("Unhealthy", "kube-system")),
            Verdict::Keep
        );
        assert_eq!(plugin.filter(&event("BackOff", "shop")), Verdict::Keep);
    }

    #[test]
    fn no_config_keeps_everything() {
        assert_eq!(
            plugin("null").filter(&event("Unhealthy", "shop")),
            Verdict::Keep
        );
    }

    #[test]
    fn a_misspelt_field_is_refused() {
        let error = parse_config::<Config>(r#"{"reason": []}"#).unwrap_err();
        assert!(error.contains("unknown field `reason`"), "{error}");
    }
}
