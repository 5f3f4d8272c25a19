//! The embedded sink: published events handed to the program that embeds
//! Aetherius ([`crate::agent`]), over a bounded channel. The design
//! document's "agent mode": the watcher inside another Rust program.

use std::path::Path;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Batch, Setup, SinkCount, SinkError, SinkMessage, SinkReport, Started};
use crate::event::Severity;
use crate::metrics;
use crate::output::Template;
use crate::units::Checked;

/// `embedded: {}` — for programs that embed Aetherius; `aetherius run`
/// refuses it. The program gives the channel ([`crate::agent::Agent`]).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedSinkConfig {
    /// The subject each event is given (see `output::Template`; default
    /// `event.k8s.received`, the design document's).
    #[serde(default = "default_subject")]
    pub subject: Checked<Template>,
    /// Where the events go; set by the embedding program.
    #[serde(skip)]
    pub sender: Option<mpsc::Sender<Published>>,
}

fn default_subject() -> Checked<Template> {
    Checked::from("event.k8s.received")
}

/// Without the channel: a reload compares sinks by their Debug text, and the
/// reloaded config's has no channel yet.
impl std::fmt::Debug for EmbeddedSinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSinkConfig")
            .field("subject", &self.subject.text())
            .finish_non_exhaustive()
    }
}

/// Equal when configured alike: which program holds the channel does not
/// change the sink.
impl PartialEq for EmbeddedSinkConfig {
    fn eq(&self, other: &Self) -> bool {
        self.subject.text() == other.subject.text()
    }
}

/// One published event, as the embedding program receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The occurrence id (a deterministic UUID: the same occurrence always
    /// gets the same one).
    pub id: String,
    pub cluster_id: String,
    pub severity: Severity,
    /// The rendered subject template.
    pub subject: String,
    /// The event in the sink's format (StandardEvent or CloudEvents JSON),
    /// without the newline.
    pub json: Vec<u8>,
}

impl EmbeddedSinkConfig {
    /// An embedded sink sending to `sender`, on the default subject.
    pub fn new(sender: mpsc::Sender<Published>) -> Self {
        Self {
            subject: default_subject(),
            sender: Some(sender),
        }
    }

    pub(super) fn problems(&self, at: &str) -> Vec<String> {
        match self.subject.problem() {
            Some(problem) => vec![format!("at `{at}.subject`: {problem}")],
            None => Vec::new(),
        }
    }

    pub(super) async fn start(&self, setup: Setup) -> Result<Started, SinkError> {
        let sender = self.sender.clone().ok_or_else(|| SinkError::Setup {
            sink: setup.name.clone(),
            error: "an `embedded` sink is for programs that embed Aetherius (aetherius::agent); use stdout, file, nats or kafka".into(),
        })?;
        let subject = setup.parsed(&self.subject)?;
        Ok(Started {
            running: super::Running::Task(tokio::spawn(run(setup.name, sender, setup.queue))),
            subject: Some(subject),
            key: None,
        })
    }

    pub(super) fn describe(&self, _name: &str, _base_dir: &Path) -> Result<String, SinkError> {
        Ok(format!(
            "the embedding program, subject {}",
            self.subject.text()
        ))
    }
}

/// Hands every event to the program, in order, waiting while its channel is
/// full; acks a mark once everything before it is in the channel.
async fn run(
    name: String,
    sender: mpsc::Sender<Published>,
    mut queue: mpsc::Receiver<SinkMessage>,
) -> Result<SinkReport, SinkError> {
    let mut report = SinkReport::new(&name);
    metrics::SINK_UP.set(&[&name], 1.0);
    while let Some(message) = queue.recv().await {
        let mut batch: Batch = match message {
            SinkMessage::Batch(batch) => batch,
            SinkMessage::Ack(ack) => {
                ack.ack();
                continue;
            }
        };
        for record in &batch.records {
            let line = batch.line(record);
            let published = Published {
                id: record.id.clone(),
                cluster_id: record.cluster.clone(),
                severity: record.severity,
                subject: record.subject.clone(),
                json: line.strip_suffix(b"\n").unwrap_or(line).to_vec(),
            };
            if sender.send(published).await.is_err() {
                metrics::SINK_UP.set(&[&name], 0.0);
                return Err(SinkError::Setup {
                    sink: name,
                    error: "the embedding program dropped its receiver".into(),
                });
            }
        }
        report.add(SinkCount::Published, batch.records.len() as u64);
        batch.acknowledge();
    }
    Ok(report)
}
