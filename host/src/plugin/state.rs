//! What a plugin's Store holds, and the host functions a plugin may call.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{host, types};
use super::validate::truncate;
use crate::clock::SharedClock;

/// Log lines a plugin may write per call; the rest are counted and reported
/// in one line, so a chatty plugin cannot flood the host's log.
pub const LOG_LINES_PER_CALL: u32 = 64;
/// Longest log line kept from a plugin.
const MAX_LOG_LINE: usize = 4096;

/// The data of one plugin instance's Store.
pub struct StoreState {
    /// The stage name, for logs.
    pub stage: Arc<str>,
    pub limits: StoreLimits,
    pub clock: SharedClock,
    /// Log lines still allowed in the current call.
    pub logs_left: u32,
    /// Log lines dropped in the current call.
    pub logs_suppressed: u32,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl StoreState {
    pub fn new(stage: Arc<str>, memory_cap: usize, clock: SharedClock) -> Self {
        // Deny by default: no args, environment, preopened directories,
        // sockets or name lookups; stdio reads nothing and writes nowhere. The
        // WASI wall clock is the pipeline's clock, as `host.now` is.
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(PipelineWallClock(clock.clone()))
            .build();
        Self {
            stage,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_cap)
                .instances(4)
                .tables(64)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            clock,
            logs_left: LOG_LINES_PER_CALL,
            logs_suppressed: 0,
            wasi,
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: types::LogLevel, message: String) {
        if self.logs_left == 0 {
            self.logs_suppressed = self.logs_suppressed.saturating_add(1);
            return;
        }
        self.logs_left -= 1;
        let stage = &*self.stage;
        let message = truncate(&message, MAX_LOG_LINE);
        match level {
            types::LogLevel::Trace => tracing::trace!(plugin = stage, "{message}"),
            types::LogLevel::Debug => tracing::debug!(plugin = stage, "{message}"),
            types::LogLevel::Info => tracing::info!(plugin = stage, "{message}"),
            types::LogLevel::Warn => tracing::warn!(plugin = stage, "{message}"),
            types::LogLevel::Error => tracing::error!(plugin = stage, "{message}"),
        }
    }

    fn now(&mut self) -> i64 {
        self.clock.now_ms()
    }
}

/// The pipeline clock as a WASI wall clock.
struct PipelineWallClock(SharedClock);

impl HostWallClock for PipelineWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now_ms()).unwrap_or(0))
    }
}
