//! Tansu, a broker speaking the Kafka protocol, with in-memory storage on
//! loopback. (Apache Kafka itself cannot be installed on these machines.)
//! Tansu serves no TLS: [`Tansu::start_tls`] puts Debian's stunnel in front
//! of it, terminating TLS (with client certificates) on the port the broker
//! advertises, so that clients speak TLS to every address they are given.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::TestCertificates;
use super::binaries::ServerBinary;
use super::process::{ServerProcess, free_port, loopback};

/// stunnel terminating TLS for Tansu, and what a client needs to pass it.
struct TlsFront {
    /// Held, not read: stunnel stops when it is dropped.
    _process: ServerProcess,
    port: u16,
    certificates: TestCertificates,
}

/// How long Tansu gets to accept clients; it takes well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Tansu broker; its topics live in memory and die with it (also
/// across [`restart`](Tansu::restart): create them again).
pub struct Tansu {
    // Field order is drop order: the TLS front and the broker stop before
    // their dir is removed.
    tls: Option<TlsFront>,
    process: Option<ServerProcess>,
    port: u16,
    /// Its working directory and log; held so that they live as long as it.
    dir: tempfile::TempDir,
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
        let mut tansu = Self {
            tls: None,
            process: None,
            port: free_port(),
            dir,
        };
        tansu.restart();
        tansu
    }

    /// Starts Tansu behind stunnel: clients reach it over TLS only, with a
    /// certificate `certificates`' CA signed (the server's: `cert`/`key`).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), or if stunnel does not start.
    pub fn start_tls(certificates: &TestCertificates) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aetherius-tansu.")
            .tempdir()
            .expect("create a temp dir for tansu");
        let (port, tls_port) = (free_port(), free_port());
        let config = dir.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{port}\ncert = {}\nkey = {}\nCAfile = {}\nverifyChain = yes\nrequireCert = yes\n",
                certificates.cert.display(),
                certificates.key.display(),
                certificates.ca.display()
            ),
        )
        .expect("write stunnel.conf");
        let mut front = ServerProcess::spawn(
            "stunnel",
            &ServerBinary::Stunnel.path(),
            &[config.display().to_string()],
            dir.path(),
            &dir.path().join("stunnel.log"),
        );
        front.wait_for_port(loopback(tls_port), START_TIMEOUT);
        let mut tansu = Self {
            tls: Some(TlsFront {
                _process: front,
                port: tls_port,
                certificates: certificates.clone(),
            }),
            process: None,
            port,
            dir,
        };
        tansu.restart();
        tansu
    }

    /// A client of the broker: plain, or over TLS with the test client
    /// certificate.
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        if let Some(tls) = &self.tls {
            let certificates = &tls.certificates;
            config
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", certificates.ca.display().to_string())
                .set(
                    "ssl.certificate.location",
                    certificates.client_cert.display().to_string(),
                )
                .set(
                    "ssl.key.location",
                    certificates.client_key.display().to_string(),
                );
        }
        config
    }

    /// Stops the broker (its topics and messages are gone with it).
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn stop(&mut self) {
        self.process
            .take()
            .expect("Tansu::stop: tansu is not running")
            .stop();
    }

    /// Starts the broker again (stopping it first if it runs) on the same
    /// port, empty, and waits until it accepts connections.
    pub fn restart(&mut self) {
        if let Some(process) = self.process.take() {
            process.stop();
        }
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        // What clients are told to connect to in metadata answers: the TLS
        // front's port when there is one.
        let advertised = match &self.tls {
            Some(tls) => format!("tcp://127.0.0.1:{}", tls.port),
            None => listener.clone(),
        };
        let args = [
            "broker".to_owned(),
            "--cluster-id=aetherius-test".to_owned(),
            format!("--listener-url={listener}"),
            format!("--advertised-listener-url={advertised}"),
            "--storage-engine=memory://tansu/".to_owned(),
        ];
        let dir = self.dir.path();
        // Tansu reads a `.env` in its working directory; the empty temp dir
        // keeps a stray one from changing its settings.
        let mut process = ServerProcess::spawn(
            "tansu",
            &ServerBinary::Tansu.path(),
            &args,
            dir,
            &dir.join("tansu.log"),
        );
        process.wait_for_port(loopback(self.port), START_TIMEOUT);
        self.process = Some(process);
    }

    /// The bootstrap address for Kafka clients, `127.0.0.1:PORT` (the TLS
    /// port, behind [`start_tls`](Self::start_tls)).
    pub fn bootstrap(&self) -> String {
        let port = self.tls.as_ref().map_or(self.port, |tls| tls.port);
        format!("127.0.0.1:{port}")
    }

    /// Creates topics of one partition each (those that exist already are
    /// left as they are).
    ///
    /// # Panics
    ///
    /// If the broker does not create one.
    pub fn create_topics(&self, names: &[&str]) {
        let admin: AdminClient<DefaultClientContext> =
            self.client().create().expect("create a Kafka admin client");
        let topics: Vec<NewTopic> = names
            .iter()
            .map(|name| NewTopic::new(name, 1, TopicReplication::Fixed(1)))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = runtime
            .block_on(admin.create_topics(&topics, &options))
            .unwrap_or_else(|e| panic!("create topics {names:?}: {e}; log:\n{}", self.log_tail()));
        for result in results {
            match result {
                Ok(_) => {}
                // A producer that reached the broker first may have had it
                // created already (after a restart of the in-memory broker).
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => panic!("create topic {topic}: {code}"),
            }
        }
    }

    /// Every message of `topic`, from the beginning; in order for a topic of
    /// one partition (as [`create_topics`](Self::create_topics) makes them).
    /// A topic a producer had the broker create on its own may have more:
    /// all are read, one after the other.
    ///
    /// # Panics
    ///
    /// If the topic cannot be read within 30 seconds.
    pub fn read_topic(&self, topic: &str) -> Vec<KafkaMessage> {
        let consumer: BaseConsumer = self
            .client()
            // Not joined (assign, below), but librdkafka wants one.
            .set("group.id", "aetherius-test-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .expect("create a Kafka consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(1, |t| t.partitions().len().max(1));
        let mut messages = Vec::new();
        for partition in 0..partitions as i32 {
            messages.extend(self.read_partition(&consumer, topic, partition));
        }
        messages
    }

    fn read_partition(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        partition: i32,
    ) -> Vec<KafkaMessage> {
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assign a partition");
        consumer.assign(&assignment).expect("assign");
        let mut messages = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Until the end of the partition, as the broker reports it.
        loop {
            assert!(
                Instant::now() < deadline,
                "read {} messages of {topic}[{partition}] and no end in sight",
                messages.len()
            );
            let message = match consumer.poll(Duration::from_millis(200)) {
                None => continue,
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => panic!("read {topic}: {e}"),
                Some(Ok(message)) => message,
            };
            let headers = message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            messages.push(KafkaMessage {
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                headers,
                payload: serde_json::from_slice(message.payload().unwrap_or_default())
                    .unwrap_or(serde_json::Value::Null),
            });
        }
        messages
    }

    /// The end of Tansu's log, for failure messages.
    pub fn log_tail(&self) -> String {
        super::process::log_tail(&self.dir.path().join("tansu.log"), 4096)
    }
}

/// One message read from a topic.
#[derive(Debug, Clone)]
pub struct KafkaMessage {
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// The payload as JSON (`null` if it is not).
    pub payload: serde_json::Value,
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
