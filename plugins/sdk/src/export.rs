//! The `export_*!` macros that turn a plugin type into a component.

/// Exports a [`Filter`](crate::Filter) implementation as the component's
/// `filter` world (`init` and `filter`).
///
/// Use it once per crate, at the top level:
/// `aetherius_sdk::export_filter!(MyFilter);`. The type may be generic
/// (`export_filter!(Lists<Reason>)`). Outside WebAssembly it expands to
/// nothing, so the crate's unit tests build natively.
#[macro_export]
macro_rules! export_filter {
    ($plugin:ty) => {
        $crate::__export_stage!($plugin, filter, Filter, filter, run_filter, $crate::Verdict);
    };
}

/// Exports a [`SeverityMapper`](crate::SeverityMapper) implementation as the
/// component's `severity-mapper` world (`init` and `map`).
///
/// Use it once per crate, at the top level:
/// `aetherius_sdk::export_severity_mapper!(MyMapper);`. Outside WebAssembly it
/// expands to nothing.
#[macro_export]
macro_rules! export_severity_mapper {
    ($plugin:ty) => {
        $crate::__export_stage!(
            $plugin,
            severity_mapper,
            SeverityMapper,
            map,
            run_map,
            ::core::option::Option<$crate::Severity>
        );
    };
}

/// Exports an [`Enricher`](crate::Enricher) implementation as the component's
/// `enricher` world (`init` and `enrich`).
///
/// Use it once per crate, at the top level:
/// `aetherius_sdk::export_enricher!(MyEnricher);`. Outside WebAssembly it
/// expands to nothing.
#[macro_export]
macro_rules! export_enricher {
    ($plugin:ty) => {
        $crate::__export_stage!(
            $plugin,
            enricher,
            Enricher,
            enrich,
            run_enrich,
            $crate::Enrichment
        );
    };
}

/// The body of the three `export_*!` macros.
///
/// wit-bindgen's own `export!` takes a bare identifier and calls static trait
/// functions, so this wraps the (possibly generic) plugin type in a local
/// unit struct whose `Guest` impl forwards to one `thread_local!` instance.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_stage {
    ($plugin:ty, $world:ident, $stage:ident, $export:ident, $run:ident, $out:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct AetheriusExport;

            ::std::thread_local! {
                static INSTANCE: $crate::__private::Instance<$plugin> =
                    const { $crate::__private::Instance::<$plugin>::new(::core::option::Option::None) };
            }

            impl $crate::__private::$world::Guest for AetheriusExport {
                fn init(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::init(&INSTANCE, &config, <$plugin as $crate::$stage>::new)
                }

                fn $export(events: u32) -> ::std::vec::Vec<$out> {
                    let events = $crate::__private::Batch::new(events).events();
                    $crate::__private::with_instance(
                        &INSTANCE,
                        ::core::stringify!($export),
                        |plugin: &mut $plugin| $crate::__private::$run(plugin, &events),
                    )
                }
            }

            $crate::__private::$world::export!(AetheriusExport with_types_in $crate::__private::$world);
        };
    };
}
