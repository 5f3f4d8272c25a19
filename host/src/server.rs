//! The HTTP endpoints of `aetherius run`, on the design document's ports:
//! `/health` (the process serves requests) and `/ready` (every watch synced,
//! every sink up; 503 with the reason otherwise) on `:8080`, `/metrics`
//! (Prometheus text format) on `:9090` — or everything on one port.
//!
//! A few scrapes and probes a minute need no HTTP framework: one request per
//! connection, answered and closed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics;
use crate::status::Status;
use crate::units::HumanDuration;
use serde::Deserialize;

/// `server:` — the HTTP endpoints and shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where `/health` and `/ready` are served (default `0.0.0.0:8080`, the
    /// design document's probe port). Empty: not served.
    pub health_listen: String,
    /// Where `/metrics` is served (default `0.0.0.0:9090`, the design
    /// document's). The same address as `health_listen`: one port serves
    /// all three. Empty: not served.
    pub metrics_listen: String,
    /// On SIGTERM, how long stopping the watches, draining the chains,
    /// flushing the sinks and writing the checkpoints may take before the
    /// process exits anyway (default 25s: within Kubernetes' default 30s
    /// termination grace period).
    pub shutdown_grace: HumanDuration,
    /// How often the config file and the plugin directory are checked for
    /// changes, which are then reloaded without a restart: plugins, chains
    /// and clusters (default 2s; the kubelet itself refreshes mounted
    /// ConfigMaps about once a minute).
    pub reload_interval: HumanDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            health_listen: "0.0.0.0:8080".into(),
            metrics_listen: "0.0.0.0:9090".into(),
            shutdown_grace: HumanDuration::from_secs(25),
            reload_interval: HumanDuration::from_secs(2),
        }
    }
}

/// Longest request head read; probes and scrapes send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// A client that sends nothing for this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for {endpoints}: {error}")]
pub struct ServerError {
    address: String,
    endpoints: Endpoints,
    error: std::io::Error,
}

/// Which endpoints one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub health: bool,
    pub metrics: bool,
}

impl std::fmt::Display for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.metrics, self.health) {
            (true, true) => "/metrics, /health, /ready and /status",
            (true, false) => "/metrics",
            (false, _) => "/health, /ready and /status",
        })
    }
}

/// The listeners `config` asks for, each with what it serves: one per
/// address (two, or one serving everything).
pub fn listeners(config: &ServerConfig) -> Vec<(&str, Endpoints)> {
    let (health, metrics) = (
        config.health_listen.as_str(),
        config.metrics_listen.as_str(),
    );
    let endpoints = |health, metrics| Endpoints { health, metrics };
    if !health.is_empty() && health == metrics {
        return vec![(health, endpoints(true, true))];
    }
    [
        (health, endpoints(true, false)),
        (metrics, endpoints(false, true)),
    ]
    .into_iter()
    .filter(|(address, _)| !address.is_empty())
    .collect()
}

/// Binds `address` for `endpoints`; the returned listener is served by
/// [`serve`].
pub async fn bind(address: &str, endpoints: Endpoints) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|error| ServerError {
            address: address.to_owned(),
            endpoints,
            error,
        })
}

/// Answers requests for `endpoints` until the task is dropped.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, status: Status) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving {endpoints}");
    }
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(answer(stream, peer, endpoints, status.clone()));
            }
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(%error, "cannot accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, peer: SocketAddr, endpoints: Endpoints, status: Status) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "bad HTTP request");
            return;
        }
        Err(_) => return,
    };
    let response = respond(&head, endpoints, &status);
    if let Err(error) = stream.write_all(&response).await {
        tracing::debug!(%peer, %error, "cannot write the HTTP response");
    }
    let _ = stream.shutdown().await;
}

/// Reads until the blank line that ends the request head.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The whole response to a request head.
fn respond(head: &str, endpoints: Endpoints, status: &Status) -> Vec<u8> {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let path = match path {
        "/metrics" if endpoints.metrics => path,
        "/health" | "/healthz" | "/livez" | "/ready" | "/readyz" | "/status"
            if endpoints.health =>
        {
            path
        }
        _ => "",
    };
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(),
        ),
        ("GET" | "HEAD", "/status") => ("200 OK", "application/json", status.to_json()),
        ("GET" | "HEAD", "/health" | "/healthz" | "/livez") => {
            ("200 OK", "text/plain; charset=utf-8", "ok\n".to_owned())
        }
        ("GET" | "HEAD", "/ready" | "/readyz") => match metrics::ready() {
            Ok(()) => ("200 OK", "text/plain; charset=utf-8", "ready\n".to_owned()),
            Err(why) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("not ready: {why}\n"),
            ),
        },
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            format!("not found: this port serves {endpoints}\n"),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_owned(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Endpoints = Endpoints {
        health: true,
        metrics: true,
    };

    fn respond_all(head: &str) -> Vec<u8> {
        respond(head, ALL, &Status::default())
    }

    fn status(head: &str) -> String {
        let response = String::from_utf8(respond_all(head)).unwrap();
        response.lines().next().unwrap().to_owned()
    }

    #[test]
    fn routes_the_three_endpoints() {
        assert_eq!(status("GET /health HTTP/1.1\r\n\r\n"), "HTTP/1.1 200 OK");
        assert_eq!(
            status("GET /nope HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status("POST /metrics HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        let metrics = String::from_utf8(respond_all("GET /metrics?x=1 HTTP/1.1\r\n\r\n")).unwrap();
        assert!(
            metrics.contains("# TYPE k8s_events_received_total counter"),
            "{metrics}"
        );
        let head = String::from_utf8(respond_all("HEAD /health HTTP/1.1\r\n\r\n")).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head:?}");
    }

    #[test]
    fn the_document_s_two_ports_or_one() {
        let config = ServerConfig::default();
        let two = listeners(&config);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].0, "0.0.0.0:8080");
        assert_eq!(two[1].0, "0.0.0.0:9090");
        let health = String::from_utf8(respond(
            "GET /metrics HTTP/1.1\r\n\r\n",
            two[0].1,
            &Status::default(),
        ))
        .unwrap();
        assert!(health.starts_with("HTTP/1.1 404"), "{health}");
        let metrics = String::from_utf8(respond(
            "GET /ready HTTP/1.1\r\n\r\n",
            two[1].1,
            &Status::default(),
        ))
        .unwrap();
        assert!(metrics.contains("serves /metrics\n"), "{metrics}");

        let one = ServerConfig {
            health_listen: "127.0.0.1:0".into(),
            metrics_listen: "127.0.0.1:0".into(),
            ..config.clone()
        };
        assert_eq!(listeners(&one), vec![("127.0.0.1:0", ALL)]);
        let none = ServerConfig {
            health_listen: String::new(),
            metrics_listen: String::new(),
            ..config
        };
        assert!(listeners(&none).is_empty());
    }
}
