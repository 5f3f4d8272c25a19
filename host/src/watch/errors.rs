//! Watch errors as a user meets them: each kind logged once, in words that
//! say what to fix, then quietly retried until it goes away.

use std::time::Duration;

use super::EventApi;
use crate::checkpoint::WatchKey;

/// Remembers what was last reported for one watch.
#[derive(Debug, Default)]
pub struct ErrorReport {
    /// The kind of error last logged, while failures go on.
    current: Option<String>,
    /// Failed attempts since the last success.
    failures: u32,
    /// `watching` has been logged at info level once after each list or
    /// recovery; routine re-watches log at debug.
    announced: bool,
    /// "cache synced" has been logged (once per watch task, by its first
    /// list or, resuming from a checkpoint, its first watch).
    synced: bool,
}

impl ErrorReport {
    /// A failed attempt: logged when it is a new kind of failure. Returns
    /// the message (for `/status`).
    pub fn failed(
        &mut self,
        key: &WatchKey,
        server: &str,
        api: EventApi,
        error: &kube::Error,
        retry_in: Duration,
    ) -> String {
        self.failures += 1;
        let (kind, message) = describe(key, server, api, error);
        let retry_in = format!("{:.1}s", retry_in.as_secs_f64());
        if self.current.as_deref() == Some(kind) {
            tracing::debug!(watch = %key, failures = self.failures, %retry_in, "{message}");
        } else {
            tracing::error!(watch = %key, %retry_in, "{message}; retrying with backoff");
            self.current = Some(kind.to_owned());
        }
        self.announced = false;
        message
    }

    /// A request went through.
    pub fn recovered(&mut self, key: &WatchKey) {
        if self.current.take().is_some() {
            tracing::info!(
                watch = %key,
                failed_attempts = self.failures,
                "API server answers again"
            );
        }
        self.failures = 0;
    }

    /// Whether this is the watch's first sync (a list, or a watch resumed
    /// from a checkpoint without one).
    pub fn take_first_sync(&mut self) -> bool {
        !std::mem::replace(&mut self.synced, true)
    }

    /// Whether this watch is the first since a list or a failure.
    pub fn take_first_watch(&mut self) -> bool {
        !std::mem::replace(&mut self.announced, true)
    }
}

/// A kind (to tell repeats) and a message for the log.
fn describe(
    key: &WatchKey,
    server: &str,
    api: EventApi,
    error: &kube::Error,
) -> (&'static str, String) {
    let cluster = &key.cluster;
    match error {
        kube::Error::Api(status) => match status.code {
            401 => (
                "unauthorized",
                format!(
                    "the API server at {server} rejected the credentials of cluster `{cluster}` \
                     (401 Unauthorized): check the token or client certificate it is given"
                ),
            ),
            403 => (
                "forbidden",
                format!(
                    "cluster `{cluster}` forbids it (403): {}; aetherius needs get, list and \
                     watch on {} (see deploy/rbac.yaml)",
                    status.message,
                    match api {
                        EventApi::CoreV1 => "events in the core API group",
                        EventApi::EventsV1 => "events in the events.k8s.io API group",
                    }
                ),
            ),
            404 => (
                "not-found",
                format!(
                    "the API server at {server} does not serve {} (404): {}",
                    api.path(key.namespace.as_deref()),
                    status.message
                ),
            ),
            code => (
                "api",
                format!(
                    "the API server at {server} answered {code}: {}",
                    status.message
                ),
            ),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => (
            "unreachable",
            format!("cannot reach the API server at {server}: {}", chain(error)),
        ),
        kube::Error::Auth(_) => (
            "credentials",
            format!(
                "cannot get credentials for cluster `{cluster}`: {}",
                chain(error)
            ),
        ),
        _ => (
            "other",
            format!("watching cluster `{cluster}` failed: {}", chain(error)),
        ),
    }
}

/// An error and its causes ([`crate::causes::chain`]).
fn chain(error: &kube::Error) -> String {
    crate::causes::chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.into(),
            ..Default::default()
        }))
    }

    #[test]
    fn messages_say_what_to_fix() {
        let key = WatchKey {
            cluster: "prod".into(),
            namespace: None,
        };
        let (kind, message) = describe(
            &key,
            "https://127.0.0.1:6443",
            EventApi::CoreV1,
            &status(403, "events is forbidden: cannot watch"),
        );
        assert_eq!(kind, "forbidden");
        assert!(message.contains("get, list and watch"), "{message}");
        assert!(message.contains("cannot watch"), "{message}");
        let (kind, message) = describe(&key, "https://x", EventApi::CoreV1, &status(401, ""));
        assert_eq!(kind, "unauthorized");
        assert!(message.contains("rejected the credentials of cluster `prod`"));
    }

    #[test]
    fn a_repeat_is_not_a_new_kind_and_recovery_resets() {
        let key = WatchKey {
            cluster: "c".into(),
            namespace: Some("n".into()),
        };
        let mut report = ErrorReport::default();
        report.failed(
            &key,
            "s",
            EventApi::CoreV1,
            &status(401, ""),
            Duration::ZERO,
        );
        report.failed(
            &key,
            "s",
            EventApi::CoreV1,
            &status(401, ""),
            Duration::ZERO,
        );
        assert_eq!(report.current.as_deref(), Some("unauthorized"));
        assert_eq!(report.failures, 2);
        report.recovered(&key);
        assert_eq!((report.current.as_deref(), report.failures), (None, 0));
        assert!(report.take_first_watch());
        assert!(!report.take_first_watch());
    }
}
