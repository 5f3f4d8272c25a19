//! nats-server with JetStream on loopback, its store in a temp dir.

use std::time::Duration;

use super::binaries::ServerBinary;
use super::process::{ServerProcess, free_port, loopback};

/// How long nats-server gets to accept clients; it takes well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running nats-server with JetStream, removed with its store on drop.
pub struct NatsServer {
    // Field order is drop order: the server stops before its store is removed.
    process: Option<ServerProcess>,
    port: u16,
    /// More command-line options (auth, TLS), kept across restarts.
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts nats-server with JetStream on a free loopback port and waits
    /// until it accepts connections.
    ///
    /// # Panics
    ///
    /// If the binary is missing (run `scripts/test-servers.sh`) or the server
    /// does not start; the message carries the end of its log.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with more nats-server options: `--auth
    /// TOKEN`, `--user U --pass P`, `--tls --tlscert F --tlskey F`, ...
    pub fn start_with(extra_args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aetherius-nats.")
            .tempdir()
            .expect("create a temp dir for nats-server");
        let mut server = Self {
            process: None,
            port: free_port(),
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            dir,
        };
        server.restart();
        server
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server; its JetStream store stays for [`restart`](Self::restart).
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn stop(&mut self) {
        self.process
            .take()
            .expect("NatsServer::stop: nats-server is not running")
            .stop();
    }

    /// Starts the server again (stopping it first if it runs) on the same
    /// port with the same JetStream store, and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
        let mut args = vec![
            "--addr=127.0.0.1".to_owned(),
            format!("--port={}", self.port),
            // Stable across restarts, as JetStream's metadata records it.
            "--server_name=aetherius-test".to_owned(),
            "--jetstream".to_owned(),
            format!(
                "--store_dir={}",
                self.dir.path().join("jetstream").display()
            ),
        ];
        args.extend(self.extra_args.iter().cloned());
        let mut process = ServerProcess::spawn(
            "nats-server",
            &ServerBinary::NatsServer.path(),
            &args,
            self.dir.path(),
            &self.dir.path().join("nats-server.log"),
        );
        process.wait_for_port(loopback(self.port), START_TIMEOUT);
        self.process = Some(process);
    }

    /// The end of nats-server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        super::process::log_tail(&self.dir.path().join("nats-server.log"), 4096)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpStream;

    use super::*;

    /// Speaks just enough of the NATS text protocol to check the server.
    struct Connection {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
        /// The server's INFO line, read on connect.
        info: String,
    }

    impl Connection {
        fn open(port: u16) -> Self {
            let stream = TcpStream::connect(loopback(port)).expect("connect to nats-server");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("set a read timeout");
            let writer = stream.try_clone().expect("clone the stream");
            let mut connection = Self {
                reader: BufReader::new(stream),
                writer,
                info: String::new(),
            };
            connection.info = connection.line();
            connection.send("CONNECT {\"verbose\":false}\r\nSUB _INBOX.test 1\r\n");
            connection
        }

        fn send(&mut self, text: &str) {
            self.writer
                .write_all(text.as_bytes())
                .expect("write to nats-server");
        }

        fn line(&mut self) -> String {
            let mut line = String::new();
            self.reader
                .read_line(&mut line)
                .expect("read from nats-server");
            line
        }

        /// Sends a JetStream API request and returns the JSON reply.
        fn request(&mut self, subject: &str, payload: &str) -> serde_json::Value {
            self.send(&format!(
                "PUB {subject} _INBOX.test {}\r\n{payload}\r\n",
                payload.len()
            ));
            loop {
                let line = self.line();
                if line.starts_with("PING") {
                    self.send("PONG\r\n");
                } else if line.starts_with("MSG ") {
                    let reply = self.line();
                    return serde_json::from_str(&reply).expect("a JetStream reply is JSON");
                } else {
                    assert!(!line.is_empty(), "nats-server closed the connection");
                }
            }
        }
    }

    #[test]
    fn serves_jetstream_and_keeps_its_store_across_restarts() {
        let mut server = NatsServer::start();
        assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
        let mut connection = Connection::open(server.port());
        assert!(connection.info.starts_with("INFO "), "{}", connection.info);
        assert!(
            connection.info.contains("\"jetstream\":true"),
            "{}",
            connection.info
        );

        let created = connection.request(
            "$JS.API.STREAM.CREATE.EVENTS",
            r#"{"name":"EVENTS","subjects":["events.>"],"storage":"file"}"#,
        );
        assert_eq!(created["config"]["name"], "EVENTS", "{created}");

        server.stop();
        assert!(
            TcpStream::connect(loopback(server.port())).is_err(),
            "stopped means not listening"
        );
        server.restart();

        let mut connection = Connection::open(server.port());
        let info = connection.request("$JS.API.STREAM.INFO.EVENTS", "");
        assert_eq!(
            info["config"]["name"], "EVENTS",
            "the store survived: {info}"
        );
    }
}
