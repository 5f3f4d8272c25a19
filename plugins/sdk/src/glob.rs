//! Shell-style wildcards (`*`, `?`) and the allow/deny lists built on them.
//!
//! `*` matches any run of characters (also none), `?` exactly one character;
//! everything else matches itself, case-sensitively. There are no character
//! classes and no escapes: Kubernetes names, namespaces and reasons never
//! contain `*` or `?`.
//!
//! Written here rather than taken from a crate (glob, globset, wildmatch):
//! it is compiled into every plugin, where each dependency's code adds to the
//! `.wasm` and its start-up; thirty lines of linear-time matching are the
//! whole need (globset would bring regex into the guest).

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Deserialize;

use crate::types::Verdict;

/// Whether `text` matches the wildcard `pattern` as a whole.
///
/// ```
/// use aetherius_sdk::glob::glob_match;
/// assert!(glob_match("team-*", "team-payments"));
/// assert!(glob_match("kube-?ublic", "kube-public"));
/// assert!(!glob_match("team-*", "my-team-payments"));
/// ```
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // Iterative matching with one backtrack point (the latest `*`): linear in
    // practice, and no recursion a hostile pattern could blow up.
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // (pattern index after the latest `*`, text index that `*` has eaten up to)
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                backtrack = Some((p, t));
                continue;
            }
            Some(b'?') => {
                p += 1;
                t += char_len(text[t]);
                continue;
            }
            Some(&literal) if literal == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((after_star, eaten)) => {
                // Let the `*` eat one more character and retry from there.
                let eaten = eaten + char_len(text[eaten]);
                backtrack = Some((after_star, eaten));
                p = after_star;
                t = eaten;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// Length of the UTF-8 sequence that starts with `lead`, so `?` and `*` step
/// over whole characters.
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// A wildcard pattern from a plugin's config (deserializes from a string).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(transparent)]
pub struct Glob(String);

impl Glob {
    /// A pattern; every string is a valid one.
    pub fn new(pattern: impl Into<String>) -> Self {
        Glob(pattern.into())
    }

    /// Whether `text` matches this pattern as a whole.
    pub fn matches(&self, text: &str) -> bool {
        glob_match(&self.0, text)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern has no wildcard, i.e. matches only itself.
    pub fn is_literal(&self) -> bool {
        !self.0.contains(['*', '?'])
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An allow list and a deny list of wildcard patterns, as most filters take
/// them: `{"allow": ["team-*"], "deny": ["team-test"]}`.
///
/// A value is kept when it matches no `deny` pattern and, if `allow` is not
/// empty, at least one `allow` pattern. Deny wins over allow. The literal
/// patterns of `allow` (most of them, in practice) are looked up in a hash
/// set rather than tried one by one, so a list of fifty reasons costs about
/// what a list of one does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Lists")]
pub struct AllowDeny {
    allow: Vec<Glob>,
    deny: Vec<Glob>,
    /// The patterns of `allow` without wildcards.
    allow_literals: HashSet<String, BuildHasherDefault<Fnv>>,
    /// The patterns of `allow` with wildcards, in order.
    allow_wildcards: Vec<Glob>,
}

/// FNV-1a, for [`AllowDeny`]'s set of literal patterns. The std hasher
/// (SipHash) guards a table against keys chosen to collide; this set's keys
/// come from the config, and a lookup inserts nothing, so an event cannot
/// fill it. What matters here is a short key's cost: a few instructions a
/// byte, against SipHash's fixed rounds, in a guest that looks up every
/// event's reason.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What [`AllowDeny`] deserializes from.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Lists {
    allow: Vec<Glob>,
    deny: Vec<Glob>,
}

impl From<Lists> for AllowDeny {
    fn from(lists: Lists) -> Self {
        AllowDeny::new(lists.allow, lists.deny)
    }
}

/// Why [`AllowDeny::check`] rejected a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection<'a> {
    /// The value matched this `deny` pattern.
    Denied(&'a Glob),
    /// `allow` is not empty and the value matched none of it.
    NotAllowed,
}

impl AllowDeny {
    /// The lists: `allow` (empty allows every value) and `deny`.
    pub fn new(allow: Vec<Glob>, deny: Vec<Glob>) -> Self {
        let (literals, wildcards): (Vec<&Glob>, Vec<&Glob>) =
            allow.iter().partition(|pattern| pattern.is_literal());
        AllowDeny {
            allow_literals: literals.into_iter().map(|p| p.0.clone()).collect(),
            allow_wildcards: wildcards.into_iter().cloned().collect(),
            allow,
            deny,
        }
    }

    /// The patterns of which a value must match one to be kept (empty:
    /// every value).
    pub fn allow(&self) -> &[Glob] {
        &self.allow
    }

    /// The patterns that drop a value whatever `allow` says.
    pub fn deny(&self) -> &[Glob] {
        &self.deny
    }

    /// Whether both lists are empty, so every value passes: a filter can
    /// then keep an event without reading the field from the host.
    pub fn keeps_everything(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `value` passes the lists, and if not, why.
    pub fn check(&self, value: &str) -> Result<(), Rejection<'_>> {
        if let Some(pattern) = self.deny.iter().find(|pattern| pattern.matches(value)) {
            return Err(Rejection::Denied(pattern));
        }
        if self.allow.is_empty()
            || self.allow_literals.contains(value)
            || self.allow_wildcards.iter().any(|p| p.matches(value))
        {
            Ok(())
        } else {
            Err(Rejection::NotAllowed)
        }
    }

    /// A filter verdict for `value`, the event's `subject` (e.g. `reason`):
    /// `Keep`, or `Drop` with a reason such as ``reason `BackOff` matches deny
    /// pattern `Back*` `` or ``namespace `dev` is not in the allow list``.
    pub fn verdict(&self, subject: &str, value: &str) -> Verdict {
        let shown = if value.is_empty() { "(empty)" } else { value };
        match self.check(value) {
            Ok(()) => Verdict::Keep,
            Err(Rejection::Denied(pattern)) => Verdict::Drop(format!(
                "{subject} `{shown}` matches deny pattern `{pattern}`"
            )),
            Err(Rejection::NotAllowed) => {
                Verdict::Drop(format!("{subject} `{shown}` is not in the allow list"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_match_only_themselves() {
        assert!(glob_match("BackOff", "BackOff"));
        assert!(!glob_match("BackOff", "backoff"));
        assert!(!glob_match("BackOff", "BackOffX"));
        assert!(!glob_match("BackOff", "Back"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("team-*", "team-"));
        assert!(glob_match("team-*", "team-a-b"));
        assert!(glob_match("*-system", "kube-system"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("**", "x"));
        // Needs backtracking: the first `b` is not the one to anchor on.
        assert!(glob_match("*b*bc", "abbbbc"));
        assert!(glob_match("a*abab", "aababab"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(glob_match("kube-?ublic", "kube-public"));
        assert!(!glob_match("?", ""));
        assert!(!glob_match("??", "a"));
        assert!(glob_match("??", "ab"));
        assert!(glob_match("?*", "a"));
    }

    #[test]
    fn wildcards_step_over_whole_utf8_characters() {
        assert!(glob_match("?", "é"));
        assert!(glob_match("n?mespace", "nämespace"));
        assert!(glob_match("*é", "caféé"));
        assert!(glob_match("日*語", "日本語"));
        assert!(!glob_match("??", "é"));
    }

    #[test]
    fn pathological_pattern_finishes() {
        let text = "a".repeat(10_000);
        assert!(!glob_match("*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn glob_deserializes_and_reports_literalness() {
        let globs: Vec<Glob> = serde_json::from_str(r#"["kube-*", "default"]"#).unwrap();
        assert!(!globs[0].is_literal());
        assert!(globs[1].is_literal());
        assert_eq!(globs[0].to_string(), "kube-*");
    }

    fn lists(allow: &[&str], deny: &[&str]) -> AllowDeny {
        AllowDeny::new(
            allow.iter().copied().map(Glob::new).collect(),
            deny.iter().copied().map(Glob::new).collect(),
        )
    }

    #[test]
    fn literals_and_wildcards_of_allow_both_count() {
        let lists = lists(&["BackOff", "Failed*", "OOMKilled", "?rr"], &[]);
        for kept in ["BackOff", "OOMKilled", "Failed", "FailedMount", "Err"] {
            assert_eq!(lists.check(kept), Ok(()), "{kept}");
        }
        for dropped in ["Backoff", "OOM", "Errr", "", "Pulled"] {
            assert_eq!(
                lists.check(dropped),
                Err(Rejection::NotAllowed),
                "{dropped}"
            );
        }
        assert_eq!(lists.allow().len(), 4);
        let parsed: AllowDeny =
            serde_json::from_str(r#"{"allow": ["BackOff", "Failed*", "OOMKilled", "?rr"]}"#)
                .unwrap();
        assert_eq!(parsed, lists);
    }

    #[test]
    fn empty_lists_allow_everything() {
        assert_eq!(AllowDeny::default().check("anything"), Ok(()));
        assert_eq!(AllowDeny::default().check(""), Ok(()));
    }

    #[test]
    fn deny_wins_over_allow() {
        let lists = lists(&["team-*"], &["team-test"]);
        assert_eq!(lists.check("team-a"), Ok(()));
        assert_eq!(
            lists.check("team-test"),
            Err(Rejection::Denied(&Glob::new("team-test")))
        );
        assert_eq!(lists.check("other"), Err(Rejection::NotAllowed));
    }

    #[test]
    fn verdicts_say_why() {
        let lists = lists(&["Back*"], &["BackOffX"]);
        assert_eq!(lists.verdict("reason", "BackOff"), Verdict::Keep);
        assert_eq!(
            lists.verdict("reason", "BackOffX"),
            Verdict::Drop("reason `BackOffX` matches deny pattern `BackOffX`".into())
        );
        assert_eq!(
            lists.verdict("reason", ""),
            Verdict::Drop("reason `(empty)` is not in the allow list".into())
        );
    }

    #[test]
    fn allow_deny_rejects_unknown_fields() {
        let err = serde_json::from_str::<AllowDeny>(r#"{"allowed": []}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `allowed`"));
    }
}
