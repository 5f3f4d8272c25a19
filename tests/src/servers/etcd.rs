//! A single-member etcd on loopback, the store behind [`KubeCluster`](super::KubeCluster).

use std::path::Path;
use std::time::Duration;

use super::binaries::ServerBinary;
use super::process::{ServerProcess, free_port, loopback, run};

/// How long etcd gets to accept clients; it takes well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd whose data lives in a directory of the caller's.
pub struct Etcd {
    endpoint: String,
    process: ServerProcess,
}

impl Etcd {
    /// Starts etcd with its data in `dir/etcd-data` and its log in
    /// `dir/etcd.log`, on free loopback client and peer ports.
    pub(crate) fn start(dir: &Path) -> Self {
        let client = loopback(free_port());
        let peer = loopback(free_port());
        let endpoint = format!("http://{client}");
        let peer_url = format!("http://{peer}");
        let args = [
            "--name=test".to_owned(),
            format!("--data-dir={}", dir.join("etcd-data").display()),
            format!("--listen-client-urls={endpoint}"),
            format!("--advertise-client-urls={endpoint}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=test={peer_url}"),
            "--initial-cluster-state=new".to_owned(),
            // Old revisions stay until a test compacts them (`compact`).
            "--auto-compaction-retention=0".to_owned(),
        ];
        let mut process = ServerProcess::spawn(
            "etcd",
            &ServerBinary::Etcd.path(),
            &args,
            dir,
            &dir.join("etcd.log"),
        );
        process.wait_for_port(client, START_TIMEOUT);
        Self { endpoint, process }
    }

    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// etcd's current revision: what a Kubernetes resourceVersion counts.
    pub fn revision(&self) -> i64 {
        let status = self.etcdctl(&["endpoint", "status", "--write-out=json"]);
        parse_revision(&status).unwrap_or_else(|e| {
            panic!("read the revision from `etcdctl endpoint status` ({e}): {status}")
        })
    }

    /// Compacts etcd so that every resourceVersion observed before this call
    /// answers 410 Gone to a watch or an exact-version list, and waits until
    /// that is done. Returns the revision compacted at.
    ///
    /// A watch from revision R starts at R + 1, so compacting at the current
    /// revision would leave the latest one watchable; a put and a delete of
    /// a key outside the API server's `/registry` first move the current
    /// revision two past anything a client has seen.
    pub fn compact(&self) -> i64 {
        const MARKER: &str = "/aetherius-test/compaction-marker";
        self.etcdctl(&["put", MARKER, "1"]);
        self.etcdctl(&["del", MARKER]);
        let revision = self.revision();
        self.etcdctl(&["compact", &revision.to_string(), "--physical"]);
        revision
    }

    /// Stops etcd through a shared reference (see
    /// [`KubeCluster::shared`](super::KubeCluster::shared)).
    pub(crate) fn terminate(&self) {
        self.process.terminate();
    }

    /// The end of etcd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    fn etcdctl(&self, args: &[&str]) -> String {
        let endpoints = format!("--endpoints={}", self.endpoint);
        let args: Vec<&str> = [endpoints.as_str(), "--command-timeout=10s"]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        run(&ServerBinary::Etcdctl.path(), &args)
    }
}

/// The revision in `etcdctl endpoint status --write-out=json`'s answer:
/// `[{"Endpoint": ..., "Status": {"header": {"revision": N, ...}, ...}}]`.
fn parse_revision(status: &str) -> Result<i64, String> {
    let json: serde_json::Value = serde_json::from_str(status).map_err(|e| e.to_string())?;
    json.pointer("/0/Status/header/revision")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| "no [0].Status.header.revision".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_revision_from_endpoint_status() {
        let status = r#"[{"Endpoint":"http://127.0.0.1:23790","Status":{"header":{"cluster_id":324952591200643719,"member_id":3319814642761637952,"revision":200,"raft_term":2},"version":"3.4.23","dbSize":221184}}]"#;
        assert_eq!(parse_revision(status), Ok(200));
        assert!(parse_revision("[]").is_err());
    }

    #[test]
    fn starts_answers_and_compacts() {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let etcd = Etcd::start(dir.path());
        let before = etcd.revision();
        assert!(before >= 1, "a fresh etcd is at revision 1, got {before}");
        assert_eq!(etcd.compact(), before + 2);
        assert_eq!(etcd.revision(), before + 2);
    }
}
