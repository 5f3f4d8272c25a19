//! `sinks.NAME.nats` — a NATS server to publish to.

use std::path::PathBuf;

use serde::Deserialize;

use crate::output::Template;
use crate::units::{Checked, HumanDuration};

/// A NATS server (or cluster) to publish to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Server URL(s), comma-separated: `nats://host:4222`, `tls://host:4222`.
    pub url: String,
    /// Subject template (see `output::Template`): default
    /// `event.k8s.{cluster}.{severity}`.
    #[serde(default = "default_subject")]
    pub subject: Checked<Template>,
    /// Publish through JetStream and wait for the stream's acknowledgement
    /// (default). The occurrence id is the `Nats-Msg-Id`, so the stream drops
    /// a message it already has. `false`: core NATS, fire and forget.
    #[serde(default = "yes")]
    pub jetstream: bool,
    /// How long to wait for a JetStream acknowledgement (default 5s).
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: HumanDuration,
    /// Client name shown by the server (default `aetherius`).
    #[serde(default = "default_client_name")]
    pub name: String,
    #[serde(default)]
    pub auth: NatsAuth,
    /// TLS: given, the connection must use TLS.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// NATS credentials: at most one way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsAuth {
    /// A token, or a file holding it (`token_file`, e.g. a mounted Secret).
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub user: Option<String>,
    /// With `user`: the password, or a file holding it.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A `.creds` file (JWT + NKey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// Certificates for TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA certificate(s) (PEM) to verify the server with; default: the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl NatsSinkConfig {
    /// What is wrong with it, `at` being its YAML path.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(error) = self.subject.problem() {
            problems.push(format!("at `{at}.subject`: {error}"));
        }
        let auth = &self.auth;
        let ways = [
            auth.token.is_some() || auth.token_file.is_some(),
            auth.user.is_some(),
            auth.credentials_file.is_some(),
        ];
        if ways.iter().filter(|w| **w).count() > 1
            || (auth.token.is_some() && auth.token_file.is_some())
            || (auth.password.is_some() && auth.password_file.is_some())
        {
            problems.push(format!(
                "at `{at}.auth`: give one of `token`, `token_file`, `user` (with `password` or `password_file`), `credentials_file`"
            ));
        }
        if (auth.password.is_some() || auth.password_file.is_some()) && auth.user.is_none() {
            problems.push(format!("at `{at}.auth`: a password needs `user`"));
        }
        if let Some(tls) = &self.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            problems.push(format!(
                "at `{at}.tls`: `cert_file` and `key_file` go together"
            ));
        }
        problems
    }
}

fn default_subject() -> Checked<Template> {
    Checked::from("event.k8s.{cluster}.{severity}")
}

fn yes() -> bool {
    true
}

fn default_ack_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn default_client_name() -> String {
    "aetherius".into()
}
