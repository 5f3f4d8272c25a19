//! The NATS sink: JetStream publish with acknowledgement (default) or core
//! publish, one message per occurrence, `Nats-Msg-Id` = the occurrence id so
//! the stream drops what it already has.
//!
//! A batch is published as a whole and its acknowledgements awaited
//! together; retries, the spool and back-pressure are `delivery`'s. A
//! message the server refuses for what it is (larger than `max_payload`, a
//! subject it cannot take) is `Rejected`, never retried.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;

use super::NatsSinkConfig;
use crate::output::OutputFormat;
use crate::paths::resolve;
use crate::sink::delivery::{Broker, Outcome};
use crate::sink::{Batch, Record, SinkError};

/// Header carrying the occurrence's severity.
pub const SEVERITY_HEADER: &str = "Aetherius-Severity";
/// Header carrying the occurrence's cluster id.
pub const CLUSTER_HEADER: &str = "Aetherius-Cluster";

/// A connected NATS sink.
pub struct NatsSink {
    name: String,
    client: async_nats::Client,
    jetstream: Option<jetstream::Context>,
    server: String,
    content_type: &'static str,
    /// Why the client last failed to connect, to explain failed publishes.
    last_error: Arc<Mutex<Option<String>>>,
    /// Bound on one publish attempt: while the client is disconnected its
    /// send buffer fills up and a publish would wait for the reconnection.
    attempt_timeout: Duration,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("jetstream", &self.jetstream.is_some())
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// Configures the client. It connects in the background (and keeps
    /// reconnecting), so an unreachable server is not an error here: the
    /// first publish waits for it.
    pub async fn connect(
        name: &str,
        config: &NatsSinkConfig,
        format: OutputFormat,
        base_dir: &Path,
    ) -> Result<Self, SinkError> {
        let setup = |error: String| SinkError::Setup {
            sink: name.to_owned(),
            error,
        };
        let read = |path: &std::path::PathBuf| {
            let path = resolve(base_dir, path);
            std::fs::read_to_string(&path)
                .map(|text| text.trim().to_owned())
                .map_err(|e| setup(format!("cannot read {}: {e}", path.display())))
        };
        let last_error = Arc::new(Mutex::new(None));
        let events = last_error.clone();
        let sink = name.to_owned();
        // Down until the client has connected; the delivery loop also marks
        // it down while publishing fails and up when it succeeds.
        crate::metrics::SINK_UP.set(&[name], 0.0);
        let mut options = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let last_error = events.clone();
                let sink = sink.clone();
                async move {
                    tracing::debug!(%event, "NATS client");
                    match event {
                        async_nats::Event::Connected => crate::metrics::SINK_UP.set(&[&sink], 1.0),
                        async_nats::Event::Disconnected => {
                            crate::metrics::SINK_UP.set(&[&sink], 0.0)
                        }
                        _ => {}
                    }
                    let error = match event {
                        async_nats::Event::ClientError(error) => Some(error.to_string()),
                        async_nats::Event::ServerError(error) => Some(error.to_string()),
                        async_nats::Event::Connected => None,
                        _ => return,
                    };
                    *last_error.lock().expect("not poisoned") = error;
                }
            })
            .name(&config.name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((250u64 << attempt.min(7)).min(30_000))
            });
        let auth = &config.auth;
        if let Some(token) = &auth.token {
            options = options.token(token.clone());
        } else if let Some(path) = &auth.token_file {
            options = options.token(read(path)?);
        }
        if let Some(user) = &auth.user {
            let password = match (&auth.password, &auth.password_file) {
                (Some(password), _) => password.clone(),
                (None, Some(path)) => read(path)?,
                (None, None) => String::new(),
            };
            options = options.user_and_password(user.clone(), password);
        }
        if let Some(path) = &auth.credentials_file {
            let path = resolve(base_dir, path);
            options = options
                .credentials_file(&path)
                .await
                .map_err(|e| setup(format!("credentials file {}: {e}", path.display())))?;
        }
        if let Some(tls) = &config.tls {
            options = options.require_tls(true);
            if let Some(ca) = &tls.ca_file {
                options = options.add_root_certificates(resolve(base_dir, ca));
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                options =
                    options.add_client_certificate(resolve(base_dir, cert), resolve(base_dir, key));
            }
        }
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|e| setup(format!("cannot connect to {}: {e}", config.url)))?;
        let jetstream = config.jetstream.then(|| {
            jetstream::ContextBuilder::new()
                .timeout(config.ack_timeout.0)
                .build(client.clone())
        });
        Ok(Self {
            name: name.to_owned(),
            client,
            jetstream,
            server: config.url.clone(),
            last_error,
            content_type: match format {
                OutputFormat::Standard => "application/json",
                OutputFormat::Cloudevents => "application/cloudevents+json",
            },
            attempt_timeout: config.ack_timeout.0 + Duration::from_secs(1),
        })
    }

    /// The server, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// One attempt at publishing the records `which` of `batch`: one
    /// outcome each, in order.
    pub async fn publish(&self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
        let outcomes =
            match tokio::time::timeout(self.attempt_timeout, self.publish_unbounded(batch, which))
                .await
            {
                Ok(outcomes) => outcomes,
                Err(_) => which
                    .iter()
                    .map(|_| {
                        Outcome::Failed(format!(
                            "no answer from {} within {:?}",
                            self.server, self.attempt_timeout
                        ))
                    })
                    .collect(),
            };
        // Why the client cannot connect says more than a timeout.
        let Some(error) = self.last_error.lock().expect("not poisoned").clone() else {
            return outcomes;
        };
        outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Outcome::Failed(why) => {
                    Outcome::Failed(format!("{why} (last connection error: {error})"))
                }
                other => other,
            })
            .collect()
    }

    async fn publish_unbounded(&self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
        match &self.jetstream {
            Some(jetstream) => {
                // Send them all, then await the acknowledgements together.
                let mut acks = Vec::with_capacity(which.len());
                for &i in which {
                    let (subject, headers, payload) = self.message(batch, &batch.records[i]);
                    acks.push(
                        match jetstream
                            .publish_with_headers(subject, headers, payload)
                            .await
                        {
                            Ok(ack) => Ok(ack),
                            Err(error) => Err(classify_jetstream(&error)),
                        },
                    );
                }
                let mut outcomes = Vec::with_capacity(acks.len());
                for ack in acks {
                    outcomes.push(match ack {
                        Ok(ack) => match ack.await {
                            Ok(_) => Outcome::Published,
                            Err(error) => classify_jetstream(&error),
                        },
                        Err(outcome) => outcome,
                    });
                }
                outcomes
            }
            None => {
                let mut outcomes = Vec::with_capacity(which.len());
                for &i in which {
                    let (subject, headers, payload) = self.message(batch, &batch.records[i]);
                    outcomes.push(
                        match self
                            .client
                            .publish_with_headers(subject, headers, payload)
                            .await
                        {
                            Ok(()) => Outcome::Published,
                            Err(error) => match error.kind() {
                                async_nats::client::PublishErrorKind::MaxPayloadExceeded
                                | async_nats::client::PublishErrorKind::InvalidSubject => {
                                    Outcome::Rejected(error.to_string())
                                }
                                async_nats::client::PublishErrorKind::Send => {
                                    Outcome::Failed(error.to_string())
                                }
                            },
                        },
                    );
                }
                // Core NATS has no acknowledgement: handing the bytes to the
                // socket is as far as delivery goes.
                if let Err(error) = self.client.flush().await {
                    return outcomes
                        .into_iter()
                        .map(|o| match o {
                            Outcome::Published => Outcome::Failed(error.to_string()),
                            other => other,
                        })
                        .collect();
                }
                outcomes
            }
        }
    }

    /// Waits (a little) until what was published has left the client; a
    /// disconnected client would wait for the server forever.
    pub async fn close(self) {
        let _ = tokio::time::timeout(self.attempt_timeout, self.client.flush()).await;
    }
}

fn classify_jetstream(error: &jetstream::context::PublishError) -> Outcome {
    use jetstream::context::PublishErrorKind as Kind;
    match error.kind() {
        Kind::MaxPayloadExceeded => Outcome::Rejected(error.to_string()),
        Kind::StreamNotFound => Outcome::Failed(format!(
            "{error}: no JetStream stream takes this subject yet (create one, or set `jetstream: false`)"
        )),
        _ => Outcome::Failed(error.to_string()),
    }
}

impl NatsSink {
    /// Subject, headers and payload of one record.
    fn message(&self, batch: &Batch, record: &Record) -> (String, HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, record.id.as_str());
        headers.insert(SEVERITY_HEADER, record.severity.as_str());
        headers.insert(CLUSTER_HEADER, record.cluster.as_str());
        headers.insert("Content-Type", self.content_type);
        let line = batch.line(record);
        let payload = Bytes::copy_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        (record.subject.clone(), headers, payload)
    }
}

impl Broker for NatsSink {
    async fn publish(&mut self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
        NatsSink::publish(self, batch, which).await
    }

    fn server(&self) -> &str {
        NatsSink::server(self)
    }

    fn kind(&self) -> &'static str {
        "NATS"
    }

    async fn close(self) {
        NatsSink::close(self).await;
    }
}
