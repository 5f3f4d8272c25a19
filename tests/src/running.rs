//! `aetherius run` as a child process, as operators run it: its JSON logs
//! collected for assertions, stopped with SIGTERM (a clean shutdown) or
//! SIGKILL (a crash), its file sink read back.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::servers::KubeCluster;

/// A running `aetherius run --config FILE`.
pub struct Running {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts `binary run --config config` with JSON logs on stderr.
    pub fn start(binary: &Path, config: &Path) -> Self {
        let mut child = Command::new(binary)
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,aetherius=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("stderr was piped");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            })
        };
        Self {
            child,
            logs,
            reader: Some(reader),
        }
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Log lines containing every one of `needles`.
    pub fn count_logs(&self, needles: &[&str]) -> usize {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .count()
    }

    /// Waits until `count` log lines contain every one of `needles`.
    ///
    /// # Panics
    ///
    /// After `timeout`, or if the process exits first, with its logs.
    pub fn wait_for_logs(&mut self, needles: &[&str], count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count_logs(needles) >= count {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader catch up before reporting.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "aetherius exited ({status}) before logging {needles:?}:\n{}",
                    self.logs().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {count} log lines with {needles:?} within {timeout:?}:\n{}",
                self.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every watch of the run has logged `watching` (the initial
    /// list is done, or the checkpoint was accepted).
    pub fn wait_until_watching(&mut self, watches: usize) {
        self.wait_for_logs(&["\"watching\""], watches, Duration::from_secs(60));
    }

    /// SIGTERM, then waits for the clean shutdown (flush, checkpoint).
    ///
    /// # Panics
    ///
    /// If it does not exit within 30 s or exits unsuccessfully.
    pub fn stop(mut self) -> Vec<String> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.wait(Duration::from_secs(30));
        let logs = self.finish_logs();
        assert!(
            status.success(),
            "aetherius exited with {status} on SIGTERM:\n{}",
            logs.join("\n")
        );
        logs
    }

    /// SIGKILL: a crash, nothing flushed beyond what was already written.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish_logs()
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for aetherius") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "aetherius did not exit within {timeout:?}:\n{}",
                    self.logs().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish_logs(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.logs()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The JSON lines of a file sink (none if it does not exist yet).
pub fn read_output(path: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad output line ({e}): {line}"))
        })
        .collect()
}

/// Waits until the file sink holds at least `count` lines and returns them.
///
/// # Panics
///
/// After `timeout`, with what the file holds.
pub fn wait_for_output(path: &Path, count: usize, timeout: Duration) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = read_output(path);
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {} lines, expected {count} within {timeout:?}:\n{}",
            path.display(),
            lines.len(),
            lines
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The body of a core/v1 Warning Event about pod `pod` in `namespace`, as
/// the kubelet writes one; `seconds_ago` backdates its timestamps.
pub fn warning_event(
    namespace: &str,
    name: &str,
    pod: &str,
    reason: &str,
    message: &str,
    count: u32,
    seconds_ago: i64,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts = rfc3339(now - seconds_ago);
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": { "name": name, "namespace": namespace },
        "involvedObject": {
            "kind": "Pod", "name": pod, "namespace": namespace,
            "uid": format!("uid-{pod}"), "apiVersion": "v1",
        },
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": count,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "source": { "component": "kubelet", "host": "node-1" },
    })
    .to_string()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (UTC), without a date crate.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl KubeCluster {
    /// Creates a namespace (as the admin).
    ///
    /// # Panics
    ///
    /// Unless the API server created it.
    pub fn create_namespace(&self, name: &str) {
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name },
        })
        .to_string();
        let response = self.request("POST", "/api/v1/namespaces", Some(&body));
        assert_eq!(
            response.status, 201,
            "create namespace {name}: {}",
            response.body
        );
    }

    /// Creates an Event from its JSON body and returns the stored object.
    ///
    /// # Panics
    ///
    /// Unless the API server created it.
    pub fn create_event(&self, namespace: &str, body: &str) -> serde_json::Value {
        let response = self.request(
            "POST",
            &format!("/api/v1/namespaces/{namespace}/events"),
            Some(body),
        );
        assert_eq!(response.status, 201, "create event: {}", response.body);
        response.json()
    }

    /// Sets an Event's count (and lastTimestamp to now), as the kubelet does
    /// when a problem repeats.
    ///
    /// # Panics
    ///
    /// Unless the API server accepted it.
    pub fn bump_event(&self, namespace: &str, name: &str, count: u32) -> serde_json::Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let patch = serde_json::json!({ "count": count, "lastTimestamp": rfc3339(now) });
        let response = self.request_with_type(
            "PATCH",
            &format!("/api/v1/namespaces/{namespace}/events/{name}"),
            &patch.to_string(),
            "application/merge-patch+json",
        );
        assert_eq!(response.status, 200, "patch event: {}", response.body);
        response.json()
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
