//! Byte budgets for the queues between the watches, the pipeline and the
//! sinks. The queues are bounded in entries for throughput; a budget also
//! bounds the bytes the entries hold, so that large Events (up to
//! `events.max_size` each) back-pressure their producer instead of growing
//! memory past the pod's limit. docs/limits.md adds the budgets up.
//!
//! A producer takes a [`BytePermit`] for what it queues (asynchronously in a
//! watch task, blocking on the pipeline's thread) and the permit travels with
//! the entry; dropping the entry gives the bytes back. An entry larger than
//! the whole budget takes the whole budget, so that it still passes, alone.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes that may be queued at once.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total: u32,
}

/// Bytes held by one queued entry; given back when dropped.
#[derive(Debug)]
pub struct BytePermit {
    _permit: OwnedSemaphorePermit,
}

impl ByteBudget {
    /// A budget of `total` bytes (at most 4 GiB - 1).
    pub fn new(total: usize) -> Self {
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    fn permits(&self, bytes: usize) -> u32 {
        u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .clamp(1, self.total)
    }

    /// Waits until `bytes` are free and takes them.
    pub async fn acquire(&self, bytes: usize) -> BytePermit {
        let permits = self.permits(bytes);
        let permit = self
            .semaphore
            .clone()
            .acquire_many_owned(permits)
            .await
            .expect("the semaphore of a budget is never closed");
        BytePermit { _permit: permit }
    }

    /// Blocks the calling thread (not an async task) until `bytes` are free
    /// and takes them.
    pub fn acquire_blocking(&self, bytes: usize) -> BytePermit {
        let permits = self.permits(bytes);
        match self.semaphore.clone().try_acquire_many_owned(permits) {
            Ok(permit) => BytePermit { _permit: permit },
            Err(_) => block_on(self.acquire(bytes)),
        }
    }

    /// Bytes free right now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// Runs a future to completion on the current thread, parking it while the
/// future waits. Only for the budget's semaphore, whose waker is called from
/// whichever thread releases bytes.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_given_back_when_dropped() {
        let budget = ByteBudget::new(100);
        let first = budget.acquire_blocking(60);
        assert_eq!(budget.available(), 40);
        let waiter = {
            let budget = budget.clone();
            thread::spawn(move || {
                let _second = budget.acquire_blocking(60);
                budget.available()
            })
        };
        // The waiter cannot finish before this: 60 + 60 > 100.
        drop(first);
        assert_eq!(waiter.join().unwrap(), 40);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn an_entry_larger_than_the_budget_takes_all_of_it() {
        let budget = ByteBudget::new(100);
        let permit = budget.acquire_blocking(1_000);
        assert_eq!(budget.available(), 0);
        drop(permit);
        assert_eq!(budget.available(), 100);
    }
}
