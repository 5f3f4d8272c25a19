//! Wall-clock deadlines for calls into plugins.
//!
//! Fuel bounds what a guest computes, deterministically; it does not bound
//! time spent anywhere else, and its cost per instruction differs between
//! plugins. So every call also gets a deadline, enforced by wasmtime's epoch
//! interruption: compiled guest code checks the engine's epoch at function
//! entries and loop back-edges, and a ticker thread bumps the epoch every
//! [`TICK`] while calls are running. A call's deadline is a number of ticks
//! from its start ([`ticks`]); when the epoch reaches it the guest traps with
//! `Trap::Interrupt`. Nothing is read per call but two atomics: the epoch
//! is the clock.
//!
//! Waiting is not a way around it: the WASI surface plugins get
//! (`super::wasi`) has no import that blocks.
//!
//! The ticker sleeps while no call has started for a second, so an idle
//! process has no periodic wake-ups; the first call after that wakes it
//! (one futex wake per idle period, not per call).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, Thread};
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch moves while calls run: the precision of a deadline.
pub const TICK: Duration = Duration::from_millis(5);
/// Ticks without a new call before the ticker goes to sleep.
const IDLE_TICKS: u32 = 200;
/// While asleep, how often the ticker checks whether its runtime is gone.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// Epoch ticks that make a deadline of at least `limit`: the tick in
/// progress when the call starts may end at once, so one more.
pub fn ticks(limit: Duration) -> u64 {
    let ticks = limit.as_nanos().div_ceil(TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}

/// The epoch ticker of one engine. Cheap to clone; the ticker thread ends
/// once every clone is gone.
#[derive(Clone)]
pub struct Watchdog {
    shared: Arc<Shared>,
}

struct Shared {
    engine: Engine,
    /// Calls in progress.
    running: AtomicUsize,
    /// A call started since the ticker last looked.
    started: AtomicBool,
    /// The ticker is parked (or about to be) until a call wakes it.
    asleep: AtomicBool,
    ticker: Thread,
}

impl fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchdog")
            .field("running", &self.shared.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Watchdog {
    /// Starts the ticker thread for `engine` (built with epoch interruption).
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Weak<Shared>>(1);
        let handle = thread::Builder::new()
            .name("plugin-deadline".into())
            .spawn(move || {
                if let Ok(shared) = receiver.recv() {
                    tick(&shared);
                }
            })?;
        let shared = Arc::new(Shared {
            engine: engine.clone(),
            running: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            asleep: AtomicBool::new(true),
            ticker: handle.thread().clone(),
        });
        // The thread only runs once it has its (weak) handle.
        let _ = sender.send(Arc::downgrade(&shared));
        Ok(Self { shared })
    }

    /// Marks a call as running until the guard is dropped, waking the ticker
    /// if it sleeps.
    pub fn enter(&self) -> CallGuard<'_> {
        let shared = &*self.shared;
        shared.running.fetch_add(1, Ordering::SeqCst);
        shared.started.store(true, Ordering::Relaxed);
        if shared.asleep.load(Ordering::SeqCst) && shared.asleep.swap(false, Ordering::SeqCst) {
            shared.ticker.unpark();
        }
        CallGuard { shared }
    }
}

/// A call in progress; see [`Watchdog::enter`].
pub struct CallGuard<'a> {
    shared: &'a Shared,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.shared.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The ticker: bumps the epoch every tick while calls run or have run
/// recently, sleeps otherwise, and ends when the watchdog is dropped.
fn tick(weak: &Weak<Shared>) {
    let mut quiet_ticks = 0u32;
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let asleep = shared.asleep.load(Ordering::SeqCst);
        drop(shared);
        if asleep {
            thread::park_timeout(IDLE_CHECK);
            quiet_ticks = 0;
            continue;
        }
        thread::sleep(TICK);
        let Some(shared) = weak.upgrade() else { return };
        shared.engine.increment_epoch();
        let busy = shared.running.load(Ordering::SeqCst) > 0;
        if busy || shared.started.swap(false, Ordering::Relaxed) {
            quiet_ticks = 0;
            continue;
        }
        quiet_ticks += 1;
        if quiet_ticks >= IDLE_TICKS {
            shared.asleep.store(true, Ordering::SeqCst);
            // A call that started between the check above and the store
            // saw `asleep` false and did not wake us: look once more.
            if shared.running.load(Ordering::SeqCst) > 0 {
                shared.asleep.store(false, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticker_sleeps_when_idle_and_wakes_for_a_call() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let watchdog = Watchdog::start(&engine).unwrap();
        assert!(watchdog.shared.asleep.load(Ordering::SeqCst));
        {
            let _call = watchdog.enter();
            assert!(!watchdog.shared.asleep.load(Ordering::SeqCst));
            assert_eq!(watchdog.shared.running.load(Ordering::SeqCst), 1);
        }
        assert_eq!(watchdog.shared.running.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_deadline_is_at_least_its_limit_in_ticks() {
        assert_eq!(ticks(Duration::from_millis(100)), 100 / 5 + 1);
        assert_eq!(ticks(Duration::from_millis(101)), 21 + 1);
        assert_eq!(
            ticks(Duration::from_secs(3600 * 24 * 365 * 1000)),
            6_307_200_000_001
        );
    }
}
