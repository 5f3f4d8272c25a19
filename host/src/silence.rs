//! How long the API server may stay silent. Every request to it and every
//! streamed response (a list, a watch) is bounded here, in a leaf module,
//! so that the watches, the leases and the ConfigMap checkpoints share one
//! bound.

use std::future::Future;
use std::pin::{Pin, pin};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A watch the server should have ended (its timeout is under 5 minutes) but
/// that stays silent this long is a dead connection: drop it and resume.
/// The same bound applies to every other request to the API server.
///
/// Not kube's `read_timeout`: that wraps the connection and, after every
/// read, sets its timer to "now" and then again to now + the timeout, so a
/// watch woke the runtime twice per Event (an eventfd write and a 1 ms timer
/// that found nothing due).
pub const READ_TIMEOUT: Duration = Duration::from_secs(330);

/// `request`, unless the API server stays silent for [`READ_TIMEOUT`].
pub async fn bounded<T>(
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    tokio::time::timeout(READ_TIMEOUT, request)
        .await
        .unwrap_or_else(|_| Err(kube::Error::ReadEvents(timed_out())))
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the API server sent nothing for {} s",
            READ_TIMEOUT.as_secs()
        ),
    )
}

/// The silence of a streamed response (a list, a watch): a read fails once
/// it has waited [`READ_TIMEOUT`] for data (time spent between reads, say
/// while the pipeline applies back-pressure, does not count). Its timer is
/// armed once and moved only when it fires early, so a read costs a clock
/// read, not a timer operation.
pub struct Silence {
    deadline: Pin<Box<Sleep>>,
    /// When the current read started waiting.
    since: Instant,
}

impl Default for Silence {
    fn default() -> Self {
        Self::new()
    }
}

impl Silence {
    pub fn new() -> Self {
        let now = Instant::now();
        Self {
            deadline: Box::pin(tokio::time::sleep_until(now + READ_TIMEOUT)),
            since: now,
        }
    }

    /// `read`, unless it waits [`READ_TIMEOUT`] for data.
    pub async fn read<T>(
        &mut self,
        read: impl Future<Output = std::io::Result<T>>,
    ) -> std::io::Result<T> {
        self.since = Instant::now();
        let mut read = pin!(read);
        loop {
            tokio::select! {
                biased;
                result = &mut read => return result,
                () = &mut self.deadline => {
                    let due = self.since + READ_TIMEOUT;
                    if Instant::now() >= due {
                        return Err(timed_out());
                    }
                    self.deadline.as_mut().reset(due);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads that keep arriving never time out, however long the stream
    /// runs, nor does time spent between reads; a read that waits the
    /// whole bound does.
    #[tokio::test(start_paused = true)]
    async fn a_read_fails_only_after_the_whole_bound_in_silence() {
        let mut silence = Silence::new();
        let step = READ_TIMEOUT / 3;
        for _ in 0..10 {
            // Busy elsewhere (back-pressure) longer than the bound.
            tokio::time::sleep(READ_TIMEOUT + step).await;
            let read = silence
                .read(async {
                    tokio::time::sleep(step).await;
                    Ok(())
                })
                .await;
            assert!(read.is_ok(), "data every {step:?}");
        }
        let started = Instant::now();
        let silent = silence
            .read(std::future::pending::<std::io::Result<()>>())
            .await
            .unwrap_err();
        assert_eq!(silent.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), READ_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_is_bounded_too() {
        let result: Result<(), kube::Error> = bounded(std::future::pending()).await;
        assert!(
            matches!(result, Err(kube::Error::ReadEvents(e)) if e.kind() == std::io::ErrorKind::TimedOut)
        );
    }
}
