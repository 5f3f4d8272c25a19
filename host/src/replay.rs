//! `aetherius replay`: Kubernetes Events from a JSON-lines file (or stdin)
//! through the real pipeline, on a clock that follows the events. Lines that
//! are published events instead (StandardEvent or CloudEvents, e.g. a
//! dead-letter file) are re-driven: their `raw_data.k8s_event`, under their
//! own cluster id.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::clock::ManualClock;
use crate::config::Config;
use crate::event::lines::{Line, LineSplitter};
use crate::event::{Event, EventLimits, NormalizeError, decode};
use crate::input::{InputSender, input_queue};
use crate::pipeline::{PendingChains, PipelineClock, PipelineStats, StartError};
use crate::sink::SinkError;

/// Events read per batch handed to the pipeline thread, at most.
const READ_BATCH: usize = 256;
/// Bytes of events per batch, at most (about).
const READ_BYTES: usize = 1024 * 1024;

/// Options of a replay run.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The input file; `-` for standard input.
    pub input: PathBuf,
    /// Stop at the first malformed line instead of skipping it.
    pub strict: bool,
    /// Cluster id stamped on the replayed events.
    pub cluster: String,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Non-empty lines read.
    pub read: u64,
    /// Lines that were not Kubernetes Events (or larger than
    /// `events.max_size`).
    pub errors: u64,
    pub pipeline: PipelineStats,
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.pipeline;
        write!(
            f,
            "read {} | published {} | filtered {} | deduplicated {} | dead-lettered {} | errors {} | plugin failures {}",
            self.read,
            p.published,
            p.filtered,
            p.deduplicated,
            p.dead_lettered,
            self.errors,
            p.plugin_failures
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot open input {}: {error}", path.display())]
    OpenInput {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("reading input failed at line {line}: {error}")]
    ReadInput { line: u64, error: std::io::Error },
    #[error("line {line}: {message} (--strict stops at the first bad line)")]
    Malformed { line: u64, message: String },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Runs a replay to the end of the input and returns its summary.
pub async fn replay(config: Config, options: ReplayOptions) -> Result<ReplaySummary, ReplayError> {
    let input = open_input(&options.input).await?;
    let clock = ManualClock::new(i64::MIN);
    let limits = config.events.limits();
    let buffer_size = config.pipeline.buffer_size;
    // One worker: a replay's clock follows the events in their order, which
    // parallel workers would interleave.
    let (pipelines, sink_tasks, _) = crate::pipeline::start(
        config,
        PipelineClock::Replay(clock),
        1,
        crate::metadata::MetadataCache::default(),
    )
    .await?;
    let (sender, receiver) = input_queue(buffer_size);
    let worker = crate::pipeline::spawn(pipelines, receiver, None, PendingChains::new(1));

    let read = read_events(input, &options, &limits, sender).await;
    // The reader dropped its sender: the worker drains and ends, dropping the
    // sink queues, so the sinks flush and end too.
    let pipeline_stats = worker.join().await;
    for report in sink_tasks.finish().await? {
        report.log();
    }
    let (read, errors) = read?;
    Ok(ReplaySummary {
        read,
        errors,
        pipeline: pipeline_stats,
    })
}

async fn open_input(path: &Path) -> Result<Box<dyn AsyncRead + Send + Unpin>, ReplayError> {
    if path == Path::new("-") {
        return Ok(Box::new(tokio::io::stdin()));
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|error| ReplayError::OpenInput {
            path: path.to_owned(),
            error,
        })?;
    Ok(Box::new(file))
}

/// Reads and normalizes lines, sending batches to the pipeline. Returns the
/// number of lines read and of malformed lines.
async fn read_events(
    input: Box<dyn AsyncRead + Send + Unpin>,
    options: &ReplayOptions,
    limits: &EventLimits,
    sender: InputSender,
) -> Result<(u64, u64), ReplayError> {
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut lines = LineSplitter::new(limits.max_size);
    let (mut line_number, mut read, mut errors) = (0u64, 0u64, 0u64);
    let mut batch = Vec::with_capacity(READ_BATCH);
    let mut batch_bytes = 0;
    loop {
        let chunk = reader
            .fill_buf()
            .await
            .map_err(|error| ReplayError::ReadInput {
                line: line_number + 1,
                error,
            })?;
        let end = chunk.is_empty();
        // Decoded while the line may still borrow the reader's buffer.
        let (taken, line) = if end {
            (0, lines.finish())
        } else {
            lines.push(chunk)
        };
        let decoded = line.map(|line| match line {
            Line::Text(text) if text.trim_ascii().is_empty() => None,
            Line::Text(text) => Some(decode_line(text.trim_ascii(), &options.cluster, limits)),
            Line::TooLong { bytes } => Some(Err(crate::event::NormalizeError::TooLarge {
                bytes,
                limit: limits.max_size,
            })),
        });
        reader.consume(taken);
        let Some(decoded) = decoded else {
            if end {
                break;
            }
            continue;
        };
        line_number += 1;
        let Some(decoded) = decoded else { continue };
        read += 1;
        match decoded {
            Ok(event) => {
                batch_bytes += event.heap_bytes();
                batch.push(event);
            }
            Err(error) => {
                errors += 1;
                if options.strict {
                    return Err(ReplayError::Malformed {
                        line: line_number,
                        message: error.to_string(),
                    });
                }
                tracing::warn!(line = line_number, %error, "skipping malformed input line");
            }
        }
        if batch.len() >= READ_BATCH || batch_bytes >= READ_BYTES {
            if sender.send(std::mem::take(&mut batch), None).await.is_err() {
                break;
            }
            batch_bytes = 0;
        }
        if end {
            break;
        }
    }
    if !batch.is_empty() {
        let _ = sender.send(batch, None).await;
    }
    Ok((read, errors))
}

/// Decodes a line: a Kubernetes Event, or a published event whose Event is
/// re-driven.
fn decode_line(line: &[u8], cluster: &str, limits: &EventLimits) -> Result<Event, NormalizeError> {
    // A Kubernetes Event has no `raw_data`; only a line that mentions it is
    // parsed twice.
    if memchr::memmem::find(line, b"\"raw_data\"").is_some()
        && let Some((event, cluster_id)) = published_event(line)
    {
        return decode(
            event.as_bytes(),
            cluster_id.as_deref().unwrap_or(cluster),
            limits,
        );
    }
    decode(line, cluster, limits)
}

/// The Event inside a StandardEvent (`raw_data.k8s_event`) or a CloudEvent
/// (`data.raw_data.k8s_event`), as JSON text, with the cluster id it was
/// published under.
fn published_event(line: &[u8]) -> Option<(String, Option<String>)> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let body = match value.get("specversion") {
        Some(_) => value.get("data")?,
        None => &value,
    };
    let event = body.get("raw_data")?.get("k8s_event")?;
    let cluster = body
        .get("cluster_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    Some((event.to_string(), cluster))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"apiVersion":"v1","kind":"Event","metadata":{"name":"e","namespace":"ns","uid":"u1"},"involvedObject":{"kind":"Pod","name":"p"},"reason":"BackOff","message":"m","type":"Warning","count":3}"#;

    #[test]
    fn published_events_are_redriven_under_their_cluster() {
        let limits = EventLimits::default();
        let standard =
            format!(r#"{{"id":"x","cluster_id":"prod","raw_data":{{"k8s_event":{EVENT}}}}}"#);
        let cloud = format!(
            r#"{{"specversion":"1.0","id":"x","data":{{"cluster_id":"eu","raw_data":{{"k8s_event":{EVENT}}}}}}}"#
        );
        for (line, cluster) in [
            (standard, "prod"),
            (cloud, "eu"),
            (EVENT.to_owned(), "replay"),
        ] {
            let event = decode_line(line.as_bytes(), "replay", &limits).unwrap();
            assert_eq!(event.cluster, cluster);
            assert_eq!(
                (event.reason.as_str(), event.count, event.uid.as_str()),
                ("BackOff", 3, "u1")
            );
        }
        // Not an Event, published or not: an error, as before.
        assert!(decode_line(br#"{"raw_data":{}}"#, "replay", &limits).is_err());
    }
}
