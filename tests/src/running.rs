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
    /// Starts `binary run --config config` with JSON logs on stderr. A
    /// config without a `server:` section gets one serving on an ephemeral
    /// loopback port (see [`http_address`](Self::http_address)), so that
    /// tests running at once do not fight over the default port.
    pub fn start(binary: &Path, config: &Path) -> Self {
        Self::start_with_env(binary, config, &[])
    }

    /// As [`start`](Self::start), with more environment variables (a
    /// replica's `POD_NAME`, say).
    pub fn start_with_env(binary: &Path, config: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .envs(env.iter().copied());
        Self::spawn(command, config)
    }

    /// Starts `binary ARGS` (no subcommand: `run` is the default) as the
    /// design document's Deployment does, with `env`, serving HTTP on one
    /// ephemeral loopback port. The config file is used as it is.
    pub fn start_args(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .args(["--log-format", "json"])
            .args(args)
            .args([
                "--health-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .envs(env.iter().copied());
        Self::spawn_command(command)
    }

    /// Starts `command` — one that ends by running `aetherius` (in a chroot,
    /// say) with JSON logs on stderr — and collects its logs.
    pub fn start_command(command: Command) -> Self {
        Self::spawn_command(command)
    }

    fn spawn(command: Command, config: &Path) -> Self {
        let yaml = std::fs::read_to_string(config)
            .unwrap_or_else(|e| panic!("read {}: {e}", config.display()));
        if !yaml.lines().any(|l| l.starts_with("server:")) {
            std::fs::write(
                config,
                format!("{yaml}\nserver: {{ health_listen: '127.0.0.1:0', metrics_listen: '127.0.0.1:0' }}\n"),
            )
            .unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
        }
        Self::spawn_command(command)
    }

    fn spawn_command(mut command: Command) -> Self {
        let mut child = command
            .env("RUST_LOG", "info,aetherius=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
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

    /// Starts `binary run --config config` as it runs in a pod: in its own
    /// mount namespace (needs root) where `secrets` (token, ca.crt,
    /// namespace) is mounted at /var/run/secrets/kubernetes.io/serviceaccount,
    /// with KUBERNETES_SERVICE_HOST and _PORT pointing at `cluster`.
    pub fn start_in_pod(
        binary: &Path,
        config: &Path,
        secrets: &Path,
        cluster: &KubeCluster,
    ) -> Self {
        let url = cluster.server_url();
        let (host, port) = url
            .trim_start_matches("https://")
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("no port in {url}"));
        let script = "mount -t tmpfs tmpfs /run \
            && mkdir -p /run/secrets/kubernetes.io/serviceaccount \
            && cp \"$1\"/* /run/secrets/kubernetes.io/serviceaccount/ \
            && shift && exec \"$@\"";
        let mut command = in_private_mount_namespace(script);
        command
            .arg(secrets)
            .arg(binary)
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .env("KUBERNETES_SERVICE_HOST", host)
            .env("KUBERNETES_SERVICE_PORT", port);
        Self::spawn(command, config)
    }

    /// Where it serves `/metrics`, `/health`, `/ready` and `/status`, from its log.
    ///
    /// # Panics
    ///
    /// If it does not say within 30 seconds.
    pub fn http_address(&mut self) -> std::net::SocketAddr {
        let needle = "serving /metrics, /health, /ready and /status";
        self.wait_for_logs(&[needle], 1, Duration::from_secs(30));
        let line = self
            .logs()
            .into_iter()
            .find(|l| l.contains(needle))
            .expect("waited for it");
        let line: serde_json::Value = serde_json::from_str(&line).expect("JSON logs");
        line["fields"]["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"))
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
    pub fn stop(self) -> Vec<String> {
        let (status, logs) = self.terminate();
        assert!(
            status.success(),
            "aetherius exited with {status} on SIGTERM:\n{}",
            logs.join("\n")
        );
        logs
    }

    /// SIGTERM, then waits (30 s at most) for it to exit, however it exits.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.wait(Duration::from_secs(30));
        (status, self.finish_logs())
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

/// The JSON lines of a file sink (none if it does not exist yet). A last
/// line without its newline is one the sink is still writing: it is left for
/// the next read.
pub fn read_output(path: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete
        .lines()
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
    /// Runs `kubectl ARGS` as the admin (a kubeconfig written for the call).
    /// Returns whether it succeeded and its stdout and stderr.
    ///
    /// # Panics
    ///
    /// If `kubectl` is not installed (`scripts/test-servers.sh` installs it).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        self.write_kubeconfig(&kubeconfig);
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run kubectl (scripts/test-servers.sh installs it): {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    /// A token for the service account `namespace/name` from the
    /// TokenRequest API, valid for an hour.
    ///
    /// # Panics
    ///
    /// Unless the API server issued one.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
        let body = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": { "expirationSeconds": 3600 },
        });
        let response = self.request("POST", &path, Some(&body.to_string()));
        assert_eq!(response.status, 201, "POST {path}: {}", response.body);
        response.json()["status"]["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

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

/// GET `path` from `address`: the status code and the body.
///
/// # Panics
///
/// If nothing answers or the answer is not HTTP.
pub fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("read the answer to GET {path}: {e}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not HTTP: {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// `sh -c script` (needs root) in a mount namespace of its own, so that what
/// it mounts is seen by it and its children only; its arguments follow as
/// `$1`….
pub fn in_private_mount_namespace(script: &str) -> Command {
    let mut command = Command::new("unshare");
    command.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ]);
    command
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
