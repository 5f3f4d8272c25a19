//! The brokers the sink tests publish to, behind one trait, so that a test
//! of what every broker sink promises is written once and run against each
//! (tests/brokers.rs): nats-server with a JetStream stream ([`Nats`]),
//! Tansu speaking Kafka ([`Kafka`]), and an HTTP server taking a webhook
//! sink's POSTs ([`Webhook`]). What only one of them does is tested in
//! tests/nats.rs, tests/kafka.rs or tests/webhook.rs, with the same types.

use std::path::PathBuf;

use serde_json::Value;

use crate::Scratch;
use crate::publishing::config_with_sinks;

mod kafka;
mod nats;
mod webhook;

pub use kafka::Kafka;
pub use nats::Nats;
pub use webhook::{Webhook, split_body};

/// A broker on loopback as a broker-sink test sees it: started ready for
/// one cluster's events, stopped and restarted under a running pipeline,
/// read back.
pub trait TestBroker {
    /// Its name in the sink's logs: "cannot publish to NATS".
    const NAME: &'static str;
    /// Whether it keeps one order across destinations: a JetStream stream
    /// holds every subject's messages in one sequence, Kafka orders each
    /// topic on its own.
    const ONE_ORDER: bool;
    /// Whether what it holds survives a restart: JetStream's file store
    /// does, Tansu's memory does not.
    const DURABLE: bool;
    /// What the sink logs about a message too large for the broker
    /// contains one of these.
    const TOO_LARGE: &'static [&'static str];

    /// Starts it on a free loopback port, ready to take what a sink publishes
    /// for cluster `cluster` (a stream or topics to take it created).
    ///
    /// # Panics
    ///
    /// If it does not start; the message says why.
    fn start(cluster: &str) -> Self;

    /// Stops it.
    ///
    /// # Panics
    ///
    /// If it is not running.
    fn stop(&mut self);

    /// Starts it again on the same port, ready as after [`start`](Self::start).
    fn restart(&mut self);

    /// The sink's broker section, e.g. `nats:` and its fields: one
    /// destination per cluster and severity ([`destination`](Self::destination)),
    /// an unacknowledged message failing after 1 s.
    fn sink_yaml(&self) -> String;

    /// The subject or topic of the events of `cluster` with `severity`.
    fn destination(cluster: &str, severity: &str) -> String;

    /// Every message it holds for the cluster it was started for: in one
    /// order if [`ONE_ORDER`](Self::ONE_ORDER), else destination after
    /// destination, each in its order.
    fn read_all(&self) -> Vec<Published>;
}

/// A message read back from a broker.
#[derive(Clone, Debug)]
pub struct Published {
    /// Its subject or topic.
    pub destination: String,
    /// The occurrence id the broker carries beside the payload: NATS's
    /// `Nats-Msg-Id`, Kafka's `aetherius-id` header.
    pub id: Option<String>,
    /// The payload as JSON (`null` if it is not).
    pub payload: Value,
}

/// A config: the default plugins and chain, one sink `bus` publishing to
/// `broker` with a spool in `scratch` (`extra_spool_yaml` goes under
/// `spool:`, indented by six).
pub fn broker_config(
    scratch: &Scratch,
    broker: &impl TestBroker,
    extra_spool_yaml: &str,
) -> PathBuf {
    bus_config(scratch, &broker.sink_yaml(), extra_spool_yaml)
}

/// [`broker_config`] with the sink's output section given as YAML
/// (`webhook:` and its fields, say).
pub fn bus_config(scratch: &Scratch, sink_yaml: &str, extra_spool_yaml: &str) -> PathBuf {
    let broker_yaml: String = sink_yaml
        .lines()
        .map(|line| format!("    {line}\n"))
        .collect();
    config_with_sinks(
        scratch,
        &format!(
            "  bus:
    chain: default
{broker_yaml}    spool:
      dir: {spool}
      after: 1s
{extra_spool_yaml}",
            spool = scratch.path("spool").display(),
        ),
    )
}
