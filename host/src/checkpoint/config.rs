//! `checkpoint:` — where checkpoints are kept and how often they are written.

use std::path::PathBuf;

use serde::Deserialize;

use crate::units::HumanDuration;

/// The checkpoint file and how often checkpoints are written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// The file holding every cluster's checkpoint (except those kept in a
    /// ConfigMap). Relative paths are resolved against the config file's
    /// directory. Default: `$XDG_STATE_HOME/aetherius/checkpoints.json` or
    /// `~/.local/state/aetherius/checkpoints.json`.
    pub file: PathBuf,
    /// At most one write per store per interval; a clean shutdown always
    /// writes. A crash replays at most this much, and the occurrence ids let
    /// the bus drop what it already has.
    pub interval: HumanDuration,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            file: crate::paths::state_dir().join("checkpoints.json"),
            interval: HumanDuration::from_secs(1),
        }
    }
}

impl CheckpointConfig {
    /// What is wrong with this section.
    pub fn problems(&self) -> Vec<String> {
        if self.interval.0 < std::time::Duration::from_millis(10) {
            vec![format!(
                "at `checkpoint.interval`: {} is too short; expected at least 10ms",
                self.interval
            )]
        } else {
            Vec::new()
        }
    }
}

/// A ConfigMap by namespace and name (a cluster's `checkpoint_configmap`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapRef {
    pub namespace: String,
    pub name: String,
}
