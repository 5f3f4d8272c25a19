//! Turning the stage's `config` (JSON text from the YAML) into a plugin's
//! typed config.

use serde::de::DeserializeOwned;

/// Parses a stage's config text into `C`.
///
/// `null` (the host's text when the YAML gives no `config`) and blank text
/// give `C::default()`. Any other text must be JSON that deserializes into
/// `C`; the error names the offending field path as serde reports it, e.g.
/// ``invalid config at `allow[1]`: invalid type: integer `3`, expected a
/// string``. The SDK calls this before `new`; plugin tests can call it to
/// check their config handling.
///
/// ```
/// #[derive(serde::Deserialize, Default, Debug, PartialEq)]
/// #[serde(default, deny_unknown_fields)]
/// struct Config { allow: Vec<String> }
///
/// let config: Config = aetherius_sdk::parse_config("null").unwrap();
/// assert_eq!(config, Config::default());
///
/// let err = aetherius_sdk::parse_config::<Config>(r#"{"alow": []}"#).unwrap_err();
/// assert!(err.contains("unknown field `alow`"), "{err}");
/// ```
pub fn parse_config<C: DeserializeOwned + Default>(text: &str) -> Result<C, String> {
    if text.trim().is_empty() {
        return Ok(C::default());
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed: Option<C> = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." || path == "?" {
            format!("invalid config: {inner}")
        } else {
            format!("invalid config at `{path}`: {inner}")
        }
    })?;
    deserializer
        .end()
        .map_err(|err| format!("invalid config: {err}"))?;
    Ok(parsed.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Config {
        allow: Vec<String>,
        limit: u32,
    }

    #[test]
    fn null_and_blank_give_the_default() {
        assert_eq!(parse_config::<Config>("null"), Ok(Config::default()));
        assert_eq!(parse_config::<Config>("  "), Ok(Config::default()));
        assert_eq!(parse_config::<Config>("{}"), Ok(Config::default()));
    }

    #[test]
    fn parses_fields() {
        let config: Config = parse_config(r#"{"allow": ["a"], "limit": 3}"#).unwrap();
        assert_eq!(config.allow, ["a"]);
        assert_eq!(config.limit, 3);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse_config::<Config>(r#"{"alow": ["a"]}"#).unwrap_err();
        assert!(err.starts_with("invalid config"), "{err}");
        assert!(err.contains("unknown field `alow`"), "{err}");
        assert!(err.contains("`allow`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_path() {
        let err = parse_config::<Config>(r#"{"allow": ["a", 3]}"#).unwrap_err();
        assert!(err.contains("`allow[1]`"), "{err}");
        let err = parse_config::<Config>(r#"{"limit": "x"}"#).unwrap_err();
        assert!(err.contains("`limit`"), "{err}");
    }

    #[test]
    fn trailing_garbage_and_bad_json_are_rejected() {
        assert!(parse_config::<Config>("{} x").is_err());
        assert!(parse_config::<Config>("{").is_err());
        assert!(parse_config::<Config>("[1]").is_err());
    }
}
