//! `aetherius run` against real kube-apiservers (DESIGN.md §11): Events are
//! created through the API as controllers create them, and the file sink is
//! read back. The tests share one etcd + kube-apiserver, each watching only
//! namespaces of its own; those that restart the API server or compact etcd
//! start their own.
//!
//! Ordering is the tool for "nothing more arrived": a watch delivers in
//! resourceVersion order, so once a sentinel Event created last is in the
//! output, everything created before it has been processed too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aetherius_tests::running::{Running, read_output, wait_for_output, warning_event};
use aetherius_tests::servers::KubeCluster;
use aetherius_tests::{Scratch, compile_cache, repo_root};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");
const WAIT: Duration = Duration::from_secs(60);

/// A cluster entry of the config: id, kubeconfig and extra YAML keys.
struct ClusterEntry<'a> {
    id: &'a str,
    kubeconfig: PathBuf,
    extra: &'a str,
}

/// Writes a config: the shipped default plugins and chain (or `chain`),
/// one file sink `out.jsonl`, the given clusters, a checkpoint file.
fn write_config(scratch: &Scratch, clusters: &[ClusterEntry], chain: Option<&str>) -> PathBuf {
    let default = std::fs::read_to_string(repo_root().join("config/default.yaml")).unwrap();
    let plugins_and_chains = &default[..default.find("\nsinks:").expect("default.yaml has sinks")];
    let mut yaml = plugins_and_chains.to_owned();
    if let Some(chain) = chain {
        yaml.push_str(&format!("\n  custom: {chain}\n"));
    }
    let chain_name = if chain.is_some() { "custom" } else { "default" };
    yaml.push_str(&format!(
        "
sinks:
  out:
    chain: {chain_name}
    file: {{ path: {out} }}
plugin_runtime:
  cache_dir: {cache}
checkpoint:
  file: {checkpoint}
  interval: 50ms
clusters:
",
        out = scratch.path("out.jsonl").display(),
        cache = compile_cache().display(),
        checkpoint = scratch.path("checkpoints.json").display(),
    ));
    for cluster in clusters {
        yaml.push_str(&format!(
            "  - id: {}\n    kubeconfig: {}\n",
            cluster.id,
            cluster.kubeconfig.display()
        ));
        for line in cluster.extra.lines().filter(|l| !l.trim().is_empty()) {
            yaml.push_str(&format!("    {}\n", line.trim()));
        }
    }
    scratch.write("config.yaml", yaml)
}

/// One cluster named `test`, watched with the admin's credentials.
fn single(scratch: &Scratch, cluster: &KubeCluster, extra: &str, chain: Option<&str>) -> PathBuf {
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig);
    write_config(
        scratch,
        &[ClusterEntry {
            id: "test",
            kubeconfig,
            extra,
        }],
        chain,
    )
}

/// The extra YAML of a cluster entry that watches only `namespaces`.
fn namespaces(namespaces: &[&str]) -> String {
    format!("namespaces: [{}]", namespaces.join(", "))
}

fn output(scratch: &Scratch) -> PathBuf {
    scratch.path("out.jsonl")
}

/// Creates `count` BackOff Warning Events named `{prefix}-{i}` about pods
/// `{prefix}-pod-{i}`.
fn create_events(
    cluster: &KubeCluster,
    namespace: &str,
    prefix: &str,
    range: std::ops::Range<u32>,
) {
    for i in range {
        let body = warning_event(
            namespace,
            &format!("{prefix}-{i}"),
            &format!("{prefix}-pod-{i}"),
            "BackOff",
            "Back-off restarting failed container app",
            1,
            0,
        );
        cluster.create_event(namespace, &body);
    }
}

/// Creates the sentinel and waits until the output holds it: everything
/// created before it has been processed by then.
fn sentinel(cluster: &KubeCluster, namespace: &str, out: &Path, name: &str) -> Vec<Value> {
    let body = warning_event(
        namespace,
        name,
        &format!("{name}-pod"),
        "FailedScheduling",
        "0/3 nodes are available",
        1,
        0,
    );
    cluster.create_event(namespace, &body);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let lines = read_output(out);
        if lines
            .iter()
            .any(|l| involved_name(l) == format!("{name}-pod"))
        {
            return lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sentinel {name} never published; output:\n{lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn involved_name(line: &Value) -> &str {
    line["labels"]["involved_name"].as_str().unwrap_or_default()
}

/// How many times each involved object was published.
fn tally(lines: &[Value]) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for line in lines {
        *tally.entry(involved_name(line).to_owned()).or_default() += 1;
    }
    tally
}

fn assert_each_once(lines: &[Value], prefix: &str, range: std::ops::Range<u32>) {
    let tally = tally(lines);
    let mut problems = Vec::new();
    for i in range.clone() {
        let pod = format!("{prefix}-pod-{i}");
        match tally.get(&pod) {
            Some(1) => {}
            Some(n) => problems.push(format!("{pod} published {n} times")),
            None => problems.push(format!("{pod} lost")),
        }
    }
    let ours = tally
        .keys()
        .filter(|k| k.starts_with(&format!("{prefix}-pod-")))
        .count();
    assert!(
        problems.is_empty() && ours == range.len(),
        "{} of {} wrong: {problems:?}",
        problems.len(),
        range.len()
    );
}

#[test]
fn publishes_each_created_event_once_with_cluster_severity_and_labels() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    let config = single(&scratch, cluster, &namespaces(&[&shop]), None);
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);

    create_events(cluster, &shop, "crash", 0..20);
    // Filtered by the default chain: a Normal event and an uninteresting reason.
    let mut normal: Value = serde_json::from_str(&warning_event(
        &shop, "normal-1", "n-pod", "Pulled", "pulled", 1, 0,
    ))
    .unwrap();
    normal["type"] = "Normal".into();
    cluster.create_event(&shop, &normal.to_string());
    cluster.create_event(
        &shop,
        &warning_event(&shop, "dns-1", "dns-pod", "DNSConfigForming", "x", 1, 0),
    );
    let lines = sentinel(cluster, &shop, &output(&scratch), "last");

    assert_each_once(&lines, "crash", 0..20);
    assert_eq!(
        lines.len(),
        21,
        "20 BackOff + the sentinel, nothing filtered got through"
    );
    for line in &lines {
        assert_eq!(line["cluster_id"], "test");
        assert_eq!(line["namespace"], shop);
        assert_eq!(line["type"], "k8s_event");
        assert_eq!(line["raw_data"]["k8s_event"]["kind"], "Event");
        if line["labels"]["reason"] == "BackOff" {
            assert_eq!(line["severity"], "critical", "{line}");
            assert_eq!(line["labels"]["involved_kind"], "Pod");
            assert_eq!(line["labels"]["event_type"], "Warning");
            assert_eq!(line["labels"]["count"], "1");
        }
    }
    let logs = run.stop();
    assert!(logs.iter().any(|l| l.contains("initial list done")));
    let checkpoint: Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path("checkpoints.json")).unwrap())
            .unwrap();
    assert!(
        checkpoint["clusters"]["test"][&shop].is_string(),
        "{checkpoint}"
    );
}

#[test]
fn count_bumps_are_new_occurrences_and_escalate_other_updates_are_not() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    let config = single(&scratch, cluster, &namespaces(&[&shop]), None);
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);

    let body = warning_event(
        &shop,
        "probe",
        "web-1",
        "Unhealthy",
        "Readiness probe failed: HTTP 503",
        1,
        0,
    );
    cluster.create_event(&shop, &body);
    wait_for_output(&output(&scratch), 1, WAIT);
    for count in 2..=6 {
        cluster.bump_event(&shop, "probe", count);
        wait_for_output(&output(&scratch), count as usize, WAIT);
    }
    // Not a count bump: a label change, then a delete.
    let label = serde_json::json!({ "metadata": { "labels": { "seen": "yes" } } }).to_string();
    let path = format!("/api/v1/namespaces/{shop}/events/probe");
    let response =
        cluster.request_with_type("PATCH", &path, &label, "application/merge-patch+json");
    assert_eq!(response.status, 200, "{}", response.body);
    let response = cluster.request("DELETE", &path, None);
    assert_eq!(response.status, 200, "{}", response.body);
    let lines = sentinel(cluster, &shop, &output(&scratch), "last");
    run.stop();

    let probe: Vec<&Value> = lines
        .iter()
        .filter(|l| involved_name(l) == "web-1")
        .collect();
    let seen: Vec<(String, String, bool)> = probe
        .iter()
        .map(|l| {
            (
                l["labels"]["count"].as_str().unwrap().to_owned(),
                l["severity"].as_str().unwrap().to_owned(),
                l["labels"]["repeated_count"].is_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String, bool)> = (1..=6)
        .map(|count| {
            let escalated = count >= 5;
            (
                count.to_string(),
                if escalated { "high" } else { "medium" }.to_owned(),
                escalated,
            )
        })
        .collect();
    assert_eq!(
        seen, expected,
        "one occurrence per count, escalated from the 5th"
    );
    let ids: std::collections::BTreeSet<&str> =
        probe.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 6, "each occurrence has its own id");
}

#[test]
fn stopping_and_starting_the_watcher_mid_stream_loses_and_duplicates_nothing() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    let config = single(&scratch, cluster, &namespaces(&[&shop]), None);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create_events(cluster, &shop, "a", 0..15);
    // Stop while the next creates are in flight.
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        run.stop()
    });
    create_events(cluster, &shop, "a", 15..30);
    let logs = stopper.join().unwrap();
    assert!(logs.iter().any(|l| l.contains("shutting down")));
    // While nothing watches.
    create_events(cluster, &shop, "a", 30..40);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    assert_eq!(run.count_logs(&["resuming from checkpoint"]), 1);
    create_events(cluster, &shop, "a", 40..50);
    let lines = sentinel(cluster, &shop, &output(&scratch), "last");
    run.stop();
    assert_each_once(&lines, "a", 0..50);
}

#[test]
fn a_crash_loses_nothing_and_a_duplicate_keeps_its_id() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    let config = single(&scratch, cluster, &namespaces(&[&shop]), None);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create_events(cluster, &shop, "a", 0..20);
    run.kill();
    create_events(cluster, &shop, "a", 20..30);
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    let lines = sentinel(cluster, &shop, &output(&scratch), "last");
    run.stop();

    // At least once: every event is there; one published twice (written
    // before the crash, checkpointed after) carries the same id both times,
    // so the bus drops it.
    let mut ids: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for line in &lines {
        ids.entry(involved_name(line).to_owned())
            .or_default()
            .insert(line["id"].as_str().unwrap().to_owned());
    }
    for i in 0..30 {
        let pod = format!("a-pod-{i}");
        assert_eq!(
            ids.get(&pod).map(|s| s.len()),
            Some(1),
            "{pod}: {:?}",
            ids.get(&pod)
        );
    }
}

#[test]
fn an_api_server_restart_is_survived_without_loss() {
    // Its own: the API server goes away under it.
    let mut cluster = KubeCluster::start();
    cluster.create_namespace("shop");
    let scratch = Scratch::new();
    let config = single(&scratch, &cluster, "", None);
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);

    create_events(&cluster, "shop", "a", 0..10);
    wait_for_output(&output(&scratch), 10, WAIT);
    cluster.stop_apiserver();
    cluster.start_apiserver();
    create_events(&cluster, "shop", "a", 10..20);
    let lines = sentinel(&cluster, "shop", &output(&scratch), "last");
    let logs = run.stop();
    assert_each_once(&lines, "a", 0..20);
    let errors: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains("\"ERROR\"") && l.contains("cannot reach the API server"))
        .collect();
    assert!(
        errors.len() <= 1,
        "an unreachable server is logged once, not per retry: {errors:#?}"
    );
    assert!(
        logs.iter().filter(|l| l.contains("\"watching\"")).count() >= 2,
        "the watch was resumed:\n{}",
        logs.join("\n")
    );
}

#[test]
fn an_expired_checkpoint_relists_and_publishes_only_what_is_new() {
    // Its own: compacting etcd expires every watch on it.
    let cluster = KubeCluster::start();
    cluster.create_namespace("shop");
    let scratch = Scratch::new();
    let config = single(&scratch, &cluster, "", None);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create_events(&cluster, "shop", "a", 0..10);
    wait_for_output(&output(&scratch), 10, WAIT);
    run.stop();

    create_events(&cluster, "shop", "a", 10..20);
    let revision = cluster.compact_etcd();
    assert!(revision > 0);

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_for_logs(&["410 Gone"], 1, WAIT);
    run.wait_until_watching(1);
    let lines = sentinel(&cluster, "shop", &output(&scratch), "last");
    run.stop();
    assert_each_once(&lines, "a", 0..20);
}

#[test]
fn a_first_start_does_not_replay_the_clusters_history() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    // An hour old, ten minutes old, one minute old.
    for (i, age) in [3600, 3000, 600, 60].into_iter().enumerate() {
        let body = warning_event(
            &shop,
            &format!("old-{i}"),
            &format!("old-pod-{i}"),
            "BackOff",
            "Back-off restarting failed container",
            1,
            age,
        );
        cluster.create_event(&shop, &body);
    }
    let scratch = Scratch::new();
    // No time filter in the chain: the watcher itself must hold history back.
    let config = single(
        &scratch,
        cluster,
        &namespaces(&[&shop]),
        Some("[warnings-only]"),
    );
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create_events(cluster, &shop, "new", 0..3);
    let lines = sentinel(cluster, &shop, &output(&scratch), "last");
    run.stop();

    let names: Vec<&str> = lines.iter().map(involved_name).collect();
    assert_eq!(
        names,
        [
            "old-pod-3",
            "new-pod-0",
            "new-pod-1",
            "new-pod-2",
            "last-pod"
        ],
        "only the event younger than max_age (5m) of the history"
    );
}

#[test]
fn one_process_watches_two_clusters() {
    // Two API servers, so that each cluster entry is seen to reach its own.
    let east = KubeCluster::shared();
    let west = KubeCluster::start();
    let (east_shop, west_shop) = (east.fresh_namespace("shop"), west.fresh_namespace("shop"));
    let scratch = Scratch::new();
    let extras = [namespaces(&[&east_shop]), namespaces(&[&west_shop])];
    let clusters: Vec<ClusterEntry> = [("east", east), ("west", &west)]
        .into_iter()
        .zip(&extras)
        .map(|((id, cluster), extra)| {
            let kubeconfig = scratch.path(&format!("{id}.kubeconfig"));
            cluster.write_kubeconfig(&kubeconfig);
            ClusterEntry {
                id,
                kubeconfig,
                extra,
            }
        })
        .collect();
    let config = write_config(&scratch, &clusters, None);
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(2);
    create_events(east, &east_shop, "east", 0..5);
    create_events(&west, &west_shop, "west", 0..7);
    sentinel(east, &east_shop, &output(&scratch), "east-last");
    let lines = sentinel(&west, &west_shop, &output(&scratch), "west-last");
    run.stop();

    assert_each_once(&lines, "east", 0..5);
    assert_each_once(&lines, "west", 0..7);
    for line in &lines {
        let expected = involved_name(line).split('-').next().unwrap();
        assert_eq!(line["cluster_id"], expected, "{line}");
    }
    let checkpoint: Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.path("checkpoints.json")).unwrap())
            .unwrap();
    assert!(
        checkpoint["clusters"]["east"][&east_shop].is_string(),
        "{checkpoint}"
    );
    assert!(
        checkpoint["clusters"]["west"][&west_shop].is_string(),
        "{checkpoint}"
    );
}

#[test]
fn reads_events_k8s_io_v1_when_configured() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    let config = single(
        &scratch,
        cluster,
        &format!("api: events.k8s.io/v1\n{}", namespaces(&[&shop])),
        None,
    );
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create_events(cluster, &shop, "a", 0..5);
    let lines = sentinel(cluster, &shop, &output(&scratch), "last");
    run.stop();
    assert_each_once(&lines, "a", 0..5);
    for line in &lines {
        assert_eq!(
            line["raw_data"]["k8s_event"]["apiVersion"],
            "events.k8s.io/v1"
        );
        assert!(
            line["raw_data"]["k8s_event"]["regarding"].is_object(),
            "{line}"
        );
        assert_eq!(line["labels"]["involved_kind"], "Pod");
    }
}

/// Creates `kind` from `body` under `collection` (as the admin).
fn create(cluster: &KubeCluster, collection: &str, body: Value) -> Value {
    let response = cluster.request("POST", collection, Some(&body.to_string()));
    assert_eq!(response.status, 201, "POST {collection}: {}", response.body);
    response.json()
}

/// Sets the verbs the ClusterRole `role` grants on events.
fn grant_on_events(cluster: &KubeCluster, role: &str, verbs: &[&str]) {
    let body = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": { "name": role },
        "rules": [{ "apiGroups": [""], "resources": ["events"], "verbs": verbs }],
    });
    let path = format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}");
    let response = cluster.request("PUT", &path, Some(&body.to_string()));
    assert!(
        response.status == 200 || response.status == 201,
        "PUT {path}: {}",
        response.body
    );
}

/// A service account `NAMESPACE/aetherius` bound to a ClusterRole on events
/// (named NAMESPACE too, as its binding) and to a Role on its checkpoint
/// ConfigMap — what deploy/ grants — and a token for it from the
/// TokenRequest API.
fn least_privilege_token(cluster: &KubeCluster, namespace: &str) -> String {
    create(
        cluster,
        &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
        serde_json::json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": { "name": "aetherius" } }),
    );
    grant_on_events(cluster, namespace, &["get", "list", "watch"]);
    let subject = serde_json::json!([{ "kind": "ServiceAccount", "name": "aetherius", "namespace": namespace }]);
    create(
        cluster,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": namespace },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": namespace },
            "subjects": subject,
        }),
    );
    create(
        cluster,
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles"),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": { "name": "aetherius-checkpoint" },
            "rules": [
                { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"] },
                { "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["aetherius-checkpoint"], "verbs": ["get", "patch"] },
            ],
        }),
    );
    create(
        cluster,
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": "aetherius-checkpoint" },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "aetherius-checkpoint" },
            "subjects": subject,
        }),
    );
    let response = create(
        cluster,
        &format!("/api/v1/namespaces/{namespace}/serviceaccounts/aetherius/token"),
        serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": { "expirationSeconds": 3600 },
        }),
    );
    response["status"]["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

#[test]
fn a_least_privilege_service_account_works_and_without_watch_says_so() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("shop");
    // The service account's namespace, and the name of its ClusterRole.
    let aetherius = cluster.fresh_namespace("aetherius");
    let token = least_privilege_token(cluster, &aetherius);
    let scratch = Scratch::new();
    let kubeconfig = scratch.path("kubeconfig");
    cluster.write_kubeconfig_with_token(&kubeconfig, &token);
    let extra = format!(
        "checkpoint_configmap: {{ namespace: {aetherius}, name: aetherius-checkpoint }}\n{}",
        namespaces(&[&shop])
    );
    let config = write_config(
        &scratch,
        &[ClusterEntry {
            id: "test",
            kubeconfig,
            extra: &extra,
        }],
        None,
    );

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_until_watching(1);
    create_events(cluster, &shop, "a", 0..5);
    sentinel(cluster, &shop, &output(&scratch), "first");
    run.stop();
    let configmap = cluster
        .request(
            "GET",
            &format!("/api/v1/namespaces/{aetherius}/configmaps/aetherius-checkpoint"),
            None,
        )
        .json();
    let checkpoint: Value =
        serde_json::from_str(configmap["data"]["checkpoint.json"].as_str().unwrap()).unwrap();
    assert!(
        checkpoint["clusters"]["test"][&shop].is_string(),
        "{checkpoint}"
    );
    assert!(
        !scratch.path("checkpoints.json").exists(),
        "the checkpoint went to the ConfigMap, not the file"
    );

    // Without `watch`: the list works, the watch is refused.
    grant_on_events(cluster, &aetherius, &["get", "list"]);
    create_events(cluster, &shop, "b", 0..3);
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_for_logs(&["resuming from checkpoint"], 1, WAIT);
    // The first refusal at ERROR, the retries quietly at DEBUG.
    run.wait_for_logs(&["\"DEBUG\"", "forbids it (403)"], 2, WAIT);
    let errors = run.count_logs(&["\"ERROR\"", "forbids it (403)"]);
    assert_eq!(errors, 1, "logged once:\n{}", run.logs().join("\n"));
    let error = run
        .logs()
        .into_iter()
        .find(|l| l.contains("\"ERROR\"") && l.contains("403"))
        .unwrap();
    assert!(error.contains("cannot watch resource"), "{error}");
    assert!(error.contains("get, list and watch on events"), "{error}");

    // Granted again: it recovers by itself, from its checkpoint.
    grant_on_events(cluster, &aetherius, &["get", "list", "watch"]);
    run.wait_for_logs(&["API server answers again"], 1, WAIT);
    let lines = sentinel(cluster, &shop, &output(&scratch), "second");
    run.stop();
    assert_each_once(&lines, "a", 0..5);
    assert_each_once(&lines, "b", 0..3);
}

#[test]
fn unreachable_servers_and_bad_credentials_are_reported_once_and_retried() {
    // Watches nothing: neither entry ever reaches it.
    let cluster = KubeCluster::shared();
    let scratch = Scratch::new();
    let bad_token = scratch.path("bad-token.kubeconfig");
    cluster.write_kubeconfig_with_token(&bad_token, "not-a-valid-token");
    let unreachable = scratch.path("unreachable.kubeconfig");
    cluster.write_kubeconfig(&unreachable);
    let text = std::fs::read_to_string(&unreachable)
        .unwrap()
        .replace(&cluster.server_url(), "https://127.0.0.1:1");
    std::fs::write(&unreachable, text).unwrap();
    let config = write_config(
        &scratch,
        &[
            ClusterEntry {
                id: "bad-token",
                kubeconfig: bad_token,
                extra: "",
            },
            ClusterEntry {
                id: "unreachable",
                kubeconfig: unreachable,
                extra: "",
            },
        ],
        None,
    );
    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_for_logs(
        &[
            "\"DEBUG\"",
            "rejected the credentials of cluster `bad-token`",
        ],
        2,
        WAIT,
    );
    run.wait_for_logs(
        &[
            "\"DEBUG\"",
            "cannot reach the API server at https://127.0.0.1:1",
        ],
        2,
        WAIT,
    );
    assert_eq!(
        run.count_logs(&["\"ERROR\"", "rejected the credentials"]),
        1
    );
    assert_eq!(
        run.count_logs(&["\"ERROR\"", "cannot reach the API server"]),
        1
    );
    let logs = run.stop();
    assert!(
        !logs.iter().any(|l| l.contains("kube_client")),
        "kube's own per-request errors stay quiet"
    );
}

/// `resync_period`: a periodic relist catches what the watch missed — here
/// two events behind a checkpoint that is ahead of them, as after a gap in
/// the watch — publishes each once, and republishes nothing on later
/// relists.
#[test]
fn a_resync_catches_what_the_watch_missed_and_republishes_nothing() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("resync");
    let scratch = Scratch::new();
    let config = single(
        &scratch,
        cluster,
        &format!("{}\nresync_period: 2s", namespaces(&[&shop])),
        None,
    );
    create_events(cluster, &shop, "missed", 0..2);
    // A checkpoint past both: the watch starts after them.
    let marker = cluster.create_event(
        &shop,
        &warning_event(&shop, "marker", "marker-pod", "Pulled", "pulled", 1, 0),
    );
    let rv = marker["metadata"]["resourceVersion"].as_str().unwrap();
    std::fs::write(
        scratch.path("checkpoints.json"),
        serde_json::json!({ "version": 1, "clusters": { "test": { shop.as_str(): rv } } })
            .to_string(),
    )
    .unwrap();

    let mut run = Running::start(Path::new(BINARY), &config);
    run.wait_for_logs(&["resuming from checkpoint"], 1, WAIT);
    create_events(cluster, &shop, "watched", 0..3);
    wait_for_output(&output(&scratch), 5, WAIT);
    // Three more relists: nothing new, nothing twice.
    let address = run.http_address();
    let metrics = || aetherius_tests::running::http_get(address, "/metrics").1;
    let sample = |metrics: &str, name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{cluster_id=\"test\"}} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let before = sample(&metrics(), "aetherius_watch_resyncs_total");
    let deadline = std::time::Instant::now() + WAIT;
    while sample(&metrics(), "aetherius_watch_resyncs_total") < before + 3.0 {
        assert!(std::time::Instant::now() < deadline, "{}", metrics());
        std::thread::sleep(Duration::from_millis(200));
    }
    let body = metrics();
    // The two, and the marker (a Warning `Pulled`, which the chain drops).
    assert_eq!(
        sample(&body, "aetherius_resync_recovered_total"),
        3.0,
        "{body}"
    );
    let lines = read_output(&output(&scratch));
    run.stop();
    assert_each_once(&lines, "missed", 0..2);
    assert_each_once(&lines, "watched", 0..3);
    assert_eq!(lines.len(), 5, "{lines:#?}");
}

/// `pipeline.workers` (the design document's `worker_count`): four workers
/// publish the same occurrences as one, each object's in order.
#[test]
fn four_workers_publish_what_one_does_each_object_in_order() {
    let cluster = KubeCluster::shared();
    let shop = cluster.fresh_namespace("workers");
    let runs: Vec<(Scratch, Running)> = [1, 4]
        .into_iter()
        .map(|workers| {
            let scratch = Scratch::new();
            let config = single(&scratch, cluster, &namespaces(&[&shop]), None);
            let mut yaml = std::fs::read_to_string(&config).unwrap();
            yaml.push_str(&format!("pipeline: {{ workers: {workers} }}\n"));
            std::fs::write(&config, yaml).unwrap();
            let mut run = Running::start(Path::new(BINARY), &config);
            run.wait_until_watching(1);
            (scratch, run)
        })
        .collect();

    create_events(cluster, &shop, "w", 0..24);
    for count in 2..=4 {
        for i in 0..24 {
            cluster.bump_event(&shop, &format!("w-{i}"), count);
        }
    }
    let outputs: Vec<Vec<Value>> = runs
        .into_iter()
        .map(|(scratch, run)| {
            let lines = wait_for_output(&output(&scratch), 24 * 4, WAIT);
            run.stop();
            lines
        })
        .collect();
    let ids = |lines: &[Value]| -> std::collections::BTreeSet<String> {
        lines
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(outputs[0].len(), 24 * 4, "one worker: every count, once");
    assert_eq!(outputs[1].len(), 24 * 4, "four workers: every count, once");
    assert_eq!(ids(&outputs[0]), ids(&outputs[1]), "the same occurrences");
    for lines in &outputs {
        let mut counts: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for line in lines {
            counts
                .entry(involved_name(line))
                .or_default()
                .push(line["labels"]["count"].as_str().unwrap().parse().unwrap());
        }
        for (pod, seen) in counts {
            assert_eq!(seen, [1, 2, 3, 4], "{pod}'s occurrences in order");
        }
    }
}
