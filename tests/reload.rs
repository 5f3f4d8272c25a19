//! Hot reload under `aetherius run` against a real kube-apiserver: a plugin
//! directory updated the way the kubelet updates a mounted ConfigMap while
//! events flow, a corrupt plugin dropped in, and a plain edit of the config.
//! The tests share one control plane, each watching only namespaces of its
//! own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aetherius_tests::configmap_dir::ConfigMapDir;
use aetherius_tests::guests;
use aetherius_tests::publishing::{create_backoff_events, watch_cluster};
use aetherius_tests::running::{Running, http_get, read_output, wait_for_output};
use aetherius_tests::servers::KubeCluster;
use aetherius_tests::{Scratch, compile_cache};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

fn config(scratch: &Scratch, plugins: &Path, output: &Path, chain: &str) -> String {
    format!(
        "plugins:
  warnings: {{ source: 'builtin:type-filter', config: {{ allow: [Warning] }} }}
  extra: {{ source: 'dir:extra' }}
chains:
  main: {chain}
sinks:
  out: {{ chain: main, file: {{ path: {output} }} }}
plugin_runtime: {{ plugin_dir: {plugins}, cache_dir: {cache} }}
checkpoint: {{ file: {checkpoint}, interval: 50ms }}
server: {{ health_listen: '127.0.0.1:0', metrics_listen: '127.0.0.1:0', reload_interval: 200ms }}
",
        output = output.display(),
        plugins = plugins.display(),
        cache = compile_cache().display(),
        checkpoint = scratch.path("checkpoints.json").display(),
    )
}

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["labels"]["involved_name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn plugins_and_config_reload_without_a_restart_and_bad_ones_are_refused() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    let mut plugins = ConfigMapDir::new(&scratch.path("plugins"));
    plugins.publish(&[("extra.wasm", &wasm(guests::COUNTER_ENRICHER))]);
    let output = scratch.path("events.jsonl");
    let config_path: PathBuf = scratch.write(
        "config.yaml",
        config(&scratch, plugins.path(), &output, "[warnings, extra]"),
    );
    watch_cluster(&scratch, &config_path, cluster, "test", &[&shop]);
    let mut run = Running::start(Path::new(BINARY), &config_path);
    run.wait_until_watching(1);
    let address = run.http_address();

    // Events keep coming while the kubelet swaps in another plugin, until
    // the new one shows in the output (compiling it may take a while on a
    // cold cache).
    let created = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let i = created.load(Ordering::Relaxed);
                create_backoff_events(cluster, &shop, i..i + 1);
                created.store(i + 1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        wait_for_output(&output, 15, Duration::from_secs(30));
        plugins.publish(&[("extra.wasm", &wasm(guests::SANDBOX_PROBE))]);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !read_output(&output)
            .iter()
            .any(|e| e["labels"]["env"] == "empty")
        {
            assert!(Instant::now() < deadline, "{}", run.logs().join("\n"));
            std::thread::sleep(Duration::from_millis(100));
        }
        // A few more through the new plugin.
        let switched = created.load(Ordering::Relaxed);
        while created.load(Ordering::Relaxed) < switched + 10 {
            std::thread::sleep(Duration::from_millis(25));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let n = created.load(Ordering::Relaxed) as usize;
    let events = wait_for_output(&output, n, Duration::from_secs(60));
    let published = names(&events);
    assert_eq!(
        published.iter().collect::<BTreeSet<_>>().len(),
        n,
        "every event: {published:?}"
    );
    assert_eq!(published.len(), n, "each once: {published:?}");
    // One switch, in order: the counter's label, then the probe's.
    let by_old: Vec<bool> = events
        .iter()
        .map(|e| e["labels"]["seen"].is_string())
        .collect();
    let switch = by_old
        .iter()
        .position(|old| !old)
        .expect("the new plugin took effect");
    assert!(switch >= 15, "{by_old:?}");
    assert!(by_old[switch..].iter().all(|old| !old), "{by_old:?}");
    assert!(
        events[switch..]
            .iter()
            .all(|e| e["labels"]["env"] == "empty")
    );
    assert_eq!(run.count_logs(&["reloaded: the new chains take over"]), 1);

    // A corrupt plugin: refused, said so, the probe keeps running, still ready.
    plugins.publish(&[("extra.wasm", b"\0asm but not really")]);
    run.wait_for_logs(&["reload rejected"], 1, Duration::from_secs(30));
    assert_eq!(
        run.count_logs(&["reload rejected", "\"ERROR\"", "extra"]),
        1
    );
    let (_, metrics) = http_get(address, "/metrics");
    assert!(
        metrics.contains("aetherius_config_reload_failing 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aetherius_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
    assert_eq!(http_get(address, "/ready").0, 200);
    create_backoff_events(cluster, &shop, 10_000..10_005);
    let events = wait_for_output(&output, n + 5, Duration::from_secs(30));
    assert!(
        events[n..].iter().all(|e| e["labels"]["env"] == "empty"),
        "{:?}",
        &events[n..]
    );

    // Fixed, then a plain edit of the config drops the stage.
    plugins.publish(&[("extra.wasm", &wasm(guests::COUNTER_ENRICHER))]);
    run.wait_for_logs(
        &["reloaded: the new chains take over"],
        2,
        Duration::from_secs(30),
    );
    let edited = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("main: [warnings, extra]", "main: [warnings]");
    std::fs::write(&config_path, edited).unwrap();
    run.wait_for_logs(
        &["reloaded: the new chains take over"],
        3,
        Duration::from_secs(30),
    );
    create_backoff_events(cluster, &shop, 20_000..20_005);
    let events = wait_for_output(&output, n + 10, Duration::from_secs(30));
    assert!(
        events[n + 5..]
            .iter()
            .all(|e| e["labels"].get("seen").is_none() && e["labels"].get("env").is_none()),
        "{:?}",
        &events[n + 5..]
    );
    let (_, metrics) = http_get(address, "/metrics");
    assert!(
        metrics.contains("aetherius_config_reload_failing 0"),
        "{metrics}"
    );
    run.stop();
}

#[test]
fn clusters_added_to_or_removed_from_the_config_start_or_stop_watching() {
    // Two API servers, so that each cluster entry is seen to reach its own.
    let first = KubeCluster::shared();
    let second = KubeCluster::start();
    let first_shop = first.fresh_namespace("shop");
    let second_shop = second.fresh_namespace("shop");
    let scratch = Scratch::new();
    let plugins = ConfigMapDir::new(&scratch.path("plugins"));
    let output = scratch.path("events.jsonl");
    let config_path = scratch.write(
        "config.yaml",
        config(&scratch, plugins.path(), &output, "[warnings]"),
    );
    let base = std::fs::read_to_string(&config_path).unwrap();
    watch_cluster(&scratch, &config_path, first, "first", &[&first_shop]);
    let with_first = std::fs::read_to_string(&config_path).unwrap();
    let first_entry = with_first.strip_prefix(&base).unwrap().to_owned();
    watch_cluster(&scratch, &config_path, &second, "second", &[&second_shop]);
    let with_both = std::fs::read_to_string(&config_path).unwrap();
    let second_entry = with_both
        .strip_prefix(&with_first)
        .unwrap()
        .replace("clusters:\n", "");
    std::fs::write(&config_path, &with_first).unwrap();

    let mut run = Running::start(Path::new(BINARY), &config_path);
    run.wait_until_watching(1);
    create_backoff_events(first, &first_shop, 0..3);
    wait_for_output(&output, 3, Duration::from_secs(30));

    // Added: watched without a restart.
    std::fs::write(&config_path, format!("{base}{first_entry}{second_entry}")).unwrap();
    run.wait_for_logs(&["the config adds the cluster"], 1, Duration::from_secs(30));
    run.wait_until_watching(2);
    create_backoff_events(&second, &second_shop, 10..13);
    let events = wait_for_output(&output, 6, Duration::from_secs(30));
    assert!(
        events[3..].iter().all(|e| e["cluster_id"] == "second"),
        "{events:?}"
    );

    // Removed: no longer watched.
    std::fs::write(&config_path, format!("{base}clusters:\n{second_entry}")).unwrap();
    run.wait_for_logs(
        &["stopped watching the cluster"],
        1,
        Duration::from_secs(30),
    );
    create_backoff_events(first, &first_shop, 20..23);
    create_backoff_events(&second, &second_shop, 30..33);
    let events = wait_for_output(&output, 9, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let events_after = aetherius_tests::running::read_output(&output);
    assert_eq!(events_after.len(), 9, "{:?}", names(&events_after));
    assert!(
        events[6..].iter().all(|e| e["cluster_id"] == "second"),
        "{events:?}"
    );
    run.stop();
}

/// Dead letters are retried later (the design document's §6.2.2): events a
/// plugin fails on, with `on_failure: dead-letter`, are dead-lettered once,
/// retried with backoff while the plugin keeps failing, and published once
/// when a reload has fixed it.
#[test]
fn dead_letters_are_retried_and_published_once_a_reload_fixes_the_plugin() {
    use aetherius_tests::running::warning_event;

    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("retry");
    let scratch = Scratch::new();
    let mut plugins = ConfigMapDir::new(&scratch.path("plugins"));
    plugins.publish(&[("extra.wasm", &wasm(guests::PANIC_FILTER))]);
    let output = scratch.path("events.jsonl");
    let dead = scratch.path("dead-letters.jsonl");
    let yaml = config(&scratch, plugins.path(), &output, "[warnings, extra]")
        .replace(
            "  extra: { source: 'dir:extra' }",
            "  extra: { source: 'dir:extra', on_failure: dead-letter, circuit_breaker: { failures: 100 } }",
        )
        .replace(
            "sinks:\n",
            &format!(
                "sinks:\n  dead: {{ chain: dead-letter, file: {{ path: {} }} }}\n",
                dead.display()
            ),
        );
    let yaml = format!("{yaml}pipeline: {{ dead_letter_retry: {{ after: 1s, attempts: 8 }} }}\n");
    let config_path = scratch.write("config.yaml", yaml);
    watch_cluster(&scratch, &config_path, cluster, "test", &[&shop]);
    let mut run = Running::start(Path::new(BINARY), &config_path);
    run.wait_until_watching(1);
    let address = run.http_address();
    let retries = |result: &str| -> f64 {
        let (_, metrics) = http_get(address, "/metrics");
        let prefix = format!("aetherius_dead_letter_retries_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };

    // The panic filter traps on reason Boom and keeps everything else.
    create_backoff_events(cluster, &shop, 0..3);
    for i in 0..3 {
        let body = warning_event(
            &shop,
            &format!("boom-{i}"),
            &format!("boom-pod-{i}"),
            "Boom",
            "boom",
            1,
            0,
        );
        cluster.create_event(&shop, &body);
    }
    wait_for_output(&output, 3, Duration::from_secs(60));
    wait_for_output(&dead, 3, Duration::from_secs(60));
    // The plugin still fails: a retry fails, and writes no second dead letter.
    let deadline = Instant::now() + Duration::from_secs(30);
    while retries("failed") < 3.0 {
        assert!(Instant::now() < deadline, "{}", run.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(100));
    }

    // Fixed by a reload: the stage is now a plugin that fails on nothing.
    let yaml = std::fs::read_to_string(&config_path).unwrap().replace(
        "extra: { source: 'dir:extra', on_failure: dead-letter,",
        "extra: { source: 'builtin:type-filter', on_failure: dead-letter,",
    );
    std::fs::write(&config_path, yaml).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while retries("published") < 3.0 {
        assert!(Instant::now() < deadline, "{}", run.logs().join("\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let published = read_output(&output);
    run.stop();
    let mut names = names(&published);
    names.sort();
    assert_eq!(
        names,
        [
            "boom-pod-0",
            "boom-pod-1",
            "boom-pod-2",
            "pod-0",
            "pod-1",
            "pod-2"
        ],
        "each once"
    );
    assert_eq!(read_output(&dead).len(), 3, "one dead letter each");
}
