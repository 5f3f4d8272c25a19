//! Tansu, a broker speaking the Kafka protocol, with in-memory storage on
//! loopback. (Apache Kafka itself cannot be installed on these machines.)

use std::time::Duration;

use super::binaries::ServerBinary;
use super::process::{ServerProcess, free_port, loopback};

/// How long Tansu gets to accept clients; it takes well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Tansu broker; its topics live in memory and die with it.
pub struct Tansu {
    // Field order is drop order: the broker stops before its dir is removed.
    process: ServerProcess,
    port: u16,
    /// Its working directory and log; held so that they live as long as it.
    _dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts a Tansu broker on a free loopback port and waits until it
    /// accepts connections.
    ///
    /// # Panics
    ///
    /// If the binary is missing (run `scripts/test-servers.sh`) or the broker
    /// does not start; the message carries the end of its log.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aetherius-tansu.")
            .tempdir()
            .expect("create a temp dir for tansu");
        let port = free_port();
        let listener = format!("tcp://127.0.0.1:{port}");
        let args = [
            "broker".to_owned(),
            "--cluster-id=aetherius-test".to_owned(),
            format!("--listener-url={listener}"),
            // What clients are told to connect to in metadata answers.
            format!("--advertised-listener-url={listener}"),
            "--storage-engine=memory://tansu/".to_owned(),
        ];
        // Tansu reads a `.env` in its working directory; the empty temp dir
        // keeps a stray one from changing its settings.
        let mut process = ServerProcess::spawn(
            "tansu",
            &ServerBinary::Tansu.path(),
            &args,
            dir.path(),
            &dir.path().join("tansu.log"),
        );
        process.wait_for_port(loopback(port), START_TIMEOUT);
        Self {
            process,
            port,
            _dir: dir,
        }
    }

    /// The bootstrap address for Kafka clients, `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The end of Tansu's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// An ApiVersions v0 request (api key 18), the first thing every Kafka
    /// client sends: size, api key, version, correlation id, client id.
    fn api_versions_request(correlation_id: i32) -> Vec<u8> {
        let client_id = b"aetherius-test";
        let mut body = Vec::new();
        body.extend_from_slice(&18i16.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&correlation_id.to_be_bytes());
        body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        body.extend_from_slice(client_id);
        let mut request = (body.len() as i32).to_be_bytes().to_vec();
        request.extend_from_slice(&body);
        request
    }

    #[test]
    fn answers_the_kafka_protocol() {
        let tansu = Tansu::start();
        let mut stream = TcpStream::connect(tansu.bootstrap()).expect("connect to tansu");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a read timeout");
        stream
            .write_all(&api_versions_request(42))
            .expect("send ApiVersions");

        let mut size = [0; 4];
        stream
            .read_exact(&mut size)
            .unwrap_or_else(|e| panic!("read the answer ({e}); log:\n{}", tansu.log_tail()));
        let mut answer = vec![0; i32::from_be_bytes(size) as usize];
        stream
            .read_exact(&mut answer)
            .expect("read the answer's body");
        assert_eq!(
            answer[0..4],
            42i32.to_be_bytes(),
            "the correlation id comes back"
        );
        assert_eq!(answer[4..6], 0i16.to_be_bytes(), "error code NONE");
    }
}
