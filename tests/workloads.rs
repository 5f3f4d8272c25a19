//! `builtin:workload-enricher` and the host's metadata cache (contract
//! 0.1.4's `metadata`), against the test API server: a Deployment, its
//! ReplicaSet and its Pod created through the API with owner references
//! (there is no controller manager or kubelet: the objects are what the
//! cache reads), and Events about the Pod.

use std::path::Path;
use std::time::{Duration, Instant};

use aetherius_tests::Scratch;
use aetherius_tests::publishing::{config_with_sinks, watch_cluster};
use aetherius_tests::running::{Running, http_get, wait_for_output};
use aetherius_tests::servers::KubeCluster;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

/// Creates `object` (JSON) with kubectl; returns it as created.
fn create(cluster: &KubeCluster, scratch: &Scratch, object: &Value) -> Value {
    let file = scratch.write("object.json", object.to_string());
    let (ok, output) = cluster.kubectl(&["create", "-o", "json", "-f", file.to_str().unwrap()]);
    assert!(ok, "{output}");
    serde_json::from_str(&output).unwrap()
}

fn owner(kind: &str, object: &Value) -> Value {
    json!([{
        "apiVersion": "apps/v1", "kind": kind, "controller": true,
        "name": object["metadata"]["name"], "uid": object["metadata"]["uid"],
    }])
}

/// An Event `reason` about `pod` (its uid as the API server gave it).
fn event_about(namespace: &str, name: &str, reason: &str, pod: &Value) -> String {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": name, "namespace": namespace },
        "involvedObject": {
            "kind": "Pod", "name": pod["metadata"]["name"], "namespace": namespace,
            "uid": pod["metadata"]["uid"], "apiVersion": "v1",
        },
        "reason": reason, "message": "Back-off restarting failed container app",
        "type": "Warning", "count": 1,
        "firstTimestamp": jiff_now(), "lastTimestamp": jiff_now(),
        "source": { "component": "kubelet", "host": "n-12" },
    })
    .to_string()
}

fn jiff_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    aetherius_tests::running::rfc3339(now as i64)
}

/// `aetherius_metadata_objects` of the running process.
fn objects_kept(run: &mut Running) -> f64 {
    let (_, metrics) = http_get(run.http_address(), "/metrics");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("aetherius_metadata_objects "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

fn wait_until(what: &str, run: &mut Running, mut done: impl FnMut(&mut Running) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(run) {
        assert!(
            Instant::now() < deadline,
            "{what} within 60 s:\n{}",
            run.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn events_about_a_pod_carry_its_workload_node_and_labels_until_it_is_gone() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    // Pods need the namespace's service account (no controller makes it).
    create(
        cluster,
        &scratch,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": shop}}),
    );
    let labels = json!({"app.kubernetes.io/name": "api", "team": "payments"});
    let template = json!({
        "metadata": { "labels": labels },
        "spec": { "containers": [{ "name": "app", "image": "example.invalid/app" }] },
    });
    let deployment = create(
        cluster,
        &scratch,
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "api", "namespace": shop, "labels": labels },
            "spec": { "selector": { "matchLabels": labels }, "template": template },
        }),
    );
    let replica_set = create(
        cluster,
        &scratch,
        &json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": { "name": "api-7d9f", "namespace": shop, "labels": labels,
                          "ownerReferences": owner("Deployment", &deployment) },
            "spec": { "selector": { "matchLabels": labels }, "template": template },
        }),
    );
    let pod = create(
        cluster,
        &scratch,
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "api-7d9f-x2k", "namespace": shop, "labels": labels,
                          "ownerReferences": owner("ReplicaSet", &replica_set) },
            "spec": {
                "nodeName": "n-12",
                "automountServiceAccountToken": false,
                "containers": [{ "name": "app", "image": "example.invalid/app" }],
            },
        }),
    );

    let output = scratch.path("events.jsonl");
    let config = config_with_sinks(
        &scratch,
        &format!(
            "  out:\n    chain: workloads\n    file: {{ path: {} }}",
            output.display()
        ),
    );
    let yaml = std::fs::read_to_string(&config)
        .unwrap()
        .replace("chains:\n", "chains:\n  workloads: [workloads]\n");
    let yaml = yaml.replace(
        "plugins:\n",
        "plugins:\n  workloads:\n    source: builtin:workload-enricher\n    config: { labels: [app.kubernetes.io/name, team] }\n",
    );
    std::fs::write(&config, yaml).unwrap();
    watch_cluster(&scratch, &config, cluster, "test", &[&shop]);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    // The Deployment, the ReplicaSet, the Pod (and nothing of other kinds).
    wait_until("the cache holds the three objects", &mut run, |run| {
        objects_kept(run) >= 3.0
    });

    cluster.create_event(&shop, &event_about(&shop, "e-1", "BackOff", &pod));
    let published = wait_for_output(&output, 1, Duration::from_secs(60));
    let labels = &published[0]["labels"];
    assert_eq!(labels["workload_kind"], "Deployment", "{labels}");
    assert_eq!(labels["workload_name"], "api");
    assert_eq!(labels["node"], "n-12");
    assert_eq!(labels["app.kubernetes.io/name"], "api");
    assert_eq!(labels["team"], "payments");

    // The Pod is deleted (at once: no kubelet would confirm a graceful
    // deletion); later events about it are published as they are.
    let (ok, said) = cluster.kubectl(&[
        "delete",
        "pod",
        "-n",
        &shop,
        "api-7d9f-x2k",
        "--grace-period=0",
        "--force",
    ]);
    assert!(ok, "{said}");
    wait_until("the cache forgets the Pod", &mut run, |run| {
        objects_kept(run) <= 2.0
    });
    cluster.create_event(&shop, &event_about(&shop, "e-2", "Unhealthy", &pod));
    let published = wait_for_output(&output, 2, Duration::from_secs(60));
    let labels = &published[1]["labels"];
    assert_eq!(labels["involved_name"], "api-7d9f-x2k");
    for key in ["workload_kind", "workload_name", "node", "team"] {
        assert!(labels.get(key).is_none(), "{key} in {labels}");
    }
    let logs = run.stop();
    let errors: Vec<&String> = logs.iter().filter(|l| l.contains("\"ERROR\"")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
