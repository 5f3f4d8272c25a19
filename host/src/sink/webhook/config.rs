//! `sinks.NAME.webhook` — an HTTP(S) endpoint to POST events to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use crate::output::{Escape, Template};
use crate::sink::TlsFiles;
use crate::units::{Checked, HumanDuration};

/// An HTTP(S) endpoint that takes events by POST: an orchestrator's API,
/// an Alertmanager-style receiver, a Slack-compatible incoming webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// `http://` or `https://` URL; a template, its fields percent-encoded:
    /// `https://orchestrator/api/v1/clusters/{cluster}/events`.
    pub url: Checked<UrlTemplate>,
    /// Request headers; each value a template (fields as they are).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Events per request (default 1: one POST per event). Above 1,
    /// consecutive events with the same URL and headers share a request,
    /// as `encoding` says.
    #[serde(default = "one")]
    pub max_events: usize,
    /// A request's body when it holds several events: `json-lines` (one
    /// JSON document per line, the default) or `json-array`.
    #[serde(default)]
    pub encoding: Encoding,
    /// The body of one event, as YAML whose strings are templates, sent as
    /// JSON instead of the event itself: `{text: "{severity}: {message}"}`
    /// for a Slack-compatible webhook.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// How long one request may take, answer included (default 10s);
    /// past it, the request is retried.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    #[serde(default)]
    pub auth: WebhookAuth,
    /// Certificates for `https://` (default: the system's roots).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

/// A webhook's credentials, read from files (mounted Secrets), never from
/// the config itself. Read again when the file changes, so a rotated token
/// is used from its next request on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookAuth {
    /// `Authorization: Bearer <the file's content, trimmed>`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// With `password_file`: `Authorization: Basic ...`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// A request body holding several events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// `application/x-ndjson`: one event per line.
    #[default]
    JsonLines,
    /// `application/json`: `[event, event, ...]`.
    JsonArray,
}

/// A URL template: its fields percent-encoded ([`Escape::Url`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate(pub Template);

impl FromStr for UrlTemplate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let scheme = text.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("http" | "https")) {
            return Err(format!("`{text}`: expected an `http://` or `https://` URL"));
        }
        Template::parse_as(text, Escape::Url).map(Self)
    }
}

impl WebhookSinkConfig {
    /// What is wrong with it, `at` being its YAML path.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(error) = self.url.problem() {
            problems.push(format!("at `{at}.url`: {error}"));
        }
        for (name, value) in &self.headers {
            if let Err(error) = header(name, value) {
                problems.push(format!("at `{at}.headers.{name}`: {error}"));
            }
        }
        if let Some(body) = &self.body
            && let Err(error) = super::body::BodyTemplate::compile(body)
        {
            problems.push(format!("at `{at}.body`: {error}"));
        }
        if self.max_events == 0 {
            problems.push(format!("at `{at}.max_events`: must be at least 1"));
        }
        if self.timeout.0 < std::time::Duration::from_millis(1) {
            problems.push(format!("at `{at}.timeout`: must be at least 1ms"));
        }
        let auth = &self.auth;
        if auth.bearer_token_file.is_some() && auth.username.is_some() {
            problems.push(format!(
                "at `{at}.auth`: give `bearer_token_file` or `username` with `password_file`, not both"
            ));
        }
        let has_authorization = self
            .headers
            .keys()
            .any(|name| name.eq_ignore_ascii_case("authorization"));
        if has_authorization && (auth.bearer_token_file.is_some() || auth.username.is_some()) {
            problems.push(format!(
                "at `{at}.headers.Authorization`: `auth` sets it; give one or the other"
            ));
        }
        if auth.username.is_some() != auth.password_file.is_some() {
            problems.push(format!(
                "at `{at}.auth`: `username` and `password_file` go together"
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                problems.push(format!(
                    "at `{at}.tls`: `cert_file` and `key_file` go together"
                ));
            }
            if self.url.text().starts_with("http://") {
                problems.push(format!(
                    "at `{at}.tls`: the URL is `http://`; use `https://` for TLS"
                ));
            }
        }
        problems
    }
}

/// A header's name, checked, and its value's template.
pub(super) fn header(
    name: &str,
    value: &str,
) -> Result<(hyper::header::HeaderName, Template), String> {
    let name = hyper::header::HeaderName::from_str(name)
        .map_err(|_| format!("`{name}` is not a header name"))?;
    if matches!(name, hyper::header::CONTENT_LENGTH | hyper::header::HOST) {
        return Err(format!("`{name}` is set by Aetherius"));
    }
    let template = Template::parse_as(value, Escape::Text)?;
    if let Some(literal) = template.literal()
        && hyper::header::HeaderValue::from_str(literal).is_err()
    {
        return Err(format!("`{value}` is not a header value"));
    }
    Ok((name, template))
}

fn one() -> usize {
    1
}

fn default_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
