//! Writing to the host's log.
//!
//! Messages go to the host's tracing output, tagged with the stage's name.
//! A plugin has no stdio, so this is the only way to say something. Keep it
//! off the per-event path at `info` and above: the host may rate-limit
//! chatty plugins.
//!
//! Outside WebAssembly (a plugin's native unit tests) messages go to stderr.

pub use crate::types::LogLevel;

/// Writes `message` at `level`.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::filter::aetherius::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{}] {message}", level_name(level));
}

#[cfg(not(target_arch = "wasm32"))]
fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// Writes `message` at trace level.
pub fn trace(message: &str) {
    log(LogLevel::Trace, message);
}

/// Writes `message` at debug level.
pub fn debug(message: &str) {
    log(LogLevel::Debug, message);
}

/// Writes `message` at info level.
pub fn info(message: &str) {
    log(LogLevel::Info, message);
}

/// Writes `message` at warn level.
pub fn warn(message: &str) {
    log(LogLevel::Warn, message);
}

/// Writes `message` at error level.
pub fn error(message: &str) {
    log(LogLevel::Error, message);
}
