//! Tries to read the environment, the filesystem and the network, and to
//! write to stdout, and reports each outcome as a label, so the host's tests
//! can check that a plugin is granted none of them.

use std::io::Write;

use aetherius_sdk::{Enricher, Enrichment, Event};
use serde::de::IgnoredAny;

/// Reports what the sandbox allows.
pub struct SandboxProbe;

fn outcome<T, E>(result: Result<T, E>) -> &'static str {
    if result.is_ok() { "allowed" } else { "denied" }
}

impl Enricher for SandboxProbe {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(SandboxProbe)
    }

    fn enrich(&mut self, _event: &Event) -> Enrichment {
        let env = if std::env::vars_os().next().is_none() {
            "empty"
        } else {
            "visible"
        };
        let root = outcome(std::fs::read_dir("/"));
        let cwd = outcome(std::fs::read_dir("."));
        let net = outcome(std::net::TcpStream::connect("127.0.0.1:9"));
        let stdout = outcome(std::io::stdout().write_all(b"probe\n"));
        Enrichment::new()
            .with_label("env", env)
            .with_label("fs-root", root)
            .with_label("fs-cwd", cwd)
            .with_label("net", net)
            .with_label("stdout", stdout)
    }
}

aetherius_sdk::export_enricher!(SandboxProbe);
