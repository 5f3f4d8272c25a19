//! Clusters spread across replicas (`replicas.spread`, host/src/spread.rs):
//! three `aetherius run` replicas and six cluster entries with leader
//! election, against the test API server and a NATS JetStream stream.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use aetherius_tests::Scratch;
use aetherius_tests::publishing::{
    config_with_sinks, create_backoff_events, event_stream, read_event_stream,
};
use aetherius_tests::running::{Running, http_get};
use aetherius_tests::servers::{KubeCluster, NatsServer};

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

/// The clusters a replica leads, from its `/status`.
fn leading(run: &mut Running) -> BTreeSet<String> {
    let address = run.http_address();
    let (code, body) = http_get(address, "/status");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    status["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == "leader" && c["watching"] == true)
        .map(|c| c["cluster_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the replicas lead `sizes` clusters (in some order), each
/// cluster led by exactly one; returns who leads what.
fn wait_for_spread(
    replicas: &mut [(&str, &mut Running)],
    sizes: &[usize],
    clusters: usize,
) -> BTreeMap<String, BTreeSet<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let led: BTreeMap<String, BTreeSet<String>> = replicas
            .iter_mut()
            .map(|(name, run)| ((*name).to_owned(), leading(run)))
            .collect();
        let mut counts: Vec<usize> = led.values().map(BTreeSet::len).collect();
        counts.sort_unstable();
        let all: BTreeSet<&String> = led.values().flatten().collect();
        if counts == sizes && all.len() == clusters {
            return led;
        }
        assert!(
            Instant::now() < deadline,
            "no spread of {sizes:?} within 60 s: {led:?}\n{}",
            replicas
                .iter()
                .map(|(name, run)| format!("--- {name}\n{}", run.logs().join("\n")))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn six_clusters_spread_two_by_two_and_a_dead_replicas_move_with_every_event_once() {
    let cluster = KubeCluster::shared();
    let aetherius = cluster.fresh_namespace("aetherius");
    let namespaces: Vec<String> = (0..6)
        .map(|i| cluster.fresh_namespace(&format!("team{i}")))
        .collect();
    let nats = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let js = runtime.block_on(event_stream(&nats.url(), async_nats::ConnectOptions::new()));
    let stored = || -> Vec<(String, String)> {
        runtime
            .block_on(read_event_stream(&js))
            .iter()
            .map(|(_, _, event)| {
                (
                    event["cluster_id"].as_str().unwrap().to_owned(),
                    event["labels"]["involved_name"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    };

    let scratch = Scratch::new();
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  bus:\n    chain: default\n    nats: {{ url: '{}' }}\n    spool: {{ enabled: false }}",
            nats.url()
        ),
    );
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig);
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str("clusters:\n");
    for (i, namespace) in namespaces.iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{ id: c{i}, kubeconfig: {kc}, namespaces: [{namespace}], checkpoint_configmap: {{ namespace: {aetherius}, name: checkpoint-c{i} }}, leader_election: {{ namespace: {aetherius}, name: lease-c{i}, duration: 3s, retry_period: 500ms }} }}\n",
            kc = kubeconfig.display()
        ));
    }
    std::fs::write(&config, yaml).unwrap();

    // One after another, as a rollout starts them: the first leads all six,
    // then hands over to each replica that joins.
    let mut a = Running::start_with_env(Path::new(BINARY), &config, &[("POD_NAME", "a")]);
    a.wait_for_logs(&["became leader"], 6, Duration::from_secs(60));
    let mut b = Running::start_with_env(Path::new(BINARY), &config, &[("POD_NAME", "b")]);
    wait_for_spread(&mut [("a", &mut a), ("b", &mut b)], &[3, 3], 6);
    let mut c = Running::start_with_env(Path::new(BINARY), &config, &[("POD_NAME", "c")]);
    let led = wait_for_spread(
        &mut [("a", &mut a), ("b", &mut b), ("c", &mut c)],
        &[2, 2, 2],
        6,
    );
    assert!(
        a.count_logs(&["handed the cluster over"]) >= 3,
        "{}",
        a.logs().join("\n")
    );

    let create = |range: std::ops::Range<u32>| {
        for namespace in &namespaces {
            create_backoff_events(cluster, namespace, range.clone());
        }
    };
    create(0..5);
    let wait_for = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stored = stored();
            if stored.len() >= count || Instant::now() > deadline {
                return stored;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(wait_for(30).len(), 30);

    // c dies: its two clusters move to a and b within the lease duration,
    // each resuming from its checkpoint.
    let moved = led["c"].clone();
    let killed = Instant::now();
    c.kill();
    create(5..10);
    let led = wait_for_spread(&mut [("a", &mut a), ("b", &mut b)], &[3, 3], 6);
    let took = killed.elapsed();
    eprintln!("the dead replica's clusters were watched again after {took:?}");
    for cluster in &moved {
        assert!(led["a"].contains(cluster) || led["b"].contains(cluster));
    }
    assert!(
        took < Duration::from_secs(10),
        "moved within the 3 s lease duration and a few retry periods: {took:?}"
    );
    create(10..15);
    let stored = wait_for(90);
    let distinct: BTreeSet<&(String, String)> = stored.iter().collect();
    assert_eq!(distinct.len(), 90, "every event: {stored:?}");
    assert_eq!(stored.len(), 90, "each once in the stream");
    for (cluster, _) in &stored {
        assert!(cluster.starts_with('c'));
    }

    // A clean stop takes the replica out of the count at once.
    let logs = b.stop();
    assert!(
        logs.iter().any(|l| l.contains("released the lease")),
        "{logs:?}"
    );
    wait_for_spread(&mut [("a", &mut a)], &[6], 6);
    a.stop();
}
