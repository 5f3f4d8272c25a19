use super::*;

/// `redact(message)`, or the message itself when nothing was found.
fn scrub(message: &str) -> String {
    redact(message).unwrap_or_else(|| message.to_owned())
}

fn assert_untouched(message: &str) {
    assert_eq!(
        redact(message),
        None,
        "redacted an innocent message: {message}"
    );
}

const JWT: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im1mbGM5YmNjbXJ0d3pjbGMifQ.eyJhdWQiOlsiY2hlY2tvdXQiXSwiZXhwIjoxNzk1MTY1MjAwfQ.9UfihP-qfvtKaGDNrptfFhdYC92s30LCIrGRAHnAafAQKPcvZd24XhKMSpp-pUM11fhmu00";

#[test]
fn jwts_anywhere() {
    assert_eq!(
        scrub(&format!("token {JWT} rejected")),
        "token [REDACTED] rejected"
    );
    assert_eq!(scrub(&format!("({JWT})")), "([REDACTED])");
    // An unsigned token ends in a dot.
    assert_eq!(
        scrub("t=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9. end"),
        "t=[REDACTED] end"
    );
    // `eyJ` inside a word, or too short to be a header, is not a JWT.
    assert_untouched("keyJar.open failed");
    assert_untouched("eyJx.eyJy.z");
}

#[test]
fn bearer_tokens() {
    assert_eq!(
        scrub("Authorization: Bearer abc123def456ghi"),
        "Authorization: Bearer [REDACTED]"
    );
    assert_eq!(
        scrub("authorization: bearer\tsk_live_4eC39HqLyjWDarjtT1zdp7dc\n"),
        "authorization: bearer\t[REDACTED]\n"
    );
    assert_eq!(
        scrub(&format!("> Authorization: Bearer {JWT}\n> ")),
        "> Authorization: Bearer [REDACTED]\n> "
    );
    assert_untouched("uses bearer authentication");
    assert_untouched("Bearer token expired");
    assert_untouched("WWW-Authenticate: Bearer realm=\"kubernetes\"");
    assert_untouched("the bearer");
}

#[test]
fn key_values_with_equals() {
    assert_eq!(
        scrub("user=ledger password=hunter2 db=x"),
        "user=ledger password=[REDACTED] db=x"
    );
    assert_eq!(scrub("--db-password=s3cr3t!"), "--db-password=[REDACTED]");
    assert_eq!(scrub("PASSWD=x;next"), "PASSWD=[REDACTED];next");
    assert_eq!(
        scrub("GET /cb?code=1&access_token=abc&state=2"),
        "GET /cb?code=1&access_token=[REDACTED]&state=2"
    );
    assert_eq!(
        scrub("client_secret = 'a b c'"),
        "client_secret = '[REDACTED]'"
    );
    assert_eq!(
        scrub("apikey=K1 api_key=K2 api-key=K3 access-key=K4"),
        "apikey=[REDACTED] api_key=[REDACTED] api-key=[REDACTED] access-key=[REDACTED]"
    );
    assert_eq!(
        scrub("AWS_SECRET_ACCESS_KEY=abc/def+ghi aws s3 ls"),
        "AWS_SECRET_ACCESS_KEY=[REDACTED] aws s3 ls"
    );
}

#[test]
fn key_values_with_colons_and_quotes() {
    assert_eq!(
        scrub(r#"body: {"username": "bob", "password": "correct horse"}"#),
        r#"body: {"username": "bob", "password": "[REDACTED]"}"#
    );
    assert_eq!(scrub(r#"{'token':'abc'}"#), r#"{'token':'[REDACTED]'}"#);
    assert_eq!(scrub("token:abcdef"), "token:[REDACTED]");
    assert_eq!(scrub("password: hunter2"), "password: [REDACTED]");
    // An unterminated quote still protects what follows it.
    assert_eq!(
        scrub("password=\"hunter2 rest"),
        "password=\"[REDACTED] rest"
    );
}

#[test]
fn key_values_in_prose_are_left_alone() {
    assert_untouched("failed to fetch token: serviceaccounts \"default\" not found");
    assert_untouched("invalid password: authentication failed");
    assert_untouched("Failed to rotate secret payments/stripe-api-key: permission denied");
    assert_untouched(
        "MountVolume.SetUp failed for volume \"creds\" : secret \"db-credentials\" not found",
    );
    assert_untouched("fetching token://issuer failed");
    assert_untouched("password=");
    assert_untouched("secret");
}

#[test]
fn redaction_is_idempotent() {
    for message in [
        "password=hunter2 and Bearer abc123def456ghi",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        JWT,
    ] {
        let once = scrub(message);
        assert_eq!(redact(&once), None, "{once}");
    }
}

#[test]
fn aws_access_key_ids() {
    assert_eq!(
        scrub("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
        "AWS_ACCESS_KEY_ID=[REDACTED]"
    );
    assert_eq!(
        scrub("key ASIAY34FZKBOKMUTVV7A used"),
        "key [REDACTED] used"
    );
    assert_untouched("AKIAIOSFODNN7EXAMPLEX"); // 17 characters after the prefix
    assert_untouched("AKIAIOSFODNN7EXAMPL"); // 15
    assert_untouched("XAKIAIOSFODNN7EXAMPLE");
    assert_untouched("AKIAiosfodnn7example");
}

#[test]
fn high_entropy_base64() {
    assert_eq!(
        scrub("key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY set"),
        "key [REDACTED] set"
    );
    assert_eq!(
        scrub("github ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
        "github [REDACTED]"
    );
    assert_eq!(
        scrub("c2VjcmV0LXZhbHVlLXRoYXQtaXMtbG9uZzEyMw=="),
        "[REDACTED]"
    );
    // Shorter than 32, or lower case only, or words.
    assert_untouched("wJalrXUtnFEMI/K7MDENG/bPxRfiCY");
    assert_untouched("/var/lib/kubelet/pods/84d3155c-1042-4311-85af-b3a67b1ba679/volumes");
    assert_untouched("prometheus-k8s-db-prometheus-k8s-1-and-some-more-words");
    assert_untouched("ContainerGCFailedImageGCFailedTwice");
    assert_untouched("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaA1");
}

#[test]
fn high_entropy_hex() {
    assert_eq!(
        scrub("key 5d41402abc4b2a76b9719d911017c592 rejected"),
        "key [REDACTED] rejected"
    );
    assert_eq!(
        scrub("hmac=3f2a9c0e7b1d4e6f8a0b2c4d6e8f0a1b3c5d7e9f0a1b"),
        "hmac=[REDACTED]"
    );
    // Digests, container and sandbox ids, commit ids.
    assert_untouched(
        "image@sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904a1b2c3d4e5f60718293a4b5c",
    );
    assert_untouched("sha512:ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12");
    assert_untouched(
        "failed to setup network for sandbox \"9725460c18ee499cc7907e7fedc5c16507f570d7bfc1e0d39074f68fcfe258cb\"",
    );
    assert_untouched("built from commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    assert_untouched("00000000000000000000000000000000");
    assert_untouched("abcdefabcdefabcdefabcdefabcdefabcdef"); // no digit
}

#[test]
fn uuids_and_kube_messages_are_left_alone() {
    for message in [
        "Back-off restarting failed container api in pod payments-api-hs5g8gm8c-7kgx4_payments(534fe395-8ab4-42d8-9c7e-85ac0f58482f)",
        "Node ip-10-0-45-208.eu-west-1.compute.internal has been rebooted, boot id: 5fac87e0-10f6-4e93-b96a-6c61f548b2e8",
        "AttachVolume.Attach succeeded for volume \"pvc-74074cc9-30cd-4d78-a71f-22b049c567a0\"",
        "Successfully pulled image \"quay.io/prometheus-operator/prometheus-config-reloader:v0.86.1\" in 2.41s (2.776s including waiting). Image size: 14911220 bytes.",
        "Pulling image \"registry.k8s.io/pause@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097\"",
        "UPPER 84D3155C-1042-4311-85AF-B3A67B1BA679",
        "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "",
    ] {
        assert_untouched(message);
    }
}

#[test]
fn multibyte_text_around_secrets() {
    assert_eq!(
        scrub("mot de passe → password=héhé1 ✓"),
        "mot de passe → password=[REDACTED] ✓"
    );
    assert_eq!(scrub("日本語 token=値"), "日本語 token=[REDACTED]");
}

#[test]
fn overlapping_findings_become_one_redaction() {
    // The bearer, JWT and base64 scanners all find this token.
    assert_eq!(scrub(&format!("Bearer {JWT}")), "Bearer [REDACTED]");
    // The key/value and AWS scanners both find this one.
    assert_eq!(
        scrub("access_key=AKIAIOSFODNN7EXAMPLE"),
        "access_key=[REDACTED]"
    );
}

/// Every message in `examples/events.jsonl` (JSON-escaped there): the three
/// that leak credentials lose them, every other one is left alone.
#[test]
fn example_events() {
    let leaks = [
        "hunter2-2XH6wMhPqZWJ",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6Im1mbGM5YmNjbXJ0d3pjbGMifQ",
        "9UfihP-qfvtKaGDNrptfFhdYC92s30LCIrGRAHnAafAQKPcvZd24XhKMSpp",
        "AKIAL6PPPLNNFEXAMPLE",
        "beuIoYyMqTxyc1RdV/3orhemeQp1+OEXAMPLEKEY",
    ];
    let mut redacted_kinds = std::collections::BTreeSet::new();
    for line in include_str!("../../../../examples/events.jsonl").lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = event["message"]
            .as_str()
            .or(event["note"].as_str())
            .unwrap_or("");
        let leaked: Vec<_> = leaks
            .iter()
            .filter(|leak| message.contains(*leak))
            .collect();
        match redact(message) {
            Some(redacted) => {
                assert!(
                    !leaked.is_empty(),
                    "redacted an innocent message: {message}"
                );
                for leak in leaked {
                    assert!(!redacted.contains(leak), "{leak} survived: {redacted}");
                }
                redacted_kinds.insert(event["reason"].as_str().unwrap_or("").to_owned());
            }
            None => assert!(leaked.is_empty(), "missed {leaked:?} in: {message}"),
        }
    }
    assert_eq!(
        redacted_kinds.into_iter().collect::<Vec<_>>(),
        ["Failed", "Unhealthy"]
    );
}

#[test]
fn example_events_exact_output() {
    let runc = "exec: \"/app/migrate --db=host=ledger-db.payments.svc port=5432 user=ledger password=hunter2-2XH6wMhPqZWJ dbname=ledger sslmode=require up\": stat";
    assert_eq!(
        scrub(runc),
        "exec: \"/app/migrate --db=host=ledger-db.payments.svc port=5432 user=ledger password=[REDACTED] dbname=ledger sslmode=require up\": stat"
    );
    let aws = "exec: \"AWS_ACCESS_KEY_ID=AKIAL6PPPLNNFEXAMPLE AWS_SECRET_ACCESS_KEY=beuIoYyMqTxyc1RdV/3orhemeQp1+OEXAMPLEKEY aws s3 sync s3://acme-ml-models/prod/ /models\": executable file not found in $PATH: unknown";
    assert_eq!(
        scrub(aws),
        "exec: \"AWS_ACCESS_KEY_ID=[REDACTED] AWS_SECRET_ACCESS_KEY=[REDACTED] aws s3 sync s3://acme-ml-models/prod/ /models\": executable file not found in $PATH: unknown"
    );
    let probe = format!(
        "> User-Agent: curl/8.14.1\n> Accept: */*\n> Authorization: Bearer {JWT}\n> \n< HTTP/1.1 401 Unauthorized\n"
    );
    assert_eq!(
        scrub(&probe),
        "> User-Agent: curl/8.14.1\n> Accept: */*\n> Authorization: Bearer [REDACTED]\n> \n< HTTP/1.1 401 Unauthorized\n"
    );
}

/// The screening pass never hides a finding: `find_secrets` (screened) and
/// `scan` (every scanner, always) agree on the example events and on many
/// generated messages built from the pieces the scanners look for.
#[test]
fn screening_never_changes_the_findings() {
    let mut messages: Vec<String> = include_str!("../../../../examples/events.jsonl")
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let message = event["message"].as_str().or(event["note"].as_str());
            message.unwrap_or("").to_owned()
        })
        .collect();
    const PIECES: &[&str] = &[
        " ",
        " ",
        " ",
        "\t",
        "\n",
        "=",
        "=",
        ":",
        ": ",
        "\"",
        "'",
        "/",
        "+",
        "-",
        "_",
        ".",
        ",",
        "(",
        ")",
        "@",
        "~",
        "é",
        "→",
        "eyJ",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJub25lIn0.",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.",
        "bearer",
        "Bearer",
        "BEARER",
        "password",
        "Passwd",
        "db.password",
        "token",
        "access_token",
        "secret",
        "SECRET",
        "apikey",
        "api_key",
        "API-KEY",
        "access_key",
        "access-key",
        "AKIA",
        "ASIA",
        "IOSFODNN7EXAMPLE",
        "sha256:",
        "md5:",
        "sha",
        "==",
        "[REDACTED]",
        "://",
        "failed",
        "pod",
        "web-0",
        "x",
        "Z",
        "7",
        "f",
        "0",
        "abc123def456ghi",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "5d41402abc4b2a76b9719d911017c592",
        "3f2a9c0e7b1d4e6f8a0b2c4d6e8f0a1b",
        "4b825dc642cb6eb9",
        "84d3155c-1042-4311",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "c2VjcmV0LXZhbHVl",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..60_000 {
        let mut message = String::new();
        for _ in 0..1 + next() % 12 {
            match next() % 4 {
                0 => {
                    // A run of random base64 or hex bytes.
                    let alphabet: &[u8] = if next() % 2 == 0 {
                        b"0123456789abcdef"
                    } else {
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
                    };
                    for _ in 0..next() % 70 {
                        message.push(char::from(alphabet[next() as usize % alphabet.len()]));
                    }
                }
                _ => message.push_str(PIECES[next() as usize % PIECES.len()]),
            }
        }
        messages.push(message);
    }
    let (mut found, mut screened_out) = (0, 0);
    for message in &messages {
        let all = scan(message);
        found += usize::from(!all.is_empty());
        screened_out += usize::from(!may_hold_secret(message.as_bytes()));
        assert_eq!(find_secrets(message), all, "{message:?}");
    }
    // Neither side of the screen is empty.
    assert!(found > messages.len() / 10, "{found}");
    assert!(screened_out > messages.len() / 10, "{screened_out}");
}

#[test]
fn the_screen_knows_how_secret_keys_end() {
    // `worth_a_look` and `word_may_hold_secret` only compare words ending in
    // these pairs with `SECRET_KEYS`.
    for name in SECRET_KEYS {
        let tail = &name[name.len() - 2..];
        assert!(
            [&b"rd"[..], b"wd", b"en", b"et", b"ey"].contains(&tail),
            "{}",
            String::from_utf8_lossy(name)
        );
    }
}
