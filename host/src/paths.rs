//! Where files are: paths from a config file resolved against its directory,
//! the directory Aetherius keeps its state in by default, and how a state
//! file is replaced so that a crash leaves the old one or the new one.

use std::io::Write;
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

/// Replaces `path` with `bytes` atomically and durably: written to a fresh
/// temporary file beside it (tempfile: a unique name, removed if anything
/// fails), synced, renamed over `path` (tempfile's `persist`), and the
/// directory synced so that the rename itself survives a crash. Blocking.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/cursor");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let entries = std::fs::read_dir(dir.path().join("state")).unwrap().count();
        assert_eq!(entries, 1, "no temporary file left");
    }
}
