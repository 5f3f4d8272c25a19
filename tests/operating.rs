//! Operating `aetherius run`: `/metrics`, `/health` and `/ready` while it
//! watches a real kube-apiserver and publishes to a real nats-server, and
//! `/ready` turning when either goes away and back.
//!
//! The tests that leave the API server running share one control plane,
//! each watching only namespaces of its own.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use aetherius_tests::publishing::{config_with_sinks, create_backoff_events, watch_cluster};
use aetherius_tests::running::{Running, http_get};
use aetherius_tests::servers::{KubeCluster, NatsServer, ServerBinary};
use aetherius_tests::{Scratch, repo_root};

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

/// Polls `/ready` until it answers `status`; returns the body.
fn wait_for_ready(address: SocketAddr, status: u16, run: &Running) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (got, body) = http_get(address, "/ready");
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/ready stayed {got} ({body}), wanted {status}; logs:\n{}",
            run.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the sample `name{labels}` (labels as written in the
/// exposition, e.g. `cluster_id="test"`; empty for none).
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// `/metrics` read by Prometheus's own parser and linter (`promtool check
/// metrics`): well-formed, and no naming or help problems.
fn assert_parses_as_prometheus_exposition(metrics: &str) {
    use std::io::Write;
    let mut promtool = std::process::Command::new(ServerBinary::Promtool.path())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every metric name in docs/metrics.md.
fn documented_metrics() -> Vec<String> {
    std::fs::read_to_string(repo_root().join("docs/metrics.md"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn metrics_and_probes_say_what_an_operator_needs() {
    // Its own: the API server goes away under it.
    let mut cluster = KubeCluster::start();
    cluster.create_namespace("shop");
    let mut nats = NatsServer::start();
    let scratch = Scratch::new();
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  bus:\n    chain: default\n    nats: {{ url: '{}', jetstream: false }}\n    spool: {{ dir: {} }}",
            nats.url(),
            scratch.path("spool").display()
        ),
    );
    watch_cluster(&scratch, &config, &cluster, "test", &[]);
    let mut run = Running::start(Path::new(BINARY), &config);
    let address = run.http_address();
    assert_eq!(http_get(address, "/health"), (200, "ok\n".to_owned()));
    wait_for_ready(address, 200, &run);

    create_backoff_events(&cluster, "shop", 0..10);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, metrics) = http_get(address, "/metrics");
        assert_eq!(status, 200);
        // Published, and the checkpoint written behind it.
        if sample(&metrics, "aetherius_sink_published_total", "sink=\"bus\"") >= Some(10.0)
            && sample(
                &metrics,
                "aetherius_checkpoint_writes_total",
                "result=\"ok\"",
            ) >= Some(1.0)
        {
            break metrics;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    };

    // Every documented metric is exposed, and none undocumented.
    let exposed: BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    let documented: BTreeSet<String> = documented_metrics().into_iter().collect();
    assert_eq!(exposed, documented);
    assert_parses_as_prometheus_exposition(&metrics);

    // Plausible values.
    let value = |name: &str, labels: &str| {
        sample(&metrics, name, labels)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{metrics}"))
    };
    assert!(value("k8s_events_received_total", "cluster_id=\"test\"") >= 10.0);
    assert!(value("k8s_events_processed_total", "cluster_id=\"test\"") >= 10.0);
    assert_eq!(value("aetherius_sink_failed_total", "sink=\"bus\""), 0.0);
    assert_eq!(value("aetherius_sink_up", "sink=\"bus\""), 1.0);
    assert_eq!(value("aetherius_sink_spool_bytes", "sink=\"bus\""), 0.0);
    assert_eq!(
        value(
            "aetherius_watch_synced",
            "cluster_id=\"test\",namespace=\"\""
        ),
        1.0
    );
    assert_eq!(value("aetherius_leader", "cluster_id=\"test\""), 1.0);
    assert_eq!(value("aetherius_ready", ""), 1.0);
    assert!(value("k8s_events_dedup_cache_size", "") >= 10.0);
    assert!(value("k8s_events_processing_seconds_count", "") >= 10.0);
    assert!(value("aetherius_plugin_calls_total", "plugin=\"severity\"") >= 1.0);
    assert!(value("aetherius_plugin_call_seconds_count", "plugin=\"severity\"") >= 1.0);
    assert_eq!(
        value("aetherius_plugin_breaker_open", "plugin=\"severity\""),
        0.0
    );
    assert!(value("aetherius_checkpoint_writes_total", "result=\"ok\"") >= 1.0);
    // Series exist at 0 before anything happens, for rate() and alerts.
    assert_eq!(
        value(
            "k8s_events_error_total",
            "cluster_id=\"test\",kind=\"decode\""
        ),
        0.0
    );
    assert_eq!(
        value(
            "aetherius_plugin_failures_total",
            "kind=\"trap\",plugin=\"severity\""
        ),
        0.0
    );
    // The standard process metrics, from /proc.
    assert!(value("process_resident_memory_bytes", "") > 1e6);
    assert!(value("process_open_fds", "") >= 3.0);
    assert!(value("process_cpu_seconds_total", "") > 0.0);
    assert!(value("aetherius_checkpoint_lag_seconds", "cluster_id=\"test\"") < 10.0);
    assert!(
        !metrics.contains("pod-"),
        "labels never carry an object name"
    );

    // The broker goes away: not ready, and why; back: ready.
    nats.stop();
    let why = wait_for_ready(address, 503, &run);
    assert!(why.contains("sink bus cannot publish"), "{why}");
    nats.restart();
    wait_for_ready(address, 200, &run);

    // The API server goes away: not ready once the watch notices.
    cluster.stop_apiserver();
    let why = wait_for_ready(address, 503, &run);
    assert!(why.contains("watch test/* not synced"), "{why}");
    cluster.start_apiserver();
    wait_for_ready(address, 200, &run);
    let (_, metrics) = http_get(address, "/metrics");
    assert!(
        sample(
            &metrics,
            "aetherius_watch_restarts_total",
            "cluster_id=\"test\",reason=\"error\""
        ) >= Some(1.0),
        "{metrics}"
    );

    let logs = run.stop();
    assert!(logs.iter().any(|l| l.contains("sink finished")), "{logs:?}");
}

#[test]
fn a_shutdown_stuck_past_its_grace_exits_and_loses_nothing() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let mut nats = NatsServer::start();
    let scratch = Scratch::new();
    // No spool: while NATS is down the pipeline waits, and so would the
    // shutdown, but for the grace period.
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  bus:\n    chain: default\n    nats: {{ url: '{}', jetstream: false, subject: 'events' }}\n    spool: {{ enabled: false }}",
            nats.url()
        ),
    );
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str("server: { health_listen: '127.0.0.1:0', metrics_listen: '127.0.0.1:0', shutdown_grace: 2s }\n");
    std::fs::write(&config, yaml).unwrap();
    watch_cluster(&scratch, &config, cluster, "test", &[&shop]);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    nats.stop();
    create_backoff_events(cluster, &shop, 0..10);
    run.wait_for_logs(&["cannot publish to NATS"], 1, Duration::from_secs(60));
    let started = Instant::now();
    let (status, logs) = run.terminate();
    assert!(!status.success(), "{}", logs.join("\n"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("server.shutdown_grace (2s)")),
        "{}",
        logs.join("\n")
    );

    // The checkpoint stayed behind them: the next start publishes all ten.
    nats.restart();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = client.block_on(async {
        let nats_client = async_nats::connect(nats.url()).await.unwrap();
        let mut subscription = nats_client.subscribe("events").await.unwrap();
        nats_client.flush().await.unwrap();
        let run = Running::start(Path::new(BINARY), &config);
        let mut names = BTreeSet::new();
        while names.len() < 10 {
            let message = tokio::time::timeout(
                Duration::from_secs(60),
                futures::StreamExt::next(&mut subscription),
            )
            .await
            .unwrap_or_else(|_| panic!("only {names:?}; logs:\n{}", run.logs().join("\n")))
            .unwrap();
            let event: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            names.insert(
                event["labels"]["involved_name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        run.stop();
        names
    });
    assert_eq!(received.len(), 10);
}

#[test]
fn two_replicas_elect_one_leader_and_fail_over_without_loss() {
    use aetherius_tests::publishing::{event_stream, read_event_stream};

    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    // Where the replicas keep their Lease and checkpoint.
    let aetherius = cluster.fresh_namespace("aetherius");
    let nats = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let js = runtime.block_on(event_stream(&nats.url(), async_nats::ConnectOptions::new()));
    let stored = || {
        runtime
            .block_on(read_event_stream(&js))
            .iter()
            .map(|(_, _, event)| {
                event["labels"]["involved_name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let scratch = Scratch::new();
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  bus:\n    chain: default\n    nats: {{ url: '{}' }}\n    spool: {{ enabled: false }}",
            nats.url()
        ),
    );
    watch_cluster(&scratch, &config, cluster, "test", &[&shop]);
    let yaml = std::fs::read_to_string(&config).unwrap().replace(
        "  - { id: test,",
        &format!("  - {{ checkpoint_configmap: {{ namespace: {aetherius}, name: aetherius-checkpoint }}, leader_election: {{ namespace: {aetherius}, name: aetherius-test, duration: 3s, retry_period: 500ms }}, id: test,"),
    );
    std::fs::write(&config, yaml).unwrap();

    let mut first = Running::start_with_env(Path::new(BINARY), &config, &[("POD_NAME", "first")]);
    first.wait_for_logs(&["became leader"], 1, Duration::from_secs(30));
    first.wait_until_watching(1);
    let mut second = Running::start_with_env(Path::new(BINARY), &config, &[("POD_NAME", "second")]);
    second.wait_for_logs(&["standing by"], 1, Duration::from_secs(30));
    // Both ready: the standby has nothing to watch.
    let address = second.http_address();
    wait_for_ready(address, 200, &second);

    create_backoff_events(cluster, &shop, 0..20);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored().len() < 20 {
        assert!(Instant::now() < deadline, "{:?}", stored());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        second.count_logs(&["\"watching\""]),
        0,
        "only the leader watches"
    );

    // The leader dies; events keep coming; the standby takes over within the
    // lease duration and resumes from the shared checkpoint.
    first.kill();
    create_backoff_events(cluster, &shop, 20..40);
    second.wait_for_logs(&["became leader"], 1, Duration::from_secs(30));
    second.wait_for_logs(&["resuming from checkpoint"], 1, Duration::from_secs(30));
    create_backoff_events(cluster, &shop, 40..50);
    let deadline = Instant::now() + Duration::from_secs(30);
    let names = loop {
        let names = stored();
        if names.len() >= 50 || Instant::now() > deadline {
            break names;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), 50, "every event: {names:?}");
    assert_eq!(names.len(), 50, "each once in the stream");

    // A clean stop releases the lease.
    let logs = second.stop();
    assert!(
        logs.iter().any(|l| l.contains("released the lease")),
        "{logs:?}"
    );
}

/// `/status` and `aetherius status` during a two-cluster run with leader
/// election, as the design document's multi-cluster manager reports it: the
/// leader watches both, synced, with their checkpoints and counters; the
/// standby watches neither; a cluster whose API server cannot be reached
/// shows its last error.
#[test]
fn status_reports_each_cluster_on_the_leader_and_the_standby() {
    let cluster = KubeCluster::shared();
    let (east, west) = (
        cluster.fresh_namespace("east"),
        cluster.fresh_namespace("west"),
    );
    let aetherius = cluster.fresh_namespace("aetherius");
    let scratch = Scratch::new();
    let output = scratch.path("events.jsonl");
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  out:\n    chain: default\n    file: {{ path: {} }}",
            output.display()
        ),
    );
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig);
    let unreachable = scratch.path("unreachable-kubeconfig");
    std::fs::write(
        &unreachable,
        std::fs::read_to_string(&kubeconfig)
            .unwrap()
            .replace(&cluster.server_url(), "https://127.0.0.1:1"),
    )
    .unwrap();
    let elected = |id: &str, namespace: &str| {
        format!(
            "  - {{ id: {id}, kubeconfig: {kc}, namespaces: [{namespace}], checkpoint_configmap: {{ namespace: {aetherius}, name: checkpoint-{id} }}, leader_election: {{ namespace: {aetherius}, name: lease-{id}, duration: 3s, retry_period: 500ms }} }}\n",
            kc = kubeconfig.display()
        )
    };
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str("clusters:\n");
    yaml.push_str(&elected("east", &east));
    yaml.push_str(&elected("west", &west));
    yaml.push_str(&format!(
        "  - {{ id: gone, kubeconfig: {} }}\n",
        unreachable.display()
    ));
    // One replica leads both here, the other stands by for both; spreading
    // them is tests/replicas.rs's.
    yaml.push_str("replicas: { spread: false }\n");
    std::fs::write(&config, yaml).unwrap();

    let mut leader = Running::start_with_env(Path::new(BINARY), &config, &[("POD_NAME", "first")]);
    leader.wait_for_logs(&["became leader"], 2, Duration::from_secs(30));
    leader.wait_until_watching(2);
    let mut standby =
        Running::start_with_env(Path::new(BINARY), &config, &[("POD_NAME", "second")]);
    standby.wait_for_logs(&["standing by"], 2, Duration::from_secs(30));
    create_backoff_events(cluster, &east, 0..3);

    let status_of = |run: &mut Running| {
        let address = run.http_address();
        let (code, body) = http_get(address, "/status");
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        let clusters: Vec<serde_json::Value> = status["clusters"].as_array().unwrap().clone();
        (address, clusters)
    };
    // Until the three events are published and their checkpoint written.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (address, clusters) = loop {
        let (address, clusters) = status_of(&mut leader);
        let done = clusters.len() == 3
            && clusters[0]["events"]["published"] == 3
            && clusters[0]["checkpoint"]["written_at"].is_string()
            && clusters[1]["last_error"].is_object();
        if done || Instant::now() > deadline {
            break (address, clusters);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let ids: Vec<&str> = clusters
        .iter()
        .map(|c| c["cluster_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["east", "gone", "west"], "{clusters:#?}");
    let (east_status, gone, west_status) = (&clusters[0], &clusters[1], &clusters[2]);
    for (c, received) in [(east_status, 3), (west_status, 0)] {
        assert_eq!(c["role"], "leader", "{c:#}");
        assert_eq!(c["watching"], true, "{c:#}");
        assert_eq!(c["synced"], true, "{c:#}");
        assert_eq!(c["events"]["received"], received, "{c:#}");
        assert_eq!(c["events"]["published"], received, "{c:#}");
        assert!(c["last_error"].is_null(), "{c:#}");
    }
    let namespace_rv = &east_status["checkpoint"]["resource_versions"][east.as_str()];
    assert!(
        namespace_rv
            .as_str()
            .is_some_and(|rv| rv.parse::<u64>().is_ok()),
        "{east_status:#}"
    );
    assert!(east_status["checkpoint"]["age_seconds"].as_f64().unwrap() < 30.0);
    assert_eq!(gone["role"], "single");
    assert_eq!(gone["synced"], false);
    let error = gone["last_error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1:1"), "{gone:#}");

    let (_, on_standby) = status_of(&mut standby);
    for c in on_standby.iter().filter(|c| c["cluster_id"] != "gone") {
        assert_eq!(c["role"], "standby", "{c:#}");
        assert_eq!(c["watching"], false, "{c:#}");
        assert_eq!(c["synced"], false, "{c:#}");
    }

    // The same as a table, the way an operator asks for it.
    let table = std::process::Command::new(BINARY)
        .args(["status", "--url", &format!("http://{address}")])
        .output()
        .unwrap();
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let table = String::from_utf8(table.stdout).unwrap();
    let east_line = table
        .lines()
        .find(|l| l.starts_with("east "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        east_line.contains("leader") && east_line.contains("yes"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("gone ") && l.contains("127.0.0.1:1")),
        "{table}"
    );

    standby.stop();
    leader.stop();
}
