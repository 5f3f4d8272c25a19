//! The Kafka sink: its config (`config.rs`), the idempotent producer that
//! publishes one message per occurrence (`sink.rs`), and how it starts and
//! what `aetherius check` checks of it (here). Retries, the spool and dead
//! letters are `delivery`'s, as for every broker.

mod config;
mod sink;

use std::path::Path;

pub use config::{KAFKA_MANAGED_OPTIONS, KafkaSinkConfig, Scalar};
pub use sink::{KAFKA_CLUSTER_HEADER, KAFKA_ID_HEADER, KAFKA_SEVERITY_HEADER, KafkaSink};

use super::{Setup, SinkError, Started};

impl KafkaSinkConfig {
    /// Creates the producer (it connects in the background) and starts the
    /// sink's task.
    pub(super) async fn start(&self, setup: Setup) -> Result<Started, SinkError> {
        let topic = setup.parsed(&self.topic)?;
        let key = setup.parsed(&self.key)?;
        let broker = KafkaSink::connect(&setup.name, self, setup.format, &setup.base_dir)?;
        Ok(Started {
            running: setup.spawn_broker(broker),
            subject: Some(topic),
            key: Some(key),
        })
    }

    /// `aetherius check`'s line for it, once librdkafka has taken every
    /// property (what `options` passes through), without connecting.
    pub(super) fn describe(&self, name: &str, base_dir: &Path) -> Result<String, SinkError> {
        KafkaSink::validate(name, self, base_dir)?;
        Ok(format!(
            "Kafka {} topic {} key {}",
            self.brokers, self.topic, self.key
        ))
    }
}
