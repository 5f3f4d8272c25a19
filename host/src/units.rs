//! Human-friendly units in YAML: durations (`"5m"`) and byte sizes (`"32Mi"`),
//! parsed once when the config is read; every later layer uses the values.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration as every config writes it: `500ms`, `90s`, `5m`, `1h30m`
/// (the grammar of `aetherius-duration`, shared with plugins' configs; a
/// bare number is refused: seconds or milliseconds?).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Parses `500ms`, `90s`, `5m`, `1h30m`, `2h 15m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    aetherius_duration::parse(text).map_err(|error| error.to_string())
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, per) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= per && ms.is_multiple_of(per) {
                return write!(f, "{}{unit}", ms / per);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        aetherius_duration::deserialize(deserializer).map(HumanDuration)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A size in bytes written as a number with an optional binary or decimal
/// suffix, as Kubernetes resource quantities: `65536`, `64Ki`, `32Mi`, `1Gi`,
/// `10M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mebibytes(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }
}

pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size; expected e.g. `65536`, `64Ki`, `32Mi`"))?;
    let multiplier: u64 = match unit.trim() {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; expected Ki, Mi, Gi, k, M or G"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, per) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if self.0 >= per && self.0.is_multiple_of(per) {
                return write!(f, "{}{unit}", self.0 / per);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as `65536`, `64Ki` or `32Mi`")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(ByteSize(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                parse_byte_size(text).map(ByteSize).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A value parsed from a YAML string when the config is read (a template,
/// say). What does not parse is kept as a problem and reported with the
/// config's other problems, so that a user sees all of them at once; a
/// config with a problem never starts, so its users see only parsed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<T> {
    text: String,
    parsed: Result<T, String>,
}

impl<T> Checked<T> {
    /// The parsed value; `None` only in a config that failed validation.
    pub fn value(&self) -> Option<&T> {
        self.parsed.as_ref().ok()
    }

    /// Why the text did not parse.
    pub fn problem(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }

    /// As written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl<T: std::str::FromStr<Err = String>> From<&str> for Checked<T> {
    fn from(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            parsed: text.parse(),
        }
    }
}

/// Compares what was written.
impl<T> PartialEq<&str> for Checked<T> {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl<T> fmt::Display for Checked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de, T: std::str::FromStr<Err = String>> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::from(text.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2 d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("42").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5m").is_err());
    }

    #[test]
    fn durations_display_in_largest_whole_unit() {
        assert_eq!(HumanDuration::from_secs(300).to_string(), "5m");
        assert_eq!(
            HumanDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
    }

    #[test]
    fn sizes_parse_like_kubernetes_quantities() {
        assert_eq!(parse_byte_size("65536"), Ok(65536));
        assert_eq!(parse_byte_size("64Ki"), Ok(65536));
        assert_eq!(parse_byte_size("32Mi"), Ok(32 << 20));
        assert_eq!(parse_byte_size("1G"), Ok(1_000_000_000));
        assert!(parse_byte_size("12XB").is_err());
        assert_eq!(ByteSize::mebibytes(32).to_string(), "32Mi");
    }
}
