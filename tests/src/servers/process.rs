//! One server process: spawned in its own process group behind a watchdog,
//! logging to a file, stopped by signalling the whole group.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long a stopped server gets to exit after SIGTERM before the group is
/// sent SIGKILL. Servers here shut down in well under a second; this only
/// bounds a hung one.
const GRACEFUL_STOP: Duration = Duration::from_secs(10);

/// Runs the server as a background job and exits with its status. It also
/// holds the read end of a pipe whose write end only the test process holds:
/// when the test process dies in any way — including a `static` server that is
/// never dropped, or SIGKILL — the pipe closes and the reader kills the whole
/// process group, so no server outlives its tests. On SIGTERM it waits for the
/// server, so that the port and store are free once this shell is reaped.
const WATCHDOG: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
server=$!
{ read -r _ <&3; kill -KILL 0; } &
reader=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; kill -KILL "$reader" 2>/dev/null; wait "$reader"; exit 143' TERM INT
wait "$server"
status=$?
kill -KILL "$reader" 2>/dev/null
wait "$reader"
exit "$status"
"#;

/// A running server and the means to stop it; see [`WATCHDOG`].
pub(crate) struct ServerProcess {
    /// What the server is, for messages ("etcd", "kube-apiserver").
    name: String,
    /// Behind a lock so that a server that is never dropped (in a `static`)
    /// can still be stopped through a shared reference, at exit.
    child: Mutex<Child>,
    /// Held only so that it closes when the test process dies.
    _lifeline: Option<ChildStdin>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `program args` in `cwd` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cwd: &Path,
        log: &Path,
    ) -> Self {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open {name}'s log {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("duplicate {name}'s log handle: {e}"));
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({}): {e}", program.display()));
        let lifeline = child.stdin.take().expect("stdin was piped");
        Self {
            name: name.to_owned(),
            child: Mutex::new(child),
            _lifeline: Some(lifeline),
            log: log.to_owned(),
        }
    }

    /// The server's exit status, if it has exited.
    pub(crate) fn exited(&self) -> Option<ExitStatus> {
        self.child()
            .try_wait()
            .unwrap_or_else(|e| panic!("check whether {} is running: {e}", self.name))
    }

    /// Panics with the log's tail if the server has exited.
    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited ({status}) while starting; the end of its log {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
    }

    /// Polls `ready` every 100 ms until it holds, panicking with the log's
    /// tail if the server exits first or `timeout` passes.
    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            if ready() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not become ready ({what}) within {timeout:?}; the end of its log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `addr` accepts TCP connections.
    pub(crate) fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) {
        self.wait_until(&format!("accepting connections on {addr}"), timeout, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }

    /// The last 4 KiB of the server's log, where the reason it failed is.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log, 4096)
    }

    /// Stops the server and everything it started: SIGTERM to the process
    /// group, SIGKILL if it has not exited within [`GRACEFUL_STOP`]. Returns
    /// once the server has exited, so its port and files are free.
    pub(crate) fn stop(self) {
        self.terminate();
    }

    /// What [`stop`](Self::stop) does, through a shared reference: for a
    /// server in a `static`, which is never dropped.
    pub(crate) fn terminate(&self) {
        if self.exited().is_some() {
            return;
        }
        let group = -(self.child().id() as libc::pid_t);
        // SAFETY: kill(2) with a negative pid signals the process group this
        // helper created with `process_group(0)`; it touches no memory.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + GRACEFUL_STOP;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child().wait();
    }

    /// The child, whether or not another thread panicked holding it.
    fn child(&self) -> MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The last `max` bytes of the file at `path`, or why it could not be read.
/// A Go panic's stack trace is longer than that, so the first line that
/// mentions a panic comes first.
pub(crate) fn log_tail(path: &Path, max: u64) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        let start = usize::try_from(len.saturating_sub(max)).unwrap_or(0);
        let tail = text.get(start..).unwrap_or(&text);
        Ok(match text.lines().find(|line| line.contains("panic")) {
            Some(panic) if !tail.contains(panic) => format!("{panic}\n[...]\n{tail}"),
            _ => tail.to_owned(),
        })
    };
    read().unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// A loopback port that nothing listens on now and that this process has not
/// handed out before, so that servers started by parallel tests do not pick
/// the same one. (Another process may still take it before the server binds
/// it; on a test machine that is rare enough.)
pub(crate) fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound socket has an address")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// `127.0.0.1:port`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Runs a short command to completion and returns its stdout, panicking with
/// its stderr if it fails: for `openssl`, `etcdctl` and `curl`.
pub(crate) fn run(program: &Path, args: &[&str]) -> String {
    try_run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`run`], returning what went wrong instead of panicking.
pub(crate) fn try_run(program: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {}: {e}", program.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {} failed ({}):\n{}",
            program.display(),
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|e| format!("{} printed non-UTF-8 output: {e}", program.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in server that records its pid, then sleeps.
    fn sleeper(dir: &Path) -> (ServerProcess, PathBuf) {
        let pid_file = dir.join("pid");
        let script = format!("echo $$ > {}; exec sleep 300", pid_file.display());
        let process = ServerProcess::spawn(
            "sleeper",
            Path::new("/bin/sh"),
            &["-c".to_owned(), script],
            dir,
            &dir.join("sleeper.log"),
        );
        (process, pid_file)
    }

    fn pid(pid_file: &Path) -> u32 {
        for _ in 0..100 {
            if let Some(pid) = std::fs::read_to_string(pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("the sleeper wrote no pid to {}", pid_file.display());
    }

    /// Gone, or a zombie nobody reaps yet (PID 1 in a container may not).
    fn is_dead(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    #[test]
    fn stop_returns_once_the_server_has_exited() {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let (process, pid_file) = sleeper(dir.path());
        let pid = pid(&pid_file);
        assert!(!is_dead(pid));
        process.stop();
        assert!(is_dead(pid), "the server outlived stop()");
    }

    #[test]
    fn the_server_dies_when_the_test_process_lets_go() {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let (mut process, pid_file) = sleeper(dir.path());
        let pid = pid(&pid_file);
        // What the kernel does to the pipe when the test process dies.
        drop(process._lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_dead(pid) {
            assert!(
                Instant::now() < deadline,
                "the server survived its lifeline"
            );
            thread::sleep(Duration::from_millis(20));
        }
        // `kill -KILL 0` signals the whole group at once, but each process
        // dies when the kernel next schedules it: the shell may still be
        // alive for a moment after the server is gone.
        while process.exited().is_none() {
            assert!(
                Instant::now() < deadline,
                "the watchdog shell outlived the server"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn hands_out_distinct_ports() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }
}
