//! What the `export_*!` macros expand to. Not a stable API.

use std::cell::RefCell;
use std::thread::LocalKey;

use serde::de::DeserializeOwned;

pub use crate::bindings::{enricher, filter, severity_mapper};
pub use wit_bindgen;

/// The plugin instance of a component. A guest is single-threaded, so a
/// `thread_local!` of this is the component's one global instance.
pub type Instance<P> = RefCell<Option<P>>;

/// The `init` export: parse the config, build the plugin, keep it.
///
/// A failed `init` leaves no instance behind, so a later stage call traps
/// instead of running with a stale config.
pub fn init<P, C: DeserializeOwned + Default>(
    instance: &'static LocalKey<Instance<P>>,
    config: &str,
    new: fn(C) -> Result<P, String>,
) -> Result<(), String> {
    instance.with(|cell| cell.replace(None));
    let plugin = new(crate::parse_config(config)?)?;
    instance.with(|cell| cell.replace(Some(plugin)));
    Ok(())
}

/// The host's current batch, read a column at a time.
#[cfg(target_arch = "wasm32")]
pub use crate::columns::Batch;

/// A filter's batch: its verdicts go to the host in one value
/// (`batch.decide`), so the `filter` export returns an empty list.
#[cfg(target_arch = "wasm32")]
pub fn run_filter<P: crate::Filter>(
    plugin: &mut P,
    events: &[crate::Event],
) -> Vec<crate::Verdict> {
    let mut verdicts = crate::Verdicts::with_capacity(events.len());
    plugin.filter_into(events, &mut verdicts);
    verdicts.hand_over();
    Vec::new()
}

/// A severity mapper's batch.
pub fn run_map<P: crate::SeverityMapper>(
    plugin: &mut P,
    events: &[crate::Event],
) -> Vec<Option<crate::Severity>> {
    plugin.map_batch(events)
}

/// An enricher's batch.
pub fn run_enrich<P: crate::Enricher>(
    plugin: &mut P,
    events: &[crate::Event],
) -> Vec<crate::Enrichment> {
    plugin.enrich_batch(events)
}

/// Runs a stage export against the instance that `init` made.
pub fn with_instance<P, R>(
    instance: &'static LocalKey<Instance<P>>,
    export: &str,
    run: impl FnOnce(&mut P) -> R,
) -> R {
    instance.with(|cell| match cell.borrow_mut().as_mut() {
        Some(plugin) => run(plugin),
        None => {
            let message = format!("`{export}` called before a successful `init`");
            crate::log::error(&message);
            // Traps: the host discards this instance and applies the stage's
            // failure policy.
            panic!("{message}");
        }
    })
}
