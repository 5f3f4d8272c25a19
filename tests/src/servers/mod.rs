//! Real servers for integration tests (DESIGN.md §11): etcd with
//! kube-apiserver, nats-server with JetStream, and the Kafka-protocol broker
//! Tansu, each on free loopback ports with its files in a temp dir.
//!
//! `scripts/test-servers.sh` installs the binaries; this module finds them
//! through `servers.env` (see [`ServerBinary`]) and panics, telling you to run
//! the script, when one is missing — a test that needs a server never skips.
//!
//! Everything is synchronous (`std::process`), so it works from plain and
//! async tests alike. Each server runs in its own process group behind a
//! watchdog and is stopped on drop; even a server that is never dropped (in
//! a `static`) dies with the test process.
//!
//! Tests that leave the control plane as they found it share one per test
//! binary, each in namespaces of its own:
//! `KubeCluster::shared().fresh_namespace("shop")`.
//!
//! ```no_run
//! use aetherius_tests::servers::{KubeCluster, NatsServer, Tansu};
//!
//! let cluster = KubeCluster::start();
//! let dir = tempfile::tempdir().unwrap();
//! cluster.write_kubeconfig(&dir.path().join("kubeconfig"));
//! let nats = NatsServer::start();
//! let kafka = Tansu::start();
//! println!("{} {} {}", cluster.server_url(), nats.url(), kafka.bootstrap());
//! ```

mod binaries;
mod etcd;
mod http;
mod kube;
mod nats;
mod nats_jwt;
mod process;
mod shared;
mod tansu;
mod tls;

pub use binaries::{ServerBinary, cache_dir, image_rootfs, servers_env};
pub use etcd::Etcd;
pub use http::{HttpServer, Received};
pub use kube::{ApiResponse, KubeCluster};
pub use nats::NatsServer;
pub use nats_jwt::NatsCredentials;
pub use tansu::{KafkaMessage, Tansu};
pub use tls::TestCertificates;
