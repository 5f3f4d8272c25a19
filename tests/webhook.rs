//! What only the webhook sink does, against a real HTTP server on loopback
//! (tests/src/servers/http.rs): errors then recovery, batches as JSON lines
//! and arrays, a refused event inside a batch, credentials and templated
//! headers, a Slack-style body, and HTTPS with a CA file and a client
//! certificate. What every broker sink does (outages, the spool, a crash,
//! dead letters) is tests/brokers.rs's `webhook::` tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aetherius_tests::Scratch;
use aetherius_tests::brokers::{bus_config, split_body};
use aetherius_tests::publishing::{self, distinct_events, involved_names, with_dead_letter_file};
use aetherius_tests::servers::{HttpServer, TestCertificates};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_aetherius");

fn replay(config: &Path, input: &Path) -> String {
    publishing::replay(Path::new(BINARY), config, input)
}

/// A config whose sink `bus` is `webhook_yaml` (the fields under
/// `webhook:`, `URL` standing for the server's), spooling to the scratch
/// directory after 1 s.
fn config(scratch: &Scratch, server: &HttpServer, webhook_yaml: &str) -> PathBuf {
    let yaml: String = webhook_yaml
        .replace("URL", &server.url())
        .lines()
        .map(|line| format!("  {line}\n"))
        .collect();
    bus_config(scratch, &format!("webhook:\n{yaml}"), "")
}

fn names_in(server: &HttpServer) -> Vec<String> {
    let events: Vec<Value> = server.received().iter().flat_map(split_body).collect();
    involved_names(events.iter())
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("web-{i}")).collect()
}

#[test]
fn errors_and_throttling_are_retried_until_the_endpoint_takes_each_event_once_in_order() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let config = config(&scratch, &server, "url: URL/events\ntimeout: 1s\n");
    // 500, 503 and 429 in turn: retried with backoff, none lost, none twice.
    server.fail_next(2, 500);
    server.fail_next(1, 503);
    server.fail_next(1, 429);
    let logs = replay(&config, &distinct_events(&scratch, 200, None));
    assert_eq!(server.refused(), [500, 500, 503, 429]);
    assert_eq!(names_in(&server), expected(0..200), "once each, in order");
    assert_eq!(
        logs.matches("cannot publish to the webhook").count(),
        1,
        "the outage is logged once:\n{logs}"
    );
    assert!(logs.contains("HTTP 500"), "the answer is shown:\n{logs}");
    assert!(logs.contains("the webhook takes messages again"), "{logs}");
    let ids: BTreeSet<&str> = server
        .received()
        .iter()
        .map(|request| request.header("idempotency-key").unwrap_or_default().len())
        .map(|len| if len == 36 { "uuid" } else { "other" })
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["uuid"]),
        "each request carries its event's id"
    );
}

#[test]
fn batches_go_as_json_lines_or_a_json_array_in_order() {
    for (encoding, content_type) in [
        ("json-lines", "application/x-ndjson"),
        ("json-array", "application/json"),
    ] {
        let server = HttpServer::start();
        let scratch = Scratch::new();
        let config = config(
            &scratch,
            &server,
            &format!("url: URL/batch\nmax_events: 20\nencoding: {encoding}\n"),
        );
        replay(&config, &distinct_events(&scratch, 50, None));
        let requests = server.received();
        let sizes: Vec<usize> = requests.iter().map(|r| split_body(r).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 50, "{encoding}: {sizes:?}");
        assert!(
            sizes.iter().all(|&n| n <= 20) && sizes.len() < 50,
            "{encoding}: batched, 20 at most: {sizes:?}"
        );
        for request in &requests {
            assert_eq!(request.header("content-type"), Some(content_type));
            let key = request.header("idempotency-key").unwrap_or_default();
            assert_eq!(key.len(), 32, "a digest of the ids: {key}");
        }
        assert_eq!(names_in(&server), expected(0..50), "{encoding}");
    }
}

#[test]
fn an_event_the_endpoint_refuses_in_a_batch_is_dead_lettered_alone() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let config = config(&scratch, &server, "url: URL/batch\nmax_events: 10\n");
    let dead = with_dead_letter_file(&scratch, &config);
    // A 400 for any body with web-7's message: its batch, then web-7 alone.
    server.refuse_containing("in pod web-7\"");
    let logs = replay(&config, &distinct_events(&scratch, 20, None));
    assert_eq!(server.refused(), [400, 400], "the batch, then web-7 alone");
    let mut others = expected(0..20);
    others.retain(|name| name != "web-7");
    assert_eq!(names_in(&server), others, "the others, once each, in order");
    let letters: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(letters.len(), 1, "{logs}");
    assert_eq!(letters[0]["labels"]["involved_name"], "web-7");
    let reason = letters[0]["annotations"]["dead_letter_reason"]
        .as_str()
        .unwrap();
    assert!(reason.contains("HTTP 400"), "{reason}");
    assert!(
        logs.contains("the webhook refused the message; it is not retried"),
        "{logs}"
    );
}

#[test]
fn credentials_from_files_and_templated_headers_go_with_each_request() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let token = scratch.write("token", "s3cret-token\n");
    let password = scratch.write("password", "pa:ss\n");
    let bearer = config(
        &scratch,
        &server,
        &format!(
            "url: URL/e\nauth: {{ bearer_token_file: {} }}\nheaders:\n  X-Severity: '{{severity}}'\n  X-Source: aetherius\n",
            token.display()
        ),
    );
    replay(&bearer, &distinct_events(&scratch, 3, None));
    let basic = config(
        &scratch,
        &server,
        &format!(
            "url: URL/e\nauth: {{ username: aeth, password_file: {} }}\n",
            password.display()
        ),
    );
    replay(&basic, &distinct_events(&scratch, 1, None));
    let requests = server.received();
    assert_eq!(requests.len(), 4);
    for request in &requests[..3] {
        assert_eq!(request.header("authorization"), Some("Bearer s3cret-token"));
        assert_eq!(request.header("x-source"), Some("aetherius"));
        let payload = &split_body(request)[0];
        assert_eq!(request.header("x-severity"), payload["severity"].as_str());
    }
    // base64("aeth:pa:ss")
    assert_eq!(
        requests[3].header("authorization"),
        Some("Basic YWV0aDpwYTpzcw==")
    );

    // A file that cannot be read stops the start, naming it.
    let missing = config(
        &scratch,
        &server,
        "url: URL/e\nauth: { bearer_token_file: /nonexistent/token }\n",
    );
    let output = std::process::Command::new(BINARY)
        .args(["replay", "--config"])
        .arg(&missing)
        .args(["--input", "/dev/null"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("/nonexistent/token"), "{stderr}");
}

#[test]
fn a_body_template_makes_a_slack_style_message_per_event() {
    let server = HttpServer::start();
    let scratch = Scratch::new();
    let config = config(
        &scratch,
        &server,
        "url: URL/hooks/T000/B000\nbody:\n  text: '[{severity}] {namespace}/{name} {reason}: {message}'\n  username: aetherius\n",
    );
    replay(&config, &distinct_events(&scratch, 2, None));
    let bodies: Vec<Value> = server
        .received()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [0, 1].map(|i| serde_json::json!({
            "text": format!("[critical] shop/web-{i} BackOff: Back-off restarting failed container app in pod web-{i}"),
            "username": "aetherius",
        }))
    );
}

#[test]
fn https_with_a_ca_file_and_a_client_certificate() {
    let scratch = Scratch::new();
    let certificates = TestCertificates::generate(&scratch.path(""));
    let server = HttpServer::start_tls(&certificates, true);
    let tls = format!(
        "tls: {{ ca_file: {}, cert_file: {}, key_file: {} }}\n",
        certificates.ca.display(),
        certificates.client_cert.display(),
        certificates.client_key.display()
    );
    let config_path = config(
        &scratch,
        &server,
        &format!("url: URL/e\ntimeout: 1s\n{tls}"),
    );
    replay(&config_path, &distinct_events(&scratch, 5, None));
    assert_eq!(names_in(&server), expected(0..5));

    // Without the CA file the server's certificate is not trusted: retried,
    // said why, then spooled.
    let scratch = Scratch::new();
    let untrusted = config(&scratch, &server, "url: URL/e\ntimeout: 1s\n");
    let logs = replay(&untrusted, &distinct_events(&scratch, 1, None));
    assert!(logs.contains("cannot publish to the webhook"), "{logs}");
    assert!(logs.to_lowercase().contains("certificate"), "{logs}");
    assert_eq!(server.received().len(), 5);
}
