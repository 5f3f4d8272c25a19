//! What a plugin's Store holds, and the host functions a plugin may call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::wasi;

use super::bindings::{batch, host, metadata, types};
use super::validate::truncate;
use crate::clock::SharedClock;
use crate::event::{Event, Severity};
use crate::item::Processed;
use crate::metadata::MetadataCache;

/// Log lines a plugin may write per call; the rest are counted and reported
/// in one line, so a chatty plugin cannot flood the host's log.
pub const LOG_LINES_PER_CALL: u32 = 64;
/// Longest log line kept from a plugin.
const MAX_LOG_LINE: usize = 4096;

/// The data of one plugin instance's Store.
pub struct StoreState {
    /// The stage name, for logs.
    pub stage: Arc<str>,
    pub limits: StoreLimits,
    pub clock: SharedClock,
    /// Log lines still allowed in the current call.
    pub logs_left: u32,
    /// Log lines dropped in the current call.
    pub logs_suppressed: u32,
    /// The events of the call in progress (empty between calls): moved in
    /// before the call and back out after it, never copied.
    pub batch: Vec<Processed>,
    /// Whether the stage is a filter, the one kind that may call
    /// `batch.decide`.
    pub filter: bool,
    /// The verdicts a filter handed over with `batch.decide` in the call in
    /// progress (contract 0.1.3), taken by the stage after the call.
    pub decided: Option<batch::VerdictColumn>,
    /// What `metadata.involved-object` reads (contract 0.1.4).
    pub metadata: MetadataCache,
    /// When the call in progress must have returned (`super::deadline`).
    deadline: Instant,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl super::deadline::HasDeadline for StoreState {
    fn deadline(&mut self) -> &mut Instant {
        &mut self.deadline
    }
}

impl StoreState {
    pub fn new(
        stage: Arc<str>,
        filter: bool,
        memory_cap: usize,
        clock: SharedClock,
        metadata: MetadataCache,
    ) -> Self {
        // Nothing granted; what is linked at all is in `super::wasi`.
        let wasi = wasi::context(PipelineWallClock(clock.clone()));
        Self {
            stage,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_cap)
                .instances(32)
                .tables(64)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            clock,
            logs_left: LOG_LINES_PER_CALL,
            logs_suppressed: 0,
            batch: Vec::new(),
            filter,
            decided: None,
            metadata,
            deadline: Instant::now(),
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl wasi::WasiState for StoreState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    fn random(&mut self) -> &mut wasmtime_wasi::random::WasiRandomCtx {
        self.wasi.random()
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: types::LogLevel, message: String) {
        if self.logs_left == 0 {
            self.logs_suppressed = self.logs_suppressed.saturating_add(1);
            return;
        }
        self.logs_left -= 1;
        let stage = &*self.stage;
        let message = truncate(&message, MAX_LOG_LINE);
        match level {
            types::LogLevel::Trace => tracing::trace!(plugin = stage, "{message}"),
            types::LogLevel::Debug => tracing::debug!(plugin = stage, "{message}"),
            types::LogLevel::Info => tracing::info!(plugin = stage, "{message}"),
            types::LogLevel::Warn => tracing::warn!(plugin = stage, "{message}"),
            types::LogLevel::Error => tracing::error!(plugin = stage, "{message}"),
        }
    }

    fn now(&mut self) -> i64 {
        self.clock.now_ms()
    }
}

impl metadata::Host for StoreState {
    fn involved_object(
        &mut self,
        index: u32,
    ) -> wasmtime::Result<Option<metadata::ObjectMetadata>> {
        let Some(resolved) = self.involved(index)? else {
            return Ok(None);
        };
        let name = |(kind, name): (String, String)| metadata::ObjectName { kind, name };
        Ok(Some(metadata::ObjectMetadata {
            uid: resolved.meta.uid.to_string(),
            labels: kept_pairs(&resolved.meta.labels),
            node: resolved.meta.node.as_deref().map(str::to_owned),
            owners: resolved.owners.into_iter().map(name).collect(),
            workload: name(resolved.workload),
        }))
    }

    fn involved_annotations(&mut self, index: u32) -> wasmtime::Result<Vec<types::KeyValue>> {
        Ok(self
            .involved(index)?
            .map(|resolved| kept_pairs(&resolved.meta.annotations))
            .unwrap_or_default())
    }
}

/// Key-value pairs as the metadata cache keeps them, for the guest.
fn kept_pairs(pairs: &[(Arc<str>, Box<str>)]) -> Vec<types::KeyValue> {
    pairs
        .iter()
        .map(|(key, value)| types::KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        })
        .collect()
}

impl StoreState {
    /// The involved object of event `index`, as the metadata cache has it.
    fn involved(&self, index: u32) -> wasmtime::Result<Option<crate::metadata::Resolved>> {
        let event = self.event(index)?;
        let involved = &event.involved;
        let namespace = if involved.namespace.is_empty() {
            &event.namespace
        } else {
            &involved.namespace
        };
        Ok(self.metadata.resolve(
            &event.cluster,
            &involved.kind,
            namespace,
            &involved.name,
            &involved.uid,
        ))
    }
}

/// The pipeline clock as a WASI wall clock.
struct PipelineWallClock(SharedClock);

impl HostWallClock for PipelineWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or(0))
    }
}

/// The batch of the call in progress, read by the guest field by field.
impl StoreState {
    fn item(&self, index: u32) -> wasmtime::Result<&Processed> {
        self.batch.get(index as usize).ok_or_else(|| {
            wasmtime::format_err!(
                "plugin asked for event {index} of a batch of {}",
                self.batch.len()
            )
        })
    }

    fn event(&self, index: u32) -> wasmtime::Result<&Event> {
        Ok(&self.item(index)?.occurrence.event)
    }

    /// One text field of one event (the per-event accessors of 0.1.0),
    /// read as `batch.texts` reads it for the whole batch.
    fn text(&self, index: u32, field: batch::TextField) -> wasmtime::Result<String> {
        Ok(text_field(self.item(index)?, field).to_owned())
    }
}

/// One text field of an item, as `batch.texts` names it.
fn text_field(item: &Processed, field: batch::TextField) -> &str {
    use batch::TextField as F;
    let event = &item.occurrence.event;
    match field {
        F::Cluster => &event.cluster,
        F::Namespace => &event.namespace,
        F::InvolvedKind => &event.involved.kind,
        F::InvolvedName => &event.involved.name,
        F::InvolvedNamespace => &event.involved.namespace,
        F::InvolvedUid => &event.involved.uid,
        F::InvolvedApiVersion => &event.involved.api_version,
        F::Reason => &event.reason,
        F::Message => item.message(),
        F::EventType => &event.event_type,
        F::SourceComponent => &event.source_component,
        F::SourceHost => &event.source_host,
        F::ReportingController => &event.reporting_controller,
    }
}

/// One time field of an event, as `batch.times` names it.
fn time_field(event: &Event, field: batch::TimeField) -> Option<i64> {
    use batch::TimeField as F;
    match field {
        F::FirstTimestamp => event.first_timestamp,
        F::LastTimestamp => event.last_timestamp,
        F::EventTime => event.event_time,
        F::SeriesLastObserved => event.series_last_observed,
    }
}

fn key_values(pairs: &[(String, String)]) -> Vec<types::KeyValue> {
    pairs
        .iter()
        .map(|(key, value)| types::KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

fn lookup(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

pub(super) fn severity_to_wit(severity: Severity) -> types::Severity {
    match severity {
        Severity::Info => types::Severity::Info,
        Severity::Low => types::Severity::Low,
        Severity::Medium => types::Severity::Medium,
        Severity::High => types::Severity::High,
        Severity::Critical => types::Severity::Critical,
    }
}

type Field<T> = wasmtime::Result<T>;

impl batch::Host for StoreState {
    fn get(&mut self, index: u32) -> Field<types::Event> {
        let item = self.item(index)?;
        let event = &item.occurrence.event;
        Ok(types::Event {
            cluster: event.cluster.as_str().to_owned(),
            namespace: event.namespace.as_str().to_owned(),
            involved: types::ObjectRef {
                kind: event.involved.kind.as_str().to_owned(),
                name: event.involved.name.as_str().to_owned(),
                namespace: event.involved.namespace.as_str().to_owned(),
                uid: event.involved.uid.as_str().to_owned(),
                api_version: event.involved.api_version.as_str().to_owned(),
            },
            reason: event.reason.as_str().to_owned(),
            message: item.message().to_owned(),
            event_type: event.event_type.as_str().to_owned(),
            count: event.count,
            first_timestamp: event.first_timestamp,
            last_timestamp: event.last_timestamp,
            event_time: event.event_time,
            series_last_observed: event.series_last_observed,
            source_component: event.source_component.as_str().to_owned(),
            source_host: event.source_host.as_str().to_owned(),
            reporting_controller: event.reporting_controller.as_str().to_owned(),
            labels: key_values(&item.labels),
            annotations: key_values(&item.annotations),
            severity: severity_to_wit(item.severity),
        })
    }

    fn cluster(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::Cluster)
    }

    fn namespace(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::Namespace)
    }

    fn involved_kind(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::InvolvedKind)
    }

    fn involved_name(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::InvolvedName)
    }

    fn involved_namespace(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::InvolvedNamespace)
    }

    fn involved_uid(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::InvolvedUid)
    }

    fn involved_api_version(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::InvolvedApiVersion)
    }

    fn reason(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::Reason)
    }

    fn message(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::Message)
    }

    fn event_type(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::EventType)
    }

    fn count(&mut self, index: u32) -> Field<u32> {
        Ok(self.event(index)?.count)
    }

    fn first_timestamp(&mut self, index: u32) -> Field<Option<i64>> {
        Ok(self.event(index)?.first_timestamp)
    }

    fn last_timestamp(&mut self, index: u32) -> Field<Option<i64>> {
        Ok(self.event(index)?.last_timestamp)
    }

    fn event_time(&mut self, index: u32) -> Field<Option<i64>> {
        Ok(self.event(index)?.event_time)
    }

    fn series_last_observed(&mut self, index: u32) -> Field<Option<i64>> {
        Ok(self.event(index)?.series_last_observed)
    }

    fn source_component(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::SourceComponent)
    }

    fn source_host(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::SourceHost)
    }

    fn reporting_controller(&mut self, index: u32) -> Field<String> {
        self.text(index, batch::TextField::ReportingController)
    }

    fn labels(&mut self, index: u32) -> Field<Vec<types::KeyValue>> {
        Ok(key_values(&self.item(index)?.labels))
    }

    fn label(&mut self, index: u32, key: String) -> Field<Option<String>> {
        Ok(lookup(&self.item(index)?.labels, &key))
    }

    fn annotations(&mut self, index: u32) -> Field<Vec<types::KeyValue>> {
        Ok(key_values(&self.item(index)?.annotations))
    }

    fn annotation(&mut self, index: u32, key: String) -> Field<Option<String>> {
        Ok(lookup(&self.item(index)?.annotations, &key))
    }

    fn severity(&mut self, index: u32) -> Field<types::Severity> {
        Ok(severity_to_wit(self.item(index)?.severity))
    }

    fn texts(&mut self, field: batch::TextField) -> Field<batch::TextColumn> {
        let size = self
            .batch
            .iter()
            .map(|item| text_field(item, field).len())
            .sum();
        if u32::try_from(size).is_err() {
            wasmtime::bail!("the batch's {field:?} texts exceed 4 GiB");
        }
        let mut text = String::with_capacity(size);
        let mut ends = Vec::with_capacity(self.batch.len());
        for item in &self.batch {
            text.push_str(text_field(item, field));
            // Bounded by `size`, checked above.
            ends.push(text.len() as u32);
        }
        Ok(batch::TextColumn { ends, text })
    }

    fn decide(&mut self, verdicts: batch::VerdictColumn) -> Field<()> {
        if !self.filter {
            wasmtime::bail!("`batch.decide` called by a stage that is not a filter");
        }
        if self.batch.is_empty() {
            wasmtime::bail!("`batch.decide` called outside a `filter` call");
        }
        if self.decided.is_some() {
            wasmtime::bail!("`batch.decide` called twice in one `filter` call");
        }
        self.decided = Some(verdicts);
        Ok(())
    }

    fn times(&mut self, field: batch::TimeField) -> Field<Vec<Option<i64>>> {
        Ok(self
            .batch
            .iter()
            .map(|item| time_field(&item.occurrence.event, field))
            .collect())
    }

    fn counts(&mut self) -> Field<Vec<u32>> {
        Ok(self
            .batch
            .iter()
            .map(|item| item.occurrence.event.count)
            .collect())
    }

    fn severities(&mut self) -> Field<Vec<types::Severity>> {
        Ok(self
            .batch
            .iter()
            .map(|item| severity_to_wit(item.severity))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::event::fixtures::warning;
    use crate::occurrence::{Fingerprint, Occurrence, occurrence_id};

    fn item(reason: &str, count: u32, message: Option<&str>) -> Processed {
        let event = warning(reason, "web", "u1", count, 1_763_629_200_000);
        let occurrence = Occurrence {
            id: occurrence_id(&event),
            fingerprint: Fingerprint::of(&event),
            repeated_count: None,
            event,
        };
        let mut item = Processed::new(Arc::new(occurrence), 0);
        item.message = message.map(str::to_owned);
        item
    }

    fn state(batch: Vec<Processed>) -> StoreState {
        let mut state = StoreState::new(
            "test".into(),
            true,
            1 << 20,
            Arc::new(ManualClock::new(0)),
            MetadataCache::default(),
        );
        state.batch = batch;
        state
    }

    /// Event `i`'s text, as the contract says to cut it out of a column.
    fn cut(column: &batch::TextColumn, i: usize) -> &str {
        let start = if i == 0 {
            0
        } else {
            column.ends[i - 1] as usize
        };
        &column.text[start..column.ends[i] as usize]
    }

    #[test]
    fn a_text_column_holds_every_events_field_end_to_end() {
        let mut state = state(vec![
            item("BackOff", 1, None),
            item("", 2, Some("")),
            item("Überfällig", 3, Some("ünïcödé ✓")),
        ]);
        let column = batch::Host::texts(&mut state, batch::TextField::Reason).unwrap();
        assert_eq!(column.ends.len(), 3);
        let reasons: Vec<&str> = (0..3).map(|i| cut(&column, i)).collect();
        assert_eq!(reasons, ["BackOff", "", "Überfällig"]);
        // The message as it stands: redacted where a stage redacted it.
        let column = batch::Host::texts(&mut state, batch::TextField::Message).unwrap();
        assert_eq!(cut(&column, 1), "");
        assert_eq!(cut(&column, 2), "ünïcödé ✓");
        assert_eq!(
            cut(&column, 0),
            state.batch[0].occurrence.event.message.as_str()
        );
        // Every column agrees with the one-event accessor of 0.1.0.
        for i in 0..3 {
            let name = batch::Host::involved_name(&mut state, i).unwrap();
            let column = batch::Host::texts(&mut state, batch::TextField::InvolvedName).unwrap();
            assert_eq!(cut(&column, i as usize), name);
        }
    }

    #[test]
    fn number_columns_are_in_batch_order() {
        let mut state = state(vec![item("A", 4, None), item("B", 9, None)]);
        assert_eq!(batch::Host::counts(&mut state).unwrap(), [4, 9]);
        let last = batch::Host::times(&mut state, batch::TimeField::LastTimestamp).unwrap();
        assert_eq!(last, [Some(1_763_629_200_000); 2]);
        assert_eq!(
            batch::Host::severities(&mut state).unwrap(),
            [types::Severity::Low; 2]
        );
        // Outside a call the batch is empty, and so is every column.
        let mut idle = self::state(Vec::new());
        let column = batch::Host::texts(&mut idle, batch::TextField::Reason).unwrap();
        assert!(column.ends.is_empty() && column.text.is_empty());
    }

    fn verdicts(kinds: Vec<u8>) -> batch::VerdictColumn {
        batch::VerdictColumn {
            kinds,
            text_of: Vec::new(),
            texts: batch::TextColumn {
                ends: Vec::new(),
                text: String::new(),
            },
        }
    }

    #[test]
    fn a_filter_hands_over_its_verdicts_once_per_call() {
        let mut state = state(vec![item("BackOff", 1, None)]);
        batch::Host::decide(&mut state, verdicts(vec![0])).unwrap();
        assert_eq!(state.decided.as_ref().map(|v| v.kinds.len()), Some(1));
        let twice = batch::Host::decide(&mut state, verdicts(vec![0])).unwrap_err();
        assert!(format!("{twice}").contains("twice"), "{twice}");

        // Only filters decide, and only during a call.
        let mut mapper = self::state(vec![item("BackOff", 1, None)]);
        mapper.filter = false;
        let error = batch::Host::decide(&mut mapper, verdicts(vec![0])).unwrap_err();
        assert!(format!("{error}").contains("not a filter"), "{error}");
        let mut idle = self::state(Vec::new());
        let error = batch::Host::decide(&mut idle, verdicts(vec![0])).unwrap_err();
        assert!(format!("{error}").contains("outside"), "{error}");
    }
}
