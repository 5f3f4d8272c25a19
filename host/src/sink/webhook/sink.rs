//! The webhook sink: POSTs events over HTTP(S), one per request or
//! several in one body, and says per event what the endpoint answered.
//!
//! A 2xx takes every event of the request. 408, 429, 5xx, a redirect, a
//! timeout or a connection that fails is retried (by `delivery`, then
//! spooled): the request and every later one of the batch count as failed,
//! so that a retry keeps the order. Any other 4xx refuses the request's
//! events for good (they go to the dead-letter sinks); a refused request of
//! several events is sent again one event per request first, so that only
//! the events the endpoint refuses are dead-lettered.
//!
//! Each request carries an `Idempotency-Key`: the event's id, or for
//! several events a digest of their ids, so that a receiver can drop what
//! a retry after a lost answer, or a restart, sends again.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

use super::body::BodyTemplate;
use super::config::{Encoding, WebhookAuth, WebhookSinkConfig, header};
use crate::output::{OutputFormat, PublishedEvent, Template};
use crate::paths::resolve;
use crate::sink::delivery::{Broker, Outcome};
use crate::sink::{Batch, SinkError, TlsFiles};

/// The header that carries the id(s) of what a request holds.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What of an endpoint's answer goes into a message.
const ANSWER_SHOWN: usize = 512;

/// A configured webhook sink.
pub struct WebhookSink {
    name: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The URL as configured, for messages.
    server: String,
    format: OutputFormat,
    headers: Vec<(HeaderName, Template)>,
    /// The headers when none of them has a field: the same for every
    /// request.
    fixed_headers: Option<HeaderMap>,
    body: Option<BodyTemplate>,
    max_events: usize,
    encoding: Encoding,
    timeout: Duration,
    auth: Auth,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// One request being prepared: the events it holds (their positions in
/// the `which` of a publish) and what they share.
struct Outgoing {
    url: String,
    headers: HeaderMap,
    /// One body part per event.
    parts: Vec<Vec<u8>>,
    events: Vec<usize>,
    ids: Vec<String>,
}

impl WebhookSink {
    /// Builds the client. Nothing is sent until the first event.
    pub fn new(
        name: &str,
        config: &WebhookSinkConfig,
        format: OutputFormat,
        base_dir: &Path,
    ) -> Result<Self, SinkError> {
        let setup = |error: String| SinkError::Setup {
            sink: name.to_owned(),
            error,
        };
        let tls = tls_config(config.tls.as_ref(), base_dir).map_err(setup)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        let headers = config
            .headers
            .iter()
            .map(|(name, value)| header(name, value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(setup)?;
        let fixed_headers = headers
            .iter()
            .all(|(_, value)| value.literal().is_some())
            .then(|| {
                headers
                    .iter()
                    .filter_map(|(name, value)| {
                        // Checked when the config was read.
                        let value = HeaderValue::from_str(value.literal()?).ok()?;
                        Some((name.clone(), value))
                    })
                    .collect()
            });
        let body = config
            .body
            .as_ref()
            .map(BodyTemplate::compile)
            .transpose()
            .map_err(setup)?;
        let auth = Auth::new(&config.auth, base_dir);
        // Read once now, so that a path that is wrong stops the start.
        if let Err(error) = auth.header() {
            return Err(setup(error));
        }
        // Nothing to connect to ahead of a request: up until one fails.
        crate::metrics::SINK_UP.set(&[name], 1.0);
        Ok(Self {
            name: name.to_owned(),
            client,
            server: config.url.text().to_owned(),
            format,
            headers,
            fixed_headers,
            body,
            max_events: config.max_events,
            encoding: config.encoding,
            timeout: config.timeout.0,
            auth,
        })
    }

    /// The requests for the records `which` of `batch`: consecutive
    /// events with the same URL and headers share one, up to `max_events`.
    fn requests(&self, batch: &Batch, which: &[usize]) -> Vec<Outgoing> {
        let mut requests: Vec<Outgoing> = Vec::new();
        for (position, &i) in which.iter().enumerate() {
            let record = &batch.records[i];
            let line = batch.line(record);
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let event = if self.body.is_some() || self.fixed_headers.is_none() {
                PublishedEvent::read(line, self.format)
            } else {
                None
            };
            let event = event.unwrap_or_default();
            let headers = match &self.fixed_headers {
                Some(headers) => headers.clone(),
                None => self
                    .headers
                    .iter()
                    .filter_map(|(name, value)| {
                        // Control characters are spaces by now; UTF-8 is
                        // sent as the bytes it is.
                        let value = HeaderValue::from_bytes(value.render_line(&event).as_bytes());
                        Some((name.clone(), value.ok()?))
                    })
                    .collect(),
            };
            let part = match &self.body {
                Some(body) => serde_json::to_vec(&body.render(&event)).unwrap_or_default(),
                None => line.to_vec(),
            };
            match requests.last_mut() {
                Some(last)
                    if last.events.len() < self.max_events
                        && last.url == record.subject
                        && last.headers == headers =>
                {
                    last.parts.push(part);
                    last.events.push(position);
                    last.ids.push(record.id.clone());
                }
                _ => requests.push(Outgoing {
                    url: record.subject.clone(),
                    headers,
                    parts: vec![part],
                    events: vec![position],
                    ids: vec![record.id.clone()],
                }),
            }
        }
        requests
    }

    /// The body and content type of a request.
    fn body(&self, request: &Outgoing) -> (Vec<u8>, &'static str) {
        let single = match (self.body.is_some(), self.format) {
            (true, _) | (false, OutputFormat::Standard) => "application/json",
            (false, OutputFormat::Cloudevents) => "application/cloudevents+json",
        };
        if self.max_events == 1 {
            return (request.parts[0].clone(), single);
        }
        let size = request
            .parts
            .iter()
            .map(|part| part.len() + 1)
            .sum::<usize>()
            + 2;
        let mut body = Vec::with_capacity(size);
        match self.encoding {
            Encoding::JsonLines => {
                for part in &request.parts {
                    body.extend_from_slice(part);
                    body.push(b'\n');
                }
                (body, "application/x-ndjson")
            }
            Encoding::JsonArray => {
                body.push(b'[');
                for (n, part) in request.parts.iter().enumerate() {
                    if n > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(part);
                }
                body.push(b']');
                let array = match (self.body.is_some(), self.format) {
                    (false, OutputFormat::Cloudevents) => "application/cloudevents-batch+json",
                    _ => "application/json",
                };
                (body, array)
            }
        }
    }

    /// Sends one request and says what became of its events.
    async fn send(&mut self, request: &Outgoing) -> Answer {
        let (body, content_type) = self.body(request);
        let key = match request.ids.as_slice() {
            [id] => id.clone(),
            ids => {
                let digest = Sha256::digest(ids.join(",").as_bytes());
                hex::encode(&digest[..16])
            }
        };
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(&request.url)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(IDEMPOTENCY_KEY, key);
        if let Some(headers) = builder.headers_mut() {
            for (name, value) in &request.headers {
                headers.insert(name.clone(), value.clone());
            }
        }
        match self.auth.header() {
            Ok(Some(value)) => builder = builder.header(hyper::header::AUTHORIZATION, value),
            Ok(None) => {}
            Err(error) => return Answer::Retry(error),
        }
        let request = match builder.body(Full::new(Bytes::from(body))) {
            Ok(request) => request,
            Err(error) => return Answer::Refused(format!("cannot make the request: {error}")),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            // The answer's start, for the message; the rest is read and
            // dropped so the connection can be reused.
            let mut shown = Vec::new();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data()
                    && shown.len() < ANSWER_SHOWN
                {
                    shown.extend_from_slice(&data[..data.len().min(ANSWER_SHOWN - shown.len())]);
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, location, shown))
        };
        let (status, location, shown) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Answer::Retry(format!("no answer within {:?}", self.timeout));
            }
            Ok(Err(error)) => return Answer::Retry(crate::causes::chain(error.as_ref())),
            Ok(Ok(answer)) => answer,
        };
        let said = || {
            let text: String = String::from_utf8_lossy(&shown)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            }
        };
        if status.is_success() {
            Answer::Taken
        } else if status.is_redirection() {
            Answer::Retry(format!(
                "{}; it redirects to {}: set `url` to where it points",
                said(),
                location.as_deref().unwrap_or("(no Location)")
            ))
        } else if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
            || !status.is_client_error()
        {
            Answer::Retry(said())
        } else {
            Answer::Refused(said())
        }
    }
}

/// What the endpoint made of one request.
enum Answer {
    Taken,
    Retry(String),
    Refused(String),
}

impl Broker for WebhookSink {
    async fn publish(&mut self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = which.iter().map(|_| None).collect();
        let requests = self.requests(batch, which);
        let mut failed: Option<String> = None;
        for request in &requests {
            if let Some(why) = &failed {
                for &n in &request.events {
                    outcomes[n] = Some(Outcome::Failed(why.clone()));
                }
                continue;
            }
            match self.send(request).await {
                Answer::Taken => {
                    for &n in &request.events {
                        outcomes[n] = Some(Outcome::Published);
                    }
                }
                Answer::Retry(why) => {
                    let why = format!("{}: {why}", request.url);
                    for &n in &request.events {
                        outcomes[n] = Some(Outcome::Failed(why.clone()));
                    }
                    failed = Some(why);
                }
                Answer::Refused(why) if request.events.len() == 1 => {
                    outcomes[request.events[0]] = Some(Outcome::Rejected(why));
                }
                Answer::Refused(_) => {
                    // Which of them? One request each finds out.
                    for (k, &n) in request.events.iter().enumerate() {
                        if let Some(why) = &failed {
                            outcomes[n] = Some(Outcome::Failed(why.clone()));
                            continue;
                        }
                        let alone = Outgoing {
                            url: request.url.clone(),
                            headers: request.headers.clone(),
                            parts: vec![request.parts[k].clone()],
                            events: vec![n],
                            ids: vec![request.ids[k].clone()],
                        };
                        outcomes[n] = Some(match self.send(&alone).await {
                            Answer::Taken => Outcome::Published,
                            Answer::Refused(why) => Outcome::Rejected(why),
                            Answer::Retry(why) => {
                                let why = format!("{}: {why}", request.url);
                                failed = Some(why.clone());
                                Outcome::Failed(why)
                            }
                        });
                    }
                }
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Outcome::Failed("not sent".into())))
            .collect()
    }

    fn server(&self) -> &str {
        &self.server
    }

    fn kind(&self) -> &'static str {
        "the webhook"
    }

    async fn close(self) {}
}

/// The `Authorization` header, from files read again when they change.
struct Auth {
    kind: AuthKind,
}

enum AuthKind {
    None,
    Bearer(SecretFile),
    Basic {
        username: String,
        password: SecretFile,
    },
}

impl Auth {
    fn new(config: &WebhookAuth, base_dir: &Path) -> Self {
        let kind = match (
            &config.bearer_token_file,
            &config.username,
            &config.password_file,
        ) {
            (Some(token), _, _) => AuthKind::Bearer(SecretFile::new(resolve(base_dir, token))),
            (None, Some(username), Some(password)) => AuthKind::Basic {
                username: username.clone(),
                password: SecretFile::new(resolve(base_dir, password)),
            },
            _ => AuthKind::None,
        };
        Self { kind }
    }

    fn header(&self) -> Result<Option<HeaderValue>, String> {
        use base64::Engine as _;
        let value = match &self.kind {
            AuthKind::None => return Ok(None),
            AuthKind::Bearer(token) => format!("Bearer {}", token.read()?),
            AuthKind::Basic { username, password } => {
                let pair = format!("{username}:{}", password.read()?);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "the credentials hold characters a header cannot".to_owned())?;
        value.set_sensitive(true);
        Ok(Some(value))
    }
}

/// A secret in a file (a mounted Secret): read again when its modification
/// time changes, so that a rotated token is used from the next request on.
struct SecretFile {
    path: PathBuf,
    cached: std::sync::Mutex<Option<(SystemTime, String)>>,
}

impl SecretFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            cached: std::sync::Mutex::new(None),
        }
    }

    fn read(&self) -> Result<String, String> {
        let cannot = |e: std::io::Error| format!("cannot read {}: {e}", self.path.display());
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(cannot)?;
        let mut cached = self.cached.lock().expect("not poisoned");
        if let Some((at, text)) = cached.as_ref()
            && *at == modified
        {
            return Ok(text.clone());
        }
        let text = std::fs::read_to_string(&self.path)
            .map_err(cannot)?
            .trim()
            .to_owned();
        *cached = Some((modified, text.clone()));
        Ok(text)
    }
}

/// The TLS settings: the CA file's certificates, else the system's roots;
/// a client certificate if given.
fn tls_config(tls: Option<&TlsFiles>, base_dir: &Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match tls.and_then(|tls| tls.ca_file.as_ref()) {
        Some(ca) => {
            let ca = resolve(base_dir, ca);
            let mut roots = rustls::RootCertStore::empty();
            let certificates = CertificateDer::pem_file_iter(&ca)
                .map_err(|e| format!("cannot read the CA file {}: {e}", ca.display()))?;
            for certificate in certificates {
                let certificate =
                    certificate.map_err(|e| format!("the CA file {}: {e}", ca.display()))?;
                roots
                    .add(certificate)
                    .map_err(|e| format!("the CA file {}: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("the CA file {} holds no certificate", ca.display()));
            }
            builder.with_root_certificates(roots)
        }
        None => builder
            .with_platform_verifier()
            .map_err(|e| format!("the system's root certificates: {e}"))?,
    };
    match tls.and_then(|tls| Some((tls.cert_file.as_ref()?, tls.key_file.as_ref()?))) {
        Some((cert, key)) => {
            let (cert, key) = (resolve(base_dir, cert), resolve(base_dir, key));
            let chain = CertificateDer::pem_file_iter(&cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    format!("cannot read the client certificate {}: {e}", cert.display())
                })?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| format!("cannot read the client key {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_secret_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let auth = Auth::new(
            &WebhookAuth {
                bearer_token_file: Some(path.clone()),
                ..WebhookAuth::default()
            },
            dir.path(),
        );
        let header = || auth.header().unwrap().unwrap().to_str().unwrap().to_owned();
        assert_eq!(header(), "Bearer first");
        // The kubelet swaps a projected token's file: new content, new time.
        std::fs::write(&path, "second").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(header(), "Bearer second");
        std::fs::remove_file(&path).unwrap();
        let error = auth.header().unwrap_err();
        assert!(
            error.contains("cannot read") && error.contains("token"),
            "{error}"
        );

        let basic = Auth::new(
            &WebhookAuth {
                username: Some("aeth".into()),
                password_file: Some(dir.path().join("password")),
                ..WebhookAuth::default()
            },
            dir.path(),
        );
        std::fs::write(dir.path().join("password"), "pa:ss\n").unwrap();
        let value = basic.header().unwrap().unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Basic YWV0aDpwYTpzcw==");
    }
}
