//! Environment references in the config file: `${VAR}`, `${VAR:-default}`
//! (the default also when VAR is set but empty) and `$$` for a literal `$`,
//! the shell's and Docker Compose's spelling. A Deployment can then pass a
//! value either as a flag (`--cluster-id=$(CLUSTER_ID)`, expanded by the
//! kubelet) or in the mounted file (`cluster_id: ${CLUSTER_ID}`).
//!
//! Expanded in the text, before YAML is parsed, so a reference works in any
//! value (a list item, a number, part of a URL). Comment lines are left as
//! written, so a commented-out example never fails the load.

/// A reference that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error(
        "line {line}: `${{{name}}}` is not set in the environment; set it, or give a default: `${{{name}:-value}}`"
    )]
    Unset { line: usize, name: String },
    #[error(
        "line {line}: `{text}` is not an environment reference; write `${{NAME}}` or `${{NAME:-default}}` (`$$` for a literal `$`)"
    )]
    Malformed { line: usize, text: String },
}

/// Expands every reference in `text`, looking names up with `lookup`.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        expand_line(line, index + 1, &lookup, &mut out)?;
    }
    Ok(out)
}

fn expand_line(
    line: &str,
    number: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), EnvError> {
    let mut rest = line;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let malformed = || EnvError::Malformed {
                line: number,
                text: format!("${{{}", inner.trim_end()),
            };
            let end = inner.find('}').ok_or_else(malformed)?;
            let (name, default) = match inner[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&inner[..end], None),
            };
            if !is_name(name) {
                return Err(EnvError::Malformed {
                    line: number,
                    text: format!("${{{}}}", &inner[..end]),
                });
            }
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    // Set but empty expands to nothing, as in a shell.
                    if lookup(name).is_none() {
                        return Err(EnvError::Unset {
                            line: number,
                            name: name.to_owned(),
                        });
                    }
                }
            }
            rest = &inner[end + 1..];
        } else {
            // A lone `$` (a regex, a price) stays as written.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(())
}

fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "CLUSTER_ID" => Some("prod-us-west-2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_expand_with_defaults() {
        let text = "cluster_id: ${CLUSTER_ID}\nurl: nats://${NATS_HOST:-localhost}:4222\nx: '${EMPTY:-fallback}' ${EMPTY}.\n";
        assert_eq!(
            expand(text, env).unwrap(),
            "cluster_id: prod-us-west-2\nurl: nats://localhost:4222\nx: 'fallback' .\n"
        );
    }

    #[test]
    fn dollars_comments_and_lone_signs_stay() {
        let text = "# ${NOT_SET} in a comment\nprice: $5 and $$HOME\n  # ${ALSO_NOT}\n";
        assert_eq!(
            expand(text, env).unwrap(),
            "# ${NOT_SET} in a comment\nprice: $5 and $HOME\n  # ${ALSO_NOT}\n"
        );
    }

    #[test]
    fn unset_and_malformed_references_name_their_line() {
        let error = expand("a: 1\nb: ${NOPE}\n", env).unwrap_err();
        assert_eq!(
            error,
            EnvError::Unset {
                line: 2,
                name: "NOPE".into()
            }
        );
        assert!(error.to_string().contains("${NOPE:-value}"), "{error}");
        assert!(matches!(
            expand("a: ${1BAD}\n", env),
            Err(EnvError::Malformed { line: 1, .. })
        ));
        assert!(matches!(
            expand("a: ${OPEN\n", env),
            Err(EnvError::Malformed { line: 1, .. })
        ));
    }
}
