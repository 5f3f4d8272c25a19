//! Human durations in configs: `"300ms"`, `"90s"`, `"5m"`, `"1h"`, `"1h30m"`.
//!
//! Units are `ms`, `s`, `m`, `h` and `d`. Amounts are whole numbers; a
//! duration may chain several amounts (`"1h30m"`). A bare number is
//! rejected, because `"300"` could mean seconds or milliseconds.
//!
//! ```
//! use std::time::Duration;
//! use aetherius_sdk::duration;
//!
//! assert_eq!(duration::parse("5m"), Ok(Duration::from_secs(300)));
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     #[serde(deserialize_with = "duration::deserialize")]
//!     max_age: Duration,
//! }
//! let config: Config = serde_json::from_str(r#"{"max_age": "90s"}"#).unwrap();
//! assert_eq!(config.max_age, Duration::from_secs(90));
//! ```

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer};

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The text was empty.
    Empty,
    /// A number had no unit after it (`"300"`).
    MissingUnit(String),
    /// A unit was not one of `ms`, `s`, `m`, `h`, `d`.
    UnknownUnit(String),
    /// A unit had no number before it, or the number was not whole (`"1.5h"`).
    InvalidAmount(String),
    /// The duration does not fit in 64-bit milliseconds.
    Overflow(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("empty duration; write e.g. \"5m\""),
            DurationError::MissingUnit(text) => write!(
                f,
                "duration `{text}` has no unit; add one of ms, s, m, h, d (e.g. \"{text}s\")"
            ),
            DurationError::UnknownUnit(text) => write!(
                f,
                "duration `{text}` has an unknown unit; use ms, s, m, h or d"
            ),
            DurationError::InvalidAmount(text) => write!(
                f,
                "duration `{text}` needs a whole number before each unit (e.g. \"90m\", not \"1.5h\")"
            ),
            DurationError::Overflow(text) => write!(f, "duration `{text}` is too long"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a human duration such as `"5m"` or `"1h30m"`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = trimmed;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (amount, after) = rest.split_at(digits);
        let unit_len = after.len() - after.trim_start_matches(char::is_alphabetic).len();
        let (unit, after) = after.split_at(unit_len);
        if amount.is_empty() {
            return Err(DurationError::InvalidAmount(trimmed.to_owned()));
        }
        let per_unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" if after.is_empty() => return Err(DurationError::MissingUnit(trimmed.to_owned())),
            "" => return Err(DurationError::InvalidAmount(trimmed.to_owned())),
            _ => return Err(DurationError::UnknownUnit(trimmed.to_owned())),
        };
        let overflow = || DurationError::Overflow(trimmed.to_owned());
        let amount: u64 = amount.parse().map_err(|_| overflow())?;
        total_ms = amount
            .checked_mul(per_unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(overflow)?;
        rest = after;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Deserializes a human duration string; for
/// `#[serde(deserialize_with = "aetherius_sdk::duration::deserialize")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn chains_amounts_and_trims() {
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1m30s500ms"), Ok(Duration::from_millis(90_500)));
        assert_eq!(parse(" 5m "), Ok(Duration::from_secs(300)));
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("300"), Err(DurationError::MissingUnit("300".into())));
        assert_eq!(
            parse("5min"),
            Err(DurationError::UnknownUnit("5min".into()))
        );
        assert_eq!(parse("5M"), Err(DurationError::UnknownUnit("5M".into())));
        assert_eq!(
            parse("1.5h"),
            Err(DurationError::InvalidAmount("1.5h".into()))
        );
        assert_eq!(parse("m"), Err(DurationError::InvalidAmount("m".into())));
        assert_eq!(
            parse("-5m"),
            Err(DurationError::InvalidAmount("-5m".into()))
        );
        assert_eq!(
            parse("5 m"),
            Err(DurationError::InvalidAmount("5 m".into()))
        );
        assert!(matches!(
            parse("99999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse("999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
        assert!(parse("300").unwrap_err().to_string().contains("\"300s\""));
    }

    #[test]
    fn deserializes_from_config() {
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(deserialize_with = "deserialize")]
            max_age: Duration,
        }
        let config: Config = serde_json::from_str(r#"{"max_age": "5m"}"#).unwrap();
        assert_eq!(config.max_age, Duration::from_secs(300));
        let err = serde_json::from_str::<Config>(r#"{"max_age": "5"}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("no unit"), "{err}");
    }
}
