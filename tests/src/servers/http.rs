//! A small HTTP/1.1 server on loopback that receives what a webhook sink
//! POSTs: it keeps every request it takes, and can be told to answer with
//! errors, to refuse some bodies, to stop (closing the connections it has)
//! and to start again on the same port; over TLS (rustls, with the test
//! CA's server certificate), optionally asking for a client certificate.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::TestCertificates;
use super::process::{free_port, loopback};

/// One request the server took (answered 2xx).
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The path and query.
    pub target: String,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The value of header `name` (lowercase), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers, besides 200.
#[derive(Debug, Default)]
struct Behaviour {
    /// Statuses for the next requests, in order (not kept).
    next: VecDeque<u16>,
    /// A body larger than this is answered 413 (not kept).
    max_body: Option<usize>,
    /// A body holding this text is answered 400 (not kept).
    refuse_containing: Option<String>,
    /// Requests answered with something else than 2xx, by status.
    refused: Vec<u16>,
}

#[derive(Debug, Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    behaviour: Mutex<Behaviour>,
    /// Set while stopped: connection threads close their sockets.
    stopped: AtomicBool,
}

/// The server; see the module's documentation.
pub struct HttpServer {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl HttpServer {
    /// Starts it on a free loopback port.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts it on a free loopback port, speaking TLS with `certificates`'
    /// server certificate; with `client_certificate`, a client must show a
    /// certificate signed by their CA.
    pub fn start_tls(certificates: &TestCertificates, client_certificate: bool) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions");
        let builder = if client_certificate {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_file_iter(&certificates.ca).expect("read the CA")
            {
                roots
                    .add(certificate.expect("a CA certificate"))
                    .expect("add the CA");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .expect("a client verifier");
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let chain = CertificateDer::pem_file_iter(&certificates.cert)
            .expect("read the server certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("the server certificate");
        let key = PrivateKeyDer::from_pem_file(&certificates.key).expect("read the server key");
        let config = builder
            .with_single_cert(chain, key)
            .expect("the server certificate and key");
        Self::start_with(Some(Arc::new(config)))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let mut server = Self {
            port: free_port(),
            shared: Arc::default(),
            acceptor: None,
            tls,
        };
        server.listen();
        server
    }

    /// `http://127.0.0.1:PORT`, or `https://` over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn listen(&mut self) {
        let listener = TcpListener::bind(loopback(self.port))
            .unwrap_or_else(|e| panic!("listen on 127.0.0.1:{}: {e}", self.port));
        self.shared.stopped.store(false, Ordering::SeqCst);
        let shared = self.shared.clone();
        let tls = self.tls.clone();
        self.acceptor = Some(thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                let shared = shared.clone();
                let tls = tls.clone();
                thread::spawn(move || match tls {
                    None => serve(stream, &shared),
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(connection, stream), &shared);
                    }
                });
            }
        }));
    }

    /// Stops listening and closes every connection: a client sees its
    /// connection refused or reset until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which sees the flag and drops the listener.
        let _ = TcpStream::connect(loopback(self.port));
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().expect("the acceptor thread");
        }
        // Connection threads poll the flag every 50 ms.
        thread::sleep(Duration::from_millis(150));
    }

    /// Listens again on the same port; what it received is kept.
    pub fn restart(&mut self) {
        self.listen();
    }

    /// Answers the next `count` requests with `status`, keeping none of them.
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut behaviour = self.shared.behaviour.lock().unwrap();
        behaviour.next.extend(std::iter::repeat_n(status, count));
    }

    /// Answers 413 to a body over `bytes`.
    pub fn limit_body(&self, bytes: usize) {
        self.shared.behaviour.lock().unwrap().max_body = Some(bytes);
    }

    /// Answers 400 to a body holding `text`.
    pub fn refuse_containing(&self, text: &str) {
        self.shared.behaviour.lock().unwrap().refuse_containing = Some(text.to_owned());
    }

    /// The statuses of the requests answered other than 2xx, in order.
    pub fn refused(&self) -> Vec<u16> {
        self.shared.behaviour.lock().unwrap().refused.clone()
    }

    /// The requests it took, in order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.stop();
        }
    }
}

/// Serves one connection's requests (keep-alive) until the client closes
/// it or the server stops. The socket has a short read timeout, so that a
/// stop is seen while the connection is idle.
fn serve<S: Read + Write>(stream: S, shared: &Shared) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader, shared) {
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let status = answer(&request, shared);
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            413 => "Payload Too Large",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let body = if status == 200 {
            String::from("{\"ok\":true}")
        } else if status == 413 {
            format!("request body of {} bytes is too large", request.body.len())
        } else {
            format!("test server answers {status}")
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let writer = reader.get_mut();
        if writer.write_all(response.as_bytes()).is_err() || writer.flush().is_err() {
            break;
        }
    }
}

/// What to answer, keeping the request if it is 200.
fn answer(request: &Received, shared: &Shared) -> u16 {
    let mut behaviour = shared.behaviour.lock().unwrap();
    let status = if let Some(status) = behaviour.next.pop_front() {
        status
    } else if behaviour
        .max_body
        .is_some_and(|max| request.body.len() > max)
    {
        413
    } else if behaviour
        .refuse_containing
        .as_ref()
        .is_some_and(|text| String::from_utf8_lossy(&request.body).contains(text.as_str()))
    {
        400
    } else {
        200
    };
    if status == 200 {
        shared.received.lock().unwrap().push(request.clone());
    } else {
        behaviour.refused.push(status);
    }
    status
}

/// Reads one request; `None` when the connection ends, breaks, or the
/// server stops while waiting.
fn read_request<S: Read>(reader: &mut BufReader<S>, shared: &Shared) -> Option<Received> {
    let mut head = Vec::new();
    // What a read timeout interrupted stays here for the next read.
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) if !line.ends_with('\n') => return None,
            Ok(_) => {
                let complete = std::mem::take(&mut line);
                let complete = complete.trim_end();
                if complete.is_empty() {
                    if head.is_empty() {
                        continue;
                    }
                    break;
                }
                head.push(complete.to_owned());
            }
            Err(e) if idle(&e) => {
                if shared.stopped.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    let mut lines = head.into_iter();
    let request_line = lines.next()?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let mut read = 0;
    while read < length {
        match reader.read(&mut body[read..]) {
            Ok(0) => return None,
            Ok(n) => read += n,
            Err(e) if idle(&e) => {
                if shared.stopped.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    Some(Received {
        method,
        target,
        headers,
        body,
    })
}

/// A read that timed out: nothing arrived for a while.
fn idle(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
