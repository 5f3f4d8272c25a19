//! The shared test-env helper for Aetherius's integration tests: paths of the
//! test guests, the repository layout, and scratch configs.
//!
//! Tests that need a server start it through this crate and fail loudly when
//! it cannot be started; none passes by skipping.

use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}

/// The compiled-plugin cache shared by the tests, so that each guest is
/// compiled once per machine rather than once per test.
pub fn compile_cache() -> PathBuf {
    repo_root().join("target").join("test-plugin-cache")
}

/// Every file under `dir`, at any depth; none if it does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.map(Result::unwrap) {
        if entry.file_type().unwrap().is_dir() {
            files.extend(files_under(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// A scratch directory holding a config file, removed on drop.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `contents` to `name` in the scratch dir and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

pub mod brokers;
pub mod configmap_dir;
pub mod counting;
pub mod publishing;
pub mod running;
pub mod servers;
