//! Default plugin `builtin:reason-filter`: keeps events whose reason passes
//! an allow list and a deny list of wildcard patterns (`*`, `?`).
//!
//! Deny wins over allow; an empty `allow` (the default) allows every reason.
//!
//! ```yaml
//! - plugin: builtin:reason-filter
//!   config: { deny: ["Pulled", "Scheduled"] }
//! ```

use aetherius_sdk::glob::AllowDeny;
use aetherius_sdk::{Event, Filter, Verdict};

/// Keeps events whose `reason` passes the configured lists.
pub struct ReasonFilter {
    lists: AllowDeny,
}

impl Filter for ReasonFilter {
    /// `{allow: [globs], deny: [globs]}`, both empty by default.
    type Config = AllowDeny;

    fn new(lists: AllowDeny) -> Result<Self, String> {
        Ok(ReasonFilter { lists })
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        if self.lists.keeps_everything() {
            // Nothing to check: don't copy the reason out of the host.
            return Verdict::Keep;
        }
        self.lists.verdict("reason", event.reason())
    }
}

aetherius_sdk::export_filter!(ReasonFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, parse_config};

    fn filter_for(config: &str) -> ReasonFilter {
        ReasonFilter::new(parse_config(config).unwrap()).unwrap()
    }

    fn with_reason(reason: &str) -> Event {
        Event::from_record(EventRecord {
            reason: reason.into(),
            ..EventRecord::default()
        })
    }

    #[test]
    fn default_keeps_everything() {
        let mut filter = filter_for("null");
        assert_eq!(filter.filter(&with_reason("BackOff")), Verdict::Keep);
        assert_eq!(filter.filter(&with_reason("")), Verdict::Keep);
    }

    #[test]
    fn empty_allow_with_deny_drops_only_denied() {
        let mut filter = filter_for(r#"{"deny": ["Pulled", "Success*"]}"#);
        assert_eq!(filter.filter(&with_reason("BackOff")), Verdict::Keep);
        assert_eq!(
            filter.filter(&with_reason("SuccessfulCreate")),
            Verdict::Drop("reason `SuccessfulCreate` matches deny pattern `Success*`".into())
        );
        assert!(matches!(
            filter.filter(&with_reason("Pulled")),
            Verdict::Drop(_)
        ));
    }

    #[test]
    fn deny_wins_over_allow() {
        let mut filter =
            filter_for(r#"{"allow": ["Failed*", "BackOff"], "deny": ["FailedMount"]}"#);
        assert_eq!(
            filter.filter(&with_reason("FailedScheduling")),
            Verdict::Keep
        );
        assert_eq!(filter.filter(&with_reason("BackOff")), Verdict::Keep);
        assert!(matches!(
            filter.filter(&with_reason("FailedMount")),
            Verdict::Drop(_)
        ));
        assert_eq!(
            filter.filter(&with_reason("Pulled")),
            Verdict::Drop("reason `Pulled` is not in the allow list".into())
        );
    }

    #[test]
    fn rejects_unknown_fields_and_wrong_types() {
        let err = parse_config::<AllowDeny>(r#"{"denied": []}"#).unwrap_err();
        assert!(err.contains("unknown field `denied`"), "{err}");
        let err = parse_config::<AllowDeny>(r#"{"allow": "BackOff"}"#).unwrap_err();
        assert!(err.contains("`allow`"), "{err}");
    }
}
