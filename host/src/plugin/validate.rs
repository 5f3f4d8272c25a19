//! Checks on everything a guest returns, before the host uses it.

/// Most labels or annotations one enrichment may add.
pub const MAX_ENTRIES: usize = 32;
/// Longest label value.
pub const MAX_LABEL_VALUE: usize = 1024;
/// Longest annotation value.
pub const MAX_TEXT: usize = 32 * 1024;
/// Longest replacement message; longer ones are cut. Twice the longest
/// message a plugin is given by default (`events.max_message`), so that
/// redacting never needs the cut.
pub const MAX_REDACTED: usize = 64 * 1024;
/// Drop reasons longer than this are cut (they are only shown in logs).
pub const MAX_DROP_REASON: usize = 512;

/// Checks a label or annotation key against the Kubernetes syntax for
/// qualified names: an optional DNS-subdomain prefix and `/`, then a name of
/// 1–63 characters `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid {
            return Err(format!("key {key:?}: prefix is not a DNS subdomain"));
        }
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "key {:?} is not a valid label key (name of 1-63 characters [A-Za-z0-9-_.], alphanumeric at both ends)",
            truncate(key, 80)
        ))
    }
}

/// Checks a value: bounded length, no control characters (tab and newline
/// are allowed in annotations and messages).
pub fn check_value(what: &str, value: &str, max: usize, multiline: bool) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{what} is {} bytes, more than {max}", value.len()));
    }
    let bad = value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')));
    if bad {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_label_keys() {
        for good in [
            "team",
            "app.kubernetes.io/name",
            "repeated_count",
            "a",
            "x-1.y_2",
        ] {
            assert_eq!(check_key(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "has space",
            "-leading",
            "trailing.",
            "Upper.Case/name",
            "/name",
            "prefix/",
            &"k".repeat(64),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn values_are_bounded_and_printable() {
        assert!(check_value("label", "ok", 10, false).is_ok());
        assert!(check_value("label", "line\nbreak", 100, false).is_err());
        assert!(check_value("annotation", "line\nbreak", 100, true).is_ok());
        assert!(check_value("label", &"x".repeat(11), 10, false).is_err());
        assert_eq!(truncate("héllo", 2), "h");
    }
}
