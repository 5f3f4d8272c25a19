//! `aetherius plugin test`: one plugin over a file of Kubernetes Events, with
//! the real runtime's limits, batching and failure policy, showing what it
//! decided about each event. `--expect` turns the run into an assertion.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::clock::ManualClock;
use crate::event::{Severity, normalize};
use crate::item::Processed;
use crate::occurrence::{Fingerprint, Occurrence, occurrence_id};
use crate::pipeline::BatchCutter;
use crate::plugin::{BreakerConfig, FailurePolicy, Limits, PluginConfig, PluginSource};
use crate::plugin::{Decision, PluginError, PluginRuntime, Stage, StageKind};

/// What `aetherius plugin test` was asked to do.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// A `.wasm` file, or `builtin:NAME`.
    pub plugin: String,
    /// Kubernetes Events (core/v1 or events.k8s.io/v1), one JSON object per
    /// line; `-` for standard input.
    pub input: PathBuf,
    /// The stage's `config`, as in the YAML (`null` when absent).
    pub config: Value,
    pub limits: Limits,
    pub on_failure: FailurePolicy,
    /// Events per call, as `plugin_runtime.batch_size`.
    pub batch_size: usize,
    /// Compiled-plugin cache, as `plugin_runtime.cache_dir`.
    pub cache_dir: Option<PathBuf>,
    /// JSON lines, one per event, each a subset of that event's result.
    pub expect: Option<PathBuf>,
}

/// The outcome of a run: one result per event, and the mismatches against
/// `--expect`, if one was given.
#[derive(Debug)]
pub struct TestReport {
    pub kind: StageKind,
    pub results: Vec<Value>,
    /// `None` without `--expect`; otherwise every difference found.
    pub mismatches: Option<Vec<String>>,
}

impl TestReport {
    /// One line per event, for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for result in &self.results {
            let field = |name: &str| result[name].as_str().unwrap_or_default().to_owned();
            let object = format!("{} {}", field("namespace"), field("object"));
            let mut line = format!(
                "{:>4}  {:<8} {:<20} {:<36} {}",
                result["line"].as_u64().unwrap_or_default(),
                field("type"),
                field("reason"),
                object.trim(),
                field("decision"),
            );
            match field("decision").as_str() {
                "dropped" => {
                    let _ = write!(line, ": {}", field("drop_reason"));
                }
                "redacted" => {
                    let _ = write!(line, ": message now {:?}", field("message"));
                }
                "failed" => {
                    let _ = write!(
                        line,
                        ": {} ({}) -> {} by {}",
                        result["failure"]["kind"].as_str().unwrap_or_default(),
                        result["failure"]["detail"].as_str().unwrap_or_default(),
                        field("outcome"),
                        field("policy"),
                    );
                }
                _ => {}
            }
            if self.kind == StageKind::SeverityMapper {
                let _ = write!(
                    line,
                    "  severity {} -> {}",
                    field("severity_before"),
                    field("severity")
                );
            }
            for (name, key) in [("labels", "+labels"), ("annotations", "+annotations")] {
                if let Some(added) = result[name].as_object().filter(|m| !m.is_empty()) {
                    let pairs: Vec<String> = added
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    let _ = write!(line, "  {key} {}", pairs.join(","));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let count = |decision: &str| {
            self.results
                .iter()
                .filter(|r| r["decision"] == decision)
                .count()
        };
        let _ = writeln!(
            out,
            "{} events: {} kept, {} dropped, {} redacted, {} failed",
            self.results.len(),
            count("kept"),
            count("dropped"),
            count("redacted"),
            count("failed"),
        );
        out
    }

    /// One JSON object per event: the `--expect` format.
    pub fn to_json_lines(&self) -> String {
        self.results
            .iter()
            .map(|result| format!("{result}\n"))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Input {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("{0}")]
    Source(String),
}

/// Runs the plugin over every event of the input, in batches, on a clock
/// that follows the events (as `aetherius replay` does).
pub fn run_test(options: &TestOptions) -> Result<TestReport, TestError> {
    let text = if options.input == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|error| TestError::Read {
            path: options.input.clone(),
            error,
        })?
    } else {
        read(&options.input)?
    };
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event =
            normalize(line.trim().as_bytes(), "plugin-test").map_err(|e| TestError::Input {
                path: options.input.clone(),
                line: index + 1,
                message: e.to_string(),
            })?;
        events.push((index + 1, event));
    }

    let clock = ManualClock::new(i64::MIN);
    let runtime = PluginRuntime::new(options.cache_dir.clone(), Arc::new(clock.clone()))?;
    let source = PluginSource::parse(&options.plugin).map_err(TestError::Source)?;
    let plugin = runtime.load(&source, Path::new("."), None)?;
    let kind = plugin.kind();
    let config = PluginConfig {
        source,
        config: options.config.clone(),
        limits: options.limits,
        on_failure: options.on_failure,
        circuit_breaker: BreakerConfig::default(),
    };
    // Logs are tagged with the stage name: the file's name, as in a config.
    let name = match &config.source {
        PluginSource::Path(path) => path
            .file_stem()
            .map_or("plugin".into(), |stem| stem.to_string_lossy().into_owned()),
        other => other.to_string(),
    };
    let mut stage = runtime.start_stage(&name, plugin, &config)?;

    // Batches as the pipeline cuts them, on the replay clock: `now` is the
    // event's time, whatever the batch size.
    let mut cutter = BatchCutter::new(options.batch_size, Some(clock));
    let mut results = Vec::with_capacity(events.len());
    let mut batch: Vec<(usize, Processed)> = Vec::new();
    let mut batch_bytes = 0;
    for (slot, (line, event)) in events.into_iter().enumerate() {
        if cutter.cut_before(&event, batch.len(), batch_bytes) {
            run_batch(&mut stage, &mut batch, &mut results);
            batch_bytes = 0;
        }
        batch_bytes += event.heap_bytes();
        let occurrence = Occurrence {
            id: occurrence_id(&event),
            fingerprint: Fingerprint::of(&event),
            repeated_count: None,
            event,
        };
        batch.push((line, Processed::new(Arc::new(occurrence), slot)));
    }
    run_batch(&mut stage, &mut batch, &mut results);

    let mismatches = match &options.expect {
        Some(path) => Some(compare(path, &read(path)?, &results)?),
        None => None,
    };
    Ok(TestReport {
        kind,
        results,
        mismatches,
    })
}

fn read(path: &Path) -> Result<String, TestError> {
    std::fs::read_to_string(path).map_err(|error| TestError::Read {
        path: path.to_owned(),
        error,
    })
}

fn run_batch(stage: &mut Stage, batch: &mut Vec<(usize, Processed)>, results: &mut Vec<Value>) {
    if batch.is_empty() {
        return;
    }
    let (lines, mut items): (Vec<usize>, Vec<Processed>) =
        std::mem::take(batch).into_iter().unzip();
    let decisions = stage.process(&mut items);
    for ((line, item), decision) in lines.into_iter().zip(items).zip(decisions) {
        results.push(describe(line, &item, &decision, stage));
    }
}

/// The result for one event: what it was, what the plugin decided, and what
/// the event looks like after the stage.
fn describe(line: usize, item: &Processed, decision: &Decision, stage: &Stage) -> Value {
    let event = &item.occurrence.event;
    let mut result = Map::new();
    result.insert("line".into(), json!(line));
    result.insert("reason".into(), json!(event.reason));
    result.insert("type".into(), json!(event.event_type));
    result.insert("namespace".into(), json!(event.namespace));
    result.insert(
        "object".into(),
        json!(format!("{}/{}", event.involved.kind, event.involved.name)),
    );
    let mut severity = item.severity;
    let mut labels = Vec::new();
    let mut annotations = Vec::new();
    let decided = match decision {
        Decision::Keep => "kept",
        Decision::Drop(reason) => {
            result.insert("drop_reason".into(), json!(&**reason));
            "dropped"
        }
        Decision::Redact(message) => {
            result.insert("message".into(), json!(message));
            "redacted"
        }
        Decision::SetSeverity(new) => {
            // The chain never lowers an escalated event below its floor.
            severity = (*new).max(item.severity_floor());
            "kept"
        }
        Decision::Enrich {
            labels: added_labels,
            annotations: added_annotations,
        } => {
            labels.clone_from(added_labels);
            annotations.clone_from(added_annotations);
            "kept"
        }
        Decision::Failed(failure) => {
            result.insert(
                "failure".into(),
                json!({ "kind": failure.kind.as_str(), "detail": failure.detail }),
            );
            let policy = stage.policy();
            result.insert("policy".into(), json!(policy.to_string()));
            let outcome = match policy {
                FailurePolicy::FailOpen => "kept",
                FailurePolicy::FailClosed => "dropped",
                FailurePolicy::DeadLetter => "dead-lettered",
            };
            result.insert("outcome".into(), json!(outcome));
            "failed"
        }
    };
    result.insert("decision".into(), json!(decided));
    result.insert("severity_before".into(), json!(item.severity.as_str()));
    result.insert("severity".into(), json!(Severity::as_str(severity)));
    result.insert("labels".into(), pairs(labels));
    result.insert("annotations".into(), pairs(annotations));
    Value::Object(result)
}

fn pairs(pairs: Vec<(String, String)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

/// Checks each expectation (one JSON object per non-empty line, in event
/// order) against the result of the same event: every field it names must
/// be equal; objects (`labels`, `failure`...) are compared by the keys the
/// expectation names.
fn compare(path: &Path, text: &str, results: &[Value]) -> Result<Vec<String>, TestError> {
    let mut expectations = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let expected: Value = serde_json::from_str(line).map_err(|e| TestError::Input {
            path: path.to_owned(),
            line: index + 1,
            message: format!("not a JSON object: {e}"),
        })?;
        if !expected.is_object() {
            return Err(TestError::Input {
                path: path.to_owned(),
                line: index + 1,
                message: "each line must be a JSON object, e.g. {\"decision\": \"dropped\"}".into(),
            });
        }
        expectations.push((index + 1, expected));
    }
    let mut mismatches = Vec::new();
    if expectations.len() != results.len() {
        mismatches.push(format!(
            "{} has {} expectations for {} events (one line per event, in order)",
            path.display(),
            expectations.len(),
            results.len()
        ));
    }
    for ((expect_line, expected), result) in expectations.iter().zip(results) {
        let mut differences = Vec::new();
        differ("", expected, result, &mut differences);
        for difference in differences {
            mismatches.push(format!(
                "event at input line {} ({} {}), {}:{expect_line}: {difference}",
                result["line"],
                result["reason"].as_str().unwrap_or_default(),
                result["object"].as_str().unwrap_or_default(),
                path.display(),
            ));
        }
    }
    Ok(mismatches)
}

fn differ(at: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                differ(&path, value, actual.get(key).unwrap_or(&Value::Null), out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("`{at}` expected {expected}, got {actual}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> Value {
        json!({
            "line": 3, "reason": "BackOff", "object": "Pod/web", "decision": "kept",
            "severity": "high", "labels": { "team": "shop", "tier": "web" },
        })
    }

    #[test]
    fn expectations_compare_only_the_fields_they_name() {
        let text = "{\"decision\": \"kept\", \"labels\": {\"team\": \"shop\"}}\n\n";
        let mismatches = compare(Path::new("e.jsonl"), text, &[result()]).unwrap();
        assert!(mismatches.is_empty(), "{mismatches:?}");
    }

    #[test]
    fn a_difference_names_the_event_the_field_and_both_values() {
        let text =
            "{\"decision\": \"dropped\", \"labels\": {\"team\": \"ops\", \"owner\": \"x\"}}\n";
        let mismatches = compare(Path::new("e.jsonl"), text, &[result()]).unwrap();
        assert_eq!(
            mismatches,
            [
                "event at input line 3 (BackOff Pod/web), e.jsonl:1: `decision` expected \"dropped\", got \"kept\"",
                "event at input line 3 (BackOff Pod/web), e.jsonl:1: `labels.owner` expected \"x\", got null",
                "event at input line 3 (BackOff Pod/web), e.jsonl:1: `labels.team` expected \"ops\", got \"shop\"",
            ]
        );
    }

    #[test]
    fn a_missing_or_extra_expectation_is_a_mismatch() {
        let mismatches = compare(Path::new("e.jsonl"), "", &[result()]).unwrap();
        assert_eq!(mismatches.len(), 1);
        assert!(mismatches[0].contains("0 expectations for 1 events"));
        let error = compare(Path::new("e.jsonl"), "[1]\n", &[result()]).unwrap_err();
        assert!(error.to_string().starts_with("e.jsonl:1:"), "{error}");
    }
}
