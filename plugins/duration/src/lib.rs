//! Durations in Aetherius configs — the host's YAML and plugins' configs
//! alike: `"500ms"`, `"90s"`, `"5m"`, `"1h30m"`, `"2h 15m"`, `"7d"`.
//!
//! The grammar is [humantime]'s: whole amounts, each with a unit (`ns`, `us`,
//! `ms`, `s`/`sec`/`seconds`, `m`/`min`/`minutes`, `h`/`hours`, `d`/`days`,
//! `w`/`weeks`, …), several amounts added up. A bare number is refused
//! everywhere with the same message, because `300` could mean seconds or
//! milliseconds.
//!
//! ```
//! use std::time::Duration;
//!
//! assert_eq!(aetherius_duration::parse("1h30m"), Ok(Duration::from_secs(5400)));
//! assert!(aetherius_duration::parse("300").unwrap_err().to_string().contains("\"300s\""));
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     #[serde(deserialize_with = "aetherius_duration::deserialize")]
//!     max_age: Duration,
//! }
//! let config: Config = serde_json::from_str(r#"{"max_age": "90s"}"#).unwrap();
//! assert_eq!(config.max_age, Duration::from_secs(90));
//! ```
//!
//! [humantime]: https://docs.rs/humantime

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The text was empty.
    Empty,
    /// A number with no unit (`"300"`, or `300` in YAML).
    MissingUnit(String),
    /// Anything else humantime refuses, with its reason.
    Invalid { text: String, reason: String },
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty duration; write e.g. \"5m\""),
            Self::MissingUnit(text) => write!(
                f,
                "duration `{text}` has no unit; write e.g. \"{text}s\" or \"{text}ms\""
            ),
            Self::Invalid { text, reason } => write!(
                f,
                "`{text}` is not a duration ({reason}); write e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\""
            ),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration such as `"5m"` or `"1h30m"`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::MissingUnit(trimmed.to_owned()));
    }
    humantime::parse_duration(trimmed).map_err(|error| DurationError::Invalid {
        text: trimmed.to_owned(),
        reason: match error {
            humantime::DurationError::UnknownUnit { unit, .. } => format!(
                "unknown duration unit `{unit}`; expected ms, s, m, h, d (or sec, min, hours, days, weeks)"
            ),
            other => other.to_string(),
        },
    })
}

/// Deserializes a duration string; for
/// `#[serde(deserialize_with = "aetherius_duration::deserialize")]`. A number
/// is refused as [`DurationError::MissingUnit`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"30s\", \"5m\" or \"1h30m\"")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        Err(E::custom(DurationError::MissingUnit(n.to_string())))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        Err(E::custom(DurationError::MissingUnit(n.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1m30s500ms"), Ok(Duration::from_millis(90_500)));
        assert_eq!(parse(" 5m "), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn refuses_with_a_reason() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("300"), Err(DurationError::MissingUnit("300".into())));
        assert!(parse("300").unwrap_err().to_string().contains("\"300s\""));
        assert!(
            parse("5 fortnights")
                .unwrap_err()
                .to_string()
                .contains("unknown duration unit `fortnights`")
        );
        for bad in ["5 fortnights", "m", "-5m", "soon"] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains("is not a duration"), "{bad}: {error}");
        }
        assert!(parse("99999999999999999999s").is_err());
    }

    #[test]
    fn deserializes_strings_and_refuses_numbers() {
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(deserialize_with = "deserialize")]
            max_age: Duration,
        }
        let config: Config = serde_json::from_str(r#"{"max_age": "5m"}"#).unwrap();
        assert_eq!(config.max_age, Duration::from_secs(300));
        for bad in [r#"{"max_age": "5"}"#, r#"{"max_age": 5}"#] {
            let error = serde_json::from_str::<Config>(bad).err().unwrap();
            assert!(error.to_string().contains("no unit"), "{error}");
        }
    }
}
