//! [`TestBroker`] for the webhook sink: [`HttpServer`] taking the POSTs,
//! one path per cluster and severity; a request's events read back from
//! its body as the sink encoded them.

use serde_json::Value;

use super::{Published, TestBroker};
use crate::servers::{HttpServer, Received};

/// An HTTP server taking a webhook sink's requests.
pub struct Webhook {
    pub server: HttpServer,
}

impl TestBroker for Webhook {
    const NAME: &'static str = "the webhook";
    /// One server takes every request, in the order they were sent.
    const ONE_ORDER: bool = true;
    /// What it received is kept across a restart.
    const DURABLE: bool = true;
    const TOO_LARGE: &'static [&'static str] = &["413"];

    fn start(_cluster: &str) -> Self {
        let server = HttpServer::start();
        // What NATS and Kafka refuse: a message over 1 MB.
        server.limit_body(1_000_000);
        Self { server }
    }

    fn stop(&mut self) {
        self.server.stop();
    }

    fn restart(&mut self) {
        self.server.restart();
    }

    fn sink_yaml(&self) -> String {
        format!(
            "webhook:\n  url: '{}/events/{{cluster}}/{{severity}}'\n  timeout: 1s\n",
            self.server.url()
        )
    }

    fn destination(cluster: &str, severity: &str) -> String {
        format!("/events/{cluster}/{severity}")
    }

    fn read_all(&self) -> Vec<Published> {
        self.server
            .received()
            .iter()
            .flat_map(|request| {
                let events = split_body(request);
                // The id rides in a header when a request holds one event.
                let id = (events.len() == 1)
                    .then(|| request.header("idempotency-key").map(str::to_owned))
                    .flatten();
                events.into_iter().map(move |payload| Published {
                    destination: request.target.clone(),
                    id: id.clone(),
                    payload,
                })
            })
            .collect()
    }
}

/// The events of a request: its body as one JSON document, a JSON array,
/// or JSON lines, by its content type.
pub fn split_body(request: &Received) -> Vec<Value> {
    let body = String::from_utf8_lossy(&request.body);
    let content_type = request.header("content-type").unwrap_or_default();
    if content_type.starts_with("application/x-ndjson") {
        return body
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect();
    }
    match serde_json::from_str(&body).unwrap_or(Value::Null) {
        Value::Array(events)
            if content_type.contains("batch")
                || content_type == "application/json" && body.starts_with('[') =>
        {
            events
        }
        one => vec![one],
    }
}
