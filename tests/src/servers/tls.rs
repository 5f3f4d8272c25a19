//! A throwaway CA and a server certificate for 127.0.0.1, made with the
//! `openssl` command, for servers started with TLS.

use std::path::{Path, PathBuf};

use super::process::run;

/// PEM files in a directory.
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// The CA certificate clients verify the server with.
    pub ca: PathBuf,
    /// The server's certificate (SAN IP:127.0.0.1, localhost) and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A client certificate signed by the same CA, and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestCertificates {
    /// Generates a CA, and a server and a client certificate signed by it,
    /// in `dir`.
    ///
    /// # Panics
    ///
    /// If `openssl` fails; the message carries its stderr.
    pub fn generate(dir: &Path) -> Self {
        let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca.key"));
        let mut args = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=aetherius-test-ca",
        ];
        args.extend(EC_KEY);
        args.extend(["-keyout", text(&ca_key), "-out", text(&ca)]);
        run(Path::new("openssl"), &args);
        let (cert, key) = issue(
            dir,
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\n",
            (&ca, &ca_key),
        );
        let (client_cert, client_key) = issue(
            dir,
            "client",
            "/CN=aetherius-test-client",
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
            (&ca, &ca_key),
        );
        Self {
            ca,
            cert,
            key,
            client_cert,
            client_key,
        }
    }
}

/// A new P-256 key, unencrypted.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

fn text(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Makes `NAME.key` and `NAME.pem` in `dir`: a certificate for `subject`
/// with `extensions`, signed by `ca` (its certificate and key).
fn issue(
    dir: &Path,
    name: &str,
    subject: &str,
    extensions: &str,
    (ca, ca_key): (&Path, &Path),
) -> (PathBuf, PathBuf) {
    let openssl = Path::new("openssl");
    let file = |suffix: &str| dir.join(format!("{name}.{suffix}"));
    let (cert, key, csr, ext) = (file("pem"), file("key"), file("csr"), file("ext"));
    std::fs::write(&ext, extensions).expect("write the extensions file");
    let mut args = vec!["req", "-subj", subject];
    args.extend(EC_KEY);
    args.extend(["-keyout", text(&key), "-out", text(&csr)]);
    run(openssl, &args);
    run(
        openssl,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            text(&csr),
            "-CA",
            text(ca),
            "-CAkey",
            text(ca_key),
            "-CAcreateserial",
            "-extfile",
            text(&ext),
            "-out",
            text(&cert),
        ],
    );
    (cert, key)
}
