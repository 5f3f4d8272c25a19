//! Default plugin `builtin:namespace-filter`: keeps events whose namespace passes
//! an allow list and a deny list of wildcard patterns (`*`, `?`).
//!
//! Deny wins over allow; an empty `allow` (the default) allows every namespace.
//!
//! ```yaml
//! - plugin: builtin:namespace-filter
//!   config: { allow: ["team-*"], deny: ["team-*-dev"] }
//! ```

use aetherius_sdk::glob::AllowDeny;
use aetherius_sdk::{Event, Filter, Verdict};

/// Keeps events whose `namespace` passes the configured lists.
pub struct NamespaceFilter {
    lists: AllowDeny,
}

impl Filter for NamespaceFilter {
    /// `{allow: [globs], deny: [globs]}`, both empty by default.
    type Config = AllowDeny;

    fn new(lists: AllowDeny) -> Result<Self, String> {
        Ok(NamespaceFilter { lists })
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        if self.lists.keeps_everything() {
            // Nothing to check: don't copy the namespace out of the host.
            return Verdict::Keep;
        }
        self.lists.verdict("namespace", event.namespace())
    }
}

aetherius_sdk::export_filter!(NamespaceFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use aetherius_sdk::{EventRecord, parse_config};

    fn filter_for(config: &str) -> NamespaceFilter {
        NamespaceFilter::new(parse_config(config).unwrap()).unwrap()
    }

    fn in_namespace(namespace: &str) -> Event {
        Event::from_record(EventRecord {
            namespace: namespace.into(),
            ..EventRecord::default()
        })
    }

    #[test]
    fn default_keeps_everything() {
        let mut filter = filter_for("null");
        assert_eq!(filter.filter(&in_namespace("kube-system")), Verdict::Keep);
        // Events about cluster-scoped objects (Nodes) live in `default` or
        // have no namespace at all.
        assert_eq!(filter.filter(&in_namespace("")), Verdict::Keep);
    }

    #[test]
    fn globs_with_deny_winning() {
        let mut filter = filter_for(r#"{"allow": ["team-*", "payments"], "deny": ["team-*-dev"]}"#);
        assert_eq!(filter.filter(&in_namespace("team-b-prod")), Verdict::Keep);
        assert_eq!(filter.filter(&in_namespace("payments")), Verdict::Keep);
        assert_eq!(
            filter.filter(&in_namespace("team-a-dev")),
            Verdict::Drop("namespace `team-a-dev` matches deny pattern `team-*-dev`".into())
        );
        assert_eq!(
            filter.filter(&in_namespace("kube-system")),
            Verdict::Drop("namespace `kube-system` is not in the allow list".into())
        );
    }

    #[test]
    fn deny_only_drops_system_namespaces() {
        let mut filter = filter_for(r#"{"deny": ["kube-*"]}"#);
        assert!(matches!(
            filter.filter(&in_namespace("kube-system")),
            Verdict::Drop(_)
        ));
        assert!(matches!(
            filter.filter(&in_namespace("kube-node-lease")),
            Verdict::Drop(_)
        ));
        assert_eq!(filter.filter(&in_namespace("default")), Verdict::Keep);
    }
}
