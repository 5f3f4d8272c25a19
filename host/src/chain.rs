//! A named chain: an ordered list of stages an event passes through. A dropped
//! event skips the rest of its chain; a stage's failure policy decides what a
//! failure does to an event.

use crate::event::Millis;
pub use crate::item::{DeadLetter, Processed};
use crate::plugin::{BreakerState, Decision, FailurePolicy, Stage, StageKind};

/// What one chain made of a batch.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// Events that passed every stage.
    pub passed: Vec<Processed>,
    pub dead_letters: Vec<DeadLetter>,
    /// Events dropped by a filter (or by `fail-closed`).
    pub dropped: usize,
    /// Stage failures, whatever the policy did with them.
    pub failures: usize,
}

/// An ordered list of running stages.
#[derive(Debug)]
pub struct Chain {
    name: String,
    stages: Vec<Stage>,
}

impl Chain {
    pub fn new(name: String, stages: Vec<Stage>) -> Self {
        Self { name, stages }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Until when an open circuit breaker keeps a stage of this chain from
    /// being called, if one does at `now`.
    pub fn open_until(&self, now: Millis) -> Option<Millis> {
        self.stages
            .iter()
            .filter_map(|stage| match stage.breaker_state() {
                BreakerState::Open { until } if until > now => Some(until),
                _ => None,
            })
            .max()
    }

    /// Runs `items` through every stage, in batches as given.
    ///
    /// Each stage's decisions are applied in place: the events a stage keeps
    /// stay in `items`, in order, and no vector is allocated per stage.
    pub fn run(&mut self, mut items: Vec<Processed>) -> ChainOutput {
        let mut output = ChainOutput::default();
        for stage in &mut self.stages {
            if items.is_empty() {
                break;
            }
            let mut decisions = stage.process(&mut items).into_iter();
            items.retain_mut(|item| {
                // `process` returns one decision per item.
                let decision = decisions.next().unwrap_or(Decision::Keep);
                apply(&self.name, stage, item, decision, &mut output)
            });
        }
        output.passed = items;
        output
    }

    /// The kinds of the stages, in order (for `check`).
    pub fn describe(&self) -> Vec<(String, StageKind, String)> {
        self.stages
            .iter()
            .map(|s| (s.name().to_owned(), s.kind(), s.plugin_source().to_owned()))
            .collect()
    }
}

/// Applies one stage's decision to `item`: whether it stays in the chain.
/// A dead-lettered item leaves as a copy (failures are rare; the copy
/// shares the occurrence).
fn apply(
    chain: &str,
    stage: &Stage,
    item: &mut Processed,
    decision: Decision,
    output: &mut ChainOutput,
) -> bool {
    match decision {
        Decision::Keep => true,
        Decision::Drop(reason) => {
            tracing::trace!(chain, stage = stage.name(), %reason, "dropped");
            output.dropped += 1;
            false
        }
        Decision::Redact(message) => {
            item.message = Some(message);
            true
        }
        Decision::SetSeverity(severity) => {
            item.severity = severity.max(item.severity_floor());
            true
        }
        Decision::Enrich {
            labels,
            annotations,
        } => {
            merge(&mut item.labels, labels);
            merge(&mut item.annotations, annotations);
            true
        }
        Decision::Failed(failure) => {
            output.failures += 1;
            let cluster = item.occurrence.event.cluster.as_str();
            crate::metrics::EVENTS_ERRORS.inc(&[cluster, "plugin"]);
            tracing::warn!(
                chain,
                stage = stage.name(),
                plugin = stage.plugin_source(),
                policy = %stage.policy(),
                reason = %item.occurrence.event.reason,
                namespace = %item.occurrence.event.namespace,
                %failure,
                "plugin failed on an event"
            );
            match stage.policy() {
                FailurePolicy::FailOpen => true,
                FailurePolicy::FailClosed => {
                    output.dropped += 1;
                    false
                }
                FailurePolicy::DeadLetter => {
                    output.dead_letters.push(DeadLetter {
                        event: item.clone(),
                        chain: chain.to_owned(),
                        stage: stage.name().to_owned(),
                        failure,
                    });
                    false
                }
            }
        }
    }
}

/// Adds `new` entries, replacing existing keys in place.
fn merge(existing: &mut Vec<(String, String)>, new: Vec<(String, String)>) {
    for (key, value) in new {
        match existing.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => existing.push((key, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_overrides_in_place_and_appends() {
        let mut labels = vec![("a".to_owned(), "1".to_owned())];
        merge(
            &mut labels,
            vec![("b".into(), "2".into()), ("a".into(), "3".into())],
        );
        assert_eq!(
            labels,
            vec![("a".into(), "3".into()), ("b".into(), "2".into())]
        );
    }
}
