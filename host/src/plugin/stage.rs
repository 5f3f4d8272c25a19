//! One running pipeline stage: a plugin instance with its own Store, limits,
//! failure handling and circuit breaker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Engine, Store, Trap};

use super::bindings::{batch, enricher, filter, severity_mapper, types};
use super::breaker::{BreakerState, CircuitBreaker, Transition};
use super::deadline::{self, Watchdog};
use super::state::{LOG_LINES_PER_CALL, StoreState};
use super::validate::{
    self, MAX_DROP_REASON, MAX_ENTRIES, MAX_LABEL_VALUE, MAX_REDACTED, MAX_TEXT,
};
use super::wasi::WouldWait;
use super::{LoadedPlugin, PluginError, StageKind, WorldPre};
use crate::clock::SharedClock;
use crate::item::{Failure, FailureKind, Processed};
use crate::metadata::MetadataCache;
use crate::units::HumanDuration;

use super::config::{FailurePolicy, Limits, PluginConfig};
use crate::event::Severity;

/// A stage's decision about one event, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep,
    /// Dropped, and why. Shared: a batch's drops often give one reason.
    Drop(Arc<str>),
    Redact(String),
    SetSeverity(Severity),
    Enrich {
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    },
    /// The stage could not decide; the stage's failure policy applies.
    Failed(Failure),
}

/// A live instance: the Store and the typed exports of its world.
struct Instance {
    store: Store<StoreState>,
    exports: Exports,
}

enum Exports {
    Filter(filter::Filter),
    SeverityMapper(severity_mapper::SeverityMapper),
    Enricher(enricher::Enricher),
}

/// A raw result from one call, before validation.
enum Raw {
    Verdicts(Vec<types::Verdict>),
    /// A filter's verdicts handed over with `batch.decide` (0.1.3).
    Packed(batch::VerdictColumn),
    Severities(Vec<Option<types::Severity>>),
    Enrichments(Vec<types::Enrichment>),
}

impl Raw {
    fn len(&self) -> usize {
        match self {
            Self::Verdicts(v) => v.len(),
            Self::Packed(column) => column.kinds.len(),
            Self::Severities(v) => v.len(),
            Self::Enrichments(v) => v.len(),
        }
    }
}

/// A pipeline stage backed by a plugin instance.
pub struct Stage {
    name: Arc<str>,
    plugin: Arc<LoadedPlugin>,
    engine: Engine,
    watchdog: Watchdog,
    config_json: String,
    limits: Limits,
    policy: FailurePolicy,
    breaker: CircuitBreaker,
    clock: SharedClock,
    metadata: MetadataCache,
    /// `None` after a trap, until the next call re-creates it.
    instance: Option<Instance>,
    metrics: StageMetrics,
}

/// The stage's series of the per-call metrics, looked up once.
struct StageMetrics {
    calls: prometheus::IntCounter,
    call_seconds: prometheus::Histogram,
    breaker_open: prometheus::Gauge,
}

impl StageMetrics {
    fn new(stage: &str) -> Self {
        let labels = &[stage];
        let metrics = Self {
            calls: crate::metrics::PLUGIN_CALLS.series(labels),
            call_seconds: crate::metrics::PLUGIN_CALL_SECONDS.series(labels),
            breaker_open: crate::metrics::PLUGIN_BREAKER_OPEN.series(labels),
        };
        metrics.breaker_open.set(0.0);
        for kind in crate::item::FailureKind::ALL {
            crate::metrics::PLUGIN_FAILURES.touch(&[stage, kind.as_str()]);
        }
        metrics
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("plugin", &self.plugin.source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Stage {
    pub(super) fn start(
        engine: &Engine,
        watchdog: &Watchdog,
        name: &str,
        plugin: Arc<LoadedPlugin>,
        config: &PluginConfig,
        clock: SharedClock,
        metadata: MetadataCache,
    ) -> Result<Self, PluginError> {
        watchdog.watch_for(config.limits.timeout.0);
        let mut stage = Self {
            name: Arc::from(name),
            engine: engine.clone(),
            watchdog: watchdog.clone(),
            config_json: config.config.to_string(),
            limits: config.limits,
            policy: config.on_failure,
            breaker: CircuitBreaker::new(
                config.circuit_breaker.failures,
                config.circuit_breaker.cooldown.as_millis_i64(),
            ),
            clock,
            metadata,
            instance: None,
            plugin,
            metrics: StageMetrics::new(name),
        };
        stage.instance = Some(stage.instantiate()?);
        Ok(stage)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> StageKind {
        self.plugin.kind
    }

    pub fn policy(&self) -> FailurePolicy {
        self.policy
    }

    pub fn plugin_source(&self) -> &str {
        &self.plugin.source
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// A fresh Store and instance, initialised with the stage's config.
    fn instantiate(&self) -> Result<Instance, PluginError> {
        let source = || format!("{} (stage `{}`)", self.plugin.source, self.name);
        let init_timeout = self.limits.timeout.0.saturating_mul(INIT_TIMEOUT_FACTOR);
        let start_error = |e: wasmtime::Error| PluginError::Start {
            plugin: source(),
            reason: describe_error(&e, init_timeout).detail,
        };
        let memory_cap = usize::try_from(self.limits.memory.0).unwrap_or(usize::MAX);
        let filter = self.plugin.kind() == StageKind::Filter;
        let state = StoreState::new(
            self.name.clone(),
            filter,
            memory_cap,
            self.clock.clone(),
            self.metadata.clone(),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        deadline::install(&mut store);
        // Instantiation and init get the fuel of a batch of 64 events and
        // ten times a call's deadline: the guest's start-up runs in them.
        store
            .set_fuel(self.limits.fuel_per_event.saturating_mul(64))
            .map_err(start_error)?;
        deadline::arm(&mut store, init_timeout);
        let _running = self.watchdog.enter();
        let config = self.config_json.as_str();
        let (exports, init) = match &self.plugin.pre {
            WorldPre::Filter(pre) => {
                let exports = pre.instantiate(&mut store).map_err(start_error)?;
                let init = exports.call_init(&mut store, config).map_err(start_error)?;
                (Exports::Filter(exports), init)
            }
            WorldPre::SeverityMapper(pre) => {
                let exports = pre.instantiate(&mut store).map_err(start_error)?;
                let init = exports.call_init(&mut store, config).map_err(start_error)?;
                (Exports::SeverityMapper(exports), init)
            }
            WorldPre::Enricher(pre) => {
                let exports = pre.instantiate(&mut store).map_err(start_error)?;
                let init = exports.call_init(&mut store, config).map_err(start_error)?;
                (Exports::Enricher(exports), init)
            }
        };
        init.map_err(|message| PluginError::InitRejected {
            plugin: source(),
            message: validate::truncate(&message, MAX_TEXT).to_owned(),
        })?;
        Ok(Instance { store, exports })
    }

    /// Runs the stage over a batch: one decision per item, in order. The
    /// items are lent to the guest for the call and are back in `items`, in
    /// the same order, when this returns.
    ///
    /// A failed batch call (trap, limit, wrong number of results) is retried
    /// one event at a time (on a fresh instance if it trapped), so that one poisonous event
    /// does not take its neighbours down with it; the failure policy then
    /// applies to the events that failed on their own.
    pub fn process(&mut self, items: &mut Vec<Processed>) -> Vec<Decision> {
        if items.is_empty() {
            return Vec::new();
        }
        let decisions = self.process_unmetered(items);
        for decision in &decisions {
            if let Decision::Failed(failure) = decision {
                crate::metrics::PLUGIN_FAILURES.inc(&[&*self.name, failure.kind.as_str()]);
            }
        }
        decisions
    }

    fn process_unmetered(&mut self, items: &mut Vec<Processed>) -> Vec<Decision> {
        match self.call_checked(items) {
            Ok(decisions) => decisions,
            Err(failure) if items.len() == 1 => vec![Decision::Failed(failure)],
            Err(failure) => {
                tracing::debug!(stage = %self.name, %failure, events = items.len(), "batch failed; retrying events one by one");
                let all = std::mem::take(items);
                let mut decisions = Vec::with_capacity(all.len());
                for item in all {
                    let mut one = vec![item];
                    decisions.push(match self.call_checked(&mut one) {
                        Ok(mut decision) => decision.pop().unwrap_or(Decision::Keep),
                        Err(failure) => Decision::Failed(failure),
                    });
                    items.append(&mut one);
                }
                decisions
            }
        }
    }

    /// One call, through the circuit breaker, with the result validated.
    fn call_checked(&mut self, items: &mut Vec<Processed>) -> Result<Vec<Decision>, Failure> {
        let now = self.clock.now_ms();
        if !self.breaker.allows(now) {
            return Err(Failure {
                kind: FailureKind::BreakerOpen,
                detail: "circuit breaker open after repeated failures".into(),
            });
        }
        let count = items.len();
        let started = std::time::Instant::now();
        let result = self.call(items).and_then(|raw| {
            if raw.len() == count {
                Ok(validate_all(raw))
            } else {
                Err(Failure {
                    kind: FailureKind::InvalidOutput,
                    detail: format!("returned {} results for {count} events", raw.len()),
                })
            }
        });
        self.metrics.calls.inc();
        self.metrics
            .call_seconds
            .observe(started.elapsed().as_secs_f64());
        let transition = match &result {
            Ok(decisions) if decisions.iter().all(|d| !matches!(d, Decision::Failed(_))) => {
                self.breaker.record_success()
            }
            _ => self.breaker.record_failure(now),
        };
        match transition {
            Some(Transition::Opened) => self.metrics.breaker_open.set(1.0),
            Some(Transition::Closed) => self.metrics.breaker_open.set(0.0),
            None => {}
        }
        match transition {
            Some(Transition::Opened) => tracing::error!(
                stage = %self.name,
                plugin = %self.plugin.source,
                policy = %self.policy,
                "plugin keeps failing: circuit breaker opened; its failure policy applies to every event until a trial call succeeds"
            ),
            Some(Transition::Closed) => {
                tracing::warn!(stage = %self.name, plugin = %self.plugin.source, "plugin recovered: circuit breaker closed")
            }
            None => {}
        }
        result
    }

    /// One raw call into the guest, with `items` lent to it. On a trap the
    /// instance is discarded (after the items are taken back).
    fn call(&mut self, items: &mut Vec<Processed>) -> Result<Raw, Failure> {
        let mut instance = match self.instance.take() {
            Some(instance) => instance,
            None => self.instantiate().map_err(|error| Failure {
                kind: FailureKind::Trap,
                detail: format!("cannot re-create the instance: {error}"),
            })?,
        };
        let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let store = &mut instance.store;
        if let Err(error) = store.set_fuel(fuel_for(&self.limits, items)) {
            return Err(describe_error(&error, self.limits.timeout.0));
        }
        let state = store.data_mut();
        state.logs_left = LOG_LINES_PER_CALL;
        state.logs_suppressed = 0;
        state.batch = std::mem::take(items);
        deadline::arm(store, self.limits.timeout.0);
        let running = self.watchdog.enter();

        let result = match &instance.exports {
            Exports::Filter(exports) => exports.call_filter(&mut *store, count).map(Raw::Verdicts),
            Exports::SeverityMapper(exports) => {
                exports.call_map(&mut *store, count).map(Raw::Severities)
            }
            Exports::Enricher(exports) => exports
                .call_enrich(&mut *store, count)
                .map(Raw::Enrichments),
        };
        drop(running);
        let state = store.data_mut();
        *items = std::mem::take(&mut state.batch);
        if state.logs_suppressed > 0 {
            tracing::warn!(stage = %self.name, suppressed = state.logs_suppressed, "plugin wrote too many log lines in one call; the rest were dropped");
        }
        let result = match (result, state.decided.take()) {
            (Ok(Raw::Verdicts(listed)), Some(packed)) if listed.is_empty() => {
                Ok(Raw::Packed(packed))
            }
            (Ok(Raw::Verdicts(listed)), Some(_)) => {
                // The instance is sound; only this result is not.
                self.instance = Some(instance);
                return Err(Failure {
                    kind: FailureKind::InvalidOutput,
                    detail: format!(
                        "returned {} verdicts as well as handing them over with `batch.decide`",
                        listed.len()
                    ),
                });
            }
            (result, _) => result,
        };
        match result {
            Ok(raw) => {
                self.instance = Some(instance);
                Ok(raw)
            }
            // The instance may be in any state after a trap: drop it; the
            // next call starts a fresh one.
            Err(error) => Err(describe_error(&error, self.limits.timeout.0)),
        }
    }
}

fn severity_from_wit(severity: types::Severity) -> Severity {
    match severity {
        types::Severity::Info => Severity::Info,
        types::Severity::Low => Severity::Low,
        types::Severity::Medium => Severity::Medium,
        types::Severity::High => Severity::High,
        types::Severity::Critical => Severity::Critical,
    }
}

fn invalid(detail: String) -> Decision {
    Decision::Failed(Failure {
        kind: FailureKind::InvalidOutput,
        detail,
    })
}

/// Validates every result of a call; an invalid one becomes a failure for
/// its event only.
fn validate_all(raw: Raw) -> Vec<Decision> {
    match raw {
        Raw::Verdicts(verdicts) => verdicts
            .into_iter()
            .map(|verdict| match verdict {
                types::Verdict::Keep => Decision::Keep,
                types::Verdict::Drop(reason) => {
                    Decision::Drop(validate::truncate(&reason, MAX_DROP_REASON).into())
                }
                // A redaction may be longer than the message it replaces
                // (`[REDACTED]` is longer than many secrets), and may keep
                // the control characters the message came with: it is cut,
                // not refused, so that redacting never loses the event.
                types::Verdict::Redact(mut message) => {
                    crate::event::cut(&mut message, MAX_REDACTED);
                    Decision::Redact(message)
                }
            })
            .collect(),
        Raw::Packed(column) => unpack_verdicts(column),
        Raw::Severities(severities) => severities
            .into_iter()
            .map(|severity| match severity {
                Some(severity) => Decision::SetSeverity(severity_from_wit(severity)),
                None => Decision::Keep,
            })
            .collect(),
        Raw::Enrichments(enrichments) => enrichments.into_iter().map(validate_enrichment).collect(),
    }
}

/// A filter's packed verdicts (`batch.decide`), one decision per event. A
/// drop reason is shared by every event it was given for; a kind or a text
/// reference that is not valid fails its event only.
fn unpack_verdicts(column: batch::VerdictColumn) -> Vec<Decision> {
    let batch::VerdictColumn {
        kinds,
        text_of,
        texts,
    } = column;
    // Text `i` of the column: `None` if its bounds are not valid.
    let text = |index: u32| {
        let index = index as usize;
        let end = *texts.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => texts.ends[index - 1] as usize,
        };
        texts.text.get(start..end)
    };
    let mut reasons: Vec<Option<Arc<str>>> = vec![None; texts.ends.len()];
    let mut text_of = text_of.into_iter();
    kinds
        .into_iter()
        .map(|kind| {
            if kind == 0 {
                return Decision::Keep;
            }
            if kind > 2 {
                return invalid(format!(
                    "verdict kind {kind}, not 0 (keep), 1 (drop) or 2 (redact)"
                ));
            }
            let Some(index) = text_of.next() else {
                return invalid("no `text-of` entry for an event that is not kept".into());
            };
            let Some(text) = text(index) else {
                return invalid(format!(
                    "`text-of` points at text {index}, which the column does not hold"
                ));
            };
            if kind == 1 {
                let reason = reasons[index as usize]
                    .get_or_insert_with(|| validate::truncate(text, MAX_DROP_REASON).into());
                Decision::Drop(Arc::clone(reason))
            } else {
                let mut message = text.to_owned();
                crate::event::cut(&mut message, MAX_REDACTED);
                Decision::Redact(message)
            }
        })
        .collect()
}

fn validate_enrichment(enrichment: types::Enrichment) -> Decision {
    let check = |entries: &[types::KeyValue], what: &str, max: usize, multiline: bool| {
        if entries.len() > MAX_ENTRIES {
            return Err(format!(
                "{} {what}s, more than {MAX_ENTRIES}",
                entries.len()
            ));
        }
        entries.iter().try_for_each(|kv| {
            validate::check_key(&kv.key)?;
            validate::check_value(&format!("{what} {:?}", kv.key), &kv.value, max, multiline)
        })
    };
    let checked = check(&enrichment.labels, "label", MAX_LABEL_VALUE, false)
        .and_then(|()| check(&enrichment.annotations, "annotation", MAX_TEXT, true));
    match checked {
        Ok(()) => Decision::Enrich {
            labels: enrichment
                .labels
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect(),
            annotations: enrichment
                .annotations
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect(),
        },
        Err(problem) => invalid(problem),
    }
}

/// Fuel for one call: `fuel_per_event` for each event and `fuel_per_kib` for
/// each KiB of their messages, so that a long message gets the fuel that
/// reading it takes.
fn fuel_for(limits: &Limits, items: &[Processed]) -> u64 {
    let kib: u64 = items
        .iter()
        .map(|item| item.message().len().div_ceil(1024) as u64)
        .sum();
    limits
        .fuel_per_event
        .saturating_mul(items.len() as u64)
        .saturating_add(limits.fuel_per_kib.saturating_mul(kib))
}

/// Instantiation and `init` may take this many times a call's deadline.
const INIT_TIMEOUT_FACTOR: u32 = 10;

/// Classifies an error from a call into the guest.
/// `deadline`: the call's, for the message.
fn describe_error(error: &wasmtime::Error, deadline: Duration) -> Failure {
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return Failure {
            kind: FailureKind::Timeout,
            detail: format!(
                "did not return within its deadline of {}: `limits.timeout`",
                HumanDuration(deadline)
            ),
        };
    }
    if error.downcast_ref::<WouldWait>().is_some() {
        return Failure {
            kind: FailureKind::Timeout,
            detail: WouldWait.to_string(),
        };
    }
    let kind = match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => FailureKind::OutOfFuel,
        _ if format!("{error:#}").contains("forcing trap when growing memory") => {
            FailureKind::OutOfMemory
        }
        _ => FailureKind::Trap,
    };
    let detail = match kind {
        FailureKind::OutOfFuel => {
            "used up its fuel (CPU limit): `limits.fuel_per_event`, `limits.fuel_per_kib`"
                .to_owned()
        }
        FailureKind::OutOfMemory => "hit its memory cap: `limits.memory`".to_owned(),
        _ => {
            // The first line says what trapped; the backtrace is for debug logs.
            let full = format!("{error:#}");
            validate::truncate(full.lines().next().unwrap_or_default(), 300).to_owned()
        }
    };
    Failure { kind, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kinds: Vec<u8>, text_of: Vec<u32>, texts: &[&str]) -> batch::VerdictColumn {
        let mut column = batch::TextColumn {
            ends: Vec::new(),
            text: String::new(),
        };
        for text in texts {
            column.text.push_str(text);
            column.ends.push(column.text.len() as u32);
        }
        batch::VerdictColumn {
            kinds,
            text_of,
            texts: column,
        }
    }

    #[test]
    fn packed_verdicts_unpack_with_each_reason_shared() {
        let decisions = unpack_verdicts(column(
            vec![0, 1, 2, 1, 0],
            vec![0, 1, 0],
            &["type Normal not allowed", "password=[REDACTED]"],
        ));
        assert_eq!(decisions.len(), 5);
        assert_eq!(decisions[0], Decision::Keep);
        assert_eq!(decisions[2], Decision::Redact("password=[REDACTED]".into()));
        assert_eq!(decisions[4], Decision::Keep);
        let (Decision::Drop(first), Decision::Drop(second)) = (&decisions[1], &decisions[3]) else {
            panic!("{decisions:?}");
        };
        assert_eq!(&**first, "type Normal not allowed");
        // One allocation for the reason, whatever the number of drops.
        assert!(Arc::ptr_eq(first, second));
    }

    #[test]
    fn a_bad_packed_verdict_fails_its_event_only() {
        let long = "x".repeat(MAX_DROP_REASON + 10);
        let decisions = unpack_verdicts(column(
            // A kind out of range; a drop pointing past the texts; an empty
            // reason; a reason over the limit; a redaction with no
            // `text-of` entry left.
            vec![7, 1, 1, 1, 0, 2],
            vec![9, 1, 2],
            &["ü", "", &long],
        ));
        let failed = |decision: &Decision| matches!(decision, Decision::Failed(f) if f.kind == FailureKind::InvalidOutput);
        assert!(failed(&decisions[0]), "{:?}", decisions[0]);
        assert!(failed(&decisions[1]), "{:?}", decisions[1]);
        assert_eq!(decisions[2], Decision::Drop("".into()));
        let Decision::Drop(cut) = &decisions[3] else {
            panic!("{:?}", decisions[3]);
        };
        assert_eq!(cut.len(), MAX_DROP_REASON);
        assert_eq!(decisions[4], Decision::Keep);
        assert!(failed(&decisions[5]), "{:?}", decisions[5]);

        // Bounds that split a character are not a text.
        let mut split = column(vec![1], vec![0], &[]);
        split.texts.text = "ü".into();
        split.texts.ends = vec![1];
        assert!(failed(&unpack_verdicts(split)[0]));
    }
}
