//! Wall-clock deadlines for calls into plugins.
//!
//! Fuel bounds what a guest computes, deterministically; it does not bound
//! time spent anywhere else, and its cost per instruction differs between
//! plugins. So every call also gets a deadline, enforced by wasmtime's epoch
//! interruption: compiled guest code checks the engine's epoch at function
//! entries and loop back-edges. A call is armed ([`arm`]) with its deadline
//! as an `Instant` and an epoch deadline of the next tick; each tick that
//! comes while it runs enters [`check`], which lets it go on until the
//! wall clock passes its deadline and then interrupts it with
//! `Trap::Interrupt`. Per call that is one clock read and two atomics.
//!
//! The ticker thread bumps the epoch only while a call is running: every
//! [`TICK`] once it has seen one running, otherwise it looks every
//! `watch` (half the shortest deadline of its stages, at most
//! [`MAX_WATCH`]). Calls take microseconds, so at a few hundred events a
//! second it wakes tens of times a second, not once per event; a call that
//! hangs is seen within `watch` and stopped within a [`TICK`] of its
//! deadline. The ticker sleeps entirely once no call has started for
//! [`IDLE`]; the first call after that wakes it (one futex wake per idle
//! period, not per call).
//!
//! Waiting is not a way around it: the WASI surface plugins get
//! (`super::wasi`) has no import that blocks.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store, UpdateDeadline};

/// How often the epoch moves while a call runs: the precision of a deadline.
pub const TICK: Duration = Duration::from_millis(5);
/// The longest look-out for a call that started while none was running.
const MAX_WATCH: Duration = Duration::from_millis(50);
/// Without a new call for this long, the ticker goes to sleep.
const IDLE: Duration = Duration::from_secs(1);
/// While asleep, how often the ticker checks whether its runtime is gone.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// A store whose calls have deadlines: where [`arm`] keeps the current one.
pub trait HasDeadline {
    fn deadline(&mut self) -> &mut Instant;
}

/// Installs the check of a call's deadline in a new store.
pub fn install<T: HasDeadline + 'static>(store: &mut Store<T>) {
    store.epoch_deadline_callback(|mut context| Ok(check(*context.data_mut().deadline())));
}

/// Arms `store` for a call that must end within `limit` from now.
pub fn arm<T: HasDeadline>(store: &mut Store<T>, limit: Duration) {
    *store.data_mut().deadline() = Instant::now() + limit;
    // The next tick enters `check`.
    store.set_epoch_deadline(1);
}

/// What a tick does to a running call with `deadline`.
fn check(deadline: Instant) -> UpdateDeadline {
    if Instant::now() >= deadline {
        UpdateDeadline::Interrupt
    } else {
        UpdateDeadline::Continue(1)
    }
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
    /// How often the ticker looks for a running call, in µs.
    watch_us: AtomicU64,
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
            watch_us: AtomicU64::new(MAX_WATCH.as_micros() as u64),
            ticker: handle.thread().clone(),
        });
        // The thread only runs once it has its (weak) handle.
        let _ = sender.send(Arc::downgrade(&shared));
        Ok(Self { shared })
    }

    /// Makes the ticker look for running calls often enough for a deadline
    /// of `limit`: every half of the shortest one, between [`TICK`] and
    /// [`MAX_WATCH`].
    pub fn watch_for(&self, limit: Duration) {
        let watch = (limit / 2).clamp(TICK, MAX_WATCH);
        self.shared
            .watch_us
            .fetch_min(watch.as_micros() as u64, Ordering::Relaxed);
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

/// The ticker: bumps the epoch every tick while a call runs, looks for one
/// every `watch` while calls come and go, sleeps once none has come for
/// [`IDLE`], and ends when the watchdog is dropped.
fn tick(weak: &Weak<Shared>) {
    let mut quiet = Duration::ZERO;
    let mut period = TICK;
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let asleep = shared.asleep.load(Ordering::SeqCst);
        drop(shared);
        if asleep {
            thread::park_timeout(IDLE_CHECK);
            quiet = Duration::ZERO;
            period = TICK;
            continue;
        }
        thread::sleep(period);
        let Some(shared) = weak.upgrade() else { return };
        let watch = Duration::from_micros(shared.watch_us.load(Ordering::Relaxed));
        if shared.running.load(Ordering::SeqCst) > 0 {
            // Running calls enter `check`.
            shared.engine.increment_epoch();
            quiet = Duration::ZERO;
            period = TICK;
            continue;
        }
        period = watch;
        if shared.started.swap(false, Ordering::Relaxed) {
            quiet = Duration::ZERO;
            continue;
        }
        quiet += watch;
        if quiet >= IDLE {
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
    fn the_look_out_is_half_the_shortest_deadline_within_its_bounds() {
        let engine = Engine::default();
        let watchdog = Watchdog::start(&engine).unwrap();
        let watch = || Duration::from_micros(watchdog.shared.watch_us.load(Ordering::Relaxed));
        assert_eq!(watch(), MAX_WATCH);
        watchdog.watch_for(Duration::from_secs(1));
        assert_eq!(watch(), MAX_WATCH);
        watchdog.watch_for(Duration::from_millis(40));
        assert_eq!(watch(), Duration::from_millis(20));
        watchdog.watch_for(Duration::from_millis(100));
        assert_eq!(watch(), Duration::from_millis(20), "the shortest wins");
        watchdog.watch_for(Duration::from_millis(2));
        assert_eq!(watch(), TICK);
    }

    #[test]
    fn a_tick_lets_a_call_go_on_until_its_deadline() {
        let now = Instant::now();
        assert!(matches!(
            check(now + Duration::from_secs(60)),
            UpdateDeadline::Continue(1)
        ));
        assert!(matches!(check(now), UpdateDeadline::Interrupt));
    }
}
