//! Spreading the clusters' leadership across replicas (`replicas.spread`).
//!
//! With N replicas and M clusters under leader election, every replica
//! campaigns for every cluster, and without a limit the first to start would
//! lead them all. Here each replica announces itself in one Lease beside
//! the lease of one cluster, the *announce* cluster (`<its lease>-replicas`,
//! see [`announce`]), and counts the others that keep announcing, as the
//! election judges a holder: a beat that has not changed for the lease's
//! duration as this replica observed it is gone. A replica then
//!
//! - takes a free or expired cluster lease only while it leads fewer than
//!   its share, ⌈M / N⌉, and
//! - hands over a cluster it leads when it leads more than its share (a
//!   replica joined): it stops watching, waits until what it handed over is
//!   acknowledged and checkpointed, and releases the lease for the replica
//!   with room. Which cluster goes is chosen by rendezvous hashing of the
//!   replica's identity and the cluster id, so replicas do not all hand over
//!   the same one.
//!
//! When a replica dies, its beat and its cluster leases go stale together
//! (both judged after their duration), the others' share grows, and they
//! take its clusters, each resuming from its checkpoint.
//!
//! Traffic: per replica and `retry_period`, one get and one update of the
//! replicas' Lease in the announce cluster (more on a conflict), besides one
//! get (and, when leading, one update) of each cluster's lease.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::lease::LeaseConfig;
use crate::watch::ClusterConfig;

/// `replicas:` — how replicas share the clusters they elect leaders for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicasConfig {
    /// Spread the leadership of the clusters under leader election across
    /// the replicas (default): each leads at most ⌈clusters / replicas⌉
    /// while the others have room. `false`: a replica leads whatever it
    /// gets first.
    pub spread: bool,
    /// The cluster (an id under `clusters`, with `leader_election`) beside
    /// whose lease the replicas announce themselves, in the Lease
    /// `<its lease name>-replicas`; default: the first cluster with
    /// `leader_election`. The replicas need `get` and `update` on that
    /// Lease (and `create`, as for the cluster leases).
    pub announce_in: Option<String>,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        Self {
            spread: true,
            announce_in: None,
        }
    }
}

impl ReplicasConfig {
    /// The cluster the replicas announce themselves in, if spreading
    /// applies: spreading on, and two clusters or more under leader
    /// election.
    pub fn announce_cluster<'a>(&self, clusters: &'a [ClusterConfig]) -> Option<&'a ClusterConfig> {
        let elected: Vec<&ClusterConfig> = clusters
            .iter()
            .filter(|cluster| cluster.leader_election.is_some())
            .collect();
        if !self.spread || elected.len() < 2 {
            return None;
        }
        match &self.announce_in {
            Some(id) => elected.into_iter().find(|cluster| cluster.id == *id),
            None => elected.first().copied(),
        }
    }

    /// What is wrong with it, given the clusters.
    pub fn problems(&self, clusters: &[ClusterConfig]) -> Vec<String> {
        match &self.announce_in {
            Some(id)
                if !clusters
                    .iter()
                    .any(|cluster| cluster.id == *id && cluster.leader_election.is_some()) =>
            {
                vec![format!(
                    "at `replicas.announce_in`: `{id}` is not a cluster with `leader_election`"
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// This replica's view: how many replicas are alive, how many clusters
/// there are to lead, which this one leads. Cheap to clone; clones share.
#[derive(Debug, Clone)]
pub struct Spread {
    identity: String,
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// Live replicas, this one included (at least 1).
    members: usize,
    /// Clusters under leader election in the config.
    clusters: usize,
    /// The clusters this replica holds the lease of (leading or handing
    /// over).
    held: BTreeSet<String>,
}

impl Spread {
    pub fn new(identity: &str, clusters: usize) -> Self {
        let spread = Self {
            identity: identity.to_owned(),
            state: Arc::new(Mutex::new(State {
                members: 1,
                clusters,
                held: BTreeSet::new(),
            })),
        };
        spread.publish();
        spread
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// ⌈clusters / replicas⌉.
    pub fn share(&self) -> usize {
        let state = self.state();
        state.clusters.div_ceil(state.members.max(1)).max(1)
    }

    /// How many replicas are alive, as last counted.
    pub fn members(&self) -> usize {
        self.state().members
    }

    pub fn set_members(&self, members: usize) {
        self.state().members = members.max(1);
        self.publish();
    }

    /// After a reload: how many clusters are under leader election.
    pub fn set_clusters(&self, clusters: usize) {
        self.state().clusters = clusters;
        self.publish();
    }

    /// `aetherius_replicas` and `aetherius_cluster_share`.
    fn publish(&self) {
        crate::metrics::REPLICAS.set(&[], self.members() as f64);
        crate::metrics::CLUSTER_SHARE.set(&[], self.share() as f64);
    }

    /// Whether this replica may take the lease of `cluster`: it holds it
    /// already, or holds fewer than its share.
    pub fn may_take(&self, cluster: &str) -> bool {
        let share = self.share();
        let state = self.state();
        state.held.contains(cluster) || state.held.len() < share
    }

    /// Records that this replica holds (or no longer holds) `cluster`'s
    /// lease.
    pub fn set_held(&self, cluster: &str, held: bool) {
        let mut state = self.state();
        if held {
            state.held.insert(cluster.to_owned());
        } else {
            state.held.remove(cluster);
        }
    }

    /// How many leases this replica holds.
    pub fn held(&self) -> usize {
        self.state().held.len()
    }

    /// Whether `cluster` is the one this replica should hand over now: it
    /// holds more than its share, and of what it holds, `cluster` ranks
    /// lowest for it.
    pub fn should_hand_over(&self, cluster: &str) -> bool {
        let share = self.share();
        let state = self.state();
        state.held.len() > share
            && state
                .held
                .iter()
                .min_by_key(|held| (rank(&self.identity, held), *held))
                .is_some_and(|lowest| lowest == cluster)
    }
}

/// Rendezvous hashing: how much `identity` wants `cluster`.
fn rank(identity: &str, cluster: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (identity, cluster).hash(&mut hasher);
    hasher.finish()
}

/// The annotation of the replicas' Lease that holds each replica's beat.
pub const BEATS: &str = "aetherius.io/replicas";

/// The name of the replicas' Lease beside the announce cluster's lease.
pub fn replicas_lease_name(lease: &str) -> String {
    format!("{lease}-replicas")
}

/// When this replica first saw each replica's current beat.
#[derive(Debug, Default)]
struct Seen(BTreeMap<String, (u64, Instant)>);

impl Seen {
    /// Counts the replicas whose beat changed within `duration` (as this
    /// replica observed it) among `beats`; forgets the ones not listed.
    fn count(&mut self, beats: &BTreeMap<String, u64>, now: Instant, duration: Duration) -> usize {
        self.0.retain(|identity, _| beats.contains_key(identity));
        let mut alive = 0;
        for (identity, beat) in beats {
            let seen = self
                .0
                .entry(identity.clone())
                .or_insert_with(|| (*beat, now));
            if seen.0 != *beat {
                *seen = (*beat, now);
            }
            if now.duration_since(seen.1) < duration {
                alive += 1;
            }
        }
        alive
    }

    /// The replicas not seen to beat for `duration`.
    fn gone(&self, now: Instant, duration: Duration) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= duration)
            .map(|(identity, _)| identity.clone())
            .collect()
    }
}

/// Announces this replica in the replicas' Lease beside `lease` in the
/// announce cluster, and counts the live replicas into `spread`, every
/// `lease.retry_period`, until `stop`; then takes its beat out, so that the
/// others' share grows at once.
///
/// One Lease, `<lease name>-replicas`, holds every replica's beat (a counter
/// it increments) in an annotation, written with the Lease's
/// resourceVersion (a conflict is read again and retried), so that RBAC
/// grants it by name like the cluster leases. A replica whose beat has not
/// changed for the lease's duration, as this one observed it, is gone, and
/// its beat is removed.
pub async fn announce(
    client: kube::Client,
    lease: LeaseConfig,
    identity: String,
    spread: Spread,
    mut stop: watch::Receiver<bool>,
) {
    let replicas = Replicas {
        client,
        namespace: lease.namespace.clone(),
        name: replicas_lease_name(&lease.name),
        identity,
        duration: lease.duration.0,
    };
    let mut seen = Seen::default();
    let mut beat: u64 = 0;
    let mut failing = false;
    loop {
        let now = Instant::now();
        beat += 1;
        let gone = seen.gone(now, replicas.duration);
        match replicas
            .update(|beats| {
                beats.insert(replicas.identity.clone(), beat);
                for identity in &gone {
                    if *identity != replicas.identity {
                        beats.remove(identity);
                    }
                }
            })
            .await
        {
            Ok(mut beats) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("the replicas' Lease can be read and written again");
                }
                // This one counts, whatever it last saw of itself.
                beats.remove(&replicas.identity);
                let members = seen.count(&beats, now, replicas.duration) + 1;
                if members != spread.members() {
                    spread.set_members(members);
                    tracing::info!(
                        replicas = members,
                        share = spread.share(),
                        leading = spread.held(),
                        "replicas counted: each leads at most its share of the clusters"
                    );
                }
            }
            Err(error) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::error!(%error, lease = %format!("{}/{}", replicas.namespace, replicas.name), "cannot read or write the replicas' Lease; keeping the last count");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(lease.retry_period.0) => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    let identity = replicas.identity.clone();
    if let Err(error) = replicas
        .update(|beats| {
            beats.remove(&identity);
        })
        .await
    {
        tracing::warn!(%error, "cannot take this replica out of the replicas' Lease; the others count it until its beat is old");
    }
}

/// The replicas' Lease.
struct Replicas {
    client: kube::Client,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
}

/// Conflicting writes retried at once, within one period.
const CONFLICT_RETRIES: usize = 4;

impl Replicas {
    fn collection(&self) -> kube::core::Request {
        kube::core::Request::new(format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            self.namespace
        ))
    }

    /// Reads the beats, applies `change` and writes them back, created if
    /// need be; returns what was written.
    async fn update(
        &self,
        change: impl Fn(&mut BTreeMap<String, u64>),
    ) -> Result<BTreeMap<String, u64>, kube::Error> {
        let bounded = crate::silence::bounded;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let get = self
                .collection()
                .get(&self.name, &Default::default())
                .map_err(kube::Error::BuildRequest)?;
            let current = match bounded(self.client.request::<serde_json::Value>(get)).await {
                Ok(current) => Some(current),
                Err(kube::Error::Api(status)) if status.code == 404 => None,
                Err(error) => return Err(error),
            };
            let mut beats: BTreeMap<String, u64> = current
                .as_ref()
                .and_then(|lease| lease["metadata"]["annotations"][BEATS].as_str())
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            change(&mut beats);
            let mut object = current.unwrap_or_else(|| {
                serde_json::json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": self.name,
                        "namespace": self.namespace,
                        "labels": { "app.kubernetes.io/name": "aetherius" },
                    },
                    "spec": {},
                })
            });
            let creating = object["metadata"]["resourceVersion"].is_null();
            object["metadata"]["annotations"][BEATS] =
                serde_json::to_string(&beats).expect("serializes").into();
            object["spec"]["leaseDurationSeconds"] = self.duration.as_secs().max(1).into();
            object["spec"]["renewTime"] = format!("{:.6}", jiff::Timestamp::now()).into();
            let body = serde_json::to_vec(&object).expect("serializes");
            let request = if creating {
                self.collection().create(&Default::default(), body)
            } else {
                self.collection()
                    .replace(&self.name, &Default::default(), body)
            }
            .map_err(kube::Error::BuildRequest)?;
            match bounded(self.client.request::<serde_json::Value>(request)).await {
                Ok(_) => return Ok(beats),
                // Another replica wrote first: read again.
                Err(kube::Error::Api(status))
                    if (status.code == 409) && attempt < CONFLICT_RETRIES => {}
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_caps_taking_and_the_surplus_is_handed_over_one_at_a_time() {
        let spread = Spread::new("a", 6);
        // Alone: all six.
        for cluster in ["c1", "c2", "c3", "c4", "c5", "c6"] {
            assert!(spread.may_take(cluster));
            spread.set_held(cluster, true);
        }
        assert!(
            !["c1", "c2", "c3", "c4", "c5", "c6"]
                .iter()
                .any(|c| spread.should_hand_over(c))
        );
        // Three replicas: a share of 2; four to hand over, one at a time.
        spread.set_members(3);
        assert_eq!(spread.share(), 2);
        let mut handed = Vec::new();
        while spread.held() > 2 {
            let next: Vec<&str> = ["c1", "c2", "c3", "c4", "c5", "c6"]
                .into_iter()
                .filter(|c| spread.should_hand_over(c))
                .collect();
            assert_eq!(next.len(), 1, "one at a time");
            spread.set_held(next[0], false);
            handed.push(next[0]);
        }
        assert_eq!(handed.len(), 4);
        assert!(!spread.may_take(handed[0]), "at its share");
        assert!(
            spread.may_take(
                ["c1", "c2", "c3", "c4", "c5", "c6"]
                    .into_iter()
                    .find(|c| !handed.contains(c))
                    .unwrap()
            )
        );
        // A replica died: the share grows back.
        spread.set_members(2);
        assert_eq!(spread.share(), 3);
        assert!(spread.may_take(handed[0]));
        // Rendezvous: replicas do not all hand over the same cluster first.
        let firsts: BTreeSet<&str> = ["a", "b", "c", "d", "e", "f", "g", "h"]
            .into_iter()
            .filter_map(|identity| {
                let spread = Spread::new(identity, 6);
                for cluster in ["c1", "c2", "c3", "c4", "c5", "c6"] {
                    spread.set_held(cluster, true);
                }
                spread.set_members(3);
                ["c1", "c2", "c3", "c4", "c5", "c6"]
                    .into_iter()
                    .find(|c| spread.should_hand_over(c))
            })
            .collect();
        assert!(firsts.len() > 1, "{firsts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_replica_whose_beat_stops_for_the_duration_is_gone() {
        let mut seen = Seen::default();
        let duration = Duration::from_secs(15);
        let beats = |b: u64| BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), b)]);
        assert_eq!(seen.count(&beats(1), Instant::now(), duration), 2);
        tokio::time::advance(Duration::from_secs(10)).await;
        // b beat; a unchanged for 10 s, still alive.
        assert_eq!(seen.count(&beats(2), Instant::now(), duration), 2);
        assert!(seen.gone(Instant::now(), duration).is_empty());
        tokio::time::advance(Duration::from_secs(6)).await;
        // a unchanged for 16 s: gone. b beat 6 s ago.
        assert_eq!(seen.count(&beats(2), Instant::now(), duration), 1);
        assert_eq!(seen.gone(Instant::now(), duration), ["a"]);
        // Taken out: forgotten.
        let only_b = BTreeMap::from([("b".to_owned(), 2)]);
        assert_eq!(seen.count(&only_b, Instant::now(), duration), 1);
        assert_eq!(seen.0.len(), 1);
    }
}
