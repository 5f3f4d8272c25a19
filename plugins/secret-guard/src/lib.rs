//! Default plugin `builtin:secret-guard`: keeps credentials out of the
//! pipeline's output.
//!
//! - Events about a `Secret` are dropped: their messages name secrets and
//!   vault paths, and nobody should be paged with them.
//! - Every other event's message is scanned for token-like strings (JWTs,
//!   `Bearer` tokens, `password=…`-style values, AWS access key ids, long
//!   high-entropy base64/hex runs); each one is replaced by `[REDACTED]`.
//!   See [`redact`] for exactly what counts.
//!
//! ```yaml
//! - plugin: builtin:secret-guard   # takes no config
//! ```

pub mod redact;

use aetherius_sdk::{Event, Filter, Verdict, log};
use serde::Deserialize;

pub use redact::{REDACTED, redact};

/// The stage takes no options; `{}` or no config at all.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// Drops events about Secrets and redacts credentials in messages.
pub struct SecretGuard;

impl Filter for SecretGuard {
    type Config = Config;

    fn new(_config: Config) -> Result<Self, String> {
        Ok(SecretGuard)
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        // The kind first: an event about a Secret is dropped without copying
        // its message out of the host.
        if event.involved_kind() == "Secret" {
            return Verdict::Drop("event about a Secret".to_owned());
        }
        match redact(event.message()) {
            Some(redacted) => {
                // No names in the message: reading them would cost three more
                // string copies out of the host for a debug line.
                log::debug("redacted a credential in an event's message");
                Verdict::Redact(redacted)
            }
            None => Verdict::Keep,
        }
    }
}

aetherius_sdk::export_filter!(SecretGuard);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, ObjectRef, parse_config};

    fn event(kind: &str, message: &str) -> Event {
        Event::from_record(EventRecord {
            involved: ObjectRef {
                kind: kind.into(),
                ..ObjectRef::default()
            },
            message: message.into(),
            ..EventRecord::default()
        })
    }

    #[test]
    fn drops_events_about_secrets() {
        let mut guard = SecretGuard;
        assert_eq!(
            guard.filter(&event("Secret", "Rotated secret payments/db to version 14")),
            Verdict::Drop("event about a Secret".into())
        );
    }

    #[test]
    fn redacts_or_keeps_other_events() {
        let mut guard = SecretGuard;
        assert_eq!(
            guard.filter(&event("Pod", "exec: \"run --password=hunter2\": not found")),
            Verdict::Redact("exec: \"run --password=[REDACTED]\": not found".into())
        );
        assert_eq!(
            guard.filter(&event("Pod", "Started container api")),
            Verdict::Keep
        );
        // A Secret-like name on another kind is not about a Secret.
        assert_eq!(guard.filter(&event("SecretStore", "synced")), Verdict::Keep);
    }

    #[test]
    fn config_is_empty() {
        assert!(parse_config::<Config>("null").is_ok());
        assert!(parse_config::<Config>("{}").is_ok());
        let err = parse_config::<Config>(r#"{"redact": false}"#).unwrap_err();
        assert!(err.contains("unknown field `redact`"), "{err}");
    }
}
