//! The WASI surface a plugin gets: what the standard libraries of real guests
//! import, and nothing that grants anything or waits.
//!
//! Guests built by `cargo build --target wasm32-wasip2`, by `cargo component`
//! (the wasip1 adapter) and by componentize-py import parts of WASI 0.2 they
//! never use for a plugin (stdio, environment, filesystem types, clocks,
//! random). They are linked so that such guests load, and each is empty or
//! denies:
//!
//! | interfaces | what a plugin gets |
//! |---|---|
//! | `wasi:cli/environment` | no variables, no arguments, no working directory |
//! | `wasi:cli/stdin`, `stdout`, `stderr`, `terminal-*` | stdin is empty; output goes nowhere; no terminal |
//! | `wasi:cli/exit` | ends the call with a trap |
//! | `wasi:filesystem/types`, `preopens` | no directories, so no file can be opened |
//! | `wasi:sockets/*` | every address, lookup and socket kind denied |
//! | `wasi:clocks/wall-clock` | the pipeline's clock (the replay clock in `replay`) |
//! | `wasi:clocks/monotonic-clock` | the host's; subscribing works, waiting does not |
//! | `wasi:random/*` | random bytes, at most 1 MiB per call |
//! | `wasi:io/error`, `streams` | over the streams above only |
//! | `wasi:io/poll` | never waits: see below |
//!
//! Nothing here may wait, because a plugin runs on the pipeline's thread: a
//! `pollable.block` or `poll` on something not ready ends the call at once
//! with [`WouldWait`] (a `timeout` failure), so `std::thread::sleep` in a
//! plugin fails its call instead of stalling every cluster. The only
//! pollables a plugin can make that are not ready at once are clock
//! subscriptions (and sockets, which can never connect).
//!
//! Every WASI 0.2.x version a guest may import resolves to these, through
//! wasmtime's semver-aware linker. A guest that imports anything else (a
//! WASI 0.3 interface, `wasi:http`, an interface of another host) is refused
//! when it is loaded, naming the import ([`describe_missing_import`]).

use std::fmt;

use wasmtime::Result;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets, sync};
use wasmtime_wasi::random::{WasiRandom, WasiRandomCtx};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView as _};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiView};

/// What a store's data gives the WASI surface: its WASI context and its
/// resource table.
pub trait WasiState: WasiView + 'static {
    fn table(&mut self) -> &mut ResourceTable;
    fn random(&mut self) -> &mut WasiRandomCtx;
}

/// The WASI context of one plugin instance: nothing granted. `wall_clock`
/// is the pipeline's clock, as the contract's `now` is.
pub fn context(wall_clock: impl wasmtime_wasi::HostWallClock + 'static) -> WasiCtx {
    // Deny by default: no args, environment, preopened directories,
    // sockets or name lookups; stdio reads nothing and writes nowhere.
    WasiCtxBuilder::new()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .max_random_size(MAX_RANDOM_BYTES)
        .wall_clock(wall_clock)
        .build()
}

/// The WASI packages plugins may import, for messages and docs.
pub const PACKAGES: &str =
    "wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, wasi:random, wasi:sockets (0.2.x)";

/// Largest `get-random-bytes` answer: more would be host memory a guest can
/// ask for outside its own memory cap.
pub const MAX_RANDOM_BYTES: u64 = 1024 * 1024;

/// Why a call was stopped: the guest tried to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WouldWait;

impl fmt::Display for WouldWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "tried to wait (a sleep, or a poll on something not ready); plugins run on the pipeline's thread and may not wait",
        )
    }
}

impl std::error::Error for WouldWait {}

/// Adds the plugins' WASI surface to `linker`.
pub fn add_to_linker<T: WasiState>(linker: &mut Linker<T>) -> Result<()> {
    let l = linker;
    sync::io::error::add_to_linker::<T, Table>(l, T::table)?;
    sync::io::streams::add_to_linker::<T, Table>(l, T::table)?;
    sync::io::poll::add_to_linker::<T, NoWaitIo>(l, |t| NoWait(t.table()))?;

    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;

    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;

    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    sync::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;

    sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::network::add_to_linker::<T, WasiSockets>(l, &Default::default(), T::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    sync::sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets)?;
    Ok(())
}

/// Says which import of a component the host lacks, from wasmtime's link
/// error, with what plugins may import instead.
pub fn describe_missing_import(error: &wasmtime::Error) -> String {
    let text = format!("{error:#}");
    // "component imports instance `wasi:http/types@0.2.0`, but a matching
    // implementation was not found in the linker"
    let import = text
        .split('`')
        .nth(1)
        .filter(|_| text.contains("import"))
        .map(str::to_owned);
    match import {
        Some(import) => format!(
            "it imports `{import}`, which plugins do not get; a plugin may import the contract (aetherius:plugin) and {PACKAGES} ({text})"
        ),
        None => text,
    }
}

/// `wasi:io/error` and `wasi:io/streams` over the store's resource table.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// `wasi:io/poll` that answers readiness but never waits.
struct NoWaitIo;

impl HasData for NoWaitIo {
    type Data<'a> = NoWait<'a>;
}

struct NoWait<'a>(&'a mut ResourceTable);

impl NoWait<'_> {
    /// Whether `pollable` is ready now: wasmtime's own check, which never
    /// waits, asked twice, because a clock subscription that is already due
    /// answers "not yet" once (it yields to the runtime first).
    fn ready_now(&mut self, pollable: &Resource<DynPollable>) -> Result<bool> {
        for _ in 0..2 {
            let borrowed = Resource::new_borrow(pollable.rep());
            if sync::io::poll::HostPollable::ready(self.0, borrowed)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl sync::io::poll::Host for NoWait<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> Result<Vec<u32>> {
        if pollables.is_empty() {
            wasmtime::bail!("poll called with an empty list");
        }
        let mut ready = Vec::new();
        for (index, pollable) in pollables.iter().enumerate() {
            if self.ready_now(pollable)? {
                ready.push(u32::try_from(index)?);
            }
        }
        if ready.is_empty() {
            return Err(WouldWait.into());
        }
        Ok(ready)
    }
}

impl sync::io::poll::HostPollable for NoWait<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> Result<bool> {
        self.ready_now(&pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> Result<()> {
        if self.ready_now(&pollable)? {
            Ok(())
        } else {
            Err(WouldWait.into())
        }
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> Result<()> {
        sync::io::poll::HostPollable::drop(self.0, pollable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_import() {
        let error = wasmtime::format_err!(
            "component imports instance `wasi:http/types@0.2.0`, but a matching implementation was not found in the linker"
        );
        let message = describe_missing_import(&error);
        assert!(
            message.starts_with("it imports `wasi:http/types@0.2.0`, which plugins do not get"),
            "{message}"
        );
        assert!(message.contains("wasi:clocks"), "{message}");
    }
}
