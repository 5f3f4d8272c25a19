//! `/status` and `aetherius status`: per cluster, what the design document's
//! multi-cluster manager reports (`GetStatus`) and more — whether this
//! replica watches it (leader, standby or alone), whether every watch is
//! synced, the checkpoint and its age, the event counters, the last error.
//!
//! Counters and watch states are read from the metrics (one source of truth
//! for `/metrics`, `/ready` and `/status`); what metrics cannot hold — the
//! checkpoint's resourceVersions, the last error's text — comes from the
//! checkpoint stores and from the watches through a [`Status`] handle.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::checkpoint::CheckpointStores;
use crate::metrics;

/// What the running clusters report for `/status`. Cheap to clone; the
/// clones share it.
#[derive(Debug, Clone, Default)]
pub struct Status {
    stores: CheckpointStores,
    clusters: Arc<Mutex<BTreeMap<String, Notes>>>,
}

#[derive(Debug, Clone, Default)]
struct Notes {
    leader_election: bool,
    last_error: Option<LastError>,
}

/// One cluster in `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster_id: String,
    /// `leader` (elected for it), `standby` (another replica leads) or
    /// `single` (no leader election: always watching).
    pub role: String,
    /// This replica watches the cluster now.
    pub watching: bool,
    /// Every watch of the cluster has done its initial list and the API
    /// server answers.
    pub synced: bool,
    /// Per watch (`*` for all namespaces): synced or not.
    pub watches: BTreeMap<String, bool>,
    pub checkpoint: Option<CheckpointStatus>,
    pub events: EventCounts,
    pub last_error: Option<LastError>,
}

/// Where the cluster's checkpoint stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointStatus {
    /// Per watch (`*` for all namespaces), the resourceVersion it resumes
    /// from.
    pub resource_versions: BTreeMap<String, String>,
    /// When this replica last wrote it (absent: not since it started).
    pub written_at: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<f64>,
}

/// The cluster's counters since this process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounts {
    pub received: u64,
    pub published: u64,
    pub filtered: u64,
    pub deduplicated: u64,
}

/// The last request to the cluster that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastError {
    pub message: String,
    pub at: String,
}

impl Status {
    pub fn new(stores: CheckpointStores) -> Self {
        Self {
            stores,
            clusters: Arc::default(),
        }
    }

    /// `cluster` is watched (or stands by for its lease).
    pub fn started(&self, cluster: &str, leader_election: bool) {
        self.lock().insert(
            cluster.to_owned(),
            Notes {
                leader_election,
                last_error: None,
            },
        );
    }

    /// `cluster` is no longer watched (a reload removed it).
    pub fn stopped(&self, cluster: &str) {
        self.lock().remove(cluster);
    }

    /// A request to `cluster` failed with `message`.
    pub fn failed(&self, cluster: &str, message: &str) {
        if let Some(notes) = self.lock().get_mut(cluster) {
            notes.last_error = Some(LastError {
                message: message.to_owned(),
                at: timestamp(SystemTime::now()),
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Notes>> {
        self.clusters.lock().expect("not poisoned")
    }

    /// Every cluster, in id order.
    pub fn clusters(&self) -> Vec<ClusterStatus> {
        let notes = self.lock().clone();
        let synced = metrics::WATCH_SYNCED.all();
        notes
            .into_iter()
            .map(|(id, notes)| {
                let watching = metrics::LEADER.get(&[&id]).is_some_and(|v| v >= 1.0);
                let watches: BTreeMap<String, bool> = synced
                    .iter()
                    .filter(|(labels, _)| labels[0] == id)
                    .map(|(labels, value)| {
                        let scope = if labels[1].is_empty() {
                            "*"
                        } else {
                            &labels[1]
                        };
                        (scope.to_owned(), *value >= 1.0)
                    })
                    .collect();
                let checkpoint =
                    self.stores
                        .checkpoint_of(&id)
                        .map(|(rvs, written)| CheckpointStatus {
                            resource_versions: rvs,
                            written_at: written.map(timestamp),
                            age_seconds: written.map(|at| {
                                let age = SystemTime::now().duration_since(at).unwrap_or_default();
                                (age.as_secs_f64() * 10.0).round() / 10.0
                            }),
                        });
                let count = |counter: &metrics::Counter| counter.get(&[&id]).unwrap_or(0);
                ClusterStatus {
                    role: match (notes.leader_election, watching) {
                        (false, _) => "single",
                        (true, true) => "leader",
                        (true, false) => "standby",
                    }
                    .to_owned(),
                    watching,
                    synced: watching && !watches.is_empty() && watches.values().all(|s| *s),
                    watches,
                    checkpoint,
                    events: EventCounts {
                        received: count(&metrics::EVENTS_RECEIVED),
                        published: count(&metrics::EVENTS_PROCESSED),
                        filtered: count(&metrics::EVENTS_FILTERED),
                        deduplicated: count(&metrics::EVENTS_DEDUPLICATED),
                    },
                    last_error: notes.last_error,
                    cluster_id: id,
                }
            })
            .collect()
    }

    /// The `/status` body.
    pub fn to_json(&self) -> String {
        let body = serde_json::json!({ "clusters": self.clusters() });
        let mut text = serde_json::to_string_pretty(&body).expect("status serializes");
        text.push('\n');
        text
    }
}

fn timestamp(at: SystemTime) -> String {
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    crate::event::format_millis(millis)
}

/// Why `aetherius status` could not read a status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("`{0}` is not an http://HOST:PORT URL")]
    Url(String),
    #[error("cannot read {url}/status: {error} (is `aetherius run` serving health_listen there?)")]
    Request { url: String, error: std::io::Error },
    #[error("{url}/status answered {status}")]
    Answer { url: String, status: String },
    #[error("{url}/status is not a status: {error}")]
    Body {
        url: String,
        error: serde_json::Error,
    },
}

/// Reads `/status` from a running `aetherius run` at `url`
/// (`http://HOST:PORT`): its JSON, and the clusters in it.
pub fn fetch(url: &str) -> Result<(String, Vec<ClusterStatus>), StatusError> {
    let url = url.trim_end_matches('/');
    let address = url
        .strip_prefix("http://")
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| StatusError::Url(url.to_owned()))?;
    let request_error = |error| StatusError::Request {
        url: url.to_owned(),
        error,
    };
    let mut stream = std::net::TcpStream::connect(address).map_err(request_error)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(request_error)?;
    write!(
        stream,
        "GET /status HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(request_error)?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(request_error)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    if !status.contains(" 200 ") {
        return Err(StatusError::Answer {
            url: url.to_owned(),
            status,
        });
    }
    #[derive(Deserialize)]
    struct Body {
        clusters: Vec<ClusterStatus>,
    }
    let parsed: Body = serde_json::from_str(body).map_err(|error| StatusError::Body {
        url: url.to_owned(),
        error,
    })?;
    Ok((body.to_owned(), parsed.clusters))
}

/// The clusters as a table, one line each.
pub fn table(clusters: &[ClusterStatus]) -> String {
    let mut out = row([
        "CLUSTER",
        "ROLE",
        "WATCHING",
        "SYNCED",
        "CHECKPOINT",
        "AGE",
        "RECEIVED",
        "PUBLISHED",
        "FILTERED",
        "DEDUPED",
        "LAST ERROR",
    ]);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for c in clusters {
        let (rv, age) = match &c.checkpoint {
            Some(cp) => (
                cp.resource_versions
                    .values()
                    .max_by_key(|rv| (rv.len(), rv.as_str()))
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                cp.age_seconds
                    .map_or_else(|| "-".into(), |s| format!("{s:.0}s")),
            ),
            None => ("-".into(), "-".into()),
        };
        let error = c
            .last_error
            .as_ref()
            .map_or_else(|| "-".into(), |e| format!("{} ({})", e.message, e.at));
        let counts = [
            c.events.received,
            c.events.published,
            c.events.filtered,
            c.events.deduplicated,
        ]
        .map(|n| n.to_string());
        out.push_str(&row([
            &c.cluster_id,
            &c.role,
            yes_no(c.watching),
            yes_no(c.synced),
            &rv,
            &age,
            &counts[0],
            &counts[1],
            &counts[2],
            &counts[3],
            &error,
        ]));
    }
    out
}

/// One line of the table, its columns aligned.
fn row(cells: [&str; 11]) -> String {
    let [
        cluster,
        role,
        watching,
        synced,
        rv,
        age,
        received,
        published,
        filtered,
        deduped,
        error,
    ] = cells;
    format!(
        "{cluster:<20} {role:<8} {watching:<8} {synced:<6} {rv:>10} {age:>7} {received:>9} {published:>9} {filtered:>8} {deduped:>7}  {error}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_report_their_role_watches_and_counters() {
        let status = Status::default();
        status.started("status-a", false);
        status.started("status-b", true);
        metrics::LEADER.set(&["status-a"], 1.0);
        metrics::LEADER.set(&["status-b"], 0.0);
        metrics::WATCH_SYNCED.set(&["status-a", ""], 1.0);
        metrics::WATCH_SYNCED.set(&["status-b", "ns"], 0.0);
        metrics::EVENTS_RECEIVED.add(&["status-a"], 7);
        status.failed("status-b", "forbidden");
        let clusters = status.clusters();
        let (a, b) = (&clusters[0], &clusters[1]);
        assert_eq!(
            (a.role.as_str(), a.watching, a.synced),
            ("single", true, true)
        );
        assert_eq!(a.watches, BTreeMap::from([("*".to_owned(), true)]));
        assert_eq!(a.events.received, 7);
        assert_eq!(
            (b.role.as_str(), b.watching, b.synced),
            ("standby", false, false)
        );
        assert_eq!(b.last_error.as_ref().unwrap().message, "forbidden");
        assert!(table(&clusters).contains("status-b"));
        status.stopped("status-a");
        assert_eq!(status.clusters().len(), 1);
    }
}
