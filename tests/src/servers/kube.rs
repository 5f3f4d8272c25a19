//! A one-node Kubernetes control plane: etcd and kube-apiserver v1.20.2 on
//! loopback, with an admin token, and nothing else — no controllers, so no
//! Events appear unless a test creates them.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::binaries::ServerBinary;
use super::etcd::Etcd;
use super::process::{ServerProcess, free_port, run, try_run};

/// How long kube-apiserver gets to answer `/readyz`: it takes ~5 s on an
/// idle 2-core machine, several times that under a parallel build.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The issuer of service-account tokens; v1.20 requires one to be set, and
/// nothing here checks its value.
const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// etcd and kube-apiserver, started on free loopback ports, with their data,
/// keys and logs in a temp dir; all of it removed on drop.
pub struct KubeCluster {
    // Field order is drop order: the apiserver stops before etcd, and both
    // before their directory is removed.
    apiserver: Option<ServerProcess>,
    etcd: Etcd,
    apiserver_args: Vec<String>,
    port: u16,
    token: String,
    dir: tempfile::TempDir,
}

/// What the API server answered to [`KubeCluster::request`].
#[derive(Clone, Debug)]
pub struct ApiResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body, usually JSON.
    pub body: String,
}

impl ApiResponse {
    /// The body parsed as JSON.
    ///
    /// # Panics
    ///
    /// If it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the API server's answer is not JSON ({e}): {}", self.body))
    }
}

impl KubeCluster {
    /// Starts etcd and kube-apiserver and waits until the API server is ready.
    ///
    /// # Panics
    ///
    /// If a binary is missing (run `scripts/test-servers.sh`) or a server does
    /// not start; the message carries the end of its log.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Like [`start`](Self::start), with extra kube-apiserver flags appended,
    /// such as `--watch-cache=false` or `--event-ttl=5m`.
    pub fn start_with_args(extra_apiserver_args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aetherius-kube.")
            .tempdir()
            .expect("create a temp dir for the cluster");
        let token = random_token();
        std::fs::write(
            dir.path().join("tokens.csv"),
            format!("{token},aetherius-test-admin,aetherius-test-admin,\"system:masters\"\n"),
        )
        .expect("write the token file");
        generate_service_account_keys(dir.path());

        let etcd = Etcd::start(dir.path());
        let port = free_port();
        let mut apiserver_args = apiserver_args(dir.path(), etcd.endpoint(), port);
        apiserver_args.extend(extra_apiserver_args.iter().map(|arg| (*arg).to_owned()));

        let mut cluster = Self {
            apiserver: None,
            etcd,
            apiserver_args,
            port,
            token,
            dir,
        };
        cluster.start_apiserver();
        cluster
    }

    /// The API server's URL, `https://127.0.0.1:PORT`.
    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A bearer token of a `system:masters` member: allowed everything.
    pub fn admin_token(&self) -> &str {
        &self.token
    }

    /// The PEM of the self-signed CA that issued the API server's serving
    /// certificate (valid for `127.0.0.1`, not for `localhost`).
    pub fn ca_cert_pem(&self) -> String {
        std::fs::read_to_string(self.ca_cert_path()).expect("read the cluster's CA certificate")
    }

    /// The file holding [`ca_cert_pem`](Self::ca_cert_pem), for `curl --cacert`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Writes a kubeconfig that reaches this cluster as the admin, trusting
    /// its CA, with `default` as the namespace.
    pub fn write_kubeconfig(&self, path: &Path) {
        self.write_kubeconfig_with_token(path, &self.token);
    }

    /// Writes a kubeconfig that reaches this cluster with `token` (a
    /// service account's, say), trusting its CA.
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) {
        let ca_data = run(
            Path::new("openssl"),
            &["base64", "-A", "-in", path_str(&self.ca_cert_path())],
        );
        let kubeconfig = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: aetherius-test
  cluster:
    server: {server}
    certificate-authority-data: {ca_data}
users:
- name: aetherius-test-admin
  user:
    token: {token}
contexts:
- name: aetherius-test
  context:
    cluster: aetherius-test
    user: aetherius-test-admin
    namespace: default
current-context: aetherius-test
",
            server = self.server_url(),
            ca_data = ca_data.trim(),
        );
        std::fs::write(path, kubeconfig)
            .unwrap_or_else(|e| panic!("write a kubeconfig to {}: {e}", path.display()));
    }

    /// The etcd under the API server, to read or compact its revisions.
    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// etcd's client URL.
    pub fn etcd_endpoint(&self) -> &str {
        self.etcd.endpoint()
    }

    /// Compacts etcd so that every resourceVersion observed before this call
    /// answers 410 Gone, to a watch and to a list at that exact version (see
    /// [`Etcd::compact`]). Events bypass the API server's watch cache in
    /// v1.20, so their watches see it at once. Returns the revision compacted
    /// at.
    pub fn compact_etcd(&self) -> i64 {
        self.etcd.compact()
    }

    /// Stops kube-apiserver, leaving etcd and its data: clients see the API
    /// server go away, as in a control-plane restart.
    ///
    /// # Panics
    ///
    /// If it is not running.
    pub fn stop_apiserver(&mut self) {
        self.apiserver
            .take()
            .expect("stop_apiserver: kube-apiserver is not running")
            .stop();
    }

    /// Starts kube-apiserver on the same port, with the same etcd, keys and
    /// certificates, and waits until it is ready.
    ///
    /// # Panics
    ///
    /// If it is already running or does not become ready.
    pub fn start_apiserver(&mut self) {
        assert!(
            self.apiserver.is_none(),
            "start_apiserver: kube-apiserver is already running"
        );
        let mut process = ServerProcess::spawn(
            "kube-apiserver",
            &ServerBinary::KubeApiserver.path(),
            &self.apiserver_args,
            self.dir.path(),
            &self.dir.path().join("kube-apiserver.log"),
        );
        let readyz = format!("{}/readyz", self.server_url());
        process.wait_until(
            &format!("GET {readyz} answering 200"),
            READY_TIMEOUT,
            || curl_status(&readyz, &self.token) == Some(200),
        );
        // Ready is not yet done: the `default` namespace is made by a
        // controller a moment later, and creating an Event in it fails until
        // then.
        let default = format!("{}/api/v1/namespaces/default", self.server_url());
        process.wait_until(
            &format!("GET {default} answering 200"),
            READY_TIMEOUT,
            || curl_status(&default, &self.token) == Some(200),
        );
        self.apiserver = Some(process);
        self.save_ca_cert();
    }

    /// Whether kube-apiserver is running (between `stop_apiserver` and
    /// `start_apiserver` it is not).
    pub fn apiserver_running(&self) -> bool {
        self.apiserver.is_some()
    }

    /// Stops kube-apiserver and etcd and removes their directory, through a
    /// shared reference: for the [`shared`](Self::shared) cluster, a
    /// `static` that is never dropped.
    pub(super) fn stop_in_place(&self) {
        if let Some(apiserver) = &self.apiserver {
            apiserver.terminate();
        }
        self.etcd.terminate();
        let _ = std::fs::remove_dir_all(self.dir.path());
    }

    /// The end of kube-apiserver's log, for failure messages.
    pub fn apiserver_log_tail(&self) -> String {
        super::process::log_tail(&self.dir.path().join("kube-apiserver.log"), 4096)
    }

    /// Sends a request to the API server as the admin with `curl`, verifying
    /// its certificate, and returns the answer whatever its status:
    /// `request("GET", "/api/v1/namespaces/default/events", None)`.
    /// A body is sent as `application/json`.
    ///
    /// # Panics
    ///
    /// If the API server cannot be reached.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> ApiResponse {
        self.send(method, path, body.map(|body| (body, "application/json")))
    }

    /// Like [`request`](Self::request), with a body of the given content
    /// type, such as `application/merge-patch+json`.
    pub fn request_with_type(
        &self,
        method: &str,
        path: &str,
        body: &str,
        content_type: &str,
    ) -> ApiResponse {
        self.send(method, path, Some((body, content_type)))
    }

    fn send(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> ApiResponse {
        let url = format!("{}{path}", self.server_url());
        let auth = format!("Authorization: Bearer {}", self.token);
        let ca = self.ca_cert_path();
        let mut args = vec![
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--cacert",
            path_str(&ca),
            "--header",
            &auth,
            "--request",
            method,
            "--write-out",
            "\n%{http_code}",
        ];
        // The body from a file: Events of a megabyte are too long for an
        // argument list.
        let (content_type, body_arg, _body_file);
        if let Some((body, kind)) = body {
            let file = tempfile::NamedTempFile::new_in(self.dir.path())
                .and_then(|mut file| {
                    std::io::Write::write_all(&mut file, body.as_bytes())?;
                    Ok(file)
                })
                .unwrap_or_else(|e| panic!("write a request body: {e}"));
            content_type = format!("Content-Type: {kind}");
            body_arg = format!("@{}", file.path().display());
            _body_file = file;
            args.extend(["--header", &content_type, "--data-binary", &body_arg]);
        }
        args.push(&url);
        let output = try_run(Path::new("curl"), &args).unwrap_or_else(|e| {
            panic!(
                "{e}\nthe end of kube-apiserver's log:\n{}",
                self.apiserver_log_tail()
            )
        });
        let (body, status) = output
            .rsplit_once('\n')
            .unwrap_or_else(|| panic!("curl printed no status line for {method} {url}: {output}"));
        ApiResponse {
            status: status.trim().parse().unwrap_or_else(|e| {
                panic!("curl printed a bad status for {method} {url} ({e}): {status}")
            }),
            body: body.to_owned(),
        }
    }

    /// With `--cert-dir`, kube-apiserver makes a CA and a serving certificate
    /// signed by it, and writes both to `apiserver.crt`, the CA second.
    fn save_ca_cert(&self) {
        let chain_path = self.dir.path().join("certs").join("apiserver.crt");
        let chain = std::fs::read_to_string(&chain_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", chain_path.display()));
        let ca = last_pem_certificate(&chain)
            .unwrap_or_else(|| panic!("{} holds no certificate", chain_path.display()));
        std::fs::write(self.ca_cert_path(), ca).expect("write the cluster's CA certificate");
    }
}

/// The flags that make kube-apiserver v1.20.2 run alone on loopback.
fn apiserver_args(dir: &Path, etcd_endpoint: &str, port: u16) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("--etcd-servers={etcd_endpoint}"),
        "--bind-address=127.0.0.1".to_owned(),
        // Else it advertises the default route's address, and fails to start
        // on a machine without one.
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--secure-port={port}"),
        // v1.20 still serves plain HTTP on 127.0.0.1:8080 unless told not to.
        "--insecure-port=0".to_owned(),
        format!("--cert-dir={}", file("certs")),
        format!("--token-auth-file={}", file("tokens.csv")),
        "--authorization-mode=RBAC".to_owned(),
        // Nothing runs behind the `kubernetes` Service; don't maintain it.
        "--endpoint-reconciler-type=none".to_owned(),
        "--service-cluster-ip-range=10.0.0.0/24".to_owned(),
        format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"),
        format!("--service-account-signing-key-file={}", file("sa.key")),
        format!("--service-account-key-file={}", file("sa.pub")),
    ]
}

/// An RSA key pair for signing service-account tokens, as `sa.key` and
/// `sa.pub` in `dir`.
fn generate_service_account_keys(dir: &Path) {
    let key = dir.join("sa.key");
    let public = dir.join("sa.pub");
    let openssl = Path::new("openssl");
    run(openssl, &["genrsa", "-out", path_str(&key), "2048"]);
    run(
        openssl,
        &[
            "rsa",
            "-in",
            path_str(&key),
            "-pubout",
            "-out",
            path_str(&public),
        ],
    );
}

/// The HTTP status of GET `url` with the admin token, not verifying the
/// certificate (it may not be written yet), or `None` if nothing answered.
fn curl_status(url: &str, token: &str) -> Option<u16> {
    let output = std::process::Command::new("curl")
        .args([
            "--silent",
            "--insecure",
            "--max-time",
            "2",
            "--output",
            "/dev/null",
        ])
        .args(["--write-out", "%{http_code}", "--header"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run curl (install it with scripts/test-servers.sh): {e}"));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|status| *status != 0)
}

/// The last `CERTIFICATE` PEM block in `pem`.
fn last_pem_certificate(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.rfind(BEGIN)?;
    let end = start + pem[start..].find(END)? + END.len();
    Some(format!("{}\n", &pem[start..end]))
}

/// A token no other test run shares; std's hasher keys are random per process
/// and per `RandomState`.
fn random_token() -> String {
    let state = std::collections::hash_map::RandomState::new();
    let (mut a, mut b) = (state.build_hasher(), state.build_hasher());
    a.write_u8(1);
    b.write_u8(2);
    format!("aetherius-{:016x}{:016x}", a.finish(), b.finish())
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests;
