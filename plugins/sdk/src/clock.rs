//! The host's clock.

use crate::types::Timestamp;

/// Wall-clock time in milliseconds since the Unix epoch, from the host.
///
/// During `aetherius replay` this is the replay clock, so time-based plugins
/// decide the same way on every run. Prefer passing the value into your
/// plugin's pure logic over calling this from it: that keeps the logic
/// testable with a fixed "now".
///
/// Outside WebAssembly (a plugin's native unit tests) this reads the system
/// clock.
pub fn now_ms() -> Timestamp {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::filter::aetherius::plugin::host::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::time::{SystemTime, UNIX_EPOCH};
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                Timestamp::try_from(elapsed.as_millis()).unwrap_or(Timestamp::MAX)
            })
    }
}
