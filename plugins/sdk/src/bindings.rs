//! wit-bindgen output, one module per world of `wit/plugin.wit`.
//!
//! The `filter` world is generated in full (including the otherwise unused
//! `enrichment` type), and the other two worlds reuse its `types`, `host` and
//! `batch` interfaces through `with:`, so every world speaks the same
//! `Event`, `Severity`, ... types and calls the same imported functions
//! (one copy of each import shim, whichever world the plugin exports). The export macros are `pub` so that the SDK's own
//! `export_*!` macros can expand them in the plugin crate, which is where the
//! world's "exports" custom section has to be emitted (see
//! `pub_export_macro` in wit-bindgen).

// The generated items carry the WIT doc comments where the WIT has them.
#![allow(missing_docs)]

/// The `filter` world, and the one home of the shared `types`, `host`,
/// `batch` and `metadata` interfaces.
pub mod filter {
    wit_bindgen::generate!({
        path: "wit",
        world: "aetherius:plugin/filter@0.1.4",
        // `enrichment` is used by no function of this world, but the enricher
        // world below reuses this module's `types`.
        generate_unused_types: true,
        additional_derives: [PartialEq],
        pub_export_macro: true,
        export_macro_name: "export",
        runtime_path: "::aetherius_sdk::__private::wit_bindgen::rt",
    });
}

/// The `severity-mapper` world.
pub mod severity_mapper {
    wit_bindgen::generate!({
        path: "wit",
        world: "aetherius:plugin/severity-mapper@0.1.4",
        with: {
            "aetherius:plugin/types@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::types,
            "aetherius:plugin/host@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::host,
            "aetherius:plugin/batch@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::batch,
            "aetherius:plugin/metadata@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::metadata,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        runtime_path: "::aetherius_sdk::__private::wit_bindgen::rt",
    });
}

/// The `enricher` world.
pub mod enricher {
    wit_bindgen::generate!({
        path: "wit",
        world: "aetherius:plugin/enricher@0.1.4",
        with: {
            "aetherius:plugin/types@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::types,
            "aetherius:plugin/host@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::host,
            "aetherius:plugin/batch@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::batch,
            "aetherius:plugin/metadata@0.1.4": ::aetherius_sdk::__private::filter::aetherius::plugin::metadata,
        },
        pub_export_macro: true,
        export_macro_name: "export",
        runtime_path: "::aetherius_sdk::__private::wit_bindgen::rt",
    });
}
