//! Kubernetes timestamps (RFC 3339, `Time` and `MicroTime`) as milliseconds.

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Parses an RFC 3339 timestamp (`2026-11-20T09:00:00Z`,
/// `2026-11-20T09:00:01.123456Z`) to milliseconds.
pub fn parse_timestamp(text: &str) -> Option<Millis> {
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(ts.as_millisecond())
}

/// Formats milliseconds as RFC 3339 in UTC, as Kubernetes does (whole seconds
/// print without a fraction).
pub fn format_millis(ms: Millis) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kubernetes_times() {
        let ms = parse_timestamp("2026-11-20T09:00:00Z").unwrap();
        assert_eq!(format_millis(ms), "2026-11-20T09:00:00Z");
        let micro = parse_timestamp("2026-11-20T09:00:01.123456Z").unwrap();
        assert_eq!(micro - ms, 1123);
        assert_eq!(format_millis(micro), "2026-11-20T09:00:01.123Z");
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
