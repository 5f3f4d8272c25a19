//! Where the server binaries are: installed and cached by
//! `scripts/test-servers.sh`, which records their paths in `servers.env`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The binaries a test can need, named by their key in `servers.env` (which is
/// also the environment variable that overrides it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerBinary {
    /// etcd 3.4, Debian's `etcd-server`.
    Etcd,
    /// etcdctl 3.4, Debian's `etcd-client`, to read and compact revisions.
    Etcdctl,
    /// kube-apiserver v1.20.2, built from Debian's `kubernetes` source.
    KubeApiserver,
    /// nats-server 2.9, Debian's `nats-server`.
    NatsServer,
    /// Tansu, a Kafka-protocol broker, from crates.io.
    Tansu,
    /// componentize-py, from PyPI: not a server, the tool that builds the
    /// Python example plugin.
    ComponentizePy,
    /// promtool 2.42, from Debian's `prometheus`: checks and unit-tests the
    /// alert rules and parses `/metrics`.
    Promtool,
    /// stunnel 5, Debian's `stunnel4`: TLS in front of Tansu.
    Stunnel,
    /// The Python of a venv with helm-python-sdk (Helm v4 as a library):
    /// renders and lints the chart (tests/helm/render.py).
    HelmPython,
}

impl ServerBinary {
    /// The key in `servers.env` and the overriding environment variable.
    pub fn key(self) -> &'static str {
        match self {
            Self::Etcd => "ETCD",
            Self::Etcdctl => "ETCDCTL",
            Self::KubeApiserver => "KUBE_APISERVER",
            Self::NatsServer => "NATS_SERVER",
            Self::Tansu => "TANSU",
            Self::ComponentizePy => "COMPONENTIZE_PY",
            Self::Promtool => "PROMTOOL",
            Self::Stunnel => "STUNNEL",
            Self::HelmPython => "HELM_PYTHON",
        }
    }

    /// The binary's path: the environment variable named [`key`](Self::key)
    /// if set, else the path `scripts/test-servers.sh` recorded in
    /// `servers.env`.
    ///
    /// # Panics
    ///
    /// If neither names an executable file: a test that needs a server fails
    /// rather than skips, and the message says how to install it.
    pub fn path(self) -> PathBuf {
        let key = self.key();
        let (path, source) = match std::env::var_os(key) {
            Some(path) => (PathBuf::from(path), format!("${key}")),
            None => match recorded_paths().get(key) {
                Some(path) => (
                    path.clone(),
                    format!("{key} in {}", servers_env().display()),
                ),
                None => panic!(
                    "{key} is not set and {} does not record it: run `sudo scripts/test-servers.sh` \
                     to install the test servers",
                    servers_env().display()
                ),
            },
        };
        if !is_executable(&path) {
            panic!(
                "{} (from {source}) is not an executable file: run `sudo scripts/test-servers.sh` \
                 to install the test servers",
                path.display()
            );
        }
        path
    }
}

/// The root filesystem of the Dockerfile's runtime stage that
/// `scripts/test-servers.sh` builds (debootstrap, its packages, the non-root
/// user), recorded as `IMAGE_ROOTFS`.
///
/// # Panics
///
/// If it is not there; the message says how to build it.
pub fn image_rootfs() -> PathBuf {
    let path = std::env::var_os("IMAGE_ROOTFS")
        .map(PathBuf::from)
        .or_else(|| recorded_paths().get("IMAGE_ROOTFS").cloned())
        .unwrap_or_else(|| {
            panic!(
                "IMAGE_ROOTFS is not set and {} does not record it: run `sudo scripts/test-servers.sh`",
                servers_env().display()
            )
        });
    assert!(
        is_executable(&path.join("usr/bin/curl")),
        "{} is not the image's root filesystem: run `sudo scripts/test-servers.sh`",
        path.display()
    );
    path
}

/// The script's cache directory: `$AETHERIUS_CACHE`, as in the script, or
/// `/var/cache/aetherius`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("AETHERIUS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/aetherius"))
}

/// The file in which the script records the binaries' paths.
pub fn servers_env() -> PathBuf {
    cache_dir().join("servers.env")
}

/// `servers.env` parsed once: `KEY=path` lines, `#` comments. Missing is
/// empty, so that the error names the binary that was wanted.
fn recorded_paths() -> &'static HashMap<String, PathBuf> {
    static PATHS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let text = std::fs::read_to_string(servers_env()).unwrap_or_default();
        parse_env(&text)
    })
}

fn parse_env(text: &str) -> HashMap<String, PathBuf> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), PathBuf::from(value.trim())))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_script_writes() {
        let paths = parse_env(
            "# Written by scripts/test-servers.sh\nETCD=/usr/bin/etcd\n\nTANSU=/var/cache/aetherius/tansu-0.6.0/tansu\n",
        );
        assert_eq!(paths["ETCD"], Path::new("/usr/bin/etcd"));
        assert_eq!(
            paths["TANSU"],
            Path::new("/var/cache/aetherius/tansu-0.6.0/tansu")
        );
        assert_eq!(paths.len(), 2);
    }

    #[test]
    fn every_binary_is_installed() {
        for binary in [
            ServerBinary::Etcd,
            ServerBinary::Etcdctl,
            ServerBinary::KubeApiserver,
            ServerBinary::NatsServer,
            ServerBinary::Tansu,
            ServerBinary::ComponentizePy,
            ServerBinary::Promtool,
            ServerBinary::Stunnel,
            ServerBinary::HelmPython,
        ] {
            assert!(binary.path().is_absolute());
        }
        assert!(image_rootfs().is_absolute());
    }
}
