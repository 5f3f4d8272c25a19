//! The mapper's config, its defaults, and the message rules.

use std::collections::HashMap;

use aetherius_sdk::Severity;
use aetherius_sdk::glob::Glob;
use serde::{Deserialize, Deserializer};

/// The stage's config. Every field is optional.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Reason → severity, merged over the default table (the design
    /// document's) unless `replace_table` is set.
    pub table: HashMap<String, Severity>,
    /// Use `table` alone, without the default entries.
    pub replace_table: bool,
    /// Severity of a non-`Normal` event that no rule and no table entry
    /// matches. `low`, as in the design document.
    pub warning_default: Severity,
    /// Severity of every `Normal` event. `info`, as in the design document.
    pub normal_default: Severity,
    /// Message rules, checked in order before the table; the first match
    /// wins. The default rules run after these unless `replace_rules` is set.
    pub rules: Vec<Rule>,
    /// Use `rules` alone, without the default rules.
    pub replace_rules: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            table: HashMap::new(),
            replace_table: false,
            warning_default: Severity::Low,
            normal_default: Severity::Info,
            rules: Vec::new(),
            replace_rules: false,
        }
    }
}

/// "Events with this reason whose message contains one of these texts
/// have this severity."
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The reason, a wildcard pattern (`*`, `?`).
    pub reason: Glob,
    /// Texts of which the message must contain one (case-sensitive); a single
    /// string or a list. Empty or absent: any message.
    #[serde(default, deserialize_with = "one_or_many")]
    pub message_contains: Vec<String>,
    /// The severity of a matching event.
    pub severity: Severity,
}

impl Rule {
    fn new(reason: &str, message_contains: &[&str], severity: Severity) -> Self {
        Rule {
            reason: Glob::new(reason),
            message_contains: message_contains
                .iter()
                .map(|&text| text.to_owned())
                .collect(),
            severity,
        }
    }

    /// Whether the rule applies to an event with this `reason`. `message`
    /// gives the event's message; it is called only when the reason matches
    /// and the rule looks at messages, so a caller can read the message from
    /// the host lazily.
    pub fn matches<'m>(&self, reason: &str, message: impl FnOnce() -> &'m str) -> bool {
        if !self.reason.matches(reason) {
            return false;
        }
        if self.message_contains.is_empty() {
            return true;
        }
        let message = message();
        self.message_contains
            .iter()
            .any(|text| message.contains(text.as_str()))
    }
}

/// The design document's table.
pub(crate) fn default_table() -> HashMap<String, Severity> {
    use Severity::{Critical, High, Medium};
    [
        ("OOMKilled", Critical),
        ("CrashLoopBackOff", Critical),
        ("OOMKilling", Critical),
        ("SystemOOM", Critical),
        ("ImagePullBackOff", High),
        ("ErrImagePull", High),
        ("FailedScheduling", High),
        ("Unhealthy", Medium),
        ("BackOff", Medium),
        ("FailedMount", Medium),
    ]
    .into_iter()
    .map(|(reason, severity)| (reason.to_owned(), severity))
    .collect()
}

/// kubelet rarely emits the reasons `CrashLoopBackOff`, `ErrImagePull` or
/// `ImagePullBackOff`; it writes them into the messages of `BackOff` and
/// `Failed` events. These rules give those events the table's severities.
pub(crate) fn default_rules() -> Vec<Rule> {
    const IMAGE_PULL: &[&str] = &["ErrImagePull", "ImagePullBackOff", "Back-off pulling image"];
    vec![
        Rule::new(
            "BackOff",
            &["restarting failed container"],
            Severity::Critical,
        ),
        Rule::new("Failed", IMAGE_PULL, Severity::High),
        Rule::new("BackOff", IMAGE_PULL, Severity::High),
    ]
}

/// `"text"` or `["a", "b"]`.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a string or a list of strings")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(text) => vec![text],
        OneOrMany::Many(texts) => texts,
    })
}
