//! A filter that waits through `wasi:io/poll` directly, and keeps every
//! event it does not wait on:
//!
//! - reason `Block`: `pollable.block()` on a 10 s monotonic-clock
//!   subscription;
//! - reason `Poll`: `poll([that pollable])`;
//! - reason `Spin`: asks `pollable.ready()` in a loop until it turns true,
//!   a busy wait of cheap host calls;
//! - reason `Zero`: blocks on a subscription of zero nanoseconds, which is
//!   ready at once and must work.

use aetherius_sdk::{Event, Filter, Verdict};
use serde::de::IgnoredAny;
use wasip2::clocks::monotonic_clock::subscribe_duration;

const TEN_SECONDS: u64 = 10_000_000_000;

/// Waits on reasons `Block`, `Poll` and `Spin`.
pub struct WaitOnReason;

impl Filter for WaitOnReason {
    type Config = IgnoredAny;

    fn new(_config: IgnoredAny) -> Result<Self, String> {
        Ok(WaitOnReason)
    }

    fn filter(&mut self, event: &Event) -> Verdict {
        match event.reason() {
            "Block" => subscribe_duration(TEN_SECONDS).block(),
            "Poll" => {
                let pollable = subscribe_duration(TEN_SECONDS);
                let ready = wasip2::io::poll::poll(&[&pollable]);
                std::hint::black_box(ready);
            }
            "Spin" => {
                let pollable = subscribe_duration(TEN_SECONDS);
                while !pollable.ready() {}
            }
            "Zero" => subscribe_duration(0).block(),
            _ => {}
        }
        Verdict::Keep
    }
}

aetherius_sdk::export_filter!(WaitOnReason);
