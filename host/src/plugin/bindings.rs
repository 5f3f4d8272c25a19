//! Generated bindings for the plugin contract (`wit/plugin.wit`). These types
//! never leave the `plugin` module: the rest of the host sees its own types.

pub mod filter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "filter",
        // An index outside the batch traps the guest.
        imports: {
            "aetherius:plugin/batch": trappable,
            "aetherius:plugin/metadata": trappable,
        },
    });
}

pub mod severity_mapper {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "severity-mapper",
        with: {
            "aetherius:plugin/types": super::filter::aetherius::plugin::types,
            "aetherius:plugin/host": super::filter::aetherius::plugin::host,
            "aetherius:plugin/batch": super::filter::aetherius::plugin::batch,
            "aetherius:plugin/metadata": super::filter::aetherius::plugin::metadata,
        },
    });
}

pub mod enricher {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "enricher",
        with: {
            "aetherius:plugin/types": super::filter::aetherius::plugin::types,
            "aetherius:plugin/host": super::filter::aetherius::plugin::host,
            "aetherius:plugin/batch": super::filter::aetherius::plugin::batch,
            "aetherius:plugin/metadata": super::filter::aetherius::plugin::metadata,
        },
    });
}

pub use filter::aetherius::plugin::{batch, host, metadata, types};
