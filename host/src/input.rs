//! The queue into the pipeline: batches of decoded events from the watches
//! (or a replay's reader), each followed by how far it goes. Bounded in
//! batches and in bytes ([`crate::budget`]), so that a burst of large Events
//! holds the producers back instead of growing memory.

use tokio::sync::mpsc;

use crate::budget::{ByteBudget, BytePermit};
use crate::checkpoint::Mark;
use crate::event::Event;

/// Batches that may wait for the pipeline before producers block.
pub const INPUT_BATCHES: usize = 4;
/// Bytes of events that may wait for the pipeline before producers block:
/// thousands of ordinary events, or a few dozen of the largest.
pub const INPUT_BYTES: usize = 16 * 1024 * 1024;

/// What a producer hands to the pipeline: events, then (optionally) how far
/// they go.
#[derive(Debug, Default)]
pub struct Input {
    pub events: Vec<Event>,
    pub mark: Option<Mark>,
    /// The bytes the events hold in the queue's budget, given back when the
    /// input is dropped (once processed).
    pub budget: Option<BytePermit>,
}

/// The pipeline is gone (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline has stopped")]
pub struct Closed;

/// A producer's end of the queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct InputSender {
    sender: mpsc::Sender<Input>,
    budget: ByteBudget,
}

impl InputSender {
    /// Queues `events` and `mark`, waiting while the queue is full.
    pub async fn send(&self, events: Vec<Event>, mark: Option<Mark>) -> Result<(), Closed> {
        let bytes = events.iter().map(Event::heap_bytes).sum();
        let budget = Some(self.budget.acquire(bytes).await);
        self.sender
            .send(Input {
                events,
                mark,
                budget,
            })
            .await
            .map_err(|_| Closed)
    }
}

/// A queue of [`INPUT_BATCHES`] batches and [`INPUT_BYTES`] bytes.
pub fn input_queue() -> (InputSender, mpsc::Receiver<Input>) {
    let (sender, receiver) = mpsc::channel(INPUT_BATCHES);
    let budget = ByteBudget::new(INPUT_BYTES);
    (InputSender { sender, budget }, receiver)
}
