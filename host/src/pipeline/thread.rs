//! The pipeline's thread: the one place a [`Pipeline`] runs, for `run` and
//! `replay` alike. It takes batches off the input queue until every producer
//! is gone, swaps in reloaded chains between two batches, and sends each
//! watch mark down the sink queues as an ack behind the events before it.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{Pipeline, PipelineStats};
use crate::chain::Chain;
use crate::checkpoint::Acknowledger;
use crate::input::Input;

/// New chains waiting for the pipeline thread to take them between batches
/// (a reload puts them here).
pub type PendingChains = Arc<Mutex<Option<Vec<Chain>>>>;

/// The running pipeline thread.
#[derive(Debug)]
pub struct PipelineThread(std::thread::JoinHandle<PipelineStats>);

/// Runs `pipeline` on a thread of its own over `inputs`. `acks`: where the
/// marks of the inputs go once every sink has written what came before them
/// (none in a replay, which has no marks).
pub fn spawn(
    mut pipeline: Pipeline,
    mut inputs: mpsc::Receiver<Input>,
    acks: Option<Acknowledger>,
    reloads: PendingChains,
) -> PipelineThread {
    let thread = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || {
            while let Some(Input {
                events,
                mark,
                budget: _budget,
            }) = inputs.blocking_recv()
            {
                // A reload takes effect between two batches.
                if let Some(chains) = reloads.lock().expect("not poisoned").take() {
                    pipeline.replace_chains(chains);
                }
                if !events.is_empty() {
                    pipeline.process(events);
                }
                if let (Some(mark), Some(acks)) = (mark, &acks) {
                    pipeline.acknowledge(&acks.ack(mark, pipeline.sink_count()));
                }
            }
            // Dropping the pipeline closes the sink queues: the sinks flush
            // and end.
            pipeline.stats()
        })
        .expect("spawn the pipeline thread");
    PipelineThread(thread)
}

impl PipelineThread {
    /// Waits, without blocking the async runtime, until the input queue has
    /// closed and the pipeline has processed everything; returns what it did.
    pub async fn join(self) -> PipelineStats {
        tokio::task::spawn_blocking(move || self.0.join())
            .await
            .expect("join the pipeline thread")
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}
