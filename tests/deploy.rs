//! The manifests in deploy/ against a real kube-apiserver: they pass a
//! server-side dry run, the config they carry checks, and the binary run
//! with in-cluster credentials under the shipped RBAC works — and that RBAC
//! grants nothing it does not use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aetherius_tests::publishing::create_backoff_events;
use aetherius_tests::running::{Running, wait_for_output};
use aetherius_tests::servers::{KubeCluster, ServerBinary};
use aetherius_tests::{Scratch, compile_cache, repo_root};

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

/// Kinds whose CRDs a bare API server does not have: validated as YAML.
const CRD_BACKED: &[&str] = &["ServiceMonitor", "PrometheusRule"];

fn deploy(name: &str) -> PathBuf {
    repo_root().join("deploy").join(name)
}

fn documents(path: &Path) -> Vec<serde_yaml_ng::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|doc: &serde_yaml_ng::Value| !doc.is_null())
        .collect()
}

/// The manifests `kubectl apply -k deploy/` applies, in its order.
fn kustomized() -> Vec<String> {
    let kustomization = &documents(&deploy("kustomization.yaml"))[0];
    kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_manifest_passes_a_server_side_dry_run() {
    let cluster = KubeCluster::start();
    let mut manifests: Vec<String> = std::fs::read_dir(repo_root().join("deploy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    manifests.sort();
    let applied = kustomized();
    for name in &manifests {
        let kinds: Vec<String> = documents(&deploy(name))
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(
            applied.contains(name) || kinds.iter().all(|k| CRD_BACKED.contains(&k.as_str())),
            "{name} is neither in kustomization.yaml nor CRD-backed"
        );
    }

    // The namespace first: the others live in it.
    let (ok, output) = cluster.kubectl(&[
        "apply",
        "--dry-run=server",
        "-f",
        deploy("namespace.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    assert!(output.contains("server dry run"), "{output}");
    cluster.create_namespace("aetherius");
    let scratch = Scratch::new();
    for name in &applied {
        let mut path = deploy(name);
        // The test server is Kubernetes 1.20, before policy/v1 (1.21).
        if name == "pdb.yaml" {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("apiVersion: policy/v1\n"), "{text}");
            path = scratch.write(
                "pdb-1.20.yaml",
                text.replace("policy/v1\n", "policy/v1beta1\n"),
            );
        }
        let (ok, output) =
            cluster.kubectl(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]);
        assert!(ok, "{name}: {output}");
        assert!(output.contains("server dry run"), "{name}: {output}");
    }

    // The ServiceMonitor scrapes the Service's metrics port.
    let monitor = &documents(&deploy("servicemonitor.yaml"))[0];
    assert_eq!(
        monitor["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(monitor["metadata"]["namespace"].as_str(), Some("aetherius"));
    let service = &documents(&deploy("service.yaml"))[0];
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap();
    for (label, value) in selector {
        assert_eq!(&service["metadata"]["labels"][label], value, "{label:?}");
    }

    // What the Deployment promises.
    let deployment = &documents(&deploy("deployment.yaml"))[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["resources"]["requests"]["memory"].as_str(),
        Some("128Mi")
    );
    assert_eq!(
        container["resources"]["limits"]["memory"].as_str(),
        Some("256Mi")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/health")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/ready")
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
}

/// The config in deploy/configmap.yaml, with its pod paths moved into
/// `scratch`.
fn shipped_config(scratch: &Scratch) -> String {
    let configmap = &documents(&deploy("configmap.yaml"))[0];
    let yaml = configmap["data"]["config.yaml"].as_str().unwrap();
    std::fs::create_dir_all(scratch.path("plugins")).unwrap();
    yaml.replace(
        "/etc/aetherius/plugins",
        scratch.path("plugins").to_str().unwrap(),
    )
    .replace("/var/cache/aetherius", compile_cache().to_str().unwrap())
}

#[test]
fn the_shipped_config_checks() {
    let scratch = Scratch::new();
    let config = scratch.write("config.yaml", shipped_config(&scratch));
    let output = std::process::Command::new(BINARY)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("cluster default: in-cluster service account"),
        "{report}"
    );
}

#[test]
fn in_cluster_credentials_under_the_shipped_rbac_work_and_suffice() {
    let cluster = KubeCluster::start();
    for name in ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml"] {
        let (ok, output) = cluster.kubectl(&["apply", "-f", deploy(name).to_str().unwrap()]);
        assert!(ok, "{name}: {output}");
    }
    cluster.create_namespace("shop");

    // What the kubelet mounts into the pod.
    let scratch = Scratch::new();
    let secrets = scratch.path("serviceaccount");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(
        secrets.join("token"),
        cluster.service_account_token("aetherius", "aetherius"),
    )
    .unwrap();
    std::fs::write(secrets.join("ca.crt"), cluster.ca_cert_pem()).unwrap();
    std::fs::write(secrets.join("namespace"), "aetherius").unwrap();
    let output = scratch.path("events.jsonl");
    let yaml = shipped_config(&scratch)
        .replace(
            "stdout: {}",
            &format!("file: {{ path: {} }}", output.display()),
        )
        .replace("health_listen: 0.0.0.0:8080", "health_listen: 127.0.0.1:0")
        .replace(
            "metrics_listen: 0.0.0.0:9090",
            "metrics_listen: 127.0.0.1:0",
        );
    let config = scratch.write("config.yaml", yaml);

    let mut run = Running::start_in_pod(Path::new(BINARY), &config, &secrets, &cluster);
    run.wait_until_watching(1);
    create_backoff_events(&cluster, "shop", 0..5);
    let published = wait_for_output(&output, 5, Duration::from_secs(60));
    assert_eq!(published.len(), 5);
    assert!(published.iter().all(|e| e["cluster_id"] == "default"));
    let logs = run.stop();
    let errors: Vec<&String> = logs.iter().filter(|l| l.contains("\"ERROR\"")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // The checkpoint went to the ConfigMap the Role names.
    let (ok, checkpoint) = cluster.kubectl(&[
        "-n",
        "aetherius",
        "get",
        "configmap",
        "aetherius-checkpoint",
        "-o",
        "jsonpath={.data.checkpoint\\.json}",
    ]);
    assert!(ok, "{checkpoint}");
    assert!(checkpoint.contains("\"default\""), "{checkpoint}");
    // It led through the Lease the Role names, and released it on SIGTERM.
    assert!(logs.iter().any(|l| l.contains("became leader")), "{logs:?}");
    assert!(
        logs.iter().any(|l| l.contains("released the lease")),
        "{logs:?}"
    );

    // Nothing beyond what it uses.
    let can = |args: &[&str]| {
        let mut all = vec![
            "auth",
            "can-i",
            "--as=system:serviceaccount:aetherius:aetherius",
        ];
        all.extend_from_slice(args);
        cluster.kubectl(&all).1.trim().to_owned()
    };
    for allowed in [
        &["watch", "events", "--all-namespaces"][..],
        &["list", "events.events.k8s.io", "--all-namespaces"],
        &["-n", "aetherius", "patch", "configmap/aetherius-checkpoint"],
        &["-n", "aetherius", "create", "configmaps"],
        &[
            "-n",
            "aetherius",
            "update",
            "leases.coordination.k8s.io/aetherius-default",
        ],
    ] {
        assert_eq!(can(allowed), "yes", "{allowed:?}");
    }
    for denied in [
        &["create", "events", "-n", "shop"][..],
        &["delete", "events", "-n", "shop"],
        &["list", "pods", "--all-namespaces"],
        &["get", "secrets", "-n", "aetherius"],
        &["-n", "aetherius", "patch", "configmap/aetherius-config"],
        &[
            "-n",
            "aetherius",
            "delete",
            "configmap/aetherius-checkpoint",
        ],
        &["-n", "shop", "create", "configmaps"],
        &["list", "configmaps", "-n", "aetherius"],
        &[
            "-n",
            "aetherius",
            "update",
            "leases.coordination.k8s.io/kube-controller-manager",
        ],
        &["-n", "kube-system", "create", "leases.coordination.k8s.io"],
    ] {
        assert_eq!(can(denied), "no", "{denied:?}");
    }
}

/// The alerts docs/metrics.md describes, as code: the rules file passes
/// `promtool check rules`, each alert fires in `promtool test rules` on the
/// series that should fire it (and not on healthy ones), every metric an
/// alert reads exists, and the PrometheusRule carries the same groups.
#[test]
fn the_alert_rules_check_fire_as_tested_and_match_the_prometheusrule() {
    let alerts = deploy("alerts");
    let promtool = ServerBinary::Promtool.path();
    for args in [
        ["check", "rules", "aetherius.rules.yaml"],
        ["test", "rules", "aetherius.rules.test.yaml"],
    ] {
        let output = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(&alerts)
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let rules = &documents(&alerts.join("aetherius.rules.yaml"))[0];
    let operator = &documents(&deploy("prometheusrule.yaml"))[0];
    assert_eq!(operator["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        operator["metadata"]["namespace"].as_str(),
        Some("aetherius")
    );
    assert_eq!(
        operator["spec"]["groups"], rules["groups"],
        "deploy/prometheusrule.yaml and deploy/alerts/aetherius.rules.yaml differ"
    );

    // Every metric an expression names is one Aetherius exports.
    let exported: Vec<&str> = aetherius::metrics::ALL
        .iter()
        .map(|metric| metric.meta().name)
        .collect();
    let tests = std::fs::read_to_string(alerts.join("aetherius.rules.test.yaml")).unwrap();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        let name = rule["alert"].as_str().unwrap();
        let expr = rule["expr"].as_str().unwrap();
        let metrics: Vec<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("aetherius_") || word.starts_with("k8s_events_"))
            .collect();
        assert!(!metrics.is_empty(), "{name}: {expr}");
        for metric in metrics {
            assert!(
                exported.contains(&metric),
                "{name} reads {metric}, which is not exported"
            );
        }
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "{name} has no promtool test"
        );
    }
}
