//! The webhook sink: its config (`config.rs`), the body template
//! (`body.rs`), the client that POSTs events (`sink.rs`), and how it starts
//! and what `aetherius check` says of it (here). Retries, the spool and
//! dead letters are `delivery`'s, as for every broker.

mod body;
mod config;
mod sink;

use std::path::Path;

pub use config::{Encoding, UrlTemplate, WebhookAuth, WebhookSinkConfig};
pub use sink::{IDEMPOTENCY_KEY, WebhookSink};

use super::{Setup, SinkError, Started};

impl WebhookSinkConfig {
    /// Builds the client and starts the sink's task. The pipeline renders
    /// each event's URL, which the spool keeps with it.
    pub(super) async fn start(&self, setup: Setup) -> Result<Started, SinkError> {
        let url = self
            .url
            .value()
            .map(|url| url.0.clone())
            .ok_or_else(|| SinkError::Setup {
                sink: setup.name.clone(),
                error: self.url.problem().unwrap_or_default().to_owned(),
            })?;
        let broker = WebhookSink::new(&setup.name, self, setup.format, &setup.base_dir)?;
        Ok(Started {
            running: setup.spawn_broker(broker),
            subject: Some(url),
            key: None,
        })
    }

    /// `aetherius check`'s line for it, once its files have been read and
    /// its client built (without sending anything).
    pub(super) fn describe(&self, name: &str, base_dir: &Path) -> Result<String, SinkError> {
        let shape = if self.max_events == 1 {
            "one event per request".to_owned()
        } else {
            let encoding = match self.encoding {
                Encoding::JsonLines => "JSON lines",
                Encoding::JsonArray => "a JSON array",
            };
            format!("up to {} events per request as {encoding}", self.max_events)
        };
        // Reads the credentials and certificates as a start would.
        WebhookSink::new(name, self, crate::output::OutputFormat::Standard, base_dir)?;
        Ok(format!("webhook POST {} ({shape})", self.url))
    }
}
