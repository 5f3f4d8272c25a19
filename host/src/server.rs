//! The HTTP endpoint of `aetherius run`: `/metrics` (Prometheus text
//! format), `/health` (the process serves requests) and `/ready` (every
//! watch synced, every sink up; 503 with the reason otherwise).
//!
//! A few scrapes and probes a minute need no HTTP framework: one request per
//! connection, answered and closed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics;
use crate::units::HumanDuration;
use serde::Deserialize;

/// `server:` — the HTTP endpoint and shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where `/metrics`, `/health` and `/ready` are served (default
    /// `0.0.0.0:9464`). Empty: no HTTP endpoint.
    pub listen: String,
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
            listen: "0.0.0.0:9464".into(),
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
#[error("cannot listen on {address} for /metrics, /health and /ready: {error}")]
pub struct ServerError {
    address: String,
    error: std::io::Error,
}

/// Binds `address`; the returned listener is served by [`serve`].
pub async fn bind(address: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|error| ServerError {
            address: address.to_owned(),
            error,
        })
}

/// Answers requests until the task is dropped.
pub async fn serve(listener: TcpListener) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /metrics, /health and /ready");
    }
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(answer(stream, peer));
            }
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(%error, "cannot accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, peer: SocketAddr) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "bad HTTP request");
            return;
        }
        Err(_) => return,
    };
    let response = respond(&head);
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
fn respond(head: &str) -> Vec<u8> {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(),
        ),
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
            "not found: try /metrics, /health or /ready\n".to_owned(),
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

    fn status(head: &str) -> String {
        let response = String::from_utf8(respond(head)).unwrap();
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
        let metrics = String::from_utf8(respond("GET /metrics?x=1 HTTP/1.1\r\n\r\n")).unwrap();
        assert!(
            metrics.contains("# TYPE k8s_events_received_total counter"),
            "{metrics}"
        );
        let head = String::from_utf8(respond("HEAD /health HTTP/1.1\r\n\r\n")).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head:?}");
    }
}
