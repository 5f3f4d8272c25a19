//! The Helm chart (deploy/helm/aetherius) through Helm's own engine
//! (helm-python-sdk: Helm v4 as a library, tests/helm/render.py): linted
//! strictly, rendered for the default values and for a multi-cluster /
//! Kafka / leader-election values file, each render applied with a
//! server-side dry run to the test API server (CRD kinds validated as
//! YAML), the config it carries passing `aetherius check`, and a typo in
//! the values refused by values.schema.json.

use std::path::{Path, PathBuf};
use std::process::Command;

use aetherius_tests::running::Running;
use aetherius_tests::servers::{KubeCluster, ServerBinary, TestCertificates};
use aetherius_tests::{Scratch, compile_cache, repo_root};
use serde_yaml_ng::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");
/// Kinds whose CRDs a bare API server does not have: validated as YAML.
const CRD_BACKED: &[&str] = &["ServiceMonitor", "PrometheusRule"];

fn chart() -> PathBuf {
    repo_root().join("deploy/helm/aetherius")
}

fn values(name: &str) -> PathBuf {
    repo_root().join("tests/helm").join(name)
}

fn helm(args: &[&str], values: &[PathBuf]) -> Result<String, String> {
    let output = Command::new(ServerBinary::HelmPython.path())
        .arg(repo_root().join("tests/helm/render.py"))
        .args(args)
        .args(values)
        .output()
        .expect("run tests/helm/render.py");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{stderr}"))
    }
}

/// The manifests of a render, in template order.
fn render(namespace: &str, values: &[PathBuf]) -> Vec<Value> {
    render_release("aetherius", namespace, values)
}

/// [`render`] as release `release` (its cluster-wide RBAC is named after it).
fn render_release(release: &str, namespace: &str, values: &[PathBuf]) -> Vec<Value> {
    let chart = chart();
    let text = helm(
        &["render", chart.to_str().unwrap(), release, namespace],
        values,
    )
    .unwrap_or_else(|e| panic!("render: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

/// Applies every manifest with a server-side dry run; returns the kinds.
fn dry_run(cluster: &KubeCluster, scratch: &Scratch, docs: &[Value]) -> Vec<String> {
    let mut kinds = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        kinds.push(kind(doc).to_owned());
        if CRD_BACKED.contains(&kind(doc)) {
            assert_eq!(doc["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
            continue;
        }
        let file = scratch.write(
            &format!("manifest-{i}.yaml"),
            serde_yaml_ng::to_string(doc).unwrap(),
        );
        let (ok, output) =
            cluster.kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]);
        assert!(
            ok,
            "{}: {output}\n{}",
            kind(doc),
            serde_yaml_ng::to_string(doc).unwrap()
        );
    }
    kinds
}

/// `aetherius check` on the config a render's ConfigMap carries, with its
/// pod paths moved into `scratch` (`secrets` made there first).
fn check_config(scratch: &Scratch, docs: &[Value]) -> String {
    let configmap = docs
        .iter()
        .find(|d| kind(d) == "ConfigMap")
        .expect("a ConfigMap");
    let yaml = configmap["data"]["config.yaml"].as_str().unwrap();
    std::fs::create_dir_all(scratch.path("plugins")).unwrap();
    let yaml = yaml
        .replace(
            "/etc/aetherius/plugins",
            scratch.path("plugins").to_str().unwrap(),
        )
        .replace("/var/cache/aetherius", compile_cache().to_str().unwrap())
        .replace(
            "/etc/aetherius/secrets",
            scratch.path("secrets").to_str().unwrap(),
        )
        .replace(
            "/var/lib/aetherius",
            scratch.path("state").to_str().unwrap(),
        );
    let path = scratch.write("config.yaml", yaml);
    let output = Command::new(BINARY)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{}\n{report}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// Applies a render's RBAC, then runs `aetherius run` as the render's pod
/// would: its config (paths moved into `scratch`, HTTP on loopback), in a
/// private mount namespace with `service_account`'s token where the pod
/// has it.
fn start_in_pod(
    cluster: &KubeCluster,
    scratch: &Scratch,
    docs: &[Value],
    namespace: &str,
    service_account: &str,
) -> Running {
    for doc in docs.iter().filter(|d| {
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ]
        .contains(&kind(d))
    }) {
        let file = scratch.write("apply.yaml", serde_yaml_ng::to_string(doc).unwrap());
        let (ok, output) = cluster.kubectl(&["apply", "-f", file.to_str().unwrap()]);
        assert!(ok, "{output}");
    }
    let secrets = scratch.path("serviceaccount");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(
        secrets.join("token"),
        cluster.service_account_token(namespace, service_account),
    )
    .unwrap();
    std::fs::write(secrets.join("ca.crt"), cluster.ca_cert_pem()).unwrap();
    std::fs::write(secrets.join("namespace"), namespace).unwrap();
    std::fs::create_dir_all(scratch.path("state")).unwrap();
    check_config(scratch, docs);
    let config = std::fs::read_to_string(scratch.path("config.yaml"))
        .unwrap()
        .replace("0.0.0.0:8080", "127.0.0.1:0")
        .replace("0.0.0.0:9090", "127.0.0.1:0");
    let config = scratch.write("config.yaml", config);
    Running::start_in_pod(Path::new(BINARY), &config, &secrets, cluster)
}

#[test]
fn the_chart_lints_and_its_default_render_applies_and_checks() {
    let chart = chart();
    helm(&["lint", chart.to_str().unwrap()], &[]).unwrap_or_else(|e| panic!("lint: {e}"));
    let cluster = KubeCluster::shared();
    let namespace = cluster.fresh_namespace("helm");
    let scratch = Scratch::new();
    let docs = render(&namespace, &[values("kube-1.20.yaml")]);
    let kinds = dry_run(cluster, &scratch, &docs);
    for expected in [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "no {expected}: {kinds:?}"
        );
    }
    assert!(
        !kinds
            .iter()
            .any(|k| CRD_BACKED.contains(&k.as_str()) || k == "NetworkPolicy"),
        "off by default: {kinds:?}"
    );
    let report = check_config(&scratch, &docs);
    assert!(report.contains("chain default:"), "{report}");
    assert!(report.contains("cluster default: in-cluster"), "{report}");

    // The Deployment as deploy/ has it: probes on the document's ports,
    // non-root, read-only, spread over nodes.
    let deployment = docs.iter().find(|d| kind(d) == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["ports"][1]["containerPort"], 9090);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"],
        "kubernetes.io/hostname"
    );
}

#[test]
fn a_multi_cluster_kafka_render_applies_and_checks() {
    let chart = chart();
    let files = [values("kube-1.20.yaml"), values("multi-cluster-kafka.yaml")];
    // Linted for a current Kubernetes (the 1.20 override is for the test
    // API server only, and Helm rightly calls policy/v1beta1 deprecated).
    helm(&["lint", chart.to_str().unwrap()], &files[1..]).unwrap_or_else(|e| panic!("lint: {e}"));
    let cluster = KubeCluster::shared();
    let namespace = cluster.fresh_namespace("helm");
    let scratch = Scratch::new();
    let docs = render(&namespace, &files);
    let kinds = dry_run(cluster, &scratch, &docs);
    for expected in ["ServiceMonitor", "PrometheusRule", "NetworkPolicy"] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "no {expected}: {kinds:?}"
        );
    }

    // The Secrets the sink reads, as they would be mounted.
    let certificates = TestCertificates::generate(&{
        std::fs::create_dir_all(scratch.path("pki")).unwrap();
        scratch.path("pki")
    });
    std::fs::create_dir_all(scratch.path("secrets/kafka-tls")).unwrap();
    std::fs::create_dir_all(scratch.path("secrets/kafka-sasl")).unwrap();
    std::fs::copy(&certificates.ca, scratch.path("secrets/kafka-tls/ca.crt")).unwrap();
    scratch.write("secrets/kafka-sasl/password", "s3cret\n");
    let report = check_config(&scratch, &docs);
    for expected in [
        "cluster prod-us-west-2: in-cluster",
        "cluster prod-eu: kubeconfig /etc/aetherius/clusters/prod-eu/kubeconfig",
        "cluster staging:",
        "sink bus <- chain default: Kafka",
    ] {
        assert!(report.contains(expected), "{expected:?} in:\n{report}");
    }

    // Every cluster's Lease is granted by name, and the replicas' Lease
    // beside the first (they spread the clusters), and nothing else is.
    let role = docs.iter().find(|d| kind(d) == "Role").unwrap();
    let leases = role["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["resourceNames"].is_sequence() && r["resources"][0] == "leases")
        .unwrap();
    let names: Vec<&str> = leases["resourceNames"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "aetherius-prod-us-west-2",
            "aetherius-prod-eu",
            "aetherius-staging",
            "aetherius-prod-us-west-2-replicas"
        ]
    );

    // The PrometheusRule carries deploy/alerts/aetherius.rules.yaml.
    let rules: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/alerts/aetherius.rules.yaml")).unwrap(),
    )
    .unwrap();
    let rule = docs.iter().find(|d| kind(d) == "PrometheusRule").unwrap();
    assert_eq!(rule["spec"]["groups"], rules["groups"]);
}

#[test]
fn a_typo_in_the_values_fails_against_the_schema() {
    let scratch = Scratch::new();
    let typo = scratch.write("typo.yaml", "replicaCont: 3\n");
    let chart = chart();
    let error = helm(
        &["render", chart.to_str().unwrap(), "aetherius", "x"],
        &[typo],
    )
    .expect_err("a typo renders");
    assert!(error.contains("replicaCont"), "{error}");
    let wrong = scratch.write("wrong.yaml", "leaderElection: { duration: soon }\n");
    let error = helm(
        &["render", chart.to_str().unwrap(), "aetherius", "x"],
        &[wrong],
    )
    .expect_err("a bad duration renders");
    assert!(error.contains("duration"), "{error}");
}

/// What the chart carries from elsewhere in the repository is the same.
#[test]
fn the_charts_copies_match_their_sources() {
    let files = chart().join("files");
    let read = |path: &Path| std::fs::read_to_string(path).unwrap();
    assert_eq!(
        read(&files.join("aetherius.rules.yaml")),
        read(&repo_root().join("deploy/alerts/aetherius.rules.yaml")),
        "cp deploy/alerts/aetherius.rules.yaml deploy/helm/aetherius/files/"
    );
    let pipeline: Value = serde_yaml_ng::from_str(&read(&files.join("pipeline.yaml"))).unwrap();
    let default: Value =
        serde_yaml_ng::from_str(&read(&repo_root().join("config/default.yaml"))).unwrap();
    assert_eq!(pipeline["plugins"], default["plugins"]);
    assert_eq!(pipeline["chains"], default["chains"]);
}

/// deploy/'s plain manifests (`kubectl apply -k deploy/`) are the chart's
/// default render, file by file, and nothing else but the namespace and the
/// kustomization.
#[test]
fn deploys_plain_manifests_are_the_charts_default_render() {
    let scratch = Scratch::new();
    let out = scratch.path("manifests");
    std::fs::create_dir(&out).unwrap();
    let chart = chart();
    helm(
        &["manifests", chart.to_str().unwrap(), out.to_str().unwrap()],
        &[],
    )
    .unwrap_or_else(|e| panic!("manifests: {e}"));
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        names.sort();
        names
    };
    let generated = names(&out);
    assert!(generated.contains(&"pdb.yaml".to_owned()), "{generated:?}");
    let deploy = repo_root().join("deploy");
    let mut by_hand = names(&deploy);
    by_hand.retain(|n| !generated.contains(n));
    assert_eq!(
        by_hand,
        ["kustomization.yaml", "namespace.yaml"],
        "deploy/ has manifests the chart does not render"
    );
    for name in &generated {
        assert_eq!(
            std::fs::read_to_string(deploy.join(name)).unwrap(),
            std::fs::read_to_string(out.join(name)).unwrap(),
            "deploy/{name} differs from the chart's render: run scripts/render-manifests.sh"
        );
    }
}

/// The rendered chart, as a pod runs it: its ServiceAccount and RBAC
/// applied to the test API server, the binary started with that account's
/// token mounted where the kubelet puts it and the rendered config — it
/// watches, publishes, keeps its checkpoint in the ConfigMap and leads
/// through the Lease the Role names, and nothing it does is forbidden.
#[test]
fn the_rendered_deployment_runs_as_in_a_pod_under_the_rendered_rbac() {
    use aetherius_tests::publishing::create_backoff_events;
    use aetherius_tests::running::wait_for_output;

    let cluster = KubeCluster::shared();
    let namespace = cluster.fresh_namespace("release");
    let shop = cluster.fresh_namespace("shop");
    let scratch = Scratch::new();
    let test_values = scratch.write(
        "values.yaml",
        format!(
            "cluster: {{ id: incluster, namespaces: [{shop}] }}\n\
             sinks:\n  stdout: null\n  out: {{ chain: default, file: {{ path: /var/lib/aetherius/out.jsonl }} }}\n\
             leaderElection: {{ duration: 3s, retryPeriod: 500ms }}\n"
        ),
    );
    let docs = render(&namespace, &[values("kube-1.20.yaml"), test_values]);
    let mut run = start_in_pod(cluster, &scratch, &docs, &namespace, "aetherius");
    run.wait_until_watching(1);
    create_backoff_events(cluster, &shop, 0..3);
    let output = scratch.path("state/out.jsonl");
    let published = wait_for_output(&output, 3, std::time::Duration::from_secs(60));
    assert!(published.iter().all(|e| e["cluster_id"] == "incluster"));
    let logs = run.stop();
    assert!(logs.iter().any(|l| l.contains("became leader")), "{logs:?}");
    let errors: Vec<&String> = logs.iter().filter(|l| l.contains("\"ERROR\"")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let (ok, checkpoint) = cluster.kubectl(&[
        "-n",
        &namespace,
        "get",
        "configmap",
        "aetherius-checkpoint",
        "-o",
        "jsonpath={.data.checkpoint\\.json}",
    ]);
    assert!(ok && checkpoint.contains("\"incluster\""), "{checkpoint}");
}

/// builtin:workload-enricher in a pod under the chart's RBAC: without
/// `workloadEnrichment.enabled` the service account may not list the
/// workload kinds, so each kind's cache logs one error naming the missing
/// permission and events are published without the workload labels; with
/// it, nothing is forbidden and they carry them.
#[test]
fn workload_enrichment_runs_under_the_charts_rbac_and_names_what_is_missing_without_it() {
    use aetherius_tests::running::wait_for_output;

    let cluster = KubeCluster::shared();
    for enabled in [false, true] {
        // Its own release name: the ClusterRole and its binding are
        // cluster-wide, and other tests apply the chart's too.
        let release = if enabled { "wl-on" } else { "wl-off" };
        let namespace = cluster.fresh_namespace(release);
        let shop = cluster.fresh_namespace("shop");
        let scratch = Scratch::new();
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "api-1", "namespace": shop, "labels": { "team": "payments" } },
            "spec": { "nodeName": "n-1", "automountServiceAccountToken": false,
                      "containers": [{ "name": "app", "image": "example.invalid/app" }] },
        });
        for object in [
            serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": shop}}),
            pod,
        ] {
            let file = scratch.write("object.json", object.to_string());
            let (ok, output) = cluster.kubectl(&["create", "-f", file.to_str().unwrap()]);
            assert!(ok, "{output}");
        }
        let test_values = scratch.write(
            "values.yaml",
            format!(
                "cluster: {{ id: incluster, namespaces: [{shop}] }}\n\
                 sinks:\n  stdout: null\n  out: {{ chain: workloads, file: {{ path: /var/lib/aetherius/out.jsonl }} }}\n\
                 leaderElection: {{ enabled: false }}\n\
                 workloadEnrichment: {{ enabled: {enabled} }}\n"
            ),
        );
        let docs = render_release(
            release,
            &namespace,
            &[values("kube-1.20.yaml"), test_values],
        );
        if enabled {
            // deploy/workloads grants the plain manifests the same.
            let role = docs
                .iter()
                .find(|d| kind(d) == "ClusterRole")
                .expect("a ClusterRole");
            let rules: Vec<&Value> = role["rules"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter(|r| r["resources"][0] != "events")
                .collect();
            let plain: Value = serde_yaml_ng::from_str(
                std::fs::read_to_string(repo_root().join("deploy/workloads/rbac.yaml"))
                    .unwrap()
                    .split("\n---\n")
                    .next()
                    .unwrap(),
            )
            .unwrap();
            let plain: Vec<&Value> = plain["rules"].as_sequence().unwrap().iter().collect();
            assert_eq!(rules, plain, "deploy/workloads/rbac.yaml");
        }
        let mut run = start_in_pod(
            cluster,
            &scratch,
            &docs,
            &namespace,
            &format!("{release}-aetherius"),
        );
        run.wait_until_watching(1);
        if enabled {
            // The cache holds the Pod before the event is made.
            let address = run.http_address();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let (_, metrics) = aetherius_tests::running::http_get(address, "/metrics");
                let kept = metrics
                    .lines()
                    .find_map(|l| l.strip_prefix("aetherius_metadata_objects "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0);
                if kept >= 1.0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}",
                    run.logs().join("\n")
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        } else {
            // One error per kind, each naming its permission.
            run.wait_for_logs(
                &["cannot read the workload metadata"],
                7,
                std::time::Duration::from_secs(60),
            );
        }
        // About the Pod, by name (no uid: the helper's is made up).
        let mut event: serde_json::Value =
            serde_json::from_str(&aetherius_tests::running::warning_event(
                &shop,
                "e-1",
                "api-1",
                "BackOff",
                "Back-off restarting failed container app",
                1,
                0,
            ))
            .unwrap();
        event["involvedObject"]
            .as_object_mut()
            .unwrap()
            .remove("uid");
        let event = event.to_string();
        cluster.create_event(&shop, &event);
        let output = scratch.path("state/out.jsonl");
        let published = wait_for_output(&output, 1, std::time::Duration::from_secs(60));
        let labels = &published[0]["labels"];
        let logs = run.stop();
        let errors: Vec<&String> = logs.iter().filter(|l| l.contains("\"ERROR\"")).collect();
        if enabled {
            assert!(errors.is_empty(), "{errors:#?}");
            assert_eq!(labels["workload_kind"], "Pod", "{labels}");
            assert_eq!(labels["node"], "n-1");
            assert_eq!(labels["team"], "payments");
        } else {
            assert!(labels.get("workload_kind").is_none(), "{labels}");
            assert_eq!(
                errors.len(),
                7,
                "one error per kind, each naming its permission: {errors:#?}"
            );
            for resource in [
                "pods",
                "replicasets",
                "deployments",
                "statefulsets",
                "daemonsets",
                "jobs",
                "cronjobs",
            ] {
                assert!(
                    errors
                        .iter()
                        .any(|e| e.contains(&format!("grant `list` and `watch` on `{resource}`"))),
                    "{resource}: {errors:#?}"
                );
            }
        }
    }
}
