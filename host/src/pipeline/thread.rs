//! The pipeline's threads, for `run` and `replay` alike. One pipeline runs
//! on one thread, taking batches off the input queue until every producer
//! is gone, swapping in reloaded chains between two batches, and sending
//! each watch mark down the sink queues as an ack behind the events before
//! it.
//!
//! The thread that takes the batches also runs a small async runtime of its
//! own while it waits for them, [`PipelineThread::runtime`]: `run` spawns
//! the watches there, so that an event read from the API server's stream is
//! decoded, queued and processed on one thread. A watched event then wakes
//! one thread instead of two (docs/benchmarks.md); leases, sinks and
//! endpoints stay on the main runtime and never wait for a plugin.
//!
//! With `pipeline.workers` > 1 (the design document's `worker_count`), a
//! dispatcher thread takes the batches instead and splits them among the
//! workers by fingerprint, so that every object's occurrences stay in order
//! on one worker, whose occurrence core holds all of that fingerprint's
//! state. A mark goes to every worker behind its share, and its checkpoint
//! moves once every worker's every sink has acknowledged it.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::{Pipeline, PipelineStats};
use crate::chain::Chain;
use crate::checkpoint::{Ack, Acknowledger};
use crate::event::Event;
use crate::input::Input;

/// New chains waiting for the pipeline threads to take them between
/// batches (a reload offers them here): one set per worker. Cheap to clone;
/// the clones share it.
#[derive(Debug, Clone)]
pub struct PendingChains(Arc<Mutex<Vec<Option<Vec<Chain>>>>>);

impl PendingChains {
    /// Room for `workers` sets.
    pub fn new(workers: usize) -> Self {
        Self(Arc::new(Mutex::new(
            (0..workers.max(1)).map(|_| None).collect(),
        )))
    }

    /// The number of sets a reload must offer.
    pub fn workers(&self) -> usize {
        self.lock().len()
    }

    /// Offers one set of chains per worker, replacing any not yet taken.
    pub fn offer(&self, sets: Vec<Vec<Chain>>) {
        let mut slots = self.lock();
        for (slot, set) in slots.iter_mut().zip(sets) {
            *slot = Some(set);
        }
    }

    /// Worker `index`'s new chains, if a reload offered some.
    pub fn take(&self, index: usize) -> Option<Vec<Chain>> {
        self.lock().get_mut(index).and_then(Option::take)
    }

    /// Whether nothing waits to be taken.
    pub fn is_empty(&self) -> bool {
        self.lock().iter().all(Option::is_none)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Vec<Chain>>>> {
        self.0.lock().expect("not poisoned")
    }
}

/// The running pipeline threads.
#[derive(Debug)]
pub struct PipelineThread {
    thread: std::thread::JoinHandle<PipelineStats>,
    runtime: Handle,
}

/// What a worker gets from the dispatcher: its share of an input (perhaps
/// none), and the input's mark.
struct Work {
    events: Vec<Event>,
    ack: Option<Arc<Ack>>,
}

/// The shortest wait for a retry: a retry due now (or held by a breaker
/// that just closed) is not worth a busy loop.
const MIN_RETRY_WAIT: Duration = Duration::from_millis(10);

/// Batches a worker may have waiting: enough to keep it busy, few enough
/// that the input queue's budgets still bound the events in flight.
const WORKER_QUEUE: usize = 2;

/// Runs `pipelines` (one per worker) over `inputs`. `acks`: where the marks
/// of the inputs go once every sink has written what came before them (none
/// in a replay, which has no marks).
pub fn spawn(
    mut pipelines: Vec<Pipeline>,
    mut inputs: mpsc::Receiver<Input>,
    acks: Option<Acknowledger>,
    reloads: PendingChains,
) -> PipelineThread {
    assert!(!pipelines.is_empty(), "a pipeline to run");
    // Runs the producers spawned on it (and the timer of a retry's wait)
    // while the thread waits for input.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the pipeline thread's runtime");
    let handle = runtime.handle().clone();
    if pipelines.len() == 1 {
        let mut pipeline = pipelines.pop().expect("one");
        let thread = std::thread::Builder::new()
            .name("pipeline".into())
            .spawn(move || {
                loop {
                    let input = match pipeline.retry_wait() {
                        None => runtime.block_on(inputs.recv()),
                        Some(wait) => {
                            let wait = wait.max(MIN_RETRY_WAIT);
                            // The timer is made inside the runtime it needs.
                            let received = runtime.block_on(async {
                                tokio::time::timeout(wait, inputs.recv()).await
                            });
                            match received {
                                Ok(input) => input,
                                Err(_) => {
                                    take_reload(&mut pipeline, &reloads, 0);
                                    pipeline.retry_due();
                                    continue;
                                }
                            }
                        }
                    };
                    let Some(Input {
                        events,
                        mark,
                        budget: _budget,
                    }) = input
                    else {
                        break;
                    };
                    take_reload(&mut pipeline, &reloads, 0);
                    let ack = match (mark, &acks) {
                        (Some(mark), Some(acks)) => Some(acks.ack(mark, pipeline.sink_count())),
                        _ => None,
                    };
                    pipeline.process(events, ack.as_ref());
                }
                // Dropping the pipeline closes the sink queues: the sinks
                // flush and end.
                let stats = pipeline.finish();
                // What is left on it: idle connections, the watch clients'
                // request queues. The watches ended before the input could.
                drop(runtime);
                stats
            })
            .expect("spawn the pipeline thread");
        return PipelineThread {
            thread,
            runtime: handle,
        };
    }

    let workers = pipelines.len();
    let acks_per_mark = workers * pipelines[0].sink_count();
    let mut queues = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    for (index, mut pipeline) in pipelines.into_iter().enumerate() {
        let (queue, work) = std_mpsc::sync_channel::<Work>(WORKER_QUEUE);
        let reloads = reloads.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pipeline-{index}"))
            .spawn(move || {
                loop {
                    let received = match pipeline.retry_wait() {
                        None => work
                            .recv()
                            .map_err(|_| std_mpsc::RecvTimeoutError::Disconnected),
                        Some(wait) => work.recv_timeout(wait.max(MIN_RETRY_WAIT)),
                    };
                    take_reload(&mut pipeline, &reloads, index);
                    match received {
                        Ok(Work { events, ack }) => pipeline.process(events, ack.as_ref()),
                        Err(std_mpsc::RecvTimeoutError::Timeout) => pipeline.retry_due(),
                        Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                pipeline.finish()
            })
            .expect("spawn a pipeline worker");
        queues.push(queue);
        threads.push(thread);
    }
    let thread = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || {
            while let Some(Input {
                events,
                mark,
                budget: _budget,
            }) = runtime.block_on(inputs.recv())
            {
                let mut shares: Vec<Vec<Event>> = (0..workers).map(|_| Vec::new()).collect();
                for event in events {
                    shares[worker_of(&event, workers)].push(event);
                }
                let ack = match (mark, &acks) {
                    (Some(mark), Some(acks)) => Some(acks.ack(mark, acks_per_mark)),
                    _ => None,
                };
                for (queue, events) in queues.iter().zip(shares) {
                    // A mark goes to every worker, behind its share.
                    if !events.is_empty() || ack.is_some() {
                        // A worker that is gone panicked: join reports it.
                        let _ = queue.send(Work {
                            events,
                            ack: ack.clone(),
                        });
                    }
                }
            }
            drop(queues);
            let mut total = PipelineStats::default();
            for thread in threads {
                let stats = thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                total.add(&stats);
            }
            drop(runtime);
            total
        })
        .expect("spawn the pipeline dispatcher");
    PipelineThread {
        thread,
        runtime: handle,
    }
}

/// A reload takes effect between two batches.
fn take_reload(pipeline: &mut Pipeline, reloads: &PendingChains, index: usize) {
    if let Some(chains) = reloads.take(index) {
        pipeline.replace_chains(chains);
    }
}

/// The worker of an event: by the fields of its fingerprint (cluster,
/// namespace, involved kind and name, reason), so that everything the
/// occurrence core keeps about one fingerprint is on one worker.
fn worker_of(event: &Event, workers: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        &event.cluster,
        &event.namespace,
        &event.involved.kind,
        &event.involved.name,
        &event.reason,
    )
        .hash(&mut hasher);
    (hasher.finish() % workers as u64) as usize
}

impl PipelineThread {
    /// The runtime the thread runs while it waits for input: a producer
    /// spawned here hands its batches over without waking another thread.
    /// Its tasks only run while the thread waits, so nothing that must keep
    /// time while a plugin runs (leases, sinks, endpoints) belongs here.
    pub fn runtime(&self) -> Handle {
        self.runtime.clone()
    }

    /// Waits, without blocking the async runtime, until the input queue has
    /// closed and the pipeline has processed everything; returns what it did.
    pub async fn join(self) -> PipelineStats {
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("join the pipeline thread")
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::warning;

    #[test]
    fn one_fingerprint_goes_to_one_worker() {
        let a = warning("BackOff", "web", "u1", 1, 0);
        let b = warning("BackOff", "web", "u2", 9, 60_000);
        assert_eq!(worker_of(&a, 4), worker_of(&b, 4));
        let spread: std::collections::BTreeSet<usize> = (0..64)
            .map(|i| worker_of(&warning("BackOff", &format!("pod-{i}"), "u", 1, 0), 4))
            .collect();
        assert_eq!(spread.len(), 4, "fingerprints spread over the workers");
    }
}
