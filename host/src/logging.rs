//! Logging: `tracing` to stderr, JSON when stderr is not a terminal (or when
//! asked), human-readable otherwise; levels from `RUST_LOG` (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// JSON when stderr is not a terminal, text otherwise.
    #[default]
    Auto,
    Json,
    Text,
}

/// Installs the global subscriber. Call once, from `main`. `default` is the
/// filter when `RUST_LOG` is not set (e.g. `info`).
pub fn init(format: LogFormat, default: &str) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // kube's client logs every failed request at ERROR; the watcher reports
    // failures itself, once per kind, in words that say what to fix.
    // The NATS client logs each reconnection attempt at INFO and each
    // refused one (bad credentials) at ERROR; the sink says once that the
    // broker is down, why, and once that it is back. (librdkafka's own logs
    // go to target `librdkafka` at DEBUG, for the same reason.)
    let rust_log = std::env::var("RUST_LOG").unwrap_or_default();
    if !rust_log.contains("kube_client") {
        filter = filter.add_directive("kube_client=off".parse().expect("a valid directive"));
    }
    if !rust_log.contains("async_nats") {
        filter = filter.add_directive("async_nats=off".parse().expect("a valid directive"));
    }
    let json = match format {
        LogFormat::Auto => !std::io::stderr().is_terminal(),
        LogFormat::Json => true,
        LogFormat::Text => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(false).init();
    } else {
        builder.init();
    }
}
