//! Decentralized NATS auth for tests: an operator, an account and a user as
//! nkeys, their JWTs, the server config that trusts the operator, and the
//! user's `.creds` file — what `nsc` would make, without `nsc`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;

/// Files for a nats-server in operator mode and a user of it.
pub struct NatsCredentials {
    /// Server config: `operator`, a memory resolver preloaded with the
    /// account and the system account.
    pub server_config: PathBuf,
    /// The user's JWT and seed.
    pub creds: PathBuf,
}

impl NatsCredentials {
    /// Writes `server.conf` and `user.creds` into `dir`.
    pub fn generate(dir: &Path) -> Self {
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        // JetStream needs a system account.
        let system = KeyPair::new_account();
        let user = KeyPair::new_user();
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            "aetherius-test-operator",
            serde_json::json!({ "type": "operator", "version": 2 }),
        );
        let unlimited = serde_json::json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
        });
        let account_jwt = jwt(
            &operator,
            &account.public_key(),
            "aetherius-test-account",
            serde_json::json!({ "limits": unlimited, "type": "account", "version": 2 }),
        );
        let system_jwt = jwt(
            &operator,
            &system.public_key(),
            "SYS",
            serde_json::json!({ "limits": unlimited, "type": "account", "version": 2 }),
        );
        let user_jwt = jwt(
            &account,
            &user.public_key(),
            "aetherius",
            serde_json::json!({
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                "type": "user", "version": 2,
            }),
        );
        let server_config = dir.join("server.conf");
        std::fs::write(
            &server_config,
            format!(
                "operator: {operator_jwt}\nsystem_account: {system}\nresolver: MEMORY\nresolver_preload: {{\n  {account}: {account_jwt}\n  {system}: {system_jwt}\n}}\n",
                account = account.public_key(),
                system = system.public_key(),
            ),
        )
        .expect("write the server config");
        let creds = dir.join("user.creds");
        std::fs::write(
            &creds,
            format!(
                "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
                 ************************* IMPORTANT *************************\n\
                 NKEY Seed printed below can be used to sign and prove identity.\n\n\
                 -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                user.seed().expect("a seed")
            ),
        )
        .expect("write the creds file");
        Self {
            server_config,
            creds,
        }
    }
}

/// A JWT issued by `issuer` about `subject`, signed with ed25519 (nkey).
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = serde_json::json!({ "typ": "JWT", "alg": "ed25519-nkey" });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("aetherius-test-{subject}"),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = issuer.sign(signed.as_bytes()).expect("sign the JWT");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}
