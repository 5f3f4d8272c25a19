//! The NATS sink: its config (`config.rs`), the client that publishes one
//! message per occurrence (`sink.rs`), and how it starts and what
//! `aetherius check` says of it (here). Retries, the spool and dead letters
//! are `delivery`'s, as for every broker.

mod config;
mod sink;

use std::path::Path;

pub use config::{NatsAuth, NatsSinkConfig, TlsFiles};
pub use sink::{CLUSTER_HEADER, NatsSink, SEVERITY_HEADER};

use super::{Setup, SinkError, Started};

impl NatsSinkConfig {
    /// Configures the client (it connects in the background) and starts the
    /// sink's task.
    pub(super) async fn start(&self, setup: Setup) -> Result<Started, SinkError> {
        let subject = setup.parsed(&self.subject)?;
        let broker = NatsSink::connect(&setup.name, self, setup.format, &setup.base_dir).await?;
        Ok(Started {
            running: setup.spawn_broker(broker),
            subject: Some(subject),
            key: None,
        })
    }

    /// `aetherius check`'s line for it.
    pub(super) fn describe(&self, _name: &str, _base_dir: &Path) -> Result<String, SinkError> {
        Ok(format!("NATS {} subject {}", self.url, self.subject))
    }
}
