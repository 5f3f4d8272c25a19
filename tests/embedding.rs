//! Agent mode: examples/embedding (the pipeline inside another program,
//! through `aetherius::agent`) receives the events of the test API server.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aetherius_tests::Scratch;
use aetherius_tests::publishing::{config_with_sinks, create_backoff_events, watch_cluster};
use aetherius_tests::servers::KubeCluster;

/// The example, built by `cargo test` beside this test's binary
/// (target/debug/examples/embedding).
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug");
    let example = dir.join("examples/embedding");
    assert!(
        example.is_file(),
        "{} is missing: `cargo test` builds it (cargo build --example embedding)",
        example.display()
    );
    example
}

#[test]
fn the_embedding_example_receives_the_clusters_events() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("embedded");
    let scratch = Scratch::new();
    // Its own sink, declared for the program, besides a file sink.
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  app:\n    chain: default\n    embedded: {{ subject: 'event.k8s.{{cluster}}' }}\n  out:\n    chain: default\n    file: {{ path: {} }}",
            scratch.path("out.jsonl").display()
        ),
    );
    watch_cluster(&scratch, &config, cluster, "embedded", &[&shop]);
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{yaml}server: {{ health_listen: '', metrics_listen: '' }}\n"),
    )
    .unwrap();

    let mut child = Command::new(example())
        .arg(&config)
        .args(["--from", "app", "--count", "3"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let stderr = child.stderr.take().unwrap();
    let (ready, watching) = std::sync::mpsc::channel();
    let logs = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("watching") {
                let _ = ready.send(());
            }
            all.push(line);
        }
        all
    });
    if watching.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!(
            "the example never watched:\n{}",
            logs.join().unwrap().join("\n")
        );
    }
    create_backoff_events(cluster, &shop, 0..3);

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "the example did not receive 3 events:\n{}",
                logs.join().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let logs = logs.join().unwrap().join("\n");
    assert!(status.success(), "{status}:\n{logs}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}\n{logs}");
    let mut pods = Vec::new();
    for line in lines {
        let mut parts = line.splitn(4, ' ');
        let (cluster_id, severity, id, json) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let event: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(cluster_id, "embedded");
        assert_eq!(event["cluster_id"], "embedded");
        assert_eq!(event["id"], id);
        assert_eq!(event["severity"], severity);
        pods.push(
            event["labels"]["involved_name"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    pods.sort();
    assert_eq!(pods, ["pod-0", "pod-1", "pod-2"]);
    assert!(logs.contains("received 3, published 3"), "{logs}");
}

/// `aetherius run` refuses a sink only a program can feed, saying why.
#[test]
fn run_refuses_an_embedded_sink() {
    let scratch = Scratch::new();
    let config = config_with_sinks(&scratch, "  app:\n    chain: default\n    embedded: {}");
    let output = Command::new(env!("CARGO_BIN_EXE_aetherius"))
        .args(["run", "--config"])
        .arg(&config)
        .args(["--health-listen=", "--metrics-listen="])
        .env("KUBECONFIG", scratch.path("none"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("programs that embed Aetherius"), "{stderr}");
}
