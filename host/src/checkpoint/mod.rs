//! Checkpoints: per watch (cluster and namespace), the resourceVersion up to
//! which every event has been handed to every sink and every sink has
//! written it.
//!
//! A watcher sends a [`Mark`] after each batch; the pipeline turns it into
//! an [`Ack`] and passes it down every sink queue behind that batch; when
//! the last sink has written everything before it, the mark is recorded as
//! completed (the latest of each watch, waking nobody) and the
//! [`Checkpointer`] takes and writes what it has at most once per interval
//! and once more on shutdown. Sinks are FIFO and marks are sent in watch order,
//! so a checkpoint never gets ahead of an event a sink has not written.
//!
//! - `ack`: marks and acks;
//! - `lag`: how long hand-overs wait for their acks (a metric);
//! - `store`: the document and where it is kept (a file, a ConfigMap);
//! - `writer`: which cluster's checkpoint is in which store, and the writer.

mod ack;
mod config;
mod lag;
mod store;
mod writer;

pub use ack::{Ack, Acknowledger, Mark, Marks, WatchKey, acknowledger};
pub use config::{CheckpointConfig, ConfigMapRef};
pub use lag::Lag;
pub use store::{CheckpointError, Document, Store};
pub use writer::{CheckpointStores, Checkpointer};
