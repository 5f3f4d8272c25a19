//! Watching one cluster's Events, in one namespace or all of them: a paged
//! list, then a watch from where the list (or the checkpoint) left off, with
//! bookmarks; `410 Gone` relists; every other error is reported once and
//! retried with backoff.
//!
//! Each batch handed to the pipeline is followed by a [`Mark`] of the
//! resourceVersion reached, which becomes the checkpoint once every sink has
//! written the batch. A relist hands over only what changed after the last
//! resourceVersion handed over (or, on a first start, what is younger than
//! `max_age`), so a relist does not republish the cluster's history.

mod client;
mod config;
mod errors;
mod list_body;

use std::time::Duration;

use futures::{AsyncBufReadExt, FutureExt};
use serde::Deserialize;

pub use client::{ClientError, Clients, connect};
pub use config::{ClusterConfig, EventApi};
use errors::ErrorReport;
use list_body::{ListBody, Piece};

use crate::backoff::Backoff;
use crate::checkpoint::{Mark, WatchKey};
use crate::clock::SharedClock;
use crate::event::lines::{Line, LineSplitter};
use crate::event::{Event, EventLimits, Millis, decode};
use crate::input::InputSender;
use crate::silence::{Silence, bounded};
use crate::status::Status;

/// Seconds after which the API server ends a watch (it adds jitter); the
/// watch is then resumed from the last resourceVersion.
const WATCH_TIMEOUT_SECS: u32 = 290;
/// Events handed to the pipeline at once, at most.
const HAND_OVER_EVENTS: usize = 256;
/// Bytes of events handed to the pipeline at once, at most (about): large
/// Events go in smaller batches, so that the queue's byte budget, not a
/// batch being built, bounds memory.
const HAND_OVER_BYTES: usize = 1024 * 1024;

/// One watch: a cluster and a namespace (or all).
pub struct Watcher {
    key: WatchKey,
    client: kube::Client,
    server: String,
    api: EventApi,
    page_size: u32,
    max_age_ms: Millis,
    /// Relist this often, to catch what a watch may have missed.
    resync: Option<Duration>,
    limits: EventLimits,
    clock: SharedClock,
    out: InputSender,
    status: Status,
}

/// Why one list or watch attempt ended.
#[derive(Debug)]
enum Stop {
    /// The resourceVersion is too old (410 Gone): relist.
    Gone,
    /// The pipeline is gone: shutting down.
    Closed,
    /// Anything else: report, back off, try again.
    Failed(kube::Error),
}

impl From<kube::Error> for Stop {
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) if status.code == 410 => Self::Gone,
            _ => Self::Failed(error),
        }
    }
}

/// Where the watcher stands.
#[derive(Debug)]
struct Position {
    /// Watch from here; `None`: list first.
    resource_version: Option<String>,
    /// The highest resourceVersion handed over, when resourceVersions are
    /// numbers (etcd revisions, as on every API server we know): a relist
    /// skips what is not newer.
    handed_over: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(default)]
    resource_version: Option<String>,
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct WatchLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    object: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct ObjectMeta {
    #[serde(default)]
    metadata: ObjectMetaInner,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ObjectMetaInner {
    #[serde(default)]
    resource_version: String,
}

#[derive(Deserialize)]
struct WireStatus {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
    #[serde(default)]
    reason: String,
}

impl Watcher {
    /// `connection`: the cluster's client and its server's URL (for logs).
    pub fn new(
        cluster: &ClusterConfig,
        namespace: Option<String>,
        (client, server): (kube::Client, String),
        limits: EventLimits,
        clock: SharedClock,
        out: InputSender,
        status: Status,
    ) -> Self {
        Self {
            key: WatchKey {
                cluster: cluster.id.clone(),
                namespace,
            },
            client,
            server,
            api: cluster.api,
            page_size: cluster.page_size,
            max_age_ms: cluster.max_age.as_millis_i64(),
            resync: cluster.resync_period.map(|period| period.0),
            limits,
            clock,
            out,
            status,
        }
    }

    pub fn key(&self) -> &WatchKey {
        &self.key
    }

    /// Watches until the pipeline goes away. `checkpoint`: the
    /// resourceVersion to resume from, if one was stored.
    pub async fn run(self, checkpoint: Option<String>) {
        let mut position = Position {
            handed_over: checkpoint.as_deref().and_then(|rv| rv.parse().ok()),
            resource_version: checkpoint,
        };
        match &position.resource_version {
            Some(rv) => {
                tracing::info!(watch = %self.key, resource_version = %rv, "resuming from checkpoint")
            }
            None => tracing::info!(
                watch = %self.key,
                max_age = %crate::units::HumanDuration(Duration::from_millis(self.max_age_ms as u64)),
                "no checkpoint: listing, publishing only events younger than max_age"
            ),
        }
        let mut backoff = Backoff::default();
        let mut report = ErrorReport::default();
        self.set_synced(false);
        let mut next_resync = self
            .resync
            .map(|period| tokio::time::Instant::now() + period);
        loop {
            let started = tokio::time::Instant::now();
            let watching = position.resource_version.is_some();
            let resync_due = next_resync.is_some_and(|at| at <= started);
            // A resync, or a watch cut short for one, is no restart.
            let mut scheduled = resync_due;
            let outcome = match position.resource_version.clone() {
                None => self.list(&mut position, &mut report, false).await,
                Some(_) if resync_due => {
                    let outcome = self.list(&mut position, &mut report, true).await;
                    if outcome.is_ok() {
                        next_resync = self.resync.map(|period| started + period);
                        crate::metrics::WATCH_RESYNCS.inc(&[&self.key.cluster]);
                    }
                    outcome
                }
                Some(from) => {
                    let watch = self.watch(&from, &mut position, &mut report);
                    match next_resync {
                        // Between two hand-overs the watch may stop anywhere:
                        // its position moves only with what it handed over.
                        Some(at) => tokio::time::timeout_at(at, watch)
                            .await
                            .unwrap_or_else(|_| {
                                scheduled = true;
                                Ok(true)
                            }),
                        None => watch.await,
                    }
                }
            };
            match outcome {
                Ok(delivered) => {
                    if watching && !scheduled {
                        self.restarted("closed");
                    }
                    // A watch the server ended (its timeout, a restart): go
                    // on from where it stopped. One that ends at once with
                    // nothing in it is not progress.
                    if delivered || started.elapsed() >= Duration::from_secs(1) {
                        backoff.reset();
                    } else {
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
                Err(Stop::Gone) => {
                    tracing::info!(
                        watch = %self.key,
                        resource_version = position.resource_version.as_deref().unwrap_or(""),
                        "resourceVersion expired (410 Gone); relisting"
                    );
                    self.restarted("expired");
                    position.resource_version = None;
                }
                Err(Stop::Closed) => return,
                Err(Stop::Failed(error)) => {
                    self.set_synced(false);
                    self.restarted("error");
                    let delay = backoff.next_delay();
                    let message = report.failed(&self.key, &self.server, self.api, &error, delay);
                    self.status.failed(&self.key.cluster, &message);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Lists every Event page by page, hands over the new ones, and sets the
    /// position to the list's resourceVersion. Returns `true`: a list that
    /// completes is progress.
    ///
    /// A `resync` (every `resync_period`) hands over every event younger than
    /// `max_age`, those already handed over too: the occurrence core drops
    /// what was published, and what it finds new is what the watch missed.
    async fn list(
        &self,
        position: &mut Position,
        report: &mut ErrorReport,
        resync: bool,
    ) -> Result<bool, Stop> {
        let collection = kube::core::Request::new(self.api.path(self.key.namespace.as_deref()));
        let not_before = match position.handed_over {
            Some(_) if !resync => None,
            _ => Some(self.clock.now_ms().saturating_sub(self.max_age_ms)),
        };
        let mut continue_token: Option<String> = None;
        let mut list_rv: Option<String> = None;
        let (mut listed, mut handed) = (0usize, 0usize);
        loop {
            let params = kube::api::ListParams {
                limit: Some(self.page_size),
                continue_token: continue_token.take(),
                ..Default::default()
            };
            let request = collection
                .list(&params)
                .map_err(kube::Error::BuildRequest)?;
            // Streamed item by item: a page of large Events is never in
            // memory at once.
            let mut body = Box::pin(bounded(self.client.request_stream(request)).await?);
            let mut silence = Silence::new();
            report.recovered(&self.key);
            let mut scanner = ListBody::new(self.limits.max_size);
            let mut pieces = Vec::new();
            let mut meta = ListMeta::default();
            let mut batch = Batch::default();
            loop {
                let chunk = silence
                    .read(body.fill_buf())
                    .await
                    .map_err(kube::Error::ReadEvents)?;
                if chunk.is_empty() {
                    break;
                }
                let taken = chunk.len();
                scanner.feed(chunk, &mut pieces).map_err(malformed_list)?;
                body.consume_unpin(taken);
                for piece in pieces.drain(..) {
                    let item = match piece {
                        Piece::Metadata(bytes) => {
                            meta =
                                serde_json::from_slice(&bytes).map_err(kube::Error::SerdeError)?;
                            continue;
                        }
                        Piece::TooLarge { bytes } => {
                            listed += 1;
                            self.too_large(bytes);
                            continue;
                        }
                        Piece::Item(item) => item,
                    };
                    listed += 1;
                    let Some(mut event) = self.decode(&with_type_meta(&item, self.api)) else {
                        continue;
                    };
                    event.resynced = resync;
                    let newer = match (position.handed_over, event.resource_version.parse::<u64>())
                    {
                        (Some(seen), Ok(rv)) => resync || rv > seen,
                        _ => true,
                    };
                    let young = match (not_before, event.occurred_at()) {
                        (Some(limit), Some(at)) => at >= limit,
                        _ => true,
                    };
                    if newer && young {
                        handed += 1;
                        if batch.push(event) {
                            self.send(batch.take(), None).await?;
                        }
                    }
                }
            }
            scanner.finish().map_err(malformed_list)?;
            if !batch.events.is_empty() {
                self.send(batch.take(), None).await?;
            }
            if list_rv.is_none() {
                list_rv = meta.resource_version;
            }
            match meta.continue_token {
                Some(token) if !token.is_empty() => continue_token = Some(token),
                _ => break,
            }
        }
        let Some(rv) = list_rv else {
            return Err(Stop::Failed(kube::Error::Service(
                "the list response carried no resourceVersion".into(),
            )));
        };
        if resync {
            tracing::debug!(
                watch = %self.key,
                listed,
                handed_over = handed,
                resource_version = %rv,
                "resync: relisted"
            );
            self.hand_over(position, Vec::new(), &rv).await?;
            position.resource_version = Some(rv);
            return Ok(true);
        }
        // The design document's troubleshooting greps for "cache sync".
        report.take_first_sync();
        tracing::info!(
            watch = %self.key,
            cluster_id = %self.key.cluster,
            namespace = self.key.namespace.as_deref().unwrap_or("*"),
            listed,
            handed_over = handed,
            resource_version = %rv,
            "initial list done: cache synced"
        );
        self.hand_over(position, Vec::new(), &rv).await?;
        position.resource_version = Some(rv);
        self.set_synced(true);
        // A complete list is progress even when it handed nothing over: watch
        // at once.
        Ok(true)
    }

    /// Watches from `from` until the server ends the watch. Returns whether
    /// anything arrived.
    async fn watch(
        &self,
        from: &str,
        position: &mut Position,
        report: &mut ErrorReport,
    ) -> Result<bool, Stop> {
        let params = kube::api::WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
        debug_assert!(params.bookmarks, "kube asks for bookmarks by default");
        let request = kube::core::Request::new(self.api.path(self.key.namespace.as_deref()))
            .watch(&params, from)
            .map_err(kube::Error::BuildRequest)?;
        let body = bounded(self.client.request_stream(request)).await?;
        let mut silence = Silence::new();
        report.recovered(&self.key);
        self.set_synced(true);
        if report.take_first_sync() {
            tracing::info!(
                watch = %self.key,
                cluster_id = %self.key.cluster,
                namespace = self.key.namespace.as_deref().unwrap_or("*"),
                resource_version = %from,
                "cache synced: resumed from the checkpoint, no list needed"
            );
        }
        if report.take_first_watch() {
            tracing::info!(watch = %self.key, resource_version = %from, "watching");
        } else {
            tracing::debug!(watch = %self.key, resource_version = %from, "watching");
        }
        let mut body = Box::pin(body);
        let mut lines = LineSplitter::new(self.limits.max_size);
        let mut delivered = false;
        loop {
            let mut batch = Batch::default();
            let mut latest: Option<String> = None;
            let mut stop = None;
            // Every line that has arrived, then hand over (before waiting
            // for more): the pipeline sees events as they come, in batches
            // as large as they came in.
            let mut wait = true;
            while batch.events.len() < HAND_OVER_EVENTS && batch.bytes < HAND_OVER_BYTES {
                let chunk = if wait {
                    silence.read(body.fill_buf()).await
                } else {
                    match body.fill_buf().now_or_never() {
                        Some(chunk) => chunk,
                        None => break,
                    }
                };
                wait = false;
                // Taken while the line may still borrow the body's buffer.
                let taken = match chunk {
                    Ok([]) => {
                        stop = Some(Ok(()));
                        if let Some(line) = lines.finish()
                            && let Err(error) = self.watch_line(line, &mut batch, &mut latest)
                        {
                            stop = Some(Err(error));
                        }
                        0
                    }
                    Ok(chunk) => {
                        let (taken, line) = lines.push(chunk);
                        if let Some(line) = line
                            && let Err(error) = self.watch_line(line, &mut batch, &mut latest)
                        {
                            stop = Some(Err(error));
                        }
                        taken
                    }
                    Err(error) => {
                        // The connection broke (an API server restart, a
                        // network blip): resume from what was handed over.
                        tracing::debug!(watch = %self.key, %error, "watch stream broke");
                        stop = Some(Ok(()));
                        0
                    }
                };
                body.consume_unpin(taken);
                if stop.is_some() {
                    break;
                }
            }
            delivered |= !batch.events.is_empty();
            if let Some(rv) = latest {
                self.hand_over(position, batch.take(), &rv).await?;
                position.resource_version = Some(rv);
            } else if !batch.events.is_empty() {
                self.send(batch.take(), None).await?;
            }
            if let Some(stop) = stop {
                return stop.map(|()| delivered);
            }
        }
    }

    /// Takes one line of a watch: an event into `batch`, the resourceVersion
    /// it reached into `latest`; an `ERROR` ends the watch.
    fn watch_line(
        &self,
        line: Line<'_>,
        batch: &mut Batch,
        latest: &mut Option<String>,
    ) -> Result<(), Stop> {
        let line = match line {
            Line::Text(line) => line,
            Line::TooLong { bytes } => {
                self.too_large(bytes);
                return Ok(());
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let parsed: WatchLine = match serde_json::from_slice(line) {
            Ok(parsed) => parsed,
            Err(error) => {
                crate::metrics::EVENTS_ERRORS.inc(&[&self.key.cluster, "decode"]);
                tracing::warn!(watch = %self.key, %error, "skipping an unreadable watch line");
                return Ok(());
            }
        };
        match parsed.kind {
            "ADDED" | "MODIFIED" => {
                if let Some(event) = self.decode(parsed.object.get().as_bytes()) {
                    *latest = Some(event.resource_version.as_str().to_owned());
                    batch.push(event);
                }
            }
            "DELETED" | "BOOKMARK" => {
                if let Ok(meta) = serde_json::from_str::<ObjectMeta>(parsed.object.get())
                    && !meta.metadata.resource_version.is_empty()
                {
                    *latest = Some(meta.metadata.resource_version);
                }
            }
            "ERROR" => {
                let status: WireStatus =
                    serde_json::from_str(parsed.object.get()).unwrap_or(WireStatus {
                        code: 0,
                        message: parsed.object.get().to_owned(),
                        reason: String::new(),
                    });
                return Err(if status.code == 410 {
                    Stop::Gone
                } else {
                    Stop::Failed(kube::Error::Api(Box::new(kube::core::Status {
                        code: status.code,
                        message: status.message,
                        reason: status.reason,
                        ..Default::default()
                    })))
                });
            }
            other => {
                tracing::warn!(watch = %self.key, kind = other, "unknown watch event type")
            }
        }
        Ok(())
    }

    /// Sends events followed by the mark of `rv`.
    async fn hand_over(
        &self,
        position: &mut Position,
        events: Vec<Event>,
        rv: &str,
    ) -> Result<(), Stop> {
        if let Ok(n) = rv.parse::<u64>() {
            position.handed_over = Some(position.handed_over.map_or(n, |seen| seen.max(n)));
        }
        let mark = Mark {
            key: self.key.clone(),
            resource_version: rv.to_owned(),
        };
        self.send(events, Some(mark)).await
    }

    /// `aetherius_watch_synced` (and so `/ready`) for this watch.
    fn set_synced(&self, synced: bool) {
        let namespace = self.key.namespace.as_deref().unwrap_or("");
        crate::metrics::WATCH_SYNCED.set(
            &[&self.key.cluster, namespace],
            if synced { 1.0 } else { 0.0 },
        );
    }

    fn restarted(&self, reason: &str) {
        crate::metrics::WATCH_RESTARTS.inc(&[&self.key.cluster, reason]);
    }

    async fn send(&self, events: Vec<Event>, mark: Option<Mark>) -> Result<(), Stop> {
        self.out.send(events, mark).await.map_err(|_| Stop::Closed)
    }

    fn decode(&self, json: &[u8]) -> Option<Event> {
        match decode(json, &self.key.cluster, &self.limits) {
            Ok(event) => Some(event),
            Err(error) => {
                crate::metrics::EVENTS_ERRORS.inc(&[&self.key.cluster, error.metric_kind()]);
                tracing::warn!(watch = %self.key, %error, "skipping an object that is not a readable Event");
                None
            }
        }
    }

    fn too_large(&self, bytes: usize) {
        crate::metrics::EVENTS_ERRORS.inc(&[&self.key.cluster, "too_large"]);
        tracing::warn!(
            watch = %self.key,
            bytes,
            limit = self.limits.max_size,
            "skipping an object larger than events.max_size"
        );
    }
}

/// Events gathered for one hand-over.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    bytes: usize,
}

impl Batch {
    /// Adds an event; says whether the batch is now full.
    fn push(&mut self, event: Event) -> bool {
        self.bytes += event.heap_bytes();
        self.events.push(event);
        self.events.len() >= HAND_OVER_EVENTS || self.bytes >= HAND_OVER_BYTES
    }

    fn take(&mut self) -> Vec<Event> {
        self.bytes = 0;
        std::mem::take(&mut self.events)
    }
}

/// A list response the scanner could not split.
fn malformed_list(error: list_body::ListBodyError) -> kube::Error {
    kube::Error::Service(Box::new(error))
}

/// List items come without `apiVersion` and `kind`; put them back so that a
/// listed Event reads (and is published in `raw_data`) exactly like a
/// watched one.
fn with_type_meta(item: &[u8], api: EventApi) -> Vec<u8> {
    let body = item.trim_ascii_start();
    let body = body.strip_prefix(b"{").unwrap_or(body);
    let separator: &[u8] = if body.trim_ascii_start().starts_with(b"}") {
        b""
    } else {
        b","
    };
    let mut json = Vec::with_capacity(body.len() + 48);
    json.extend_from_slice(b"{\"apiVersion\":\"");
    json.extend_from_slice(api.api_version().as_bytes());
    json.extend_from_slice(b"\",\"kind\":\"Event\"");
    json.extend_from_slice(separator);
    json.extend_from_slice(body);
    json
}

/// Watches of one cluster, one per namespace or one for all.
pub fn watches_of(cluster: &ClusterConfig) -> Vec<Option<String>> {
    if cluster.namespaces.is_empty() {
        vec![None]
    } else {
        cluster.namespaces.iter().cloned().map(Some).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_get_their_type_back() {
        let item = r#"{"metadata":{"name":"a","namespace":"n","uid":"u","resourceVersion":"5"},"involvedObject":{"kind":"Pod","name":"p"},"reason":"BackOff","type":"Warning","count":1}"#;
        let json = with_type_meta(item.as_bytes(), EventApi::CoreV1);
        assert!(json.starts_with(br#"{"apiVersion":"v1","kind":"Event","metadata""#));
        let event = crate::event::normalize(&json, "c").unwrap();
        assert_eq!(event.resource_version, "5");
        assert_eq!(
            with_type_meta(b"{}", EventApi::EventsV1),
            br#"{"apiVersion":"events.k8s.io/v1","kind":"Event"}"#
        );
    }

    #[test]
    fn one_watch_per_namespace_or_one_for_all() {
        let mut cluster: ClusterConfig = serde_yaml_ng::from_str("id: a").unwrap();
        assert_eq!(watches_of(&cluster), vec![None]);
        cluster.namespaces = vec!["x".into(), "y".into()];
        assert_eq!(
            watches_of(&cluster),
            vec![Some("x".to_owned()), Some("y".to_owned())]
        );
    }
}
