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
    /// Generates a CA and a server certificate signed by it in `dir`.
    ///
    /// # Panics
    ///
    /// If `openssl` fails; the message carries its stderr.
    pub fn generate(dir: &Path) -> Self {
        let file = |name: &str| dir.join(name);
        let text = |path: &PathBuf| path.to_str().expect("UTF-8 temp path").to_owned();
        let openssl = Path::new("openssl");
        let (ca, ca_key) = (file("ca.pem"), file("ca.key"));
        let (cert, key, csr) = (file("server.pem"), file("server.key"), file("server.csr"));
        let extensions = file("server.ext");
        std::fs::write(
            &extensions,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\n",
        )
        .expect("write the extensions file");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut args = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=aetherius-test-ca",
        ];
        args.extend(ec);
        let (ca_text, ca_key_text) = (text(&ca), text(&ca_key));
        args.extend(["-keyout", &ca_key_text, "-out", &ca_text]);
        run(openssl, &args);
        let (key_text, csr_text, cert_text, ext_text) =
            (text(&key), text(&csr), text(&cert), text(&extensions));
        let mut args = vec!["req", "-subj", "/CN=127.0.0.1"];
        args.extend(ec);
        args.extend(["-keyout", &key_text, "-out", &csr_text]);
        run(openssl, &args);
        run(
            openssl,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &csr_text,
                "-CA",
                &ca_text,
                "-CAkey",
                &ca_key_text,
                "-CAcreateserial",
                "-extfile",
                &ext_text,
                "-out",
                &cert_text,
            ],
        );
        let (client_cert, client_key) = (file("client.pem"), file("client.key"));
        let client_csr = file("client.csr");
        let client_extensions = file("client.ext");
        std::fs::write(
            &client_extensions,
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("write the client extensions file");
        let (client_key_text, client_csr_text, client_cert_text, client_ext_text) = (
            text(&client_key),
            text(&client_csr),
            text(&client_cert),
            text(&client_extensions),
        );
        let mut args = vec!["req", "-subj", "/CN=aetherius-test-client"];
        args.extend(ec);
        args.extend(["-keyout", &client_key_text, "-out", &client_csr_text]);
        run(openssl, &args);
        run(
            openssl,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                &client_csr_text,
                "-CA",
                &ca_text,
                "-CAkey",
                &ca_key_text,
                "-CAcreateserial",
                "-extfile",
                &client_ext_text,
                "-out",
                &client_cert_text,
            ],
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
