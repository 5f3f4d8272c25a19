//! [`TestBroker`] for Tansu: a topic of one partition per severity,
//! `k8s.CLUSTER.SEVERITY`, in memory.

use super::{Published, TestBroker};
use crate::servers::Tansu;

/// Every severity a StandardEvent can have: one topic each.
const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// A Tansu broker with the topics of one cluster.
pub struct Kafka {
    tansu: Tansu,
    cluster: String,
}

impl Kafka {
    /// The broker, for what only Kafka does.
    pub fn tansu(&self) -> &Tansu {
        &self.tansu
    }

    /// The cluster's topics, in the order of [`SEVERITIES`].
    pub fn topics(&self) -> Vec<String> {
        SEVERITIES
            .iter()
            .map(|severity| Self::destination(&self.cluster, severity))
            .collect()
    }

    fn create_topics(&self) {
        let topics = self.topics();
        self.tansu
            .create_topics(&topics.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

impl TestBroker for Kafka {
    const NAME: &'static str = "Kafka";
    const ONE_ORDER: bool = false;
    const DURABLE: bool = false;
    const TOO_LARGE: &'static [&'static str] = &["too large"];

    fn start(cluster: &str) -> Self {
        let kafka = Self {
            tansu: Tansu::start(),
            cluster: cluster.to_owned(),
        };
        kafka.create_topics();
        kafka
    }

    fn stop(&mut self) {
        self.tansu.stop();
    }

    /// Tansu comes back empty: the topics are created again (the sink
    /// meanwhile hears "unknown topic" and retries).
    fn restart(&mut self) {
        self.tansu.restart();
        self.create_topics();
    }

    fn sink_yaml(&self) -> String {
        format!(
            "kafka:\n  brokers: {}\n  topic: 'k8s.{{cluster}}.{{severity}}'\n  delivery_timeout: 1s\n",
            self.tansu.bootstrap()
        )
    }

    fn destination(cluster: &str, severity: &str) -> String {
        format!("k8s.{cluster}.{severity}")
    }

    fn read_all(&self) -> Vec<Published> {
        self.topics()
            .into_iter()
            .flat_map(|topic| {
                self.tansu
                    .read_topic(&topic)
                    .into_iter()
                    .map(move |message| Published {
                        destination: topic.clone(),
                        id: message.headers.get("aetherius-id").cloned(),
                        payload: message.payload,
                    })
            })
            .collect()
    }
}
