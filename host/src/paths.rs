//! Where files are: paths from a config file resolved against its directory,
//! and the directory Aetherius keeps its state in by default.

use std::path::{Path, PathBuf};

/// Resolves a path written in the config file at `base_dir`: relative paths
/// against that directory, `~/` against the home directory.
pub fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

/// Where Aetherius keeps state by default: `$XDG_STATE_HOME/aetherius`, else
/// `~/.local/state/aetherius`, else `/var/lib/aetherius`.
pub fn state_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|dir| !dir.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        });
    match state {
        Some(dir) => dir.join("aetherius"),
        None => PathBuf::from("/var/lib/aetherius"),
    }
}
