//! [`TestBroker`] for nats-server: the stream `EVENTS` takes every subject
//! `event.k8s.>` and keeps it on disk.

use async_nats::jetstream;

use super::{Published, TestBroker};
use crate::publishing::{event_stream, read_event_stream};
use crate::servers::NatsServer;

/// nats-server with the JetStream stream `EVENTS`, and a client of it.
pub struct Nats {
    server: NatsServer,
    /// Connected while the server runs.
    stream: Option<jetstream::Context>,
    runtime: tokio::runtime::Runtime,
}

impl Nats {
    fn connect(&mut self) {
        self.stream = Some(self.runtime.block_on(event_stream(
            &self.server.url(),
            async_nats::ConnectOptions::new(),
        )));
    }
}

impl TestBroker for Nats {
    const NAME: &'static str = "NATS";
    const ONE_ORDER: bool = true;
    const DURABLE: bool = true;
    const TOO_LARGE: &'static [&'static str] = &["maximum payload", "max payload"];

    /// The stream takes the subjects of every cluster.
    fn start(_cluster: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut nats = Self {
            server: NatsServer::start(),
            stream: None,
            runtime,
        };
        nats.connect();
        nats
    }

    fn stop(&mut self) {
        self.stream = None;
        self.server.stop();
    }

    /// The stream survives in the server's store; the client connects anew.
    fn restart(&mut self) {
        self.server.restart();
        self.connect();
    }

    fn sink_yaml(&self) -> String {
        format!(
            "nats:\n  url: {}\n  subject: 'event.k8s.{{cluster}}.{{severity}}'\n  ack_timeout: 1s\n",
            self.server.url()
        )
    }

    fn destination(cluster: &str, severity: &str) -> String {
        format!("event.k8s.{cluster}.{severity}")
    }

    fn read_all(&self) -> Vec<Published> {
        let stream = self
            .stream
            .as_ref()
            .expect("read_all: nats-server is not running");
        self.runtime
            .block_on(read_event_stream(stream))
            .into_iter()
            .map(|(subject, id, payload)| Published {
                destination: subject,
                id: Some(id).filter(|id| !id.is_empty()),
                payload,
            })
            .collect()
    }
}
