//! Aetherius: a Kubernetes event pipeline with sandboxed WebAssembly plugins.
//!
//! Events flow through [`occurrence`] (dedup, escalation), then named
//! [`chain`]s of Wasm [`plugin`] stages, then [`sink`]s, in [`pipeline`]. See
//! `docs/architecture.md` for the tour.

pub mod agent;
pub mod backoff;
pub mod budget;
pub mod causes;
pub mod chain;
pub mod check;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod event;
pub mod input;
pub mod item;
pub mod kit;
pub mod lease;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod occurrence;
pub mod output;
pub mod paths;
pub mod pipeline;
pub mod plugin;
pub mod reload;
pub mod replay;
pub mod run;
pub mod server;
pub mod silence;
pub mod sink;
pub mod spread;
pub mod status;
pub mod trim;
pub mod units;
pub mod watch;
