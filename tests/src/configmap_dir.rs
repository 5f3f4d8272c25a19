//! A directory laid out the way the kubelet mounts a ConfigMap: the files
//! live in a timestamped folder, `..data` points at it, and each key is a
//! symlink through `..data`. An update writes a new folder and swaps
//! `..data` atomically (a rename), then removes the old folder — the moment
//! a watcher of the directory must notice.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A kubelet-style ConfigMap volume.
pub struct ConfigMapDir {
    dir: PathBuf,
    generation: u32,
}

impl ConfigMapDir {
    /// An empty volume at `dir` (created).
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("create the volume dir");
        Self {
            dir: dir.to_owned(),
            generation: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Replaces the volume's content with `files`, as the kubelet does.
    pub fn publish(&mut self, files: &[(&str, &[u8])]) {
        self.generation += 1;
        let folder = format!("..2026_11_27_00_00_00.{:06}", self.generation);
        let new = self.dir.join(&folder);
        std::fs::create_dir(&new).expect("create the timestamped folder");
        for (name, bytes) in files {
            std::fs::write(new.join(name), bytes).expect("write a key");
        }
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let temporary = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&temporary);
        symlink(&folder, &temporary).expect("link ..data_tmp");
        std::fs::rename(&temporary, self.dir.join("..data")).expect("swap ..data");
        for (name, _) in files {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                symlink(Path::new("..data").join(name), &link).expect("link a key");
            }
        }
        // Keys gone from the ConfigMap lose their links.
        for entry in std::fs::read_dir(&self.dir)
            .expect("list the volume")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("..") && !files.iter().any(|(key, _)| *key == name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
    }
}
