//! Tansu, a broker speaking the Kafka protocol, with in-memory storage on
//! loopback. (Apache Kafka itself cannot be installed on these machines.)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::binaries::ServerBinary;
use super::process::{ServerProcess, free_port, loopback};

/// How long Tansu gets to accept clients; it takes well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Tansu broker; its topics live in memory and die with it (also
/// across [`restart`](Tansu::restart): create them again).
pub struct Tansu {
    // Field order is drop order: the broker stops before its dir is removed.
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
            process: None,
            port: free_port(),
            dir,
        };
        tansu.restart();
        tansu
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
        let args = [
            "broker".to_owned(),
            "--cluster-id=aetherius-test".to_owned(),
            format!("--listener-url={listener}"),
            // What clients are told to connect to in metadata answers.
            format!("--advertised-listener-url={listener}"),
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

    /// The bootstrap address for Kafka clients, `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates topics of one partition each (those that exist already are
    /// left as they are).
    ///
    /// # Panics
    ///
    /// If the broker does not create one.
    pub fn create_topics(&self, names: &[&str]) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .expect("create a Kafka admin client");
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
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
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
