//! Watching a real kube-apiserver (DESIGN.md §12): creation→publication
//! latency and whole-process CPU time per event at a sustained create rate,
//! restart time, idle and steady RSS, and peak RSS during the initial list
//! of 20k Events.
//!
//! `cargo bench -p aetherius --bench watch` (after `scripts/test-servers.sh`).
//! Knobs: `WATCH_BENCH_EVENTS` (per rate, default 2000), `WATCH_BENCH_RATES`
//! (events/s, default `200,1000`), `WATCH_BENCH_LIST` (default 20000),
//! `WATCH_BENCH_HOSTILE` (Events with a 1 MiB message, listed and then
//! watched, default 200; 0 skips it), `WATCH_BENCH_BINARY` (another
//! `aetherius` to measure, e.g. an older release, side by side).
//!
//! The release `aetherius` runs as a child with the default chain and a
//! stdout sink; a thread timestamps each output line the moment it arrives.
//! An event's latency runs from just before its POST is sent to that moment,
//! so it includes the API server's write.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aetherius_tests::running::warning_event;
use aetherius_tests::servers::KubeCluster;
use aetherius_tests::{Scratch, compile_cache, repo_root};

/// The `aetherius` to measure: this build's, or `WATCH_BENCH_BINARY`.
fn binary() -> PathBuf {
    std::env::var_os("WATCH_BENCH_BINARY")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_aetherius")))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `aetherius run` with stdout lines timestamped as they arrive.
struct Aetherius {
    child: Child,
    /// (arrival, involved object name) per output line.
    lines: mpsc::Receiver<(Instant, String)>,
    logs: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Aetherius {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(binary())
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aetherius");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let at = Instant::now();
                let value: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
                let name = value["labels"]["involved_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if sender.send((at, name)).is_err() {
                    break;
                }
            }
        });
        let logs = Arc::new(Mutex::new(Vec::new()));
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push((Instant::now(), line));
                }
            });
        }
        Self { child, lines, logs }
    }

    /// When a log line containing `needle` first appeared.
    fn wait_log(&self, needle: &str, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((at, _)) = self
                .logs
                .lock()
                .unwrap()
                .iter()
                .find(|(_, l)| l.contains(needle))
            {
                return *at;
            }
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in the logs:\n{}",
                self.logs
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Memory in KiB from `/proc/PID/status`.
    fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        }
    }

    /// User and system CPU time the process has used (all its threads,
    /// also those that ended), from `/proc/PID/stat`.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // After the command name, which may hold spaces: state is field 3,
        // utime and stime fields 14 and 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_micros(ticks * 1_000_000 / per_second)
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// KiB.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    rss: u64,
    peak: u64,
    /// Heap, stacks, Wasm linear memories.
    anon: u64,
    /// Pages of the binary (and mapped .cwasm files) in memory.
    file: u64,
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn write_config(scratch: &Scratch, kubeconfig: &Path, namespace: &str, page_size: u32) -> PathBuf {
    let default = std::fs::read_to_string(repo_root().join("config/default.yaml")).unwrap();
    let head = &default[..default.find("\nsinks:").unwrap()];
    scratch.write(
        &format!("config-{namespace}-{page_size}.yaml"),
        format!(
            "{head}
sinks:
  out: {{ chain: default, stdout: {{}} }}
plugin_runtime: {{ cache_dir: {cache} }}
checkpoint: {{ file: {checkpoint} }}
server: {{ health_listen: '127.0.0.1:0', metrics_listen: '127.0.0.1:0' }}
clusters:
  - id: bench
    kubeconfig: {kubeconfig}
    namespaces: [{namespace}]
    page_size: {page_size}
",
            cache = compile_cache().display(),
            checkpoint = scratch
                .path(&format!("checkpoints-{namespace}-{page_size}.json"))
                .display(),
            kubeconfig = kubeconfig.display(),
        ),
    )
}

async fn client(kubeconfig: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

async fn post(client: &kube::Client, namespace: &str, body: String) {
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/events"))
        .create(&Default::default(), body.into_bytes())
        .unwrap();
    client
        .request::<serde_json::Value>(request)
        .await
        .expect("create an event");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// How long the process sits watching before its idle RSS is read.
const IDLE_SETTLE: Duration = Duration::from_secs(3);
/// Over how long its idle CPU is read.
const IDLE_CPU_WINDOW: Duration = Duration::from_secs(5);

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let events = env_usize("WATCH_BENCH_EVENTS", 2000);
    let list = env_usize("WATCH_BENCH_LIST", 20_000);
    let rates: Vec<usize> = std::env::var("WATCH_BENCH_RATES")
        .unwrap_or_else(|_| "200,1000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();

    let cluster = KubeCluster::start();
    let scratch = Scratch::new();
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let api = runtime.block_on(client(&kubeconfig));
    println!(
        "kube-apiserver v1.20.2 + etcd on 127.0.0.1; aetherius (release), default chain, stdout sink\n"
    );

    // --- Latency at sustained create rates -------------------------------
    cluster.create_namespace("latency");
    let config = write_config(&scratch, &kubeconfig, "latency", 500);
    let started = Instant::now();
    let child = Aetherius::start(&config);
    let watching = child.wait_log("\"watching\"", Duration::from_secs(60));
    println!(
        "first start (no checkpoint) to watching: {}",
        ms(watching - started)
    );
    let started_memory = child.memory();
    // Idle: watching, nothing happening. The process settles first (it
    // gives back what only the start needed once every watch is synced).
    std::thread::sleep(IDLE_SETTLE);
    let idle = child.memory();
    let cpu_before = child.cpu();
    std::thread::sleep(IDLE_CPU_WINDOW);
    let idle_cpu = child.cpu() - cpu_before;
    println!(
        "RSS at watching: {} ({} anonymous); idle RSS {} s later: {} ({} anonymous, {} file-backed); idle CPU: {:.1} ms per second",
        mib(started_memory.rss),
        mib(started_memory.anon),
        IDLE_SETTLE.as_secs(),
        mib(idle.rss),
        mib(idle.anon),
        mib(idle.file),
        idle_cpu.as_secs_f64() * 1000.0 / IDLE_CPU_WINDOW.as_secs_f64()
    );
    // Warm-up, not measured: the client's connections, the API server's caches.
    runtime.block_on(async {
        for i in 0..100 {
            let body = warning_event(
                "latency",
                &format!("warm-{i}"),
                &format!("warm-pod-{i}"),
                "BackOff",
                "Back-off restarting failed container app",
                1,
                0,
            );
            post(&api, "latency", body).await;
        }
    });
    for _ in 0..100 {
        child
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("warm-up events published");
    }
    println!(
        "\n| create rate (achieved) | events | p50 | p90 | p99 | max | POST round trip p50 / p99 | CPU per event | RSS after (anonymous) |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut steady = Memory::default();
    for (round, &rate) in rates.iter().enumerate() {
        let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let writes: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let cpu_before = child.cpu();
        let round_started = Instant::now();
        runtime.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..events {
                tick.tick().await;
                let pod = format!("r{round}-pod-{i}");
                let body = warning_event(
                    "latency",
                    &format!("r{round}-{i}"),
                    &pod,
                    "BackOff",
                    "Back-off restarting failed container app",
                    1,
                    0,
                );
                let (api, sent, writes) = (api.clone(), sent.clone(), writes.clone());
                tasks.spawn(async move {
                    let start = Instant::now();
                    sent.lock().unwrap().insert(pod, start);
                    post(&api, "latency", body).await;
                    writes.lock().unwrap().push(start.elapsed());
                });
            }
            while tasks.join_next().await.is_some() {}
        });
        let mut latencies = Vec::with_capacity(events);
        let deadline = Instant::now() + Duration::from_secs(60);
        while latencies.len() < events && Instant::now() < deadline {
            if let Ok((at, name)) = child.lines.recv_timeout(Duration::from_secs(1))
                && let Some(sent_at) = sent.lock().unwrap().get(&name)
            {
                latencies.push(at - *sent_at);
            }
        }
        assert_eq!(latencies.len(), events, "every event published");
        // Whole-process CPU over the round (idle moments included) per event.
        let cpu = (child.cpu() - cpu_before).as_secs_f64() / events as f64;
        let achieved = events as f64 / round_started.elapsed().as_secs_f64();
        latencies.sort();
        let mut writes = writes.lock().unwrap().clone();
        writes.sort();
        steady = child.memory();
        println!(
            "| {rate}/s ({achieved:.0}/s) | {events} | {} | {} | {} | {} | {} / {} | {:.0} µs | {} ({}) |",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.9)),
            ms(percentile(&latencies, 0.99)),
            ms(*latencies.last().unwrap()),
            ms(percentile(&writes, 0.5)),
            ms(percentile(&writes, 0.99)),
            cpu * 1e6,
            mib(steady.rss),
            mib(steady.anon),
        );
    }
    println!(
        "\nsteady RSS after {} events: {} ({} anonymous, {} file-backed: the binary's code), peak so far {}",
        events * rates.len(),
        mib(steady.rss),
        mib(steady.anon),
        mib(steady.file),
        mib(steady.peak),
    );
    child.stop();

    // --- Restart: from a checkpoint to watching ---------------------------
    let started = Instant::now();
    let child = Aetherius::start(&config);
    let watching = child.wait_log("\"watching\"", Duration::from_secs(60));
    child.wait_log("resuming from checkpoint", Duration::ZERO);
    println!(
        "restart (checkpoint present) to watching: {}",
        ms(watching - started)
    );
    child.stop();

    // --- Peak RSS during the initial list of `list` Events ----------------
    cluster.create_namespace("bulk");
    let created = Instant::now();
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..list {
            if tasks.len() >= 16 {
                tasks.join_next().await;
            }
            let api = api.clone();
            let body = warning_event(
                "bulk",
                &format!("bulk-{i}"),
                &format!("bulk-pod-{i}"),
                "FailedMount",
                "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found",
                1,
                0,
            );
            tasks.spawn(async move { post(&api, "bulk", body).await });
        }
        while tasks.join_next().await.is_some() {}
    });
    println!(
        "\ncreated {list} events in {:.1} s",
        created.elapsed().as_secs_f64()
    );
    println!(
        "\n| page size | initial list of {list} (all published) | peak RSS | RSS after | of which anonymous | settled {} s later (anonymous) | peak ÷ settled |\n|---|---|---|---|---|---|---|",
        IDLE_SETTLE.as_secs()
    );
    for page_size in [500, 10_000] {
        let config = write_config(&scratch, &kubeconfig, "bulk", page_size);
        let started = Instant::now();
        let child = Aetherius::start(&config);
        let mut published = 0;
        while published < list {
            child
                .lines
                .recv_timeout(Duration::from_secs(120))
                .expect("the listed events are published");
            published += 1;
        }
        let listed = started.elapsed();
        child.wait_log("\"watching\"", Duration::from_secs(60));
        let memory = child.memory();
        // The same process watching on with what the list left (its
        // fingerprints in the dedup cache), once it has settled.
        std::thread::sleep(IDLE_SETTLE);
        let settled = child.memory();
        println!(
            "| {page_size} | {:.2} s | {} | {} | {} | {} ({}) | {:.2} |",
            listed.as_secs_f64(),
            mib(memory.peak),
            mib(memory.rss),
            mib(memory.anon),
            mib(settled.rss),
            mib(settled.anon),
            memory.peak as f64 / settled.rss as f64,
        );
        child.stop();
    }

    // --- Peak RSS under a flood of 1 MiB Events --------------------------
    let hostile = env_usize("WATCH_BENCH_HOSTILE", 200);
    if hostile == 0 {
        return;
    }
    cluster.create_namespace("hostile");
    let flood = |from: usize| {
        runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for i in from..from + hostile {
                if tasks.len() >= 4 {
                    tasks.join_next().await;
                }
                let api = api.clone();
                let body = warning_event(
                    "hostile",
                    &format!("hostile-{i}"),
                    &format!("hostile-pod-{i}"),
                    "BackOff",
                    &"x".repeat(1024 * 1024),
                    1,
                    0,
                );
                tasks.spawn(async move { post(&api, "hostile", body).await });
            }
            while tasks.join_next().await.is_some() {}
        })
    };
    flood(0);
    let config = write_config(&scratch, &kubeconfig, "hostile", 500);
    let started = Instant::now();
    let child = Aetherius::start(&config);
    // Published until the output stays quiet for 10 s (an older build may
    // publish none of them).
    let published = |child: &Aetherius| {
        let mut count = 0;
        while count < hostile && child.lines.recv_timeout(Duration::from_secs(10)).is_ok() {
            count += 1;
        }
        count
    };
    child.wait_log("initial list done", Duration::from_secs(300));
    let listed = started.elapsed();
    let listed_published = published(&child);
    let after_list = child.memory();
    flood(hostile);
    let watched_published = published(&child);
    let after_watch = child.memory();
    println!(
        "\n{hostile} Events with a 1 MiB message listed (page size 500) in {:.2} s, {listed_published} published; then {hostile} more watched, {watched_published} published\n\n| | peak RSS | RSS | of which anonymous |\n|---|---|---|---|\n| after the list | {} | {} | {} |\n| after the watch | {} | {} | {} |",
        listed.as_secs_f64(),
        mib(after_list.peak),
        mib(after_list.rss),
        mib(after_list.anon),
        mib(after_watch.peak),
        mib(after_watch.rss),
        mib(after_watch.anon),
    );
    child.stop();
}
