//! The HTTP endpoints of `aetherius run`, on the design document's ports:
//! `/health` (the process serves requests) and `/ready` (every watch synced,
//! every sink up; 503 with the reason otherwise) on `:8080`, `/metrics`
//! (Prometheus text format) on `:9090` — or everything on one port.
//!
//! HTTP/1.1 by hyper (already in the tree through kube's client): keep-alive
//! for scrapers, a deadline on request heads and idle connections, a bounded
//! number of connections.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

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

/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a request head — and how long an idle
/// keep-alive connection stays open waiting for its next request: hyper
/// starts this timer whenever it waits for a head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// After this long a connection is asked to close once its current request
/// is answered (a scraper then opens a new one) ...
const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
/// ... and this much later it is dropped: a client that stopped reading a
/// response cannot hold a connection for ever.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

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

/// Answers requests for `endpoints` until the task is dropped: HTTP/1.1
/// with keep-alive, at most [`MAX_CONNECTIONS`] at once.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, status: Status) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving {endpoints}");
    }
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        // Past the limit, connections wait in the accept queue.
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        match listener.accept().await {
            Ok((stream, peer)) => {
                let status = status.clone();
                tokio::spawn(async move {
                    connection(stream, peer, endpoints, status).await;
                    drop(slot);
                });
            }
            Err(error) => {
                // Out of file descriptors, say: wait rather than spin.
                tracing::warn!(%error, "cannot accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection until the client closes it, it idles past
/// [`HEAD_TIMEOUT`], or it outlives [`CONNECTION_LIFETIME`].
async fn connection(stream: TcpStream, peer: SocketAddr, endpoints: Endpoints, status: Status) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = route(request.method(), request.uri().path(), endpoints, &status);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {
            connection.as_mut().graceful_shutdown();
            tokio::time::timeout(CLOSE_GRACE, connection.as_mut())
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}

/// Longest request head read; probes and scrapes send a few hundred bytes
/// (hyper's smallest allowed read buffer).
const MAX_HEAD: usize = 8 * 1024;

/// The response to `method path` on a listener serving `endpoints`.
fn route(
    method: &Method,
    path: &str,
    endpoints: Endpoints,
    status: &Status,
) -> Response<Full<Bytes>> {
    let path = match path {
        "/metrics" if endpoints.metrics => path,
        "/health" | "/healthz" | "/livez" | "/ready" | "/readyz" | "/status"
            if endpoints.health =>
        {
            path
        }
        _ => "",
    };
    const TEXT: &str = "text/plain; charset=utf-8";
    let (code, content_type, body) = if method != Method::GET && method != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET and HEAD\n".to_owned(),
        )
    } else {
        match path {
            "/metrics" => (StatusCode::OK, metrics::CONTENT_TYPE, metrics::render()),
            "/status" => (StatusCode::OK, "application/json", status.to_json()),
            "/health" | "/healthz" | "/livez" => (StatusCode::OK, TEXT, "ok\n".to_owned()),
            "/ready" | "/readyz" => match metrics::ready() {
                Ok(()) => (StatusCode::OK, TEXT, "ready\n".to_owned()),
                Err(why) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    format!("not ready: {why}\n"),
                ),
            },
            _ => (
                StatusCode::NOT_FOUND,
                TEXT,
                format!("not found: this port serves {endpoints}\n"),
            ),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if code == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ALL: Endpoints = Endpoints {
        health: true,
        metrics: true,
    };

    fn code(method: Method, path: &str, endpoints: Endpoints) -> u16 {
        route(&method, path, endpoints, &Status::default())
            .status()
            .as_u16()
    }

    async fn body(method: Method, path: &str) -> String {
        let response = route(&method, path, ALL, &Status::default());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn routes_the_three_endpoints() {
        assert_eq!(code(Method::GET, "/health", ALL), 200);
        assert_eq!(code(Method::GET, "/nope", ALL), 404);
        assert_eq!(code(Method::POST, "/metrics", ALL), 405);
        let metrics = body(Method::GET, "/metrics").await;
        assert!(
            metrics.contains("# TYPE aetherius_build_info gauge")
                || metrics.contains("# TYPE aetherius_ready gauge"),
            "{metrics}"
        );
    }

    #[test]
    fn the_document_s_two_ports_or_one() {
        let config = ServerConfig::default();
        let two = listeners(&config);
        assert_eq!(two.len(), 2);
        assert_eq!(two[0].0, "0.0.0.0:8080");
        assert_eq!(two[1].0, "0.0.0.0:9090");
        assert_eq!(code(Method::GET, "/metrics", two[0].1), 404);
        assert_eq!(code(Method::GET, "/ready", two[1].1), 404);
        assert_eq!(code(Method::GET, "/metrics", two[1].1), 200);

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

    async fn started() -> SocketAddr {
        let listener = bind("127.0.0.1:0", ALL).await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, ALL, Status::default()));
        address
    }

    /// Reads one response with a Content-Length body off `stream`.
    async fn response(stream: &mut TcpStream) -> String {
        let mut read = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&read));
            read.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&read).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap();
                if body.len() >= length {
                    return text;
                }
            }
        }
    }

    #[tokio::test]
    async fn keeps_the_connection_for_the_next_scrape() {
        let mut stream = TcpStream::connect(started().await).await.unwrap();
        for path in ["/metrics", "/health", "/ready", "/status"] {
            stream
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let answer = response(&mut stream).await;
            assert!(
                answer.starts_with("HTTP/1.1 200") || path == "/ready",
                "{path}: {answer}"
            );
        }
        // HEAD: the head only (its Content-Length, no body), and the
        // connection still usable: the GET behind it is the next thing read.
        stream
            .write_all(
                b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
            )
            .await
            .unwrap();
        let mut read = String::new();
        while read.matches("HTTP/1.1 200 OK").count() < 2 || !read.ends_with("ok\n") {
            let mut buffer = [0u8; 4096];
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "closed after {read:?}");
            read.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        let (head, get) = read.split_once("\r\n\r\n").unwrap();
        assert!(
            head.to_ascii_lowercase().contains("content-length: 3"),
            "{head}"
        );
        assert!(
            get.starts_with("HTTP/1.1 200 OK"),
            "a body after HEAD: {get:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn drops_a_client_that_sends_nothing() {
        let mut stream = TcpStream::connect(started().await).await.unwrap();
        let sent = tokio::time::Instant::now();
        stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        // Paused time runs ahead while the server waits for the rest.
        let mut buffer = Vec::new();
        let _ = stream.read_to_end(&mut buffer).await;
        let answer = String::from_utf8_lossy(&buffer);
        assert!(!answer.contains("200 OK"), "{answer}");
        assert!(
            sent.elapsed() >= HEAD_TIMEOUT,
            "closed after {:?}",
            sent.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn serves_a_bounded_number_of_connections() {
        let address = started().await;
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut stream = TcpStream::connect(address).await.unwrap();
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            response(&mut stream).await;
            held.push(stream);
        }
        // One more is accepted by the kernel but not served ...
        let mut waiting = TcpStream::connect(address).await.unwrap();
        waiting
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 64];
        let early =
            tokio::time::timeout(Duration::from_millis(200), waiting.read(&mut buffer)).await;
        assert!(early.is_err(), "served past the limit");
        // ... until one of the others closes.
        drop(held.pop());
        assert!(response(&mut waiting).await.starts_with("HTTP/1.1 200 OK"));
    }
}
