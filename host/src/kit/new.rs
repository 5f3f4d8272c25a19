//! `aetherius plugin new`: a plugin crate that builds, tests and runs as it
//! is, for the author to change (templates in `host/templates/plugin/`).

use std::path::{Path, PathBuf};

use crate::plugin::StageKind;

/// Where the SDK's sources were when this binary was built (a checkout's
/// `plugins/sdk`). The SDK is not on crates.io, so a new plugin depends on it
/// by path.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk");

const CARGO_TOML: &str = include_str!("../../templates/plugin/Cargo.toml.tmpl");
const README: &str = include_str!("../../templates/plugin/README.md.tmpl");
const GITIGNORE: &str = include_str!("../../templates/plugin/gitignore.tmpl");
const EVENTS: &str = include_str!("../../templates/plugin/events.jsonl");

/// The per-kind files: `src/lib.rs`, `config.yaml`, `expected.jsonl`.
fn kind_files(kind: StageKind) -> [&'static str; 3] {
    match kind {
        StageKind::Filter => [
            include_str!("../../templates/plugin/filter.rs"),
            include_str!("../../templates/plugin/filter.config.yaml"),
            include_str!("../../templates/plugin/filter.expected.jsonl"),
        ],
        StageKind::SeverityMapper => [
            include_str!("../../templates/plugin/severity-mapper.rs"),
            include_str!("../../templates/plugin/severity-mapper.config.yaml"),
            include_str!("../../templates/plugin/severity-mapper.expected.jsonl"),
        ],
        StageKind::Enricher => [
            include_str!("../../templates/plugin/enricher.rs"),
            include_str!("../../templates/plugin/enricher.config.yaml"),
            include_str!("../../templates/plugin/enricher.expected.jsonl"),
        ],
    }
}

/// What `aetherius plugin new` was asked for.
#[derive(Debug, Clone)]
pub struct NewOptions {
    /// The crate's name: lowercase letters, digits and `-`.
    pub name: String,
    pub kind: StageKind,
    /// Where to create it (default `./NAME`).
    pub dir: Option<PathBuf>,
    /// The SDK crate (`plugins/sdk` of an Aetherius checkout). Default:
    /// `$AETHERIUS_SDK`, else the checkout this binary was built from.
    pub sdk: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error(
        "`{0}` is not a plugin name: use lowercase letters, digits and `-`, starting with a letter (e.g. `team-filter`)"
    )]
    Name(String),
    #[error("{} already exists and is not empty; pick another NAME or --dir", .0.display())]
    Exists(PathBuf),
    #[error(
        "cannot find the Aetherius SDK (looked at {looked}): pass --sdk PATH to the `plugins/sdk` folder of an Aetherius checkout, or set AETHERIUS_SDK"
    )]
    NoSdk { looked: String },
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Creates the crate and returns its folder.
pub fn scaffold(options: &NewOptions) -> Result<PathBuf, NewError> {
    let name = &options.name;
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        return Err(NewError::Name(name.clone()));
    }
    let dir = options.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(NewError::Exists(dir));
    }
    let sdk = find_sdk(options.sdk.as_deref())?;

    let crate_name = name.replace('-', "_");
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{Type}}", &type_name)
            .replace("{{kind}}", &options.kind.to_string())
            // TOML basic string: the path's backslashes (Windows) escaped.
            .replace(
                "{{sdk_path}}",
                &sdk.display().to_string().replace('\\', "/"),
            )
    };
    let [lib, config, expected] = kind_files(options.kind);
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("README.md", fill(README)),
        (".gitignore", fill(GITIGNORE)),
        ("src/lib.rs", fill(lib)),
        ("config.yaml", fill(config)),
        ("events.jsonl", EVENTS.to_owned()),
        ("expected.jsonl", expected.to_owned()),
    ];
    for (relative, content) in files {
        let path = dir.join(relative);
        let write = |path: &Path| {
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
            std::fs::write(path, content)
        };
        write(&path).map_err(|error| NewError::Write { path, error })?;
    }
    Ok(dir)
}

/// The SDK folder, made absolute so that the new crate can move.
fn find_sdk(given: Option<&Path>) -> Result<PathBuf, NewError> {
    let env = std::env::var_os("AETHERIUS_SDK").map(PathBuf::from);
    let candidates: Vec<PathBuf> = match given {
        Some(path) => vec![path.to_owned()],
        None => env.into_iter().chain([PathBuf::from(BUILT_SDK)]).collect(),
    };
    candidates
        .iter()
        .find(|path| path.join("Cargo.toml").is_file() && path.join("src/lib.rs").is_file())
        .and_then(|path| std::fs::canonicalize(path).ok())
        .ok_or_else(|| NewError::NoSdk {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(name: &str, dir: &Path) -> NewOptions {
        NewOptions {
            name: name.into(),
            kind: StageKind::Filter,
            dir: Some(dir.join(name)),
            sdk: None,
        }
    }

    #[test]
    fn names_must_be_crate_names() {
        let dir = std::env::temp_dir();
        for bad in ["Team", "9lives", "team_filter", "team-", "", "a b"] {
            assert!(
                matches!(scaffold(&options(bad, &dir)), Err(NewError::Name(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn writes_a_crate_with_every_placeholder_filled() {
        let dir = std::env::temp_dir().join(format!("aetherius-new-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for kind in [
            StageKind::Filter,
            StageKind::SeverityMapper,
            StageKind::Enricher,
        ] {
            let created = scaffold(&NewOptions {
                kind,
                ..options(&format!("noisy-{kind}"), &dir)
            })
            .unwrap();
            let lib = std::fs::read_to_string(created.join("src/lib.rs")).unwrap();
            let cargo = std::fs::read_to_string(created.join("Cargo.toml")).unwrap();
            let readme = std::fs::read_to_string(created.join("README.md")).unwrap();
            for text in [&lib, &cargo, &readme] {
                assert!(!text.contains("{{"), "unfilled placeholder in {text}");
            }
            assert!(lib.contains(&format!("pub struct Noisy{}", type_suffix(kind))));
            assert!(cargo.contains(&format!("name = \"noisy-{kind}\"")));
            assert!(readme.contains(&format!(
                "noisy_{}.wasm",
                kind.to_string().replace('-', "_")
            )));
        }
        // A second time into the same, now non-empty, folder is refused.
        let again = scaffold(&options("noisy-filter", &dir));
        assert!(matches!(again, Err(NewError::Exists(_))), "{again:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn type_suffix(kind: StageKind) -> &'static str {
        match kind {
            StageKind::Filter => "Filter",
            StageKind::SeverityMapper => "SeverityMapper",
            StageKind::Enricher => "Enricher",
        }
    }

    #[test]
    fn a_missing_sdk_says_where_it_looked() {
        let error = find_sdk(Some(Path::new("/nonexistent/sdk"))).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/sdk"), "{error}");
        assert!(error.to_string().contains("--sdk"), "{error}");
    }
}
