//! Leader election per cluster through a `coordination.k8s.io/v1` Lease, as
//! client-go does it: the leader renews the lease every `retry_period`;
//! others watch it and take it over when it has not changed for a whole
//! `duration` *as they observed it* (their own clock, so that clock skew
//! between replicas does not matter). A leader that cannot renew for two
//! thirds of the duration stops leading before anyone else may start. On a
//! clean shutdown the leader releases the lease, so a standby takes over at
//! once.
//!
//! Only the leader watches the cluster; it resumes from the shared checkpoint
//! (a ConfigMap), so nothing is lost across a failover. What the old leader
//! handed over but had not checkpointed is published again under the same
//! occurrence ids, which JetStream drops.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use serde::Deserialize;

use crate::checkpoint::Lag;
use crate::spread::Spread;
use crate::units::HumanDuration;

/// The Lease a cluster's replicas elect their leader with
/// (`clusters[].leader_election`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// How long a lease not renewed stays the holder's (default 15s, as for
    /// Kubernetes' own controllers): the longest a failover takes.
    #[serde(default = "default_lease_duration")]
    pub duration: HumanDuration,
    /// How often the leader renews and the others look (default 2s).
    #[serde(default = "default_lease_retry")]
    pub retry_period: HumanDuration,
}

impl LeaseConfig {
    /// What is wrong with it, `at` being its YAML path.
    pub fn problems(&self, at: &str) -> Vec<String> {
        if self.retry_period.0 * 3 > self.duration.0 * 2 || self.retry_period.0.is_zero() {
            vec![format!(
                "at `{at}.retry_period`: must be above 0 and at most two thirds of `duration`, so that a leader renews before it must give up"
            )]
        } else {
            Vec::new()
        }
    }
}

fn default_lease_duration() -> HumanDuration {
    HumanDuration::from_secs(15)
}

fn default_lease_retry() -> HumanDuration {
    HumanDuration::from_secs(2)
}

/// Who this replica is: `POD_NAME` (the downward API), else the host name,
/// plus the process id.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "aetherius".into());
    format!("{host}_{}", std::process::id())
}

/// What a Lease says, as far as the election cares.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    holder: Option<String>,
    /// Changes with every renewal: what "the lease moved" means.
    resource_version: String,
    transitions: i64,
    object: serde_json::Value,
}

/// What to do after reading the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// It is ours: renew it.
    Renew,
    /// Free, released or expired: take it.
    Acquire,
    /// Someone else holds it and renews it.
    Wait,
}

/// When we first saw the lease's current version.
#[derive(Debug, Clone)]
struct Observed {
    resource_version: String,
    at: Instant,
}

fn decide(
    record: &Record,
    me: &str,
    observed: &Observed,
    now: Instant,
    duration: Duration,
) -> Decision {
    match record.holder.as_deref() {
        Some(holder) if holder == me => Decision::Renew,
        None | Some("") => Decision::Acquire,
        Some(_)
            if observed.resource_version == record.resource_version
                && now.duration_since(observed.at) >= duration =>
        {
            Decision::Acquire
        }
        Some(_) => Decision::Wait,
    }
}

/// One cluster's election.
pub struct Elector {
    cluster: String,
    client: kube::Client,
    lease: LeaseConfig,
    identity: String,
    spread: Option<(Spread, HandOver)>,
}

/// What a hand-over waits for before it releases the lease: what the
/// cluster's watches handed over acknowledged by every sink, then written
/// into the checkpoint.
#[derive(Debug, Clone)]
pub struct HandOver {
    pub lag: Lag,
    pub checkpoint_interval: Duration,
}

/// How long a hand-over waits for the sinks at most: a sink that is down
/// must not keep a replica over its share. The next leader then publishes
/// again, under the same ids, what was not checkpointed.
const HAND_OVER_LIMIT: Duration = Duration::from_secs(30);

impl Elector {
    pub fn new(cluster: &str, client: kube::Client, lease: LeaseConfig, identity: String) -> Self {
        Self {
            cluster: cluster.to_owned(),
            client,
            lease,
            identity,
            spread: None,
        }
    }

    /// Leads only within this replica's share of the clusters, handing
    /// over the surplus ([`crate::spread`]).
    pub fn spread(mut self, spread: Spread, hand_over: HandOver) -> Self {
        self.spread = Some((spread, hand_over));
        self
    }

    fn set_held(&self, held: bool) {
        if let Some((spread, _)) = &self.spread {
            spread.set_held(&self.cluster, held);
        }
    }

    /// Whether a hand-over that started at `since` may release the lease
    /// now: the watches have stopped (a retry period), what they handed over
    /// is acknowledged (`caught_up` since then) and checkpointed (two
    /// checkpoint intervals later).
    fn handed_over(&self, since: Instant, caught_up: &mut Option<Instant>, now: Instant) -> bool {
        let Some((_, hand_over)) = &self.spread else {
            return true;
        };
        if now.duration_since(since) >= HAND_OVER_LIMIT {
            return true;
        }
        if now.duration_since(since) < self.lease.retry_period.0 {
            return false;
        }
        if !hand_over.lag.caught_up(&self.cluster) {
            *caught_up = None;
            return false;
        }
        let at = *caught_up.get_or_insert(now);
        now.duration_since(at) >= hand_over.checkpoint_interval * 2
    }

    /// Campaigns until `stop` turns true; `leading` says whether this replica
    /// leads now. On stop, a held lease is released.
    pub async fn run(self, leading: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let duration = self.lease.duration.0;
        let renew_deadline = duration * 2 / 3;
        let mut observed: Option<Observed> = None;
        let mut last_renewal: Option<Instant> = None;
        let mut failing = false;
        // Since when this replica has been handing the cluster over, and
        // since when its hand-overs have all been acknowledged.
        let mut handing_over: Option<Instant> = None;
        let mut caught_up: Option<Instant> = None;
        tracing::info!(
            cluster = %self.cluster,
            lease = %format!("{}/{}", self.lease.namespace, self.lease.name),
            identity = %self.identity,
            "campaigning for leadership"
        );
        loop {
            let now = Instant::now();
            match self.attempt(&mut observed, now).await {
                Ok(true) => {
                    last_renewal = Some(now);
                    self.set_held(true);
                    if std::mem::take(&mut failing) {
                        tracing::info!(cluster = %self.cluster, "the lease can be read and renewed again");
                    }
                    if let Some(since) = handing_over {
                        if self.handed_over(since, &mut caught_up, now) {
                            match self.release().await {
                                Ok(()) => {
                                    tracing::info!(cluster = %self.cluster, "handed the cluster over: released the lease for a replica with room")
                                }
                                Err(error) => {
                                    tracing::warn!(cluster = %self.cluster, %error, "cannot release the lease; another replica takes over when it expires")
                                }
                            }
                            self.set_held(false);
                            handing_over = None;
                            observed = None;
                        }
                    } else if let Some((spread, _)) = &self.spread
                        && spread.should_hand_over(&self.cluster)
                    {
                        tracing::info!(
                            cluster = %self.cluster,
                            leading = spread.held(),
                            share = spread.share(),
                            replicas = spread.members(),
                            "leading more than this replica's share: stopping the cluster's watches to hand it over"
                        );
                        let _ = leading.send(false);
                        handing_over = Some(now);
                        caught_up = None;
                    } else if !*leading.borrow() {
                        tracing::info!(cluster = %self.cluster, identity = %self.identity, "became leader: watching");
                        let _ = leading.send(true);
                    }
                }
                Ok(false) => {
                    self.set_held(false);
                    handing_over = None;
                    if std::mem::take(&mut failing) {
                        tracing::info!(cluster = %self.cluster, "the lease can be read again");
                    }
                    if *leading.borrow() {
                        tracing::warn!(cluster = %self.cluster, "lost the lease to another replica: standing by");
                        let _ = leading.send(false);
                    }
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(cluster = %self.cluster, %error, "cannot read or renew the lease; retrying");
                    }
                    if last_renewal.is_none_or(|at| now.duration_since(at) >= renew_deadline) {
                        // Held no longer, as far as anyone else can tell.
                        self.set_held(false);
                        handing_over = None;
                        if *leading.borrow() {
                            tracing::warn!(cluster = %self.cluster, "could not renew the lease in time: standing by");
                            let _ = leading.send(false);
                        }
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.lease.retry_period.0) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
        if *leading.borrow() {
            let _ = leading.send(false);
            match self.release().await {
                Ok(()) => tracing::info!(cluster = %self.cluster, "released the lease"),
                Err(error) => {
                    tracing::warn!(cluster = %self.cluster, %error, "cannot release the lease; another replica takes over when it expires")
                }
            }
        }
    }

    /// Reads the lease and renews, takes or leaves it. `Ok(true)`: we hold it.
    async fn attempt(
        &self,
        observed: &mut Option<Observed>,
        now: Instant,
    ) -> Result<bool, kube::Error> {
        let Some(record) = self.get().await? else {
            if !self.may_take() {
                return Ok(false);
            }
            return self.create().await;
        };
        let seen = match observed {
            Some(seen) if seen.resource_version == record.resource_version => seen.clone(),
            _ => {
                let seen = Observed {
                    resource_version: record.resource_version.clone(),
                    at: now,
                };
                *observed = Some(seen.clone());
                seen
            }
        };
        match decide(&record, &self.identity, &seen, now, self.lease.duration.0) {
            Decision::Wait => Ok(false),
            Decision::Renew => self.replace(&record, false).await,
            Decision::Acquire if !self.may_take() => Ok(false),
            Decision::Acquire => {
                tracing::info!(
                    cluster = %self.cluster,
                    previous = record.holder.as_deref().unwrap_or(""),
                    "the lease is free or expired: taking it"
                );
                self.replace(&record, true).await
            }
        }
    }

    /// Whether this replica has room for the cluster (always, without
    /// spreading).
    fn may_take(&self) -> bool {
        self.spread
            .as_ref()
            .is_none_or(|(spread, _)| spread.may_take(&self.cluster))
    }

    fn collection(&self) -> kube::core::Request {
        kube::core::Request::new(format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            self.lease.namespace
        ))
    }

    async fn get(&self) -> Result<Option<Record>, kube::Error> {
        let request = self
            .collection()
            .get(&self.lease.name, &Default::default())
            .map_err(kube::Error::BuildRequest)?;
        match crate::silence::bounded(self.client.request::<serde_json::Value>(request)).await {
            Ok(object) => Ok(Some(Record {
                holder: object["spec"]["holderIdentity"].as_str().map(str::to_owned),
                resource_version: object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                transitions: object["spec"]["leaseTransitions"].as_i64().unwrap_or(0),
                object,
            })),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn spec(
        &self,
        holder: &str,
        acquire_time: Option<&str>,
        transitions: i64,
    ) -> serde_json::Value {
        let now = format!("{:.6}", jiff::Timestamp::now());
        serde_json::json!({
            "holderIdentity": holder,
            "leaseDurationSeconds": self.lease.duration.0.as_secs().max(1),
            "acquireTime": acquire_time.unwrap_or(&now),
            "renewTime": now,
            "leaseTransitions": transitions,
        })
    }

    async fn create(&self) -> Result<bool, kube::Error> {
        let object = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.lease.name,
                "namespace": self.lease.namespace,
                "labels": { "app.kubernetes.io/name": "aetherius" },
            },
            "spec": self.spec(&self.identity, None, 0),
        });
        let request = self
            .collection()
            .create(
                &Default::default(),
                serde_json::to_vec(&object).expect("serializes"),
            )
            .map_err(kube::Error::BuildRequest)?;
        match crate::silence::bounded(self.client.request::<serde_json::Value>(request)).await {
            Ok(_) => Ok(true),
            // Someone else created it first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Writes the lease back (renewed, or taken over), guarded by its
    /// resourceVersion: a conflict means someone else wrote first.
    async fn replace(&self, record: &Record, take: bool) -> Result<bool, kube::Error> {
        let mut object = record.object.clone();
        let acquire_time = object["spec"]["acquireTime"].as_str().map(str::to_owned);
        object["spec"] = if take {
            self.spec(&self.identity, None, record.transitions + 1)
        } else {
            self.spec(&self.identity, acquire_time.as_deref(), record.transitions)
        };
        self.put(&object).await
    }

    /// Gives the lease up: no holder, so a standby takes it at once.
    async fn release(&self) -> Result<(), kube::Error> {
        let Some(record) = self.get().await? else {
            return Ok(());
        };
        if record.holder.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let mut object = record.object.clone();
        object["spec"]["holderIdentity"] = serde_json::Value::Null;
        object["spec"]["leaseDurationSeconds"] = 1.into();
        self.put(&object).await.map(drop)
    }

    async fn put(&self, object: &serde_json::Value) -> Result<bool, kube::Error> {
        let request = self
            .collection()
            .replace(
                &self.lease.name,
                &Default::default(),
                serde_json::to_vec(object).expect("serializes"),
            )
            .map_err(kube::Error::BuildRequest)?;
        match crate::silence::bounded(self.client.request::<serde_json::Value>(request)).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>, rv: &str) -> Record {
        Record {
            holder: holder.map(str::to_owned),
            resource_version: rv.into(),
            transitions: 0,
            object: serde_json::Value::Null,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn takes_over_only_after_a_whole_duration_without_renewal() {
        let duration = Duration::from_secs(15);
        let start = Instant::now();
        let seen = Observed {
            resource_version: "7".into(),
            at: start,
        };
        let other = record(Some("b"), "7");
        assert_eq!(decide(&other, "a", &seen, start, duration), Decision::Wait);
        tokio::time::advance(Duration::from_secs(14)).await;
        assert_eq!(
            decide(&other, "a", &seen, Instant::now(), duration),
            Decision::Wait
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            decide(&other, "a", &seen, Instant::now(), duration),
            Decision::Acquire
        );
        // Renewed meanwhile (a new resourceVersion): still theirs.
        let renewed = record(Some("b"), "8");
        assert_eq!(
            decide(&renewed, "a", &seen, Instant::now(), duration),
            Decision::Wait
        );
    }

    #[test]
    fn ours_is_renewed_and_a_released_lease_is_taken() {
        let seen = Observed {
            resource_version: "1".into(),
            at: Instant::now(),
        };
        let d = Duration::from_secs(15);
        assert_eq!(
            decide(&record(Some("a"), "1"), "a", &seen, Instant::now(), d),
            Decision::Renew
        );
        assert_eq!(
            decide(&record(None, "1"), "a", &seen, Instant::now(), d),
            Decision::Acquire
        );
        assert_eq!(
            decide(&record(Some(""), "1"), "a", &seen, Instant::now(), d),
            Decision::Acquire
        );
    }
}
