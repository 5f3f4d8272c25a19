//! The plugin author's kit behind `aetherius plugin`: [`new`] scaffolds a
//! plugin crate, [`test`] runs a built plugin over sample events in the real
//! runtime and checks its decisions.

pub mod new;
pub mod test;

/// A stage's `config` as given on the command line: JSON or YAML text, or
/// `@FILE` to read it from a file. Empty text is `null` (no config).
pub fn parse_stage_config(text: &str) -> Result<serde_json::Value, String> {
    let (text, origin) = match text.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?,
            path.to_owned(),
        ),
        None => (text.to_owned(), "--config".to_owned()),
    };
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    // YAML is a superset of JSON, so this takes either.
    serde_yaml_ng::from_str(&text).map_err(|e| format!("{origin}: not JSON or YAML: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_is_json_yaml_or_a_file() {
        assert_eq!(parse_stage_config("").unwrap(), json!(null));
        assert_eq!(
            parse_stage_config(r#"{"deny": ["Pulled"]}"#).unwrap(),
            json!({"deny": ["Pulled"]})
        );
        assert_eq!(
            parse_stage_config("deny: [Pulled]\nlimit: 3").unwrap(),
            json!({"deny": ["Pulled"], "limit": 3})
        );
        let path = std::env::temp_dir().join(format!("stage-config-{}.yaml", std::process::id()));
        std::fs::write(&path, "allow: [Warning]\n").unwrap();
        let parsed = parse_stage_config(&format!("@{}", path.display())).unwrap();
        assert_eq!(parsed, json!({"allow": ["Warning"]}));
        std::fs::remove_file(&path).unwrap();
        let error = parse_stage_config("@/nonexistent.yaml").unwrap_err();
        assert!(
            error.starts_with("cannot read /nonexistent.yaml"),
            "{error}"
        );
        assert!(parse_stage_config("{deny: [").is_err());
    }
}
