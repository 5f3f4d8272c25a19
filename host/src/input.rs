//! The queue into the pipeline: batches of decoded events from the watches
//! (or a replay's reader), each followed by how far it goes. Bounded in
//! batches, in events (`pipeline.buffer_size`) and in bytes
//! ([`crate::budget`]), so that a burst holds the producers back instead of
//! growing memory.

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
    /// The bytes and the events the input holds in the queue's budgets,
    /// given back when it is dropped (once processed).
    pub budget: Option<(BytePermit, BytePermit)>,
}

/// The pipeline is gone (shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the pipeline has stopped")]
pub struct Closed;

/// A producer's end of the queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct InputSender {
    sender: mpsc::Sender<Input>,
    bytes: ByteBudget,
    events: ByteBudget,
}

impl InputSender {
    /// Queues `events` and `mark`, waiting while the queue is full.
    pub async fn send(&self, events: Vec<Event>, mark: Option<Mark>) -> Result<(), Closed> {
        let bytes = events.iter().map(Event::heap_bytes).sum();
        let budget = Some((
            self.bytes.acquire(bytes).await,
            self.events.acquire(events.len()).await,
        ));
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

/// A queue of [`INPUT_BATCHES`] batches, `events` events and [`INPUT_BYTES`]
/// bytes. A batch larger than `events` passes alone.
pub fn input_queue(events: usize) -> (InputSender, mpsc::Receiver<Input>) {
    let (sender, receiver) = mpsc::channel(INPUT_BATCHES);
    let sender = InputSender {
        sender,
        bytes: ByteBudget::new(INPUT_BYTES),
        events: ByteBudget::new(events),
    };
    (sender, receiver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::warning;

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| warning("BackOff", &format!("p{i}"), "u", 1, 0))
            .collect()
    }

    /// `pipeline.buffer_size`: a producer waits while that many events are
    /// queued and not yet processed.
    #[tokio::test(start_paused = true)]
    async fn producers_wait_while_buffer_size_events_are_queued() {
        let (sender, mut receiver) = input_queue(10);
        sender.send(events(8), None).await.unwrap();
        let second = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            sender.send(events(8), None),
        )
        .await;
        assert!(second.is_err(), "16 events do not fit in 10");
        // Processed (dropped): room again.
        let first = receiver.recv().await.unwrap();
        assert_eq!(first.events.len(), 8);
        drop(first);
        sender.send(events(8), None).await.unwrap();
        // A batch larger than the whole buffer passes, alone.
        drop(receiver.recv().await.unwrap());
        sender.send(events(25), None).await.unwrap();
    }
}
