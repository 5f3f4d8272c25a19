//! The Kafka sink: an idempotent librdkafka producer with `acks=all`, one
//! message per occurrence, keyed by its fingerprint (or a template) so that
//! the occurrences of one event stay in order on one partition; headers
//! carry the occurrence id, severity and cluster.
//!
//! A batch is handed to the producer as a whole and its deliveries awaited
//! together. librdkafka retries on its own for `delivery_timeout`; what it
//! gives up on is `Failed` and goes back to `delivery` (retries, the spool).
//! What the brokers refuse for what it is (too large, an invalid topic) is
//! `Rejected`, never retried.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::KafkaSinkConfig;
use crate::output::OutputFormat;
use crate::paths::resolve;
use crate::sink::delivery::{Broker, Outcome};
use crate::sink::{Batch, SinkError};

/// Header carrying the occurrence id (what consumers deduplicate on).
pub const KAFKA_ID_HEADER: &str = "aetherius-id";
/// Header carrying the occurrence's severity.
pub const KAFKA_SEVERITY_HEADER: &str = "aetherius-severity";
/// Header carrying the occurrence's cluster id.
pub const KAFKA_CLUSTER_HEADER: &str = "aetherius-cluster";

/// Routes librdkafka's own logs to `tracing` at DEBUG (target
/// `librdkafka`): while a broker is down it logs every failed connection,
/// and `delivery` already says so once. The last error is kept to explain
/// the next failed delivery.
struct Quiet {
    sink: String,
    last_error: LastError,
}

type LastError = Arc<Mutex<Option<String>>>;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", sink = %self.sink, ?level, facility, "{message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", sink = %self.sink, %error, "{reason}");
        // "1/1 brokers are down" follows the error that says why.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            *self.last_error.lock().expect("not poisoned") = Some(reason.to_owned());
        }
    }
}

/// A Kafka producer for one sink.
pub struct KafkaSink {
    name: String,
    settings: ClientConfig,
    producer: FutureProducer<Quiet>,
    last_error: LastError,
    /// The task watching whether the brokers answer (see [`probe`]).
    probe: tokio::task::JoinHandle<()>,
    brokers: String,
    content_type: &'static str,
    /// Bound on one publish attempt: librdkafka's own delivery timeout and a
    /// little more.
    attempt_timeout: Duration,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("name", &self.name)
            .field("brokers", &self.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Creates the producer. It connects in the background (and keeps
    /// reconnecting), so unreachable brokers are not an error here; a
    /// property librdkafka does not know, or a value it refuses, is.
    pub fn connect(
        name: &str,
        config: &KafkaSinkConfig,
        format: OutputFormat,
        base_dir: &Path,
    ) -> Result<Self, SinkError> {
        let settings = client_config(name, config, base_dir)?;
        let (producer, last_error) = create(name, &settings)?;
        let probe = probe(name, producer.clone());
        Ok(Self {
            name: name.to_owned(),
            settings,
            producer,
            last_error,
            probe,
            brokers: config.brokers.clone(),
            content_type: match format {
                OutputFormat::Standard => "application/json",
                OutputFormat::Cloudevents => "application/cloudevents+json",
            },
            attempt_timeout: config.delivery_timeout.0 + Duration::from_secs(2),
        })
    }

    /// Checks that librdkafka takes every property of `config` (what
    /// `options` passes through), without connecting.
    pub fn validate(
        name: &str,
        config: &KafkaSinkConfig,
        base_dir: &Path,
    ) -> Result<(), SinkError> {
        client_config(name, config, base_dir)?
            .create_native_config()
            .map(drop)
            .map_err(|error| SinkError::Setup {
                sink: name.to_owned(),
                error: format!("Kafka producer: {error}"),
            })
    }

    /// The brokers, for messages.
    pub fn server(&self) -> &str {
        &self.brokers
    }

    /// One attempt at publishing the records `which` of `batch`: one
    /// outcome each, in order.
    pub async fn publish(&mut self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
        self.renew_after_fatal_error();
        let mut deliveries = Vec::with_capacity(which.len());
        for &i in which {
            let record = &batch.records[i];
            let line = batch.line(record);
            let payload = line.strip_suffix(b"\n").unwrap_or(line);
            let headers = OwnedHeaders::new_with_capacity(4)
                .insert(Header {
                    key: KAFKA_ID_HEADER,
                    value: Some(record.id.as_str()),
                })
                .insert(Header {
                    key: KAFKA_SEVERITY_HEADER,
                    value: Some(record.severity.as_str()),
                })
                .insert(Header {
                    key: KAFKA_CLUSTER_HEADER,
                    value: Some(record.cluster.as_str()),
                })
                .insert(Header {
                    key: "content-type",
                    value: Some(self.content_type),
                });
            let mut message = FutureRecord::to(&record.subject)
                .payload(payload)
                .headers(headers);
            if let Some(key) = &record.key {
                message = message.key(key.as_str());
            }
            deliveries.push(match self.producer.send_result(message) {
                Ok(delivery) => Ok(delivery),
                Err((error, _)) => Err(self.classify(&error)),
            });
        }
        let deadline = tokio::time::Instant::now() + self.attempt_timeout;
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            outcomes.push(match delivery {
                Err(outcome) => outcome,
                Ok(delivery) => match tokio::time::timeout_at(deadline, delivery).await {
                    Ok(Ok(Ok(_))) => Outcome::Published,
                    Ok(Ok(Err((error, _)))) => self.classify(&error),
                    Ok(Err(_canceled)) => Outcome::Failed("the producer went away".into()),
                    Err(_) => Outcome::Failed(format!(
                        "no answer from {} within {:?}",
                        self.brokers, self.attempt_timeout
                    )),
                },
            });
        }
        outcomes
    }

    fn classify(&self, error: &KafkaError) -> Outcome {
        use RDKafkaErrorCode as Code;
        match error.rdkafka_error_code() {
            Some(
                Code::MessageSizeTooLarge
                | Code::InvalidMessageSize
                | Code::MessageBatchTooLarge
                | Code::InvalidTopic
                | Code::InvalidRecord,
            ) => Outcome::Rejected(error.to_string()),
            Some(Code::UnknownTopic | Code::UnknownTopicOrPartition) => Outcome::Failed(format!(
                "{error}: the topic does not exist (create it, or let the brokers create topics)"
            )),
            _ => match self.last_error.lock().expect("not poisoned").take() {
                Some(reason) => Outcome::Failed(format!("{error} (last client error: {reason})")),
                None => Outcome::Failed(error.to_string()),
            },
        }
    }

    /// An idempotent producer that hits a fatal error (the brokers lost its
    /// sequence state, say) refuses everything after; a new one starts over.
    fn renew_after_fatal_error(&mut self) {
        let Some((code, reason)) = self.producer.client().fatal_error() else {
            return;
        };
        tracing::warn!(sink = %self.name, ?code, %reason, "the Kafka producer failed for good; starting a new one");
        match create(&self.name, &self.settings) {
            Ok((producer, last_error)) => {
                let old = std::mem::replace(&mut self.producer, producer);
                self.last_error = last_error;
                // Dropping a producer waits for it; not on this thread.
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(error) => {
                tracing::error!(sink = %self.name, %error, "cannot start a new Kafka producer")
            }
        }
    }

    /// Waits (a little) until what was produced has been delivered, then
    /// stops the producer's threads.
    pub async fn close(self) {
        self.probe.abort();
        let timeout = self.attempt_timeout;
        let producer = self.producer;
        let _ = tokio::task::spawn_blocking(move || {
            let _ = producer.flush(timeout);
            drop(producer);
        })
        .await;
    }
}

/// Marks the sink up (`aetherius_sink_up`) once the brokers answer a
/// metadata request, and again after the delivery loop marked it down, so
/// that readiness follows the brokers even while no event flows.
fn probe(name: &str, producer: FutureProducer<Quiet>) -> tokio::task::JoinHandle<()> {
    let up = crate::metrics::SINK_UP.series(&[name]);
    up.set(0.0);
    tokio::spawn(async move {
        loop {
            if up.get() != 1.0 {
                let producer = producer.clone();
                let answered = tokio::task::spawn_blocking(move || {
                    producer
                        .client()
                        .fetch_metadata(None, Duration::from_secs(5))
                        .is_ok()
                })
                .await
                .unwrap_or(false);
                if answered {
                    up.set(1.0);
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
}

/// The producer's properties: ours, then `options` and `option_files`.
fn client_config(
    name: &str,
    config: &KafkaSinkConfig,
    base_dir: &Path,
) -> Result<ClientConfig, SinkError> {
    let mut settings = ClientConfig::new();
    settings
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", &config.client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            config.delivery_timeout.as_millis_i64().to_string(),
        )
        .set("linger.ms", config.linger.as_millis_i64().to_string());
    for (key, value) in &config.options {
        settings.set(key, &value.0);
    }
    for (key, path) in &config.option_files {
        let path = resolve(base_dir, path);
        let value = std::fs::read_to_string(&path).map_err(|e| SinkError::Setup {
            sink: name.to_owned(),
            error: format!("option_files.{key}: cannot read {}: {e}", path.display()),
        })?;
        settings.set(key, value.trim());
    }
    Ok(settings)
}

fn create(
    name: &str,
    settings: &ClientConfig,
) -> Result<(FutureProducer<Quiet>, LastError), SinkError> {
    let last_error = LastError::default();
    let producer: FutureProducer<Quiet> = settings
        .create_with_context(Quiet {
            sink: name.to_owned(),
            last_error: last_error.clone(),
        })
        .map_err(|error| SinkError::Setup {
            sink: name.to_owned(),
            error: format!("Kafka producer: {error}"),
        })?;
    Ok((producer, last_error))
}

impl Broker for KafkaSink {
    async fn publish(&mut self, batch: &Batch, which: &[usize]) -> Vec<Outcome> {
        KafkaSink::publish(self, batch, which).await
    }

    fn server(&self) -> &str {
        KafkaSink::server(self)
    }

    fn kind(&self) -> &'static str {
        "Kafka"
    }

    async fn close(self) {
        KafkaSink::close(self).await;
    }
}
