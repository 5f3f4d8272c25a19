use super::*;

const EVENTS: &str = "/api/v1/namespaces/default/events";

fn event(name: &str) -> String {
    serde_json::json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "type": "Warning",
    })
    .to_string()
}

fn create_event(cluster: &KubeCluster, name: &str) -> String {
    let created = cluster.request("POST", EVENTS, Some(&event(name)));
    assert_eq!(created.status, 201, "create event {name}: {}", created.body);
    created.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("a created object has a resourceVersion")
        .to_owned()
}

#[test]
fn serves_events_to_the_admin_only() {
    let cluster = KubeCluster::start();

    let list = cluster.request("GET", EVENTS, None);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.json()["kind"], "EventList");
    assert_eq!(
        list.json()["items"].as_array().map(Vec::len),
        Some(0),
        "nothing makes events by itself"
    );

    create_event(&cluster, "web-0.1");
    let list = cluster.request("GET", EVENTS, None);
    assert_eq!(list.json()["items"][0]["reason"], "BackOff");

    let version = cluster.request("GET", "/version", None);
    assert_eq!(version.json()["gitVersion"], "v1.20.2");

    let anonymous = std::process::Command::new("curl")
        .args([
            "--silent",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
            "--cacert",
        ])
        .arg(cluster.ca_cert_path())
        .arg(format!("{}{EVENTS}", cluster.server_url()))
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&anonymous.stdout),
        "403",
        "RBAC refuses anonymous users"
    );
}

#[test]
fn writes_a_kubeconfig_with_token_and_ca() {
    let cluster = KubeCluster::start();
    let dir = tempfile::tempdir().expect("create a temp dir");
    let path = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&path);
    let kubeconfig = std::fs::read_to_string(&path).expect("read the kubeconfig");

    assert!(kubeconfig.contains(&format!("server: {}\n", cluster.server_url())));
    assert!(kubeconfig.contains(&format!("token: {}\n", cluster.admin_token())));
    let ca_data = kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix("certificate-authority-data: "))
        .expect("the kubeconfig carries the CA");
    let encoded = dir.path().join("ca.b64");
    std::fs::write(&encoded, ca_data).expect("write the encoded CA");
    let decoded = run(
        Path::new("openssl"),
        &["base64", "-d", "-A", "-in", path_str(&encoded)],
    );
    assert_eq!(decoded, cluster.ca_cert_pem());
    assert!(
        cluster
            .ca_cert_pem()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
}

#[test]
fn restarts_on_the_same_port_and_compacts_to_410() {
    let mut cluster = KubeCluster::start();
    let old = create_event(&cluster, "before-restart");

    cluster.stop_apiserver();
    assert!(!cluster.apiserver_running());
    assert_eq!(
        curl_status(
            &format!("{}/readyz", cluster.server_url()),
            cluster.admin_token()
        ),
        None
    );
    cluster.start_apiserver();
    let list = cluster.request("GET", EVENTS, None);
    assert_eq!(
        list.json()["items"][0]["metadata"]["name"],
        "before-restart",
        "etcd kept the data"
    );

    let latest = create_event(&cluster, "after-restart");
    let compacted = cluster.compact_etcd();
    assert!(compacted > latest.parse::<i64>().expect("a numeric resourceVersion"));

    for version in [old, latest] {
        let watch = cluster.request(
            "GET",
            &format!("{EVENTS}?watch=1&timeoutSeconds=5&resourceVersion={version}"),
            None,
        );
        assert_eq!(
            watch.json()["type"],
            "ERROR",
            "watch from {version}: {}",
            watch.body
        );
        assert_eq!(
            watch.json()["object"]["code"],
            410,
            "watch from {version}: {}",
            watch.body
        );

        let list = cluster.request(
            "GET",
            &format!("{EVENTS}?resourceVersion={version}&resourceVersionMatch=Exact"),
            None,
        );
        assert_eq!(list.status, 410, "list at {version}: {}", list.body);
    }
}
