//! Write [Aetherius] pipeline plugins in plain Rust.
//!
//! A plugin is a WebAssembly component that implements one stage kind of the
//! contract in `wit/plugin.wit` (package `aetherius:plugin@0.1.4`). This
//! crate hides the generated bindings: implement one trait —
//! [`Filter`], [`SeverityMapper`] or [`Enricher`] — with a typed config, and
//! name your type in the matching macro — [`export_filter!`],
//! [`export_severity_mapper!`] or [`export_enricher!`]. The SDK parses the
//! stage's config, keeps your instance, and answers the host's batch calls.
//!
//! The events of a batch stay in the host. An [`Event`] is a view of one of
//! them: the first read of a field (`event.reason()`, `event.namespace()`,
//! ...) in a batch copies that field of every event of the batch into the
//! plugin in one host call, and the accessors return slices of that copy.
//! A filter's verdicts go back the same way: all of a batch's in one value
//! (contract 0.1.3's `batch.decide`), each distinct drop reason once; a
//! filter that drops many events can skip the `String` per drop too, with
//! [`Filter::filter_into`] and [`Verdicts`].
//!
//! ```
//! use aetherius_sdk::{Event, Filter, Verdict};
//!
//! /// Drops events whose reason is in the config's `drop` list.
//! struct DropReasons {
//!     config: Config,
//! }
//!
//! #[derive(serde::Deserialize, Default)]
//! #[serde(default, deny_unknown_fields)]
//! struct Config {
//!     /// Reasons to drop.
//!     drop: Vec<String>,
//! }
//!
//! impl Filter for DropReasons {
//!     type Config = Config;
//!
//!     fn new(config: Config) -> Result<Self, String> {
//!         Ok(DropReasons { config })
//!     }
//!
//!     fn filter(&mut self, event: &Event) -> Verdict {
//!         let reason = event.reason();
//!         if self.config.drop.iter().any(|dropped| dropped == reason) {
//!             Verdict::Drop(format!("reason {reason} is on the drop list"))
//!         } else {
//!             Verdict::Keep
//!         }
//!     }
//! }
//!
//! aetherius_sdk::export_filter!(DropReasons);
//!
//! // Unit tests build events from owned records:
//! # fn main() {
//! use aetherius_sdk::EventRecord;
//! let mut plugin = DropReasons { config: Config { drop: vec!["Pulled".into()] } };
//! let pulled = Event::from_record(EventRecord { reason: "Pulled".into(), ..Default::default() });
//! assert!(matches!(plugin.filter(&pulled), Verdict::Drop(_)));
//! # }
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (crate type
//! `cdylib`) or `cargo component build --release`. Outside WebAssembly the
//! export macros expand to nothing and [`log`] and [`now_ms`] fall back to
//! stderr and the system clock, so `cargo test` runs your plugin's logic
//! natively.
//!
//! `aetherius plugin new NAME --kind filter|severity-mapper|enricher` writes
//! a crate like this one, with sample events and expected decisions, and
//! `aetherius plugin test PLUGIN.wasm --input events.jsonl --expect
//! expected.jsonl` runs the built component in the real runtime and checks
//! them. The plugin-author guide (`docs/plugin-guide.md` in the repository)
//! goes through the whole path, to shipping the plugin in a ConfigMap.
//!
//! Helpers for configs: [`glob`] (`*`/`?` wildcards and allow/deny lists),
//! [`duration`] (`"5m"`), [`parse_config`], and `serde::Deserialize` for
//! [`Severity`].
//!
//! [Aetherius]: https://github.com/aetherius

#![warn(missing_docs)]

// Generated code and the export macros name this crate by its extern name,
// which must also resolve inside the crate itself.
extern crate self as aetherius_sdk;

mod bindings;
mod clock;
#[cfg(target_arch = "wasm32")]
mod columns;
mod config;
pub mod duration;
mod event;
mod export;
pub mod glob;
pub mod log;
mod stage;
mod types;
mod verdicts;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use clock::now_ms;
pub use config::parse_config;
pub use event::Event;
pub use stage::{Enricher, Filter, SeverityMapper};
pub use types::{
    Enrichment, EventRecord, KeyValue, LogLevel, ObjectMetadata, ObjectName, ObjectRef, Severity,
    Timestamp, UnknownSeverity, Verdict,
};
pub use verdicts::Verdicts;
