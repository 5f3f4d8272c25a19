//! The `aetherius` command as a user runs it: `replay` on the bundled sample
//! (a golden file) and `check` on good and broken configs.

use std::path::PathBuf;
use std::process::{Command, Output};

use aetherius_tests::{Scratch, files_under, guests, repo_root};

fn aetherius(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aetherius"))
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .env("XDG_CACHE_HOME", aetherius_tests::compile_cache())
        .output()
        .expect("run aetherius")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

fn golden_path() -> PathBuf {
    repo_root().join("tests/golden/default-replay.jsonl")
}

#[test]
fn replay_of_the_sample_matches_the_golden_file() {
    let output = aetherius(&[
        "replay",
        "--config",
        "config/default.yaml",
        "--input",
        "examples/events.jsonl",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_path().parent().unwrap()).unwrap();
        std::fs::write(golden_path(), &stdout).unwrap();
    }
    let golden = std::fs::read_to_string(golden_path())
        .expect("tests/golden/default-replay.jsonl (UPDATE_GOLDEN=1 writes it)");
    assert!(
        stdout == golden,
        "output differs from {}; rerun with UPDATE_GOLDEN=1 and review the diff",
        golden_path().display()
    );
    let summary = text(&output.stderr);
    assert!(summary.contains("read 371 |"), "{summary}");
}

#[test]
fn replay_applies_the_documented_policy() {
    let output = aetherius(&[
        "replay",
        "--config",
        "config/default.yaml",
        "--input",
        "examples/events.jsonl",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let events = lines(&output);
    assert!(!events.is_empty());
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "no occurrence is published twice");
    for event in &events {
        assert_eq!(
            event["labels"]["event_type"], "Warning",
            "only Warnings: {event}"
        );
        assert_ne!(
            event["labels"]["involved_kind"], "Secret",
            "events about Secrets are dropped"
        );
        let text = event.to_string();
        for secret in ["hunter2", "AKIA", "eyJhbGci"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
    // The crash-looping payments-api pod: BackOff bumped from count 1 to 7.
    let backoff: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| {
            e["raw_data"]["k8s_event"]["metadata"]["uid"] == "bbf1ad22-e8fa-4c36-9a81-d141953a7798"
        })
        .collect();
    let counts: Vec<&str> = backoff
        .iter()
        .map(|e| e["labels"]["count"].as_str().unwrap())
        .collect();
    assert_eq!(
        counts,
        ["1", "2", "3", "4", "5", "6", "7"],
        "every count bump is an occurrence"
    );
    for event in &backoff {
        let count: u32 = event["labels"]["count"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            event["severity"], "critical",
            "a crash loop is critical: {event}"
        );
        assert_eq!(
            event["labels"]["repeated_count"].as_str().is_some(),
            count >= 5,
            "escalated from 5 on"
        );
    }
    // An Unhealthy probe (medium) is escalated to high at its fifth count.
    let unhealthy: Vec<(String, String)> = events
        .iter()
        .filter(|e| {
            e["raw_data"]["k8s_event"]["metadata"]["uid"] == "0e9393e8-df2a-43fb-b932-41e40030abce"
        })
        .map(|e| {
            (
                e["labels"]["count"].as_str().unwrap().to_owned(),
                e["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        unhealthy
            .iter()
            .map(|(c, s)| format!("{c}:{s}"))
            .collect::<Vec<_>>(),
        [
            "1:medium", "2:medium", "3:medium", "4:medium", "5:high", "6:high", "7:high"
        ]
    );
}

#[test]
fn malformed_lines_are_reported_and_skipped_or_fatal_with_strict() {
    let scratch = Scratch::new();
    let sample = std::fs::read_to_string(repo_root().join("examples/events.jsonl")).unwrap();
    let mut input: Vec<&str> = sample.lines().take(3).collect();
    input.insert(1, "{ this is not json");
    input.push(r#"{"apiVersion":"v1","kind":"Pod","metadata":{}}"#);
    let path = scratch.write("input.jsonl", input.join("\n"));
    let path = path.to_str().unwrap();

    let output = aetherius(&["replay", "--config", "config/default.yaml", "--input", path]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("\"line\":2") || stderr.contains("line=2"),
        "{stderr}"
    );
    assert!(stderr.contains("errors 2"), "{stderr}");

    let output = aetherius(&[
        "replay",
        "--strict",
        "--config",
        "config/default.yaml",
        "--input",
        path,
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("line 2:"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn check_accepts_the_shipped_default() {
    let output = aetherius(&["check", "--config", "config/default.yaml"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("chain default:"));
}

/// The TLS and SASL properties of a typical managed Kafka pass through to
/// librdkafka, which was built with OpenSSL (SCRAM needs it too).
#[test]
fn check_accepts_kafka_tls_and_sasl_options() {
    let scratch = Scratch::new();
    let password = scratch.write("password", "s3cret\n");
    let path = scratch.write(
        "config.yaml",
        format!(
            "plugins:\n  a: {{ source: 'builtin:type-filter' }}\nchains:\n  main: [a]\nsinks:\n  out:\n    chain: main\n    kafka:\n      brokers: 'kafka:9093'\n      options: {{ security.protocol: sasl_ssl, sasl.mechanism: SCRAM-SHA-512, sasl.username: aetherius, ssl.ca.location: /etc/ssl/certs/ca-certificates.crt, compression.type: lz4 }}\n      option_files: {{ sasl.password: {} }}\n",
            password.display()
        ),
    );
    let output = aetherius(&["check", "--config", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("sink out <- chain main: Kafka kafka:9093"),
        "{}",
        text(&output.stdout)
    );
}

fn check_fails_with(yaml: &str, expected: &[&str]) {
    let scratch = Scratch::new();
    let path = scratch.write("config.yaml", yaml);
    let output = aetherius(&["check", "--config", path.to_str().unwrap()]);
    assert!(!output.status.success(), "check accepted:\n{yaml}");
    let stderr = text(&output.stderr);
    for needle in expected {
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    }
}

#[test]
fn check_names_the_problem_in_broken_configs() {
    let sink = "sinks:\n  out: { chain: main, stdout: {} }\n";
    check_fails_with(
        &format!(
            "plugins:\n  a: {{ source: 'builtin:type-filter', colour: red }}\nchains:\n  main: [a]\n{sink}"
        ),
        &["at `plugins.a.colour`", "unknown field `colour`", "line 2"],
    );
    check_fails_with(
        &format!("plugins:\n  a: {{ source: 'builtin:nope' }}\nchains:\n  main: [a]\n{sink}"),
        &[
            "at `plugins.a.source`",
            "unknown built-in plugin `builtin:nope`",
            "reason-filter",
        ],
    );
    check_fails_with(
        &format!(
            "plugins:\n  a: {{ source: 'builtin:time-filter', config: {{ max_age: soon }} }}\nchains:\n  main: [a]\n{sink}"
        ),
        &[
            "at `plugins.a`",
            "builtin:time-filter",
            "init rejected the config",
        ],
    );
    check_fails_with(
        &format!(
            "plugins:\n  a: {{ source: {:?} }}\nchains:\n  main: [a]\n{sink}",
            guests::WRONG_WORLD
        ),
        &[
            "at `plugins.a.source`",
            "wrong_world.wasm",
            "implements none of the plugin worlds",
        ],
    );
    let chain = "plugins:\n  a: { source: 'builtin:type-filter' }\nchains:\n  main: [a]\n";
    check_fails_with(
        &format!(
            "{chain}sinks:\n  out: {{ chain: main, kafka: {{ brokers: 'k:9092', options: {{ compresion.type: lz4 }} }} }}\n"
        ),
        &[
            "sink `out`: Kafka producer",
            "No such configuration property: \"compresion.type\"",
        ],
    );
    check_fails_with(
        &format!(
            "{chain}sinks:\n  out: {{ chain: main, kafka: {{ brokers: 'k:9092', options: {{ enable.idempotence: false }} }} }}\n"
        ),
        &["at `sinks.out.kafka.options.enable.idempotence`: always set by Aetherius"],
    );
    check_fails_with(
        "chains:\n  main: [ghost]\nsinks:\n  out: { chain: other, stdout: {} }\n",
        &[
            "at `chains.main[0]`: unknown plugin `ghost`",
            "at `sinks.out.chain`: unknown chain `other`",
        ],
    );
}

#[test]
fn a_plugin_built_with_cargo_component_runs_in_the_pipeline() {
    let example = repo_root().join("examples/custom-plugin");
    let build = Command::new("cargo")
        .args(["component", "build", "--release", "--quiet"])
        .current_dir(&example)
        // Build where the example's README and config/example.yaml say it
        // lands, whatever target dir this test run uses.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .expect("run cargo component (scripts/setup.sh installs it)");
    assert!(
        build.status.success(),
        "cargo component build failed:\n{}",
        text(&build.stderr)
    );
    let wasm = example.join("target/wasm32-wasip1/release/team_label.wasm");

    let output = aetherius(&["check", "--config", "config/example.yaml"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("team-label"),
        "{}",
        text(&output.stdout)
    );

    let scratch = Scratch::new();
    let config = scratch.write(
        "config.yaml",
        format!(
            "plugins:\n  warnings: {{ source: 'builtin:type-filter', config: {{ allow: [Warning] }} }}\n  team: {{ source: {:?}, config: {{ teams: {{ 'payments*': payments, 'checkout': storefront }} }} }}\nchains:\n  main: [warnings, team]\nsinks:\n  out: {{ chain: main, stdout: {{}} }}\n",
            wasm.display().to_string()
        ),
    );
    let output = aetherius(&[
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--input",
        "examples/events.jsonl",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let events = lines(&output);
    let team_of = |namespace: &str| {
        events
            .iter()
            .filter(|e| e["namespace"] == namespace)
            .map(|e| e["labels"]["team"].as_str().unwrap_or("-").to_owned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(team_of("payments"), ["payments".to_owned()].into());
    assert_eq!(team_of("checkout"), ["storefront".to_owned()].into());
    assert_eq!(
        team_of("kube-system"),
        ["-".to_owned()].into(),
        "no pattern, no label"
    );
}

fn aetherius_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aetherius"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env("XDG_CACHE_HOME", aetherius_tests::compile_cache())
        .envs(env.iter().copied())
        .output()
        .expect("run aetherius")
}

/// The design document's watcher-config.yaml: `check` says which format it
/// read and prints the native config it stands for, which checks too.
#[test]
fn the_documents_config_checks_and_prints_its_native_equivalent() {
    let output = aetherius(&["check", "--config", "config/watcher-config.yaml"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.contains("format: the design document's watcher-config.yaml"),
        "{report}"
    );
    assert!(report.contains("cluster prod-us-west-2:"), "{report}");
    assert!(report.contains("event.k8s.received"), "{report}");

    let output = aetherius_in(
        &repo_root(),
        &[
            "check",
            "--config",
            "config/watcher-config.yaml",
            "--print-native",
        ],
        &[("CLUSTER_ID", "from-env"), ("NATS_HOST", "nats.bus")],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let native = text(&output.stdout);
    for expected in [
        "id: from-env",
        "url: nats://nats.bus:4222",
        "subject: event.k8s.received",
        "source: builtin:reason-filter",
        "min_severity: low",
        "window: fixed",
        "buffer_size: 1000",
    ] {
        assert!(native.contains(expected), "{expected:?} in:\n{native}");
    }
    let scratch = Scratch::new();
    let path = scratch.write("native.yaml", &native);
    let output = aetherius(&["check", "--config", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("format: native"));
}

#[test]
fn the_documents_format_still_refuses_unknown_keys_and_bad_urls() {
    check_fails_with(
        "cluster_id: prod\nreason_filter: [OOMKilled]\n",
        &[
            "at `reason_filter`",
            "unknown field `reason_filter`",
            "line 2",
        ],
    );
    check_fails_with(
        "message_bus_url: amqp://rabbit:5672\n",
        &[
            "at `message_bus_url`",
            "nats://HOST:PORT",
            "kafka://HOST:PORT",
        ],
    );
    check_fails_with(
        "cluster_id: ${NO_SUCH_VARIABLE_SET}\n",
        &[
            "line 1",
            "`${NO_SUCH_VARIABLE_SET}` is not set",
            "${NO_SUCH_VARIABLE_SET:-value}",
        ],
    );
}

/// `aetherius` alone runs, reading config.yaml from the working directory,
/// with the flags and environment variables the document's Deployment uses.
#[test]
fn without_a_command_it_runs_with_the_documents_flags_and_defaults() {
    let scratch = Scratch::new();
    let dir = scratch.path("");
    // No config anywhere: the error says where it looked.
    let output = aetherius_in(&dir, &[], &[]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("config.yaml, /etc/aetherius/config.yaml")
            || stderr.contains("no config file"),
        "{stderr}"
    );

    // config.yaml found; --cluster-id and a kubeconfig that does not exist:
    // the run stops at the credentials, naming them and the id.
    scratch.write(
        "config.yaml",
        "cluster_id: from-file\nmin_severity: Warning\n",
    );
    let output = aetherius_in(
        &dir,
        &[
            "--cluster-id=from-flag",
            "--kubeconfig=missing-kubeconfig",
            "--health-listen=",
            "--metrics-listen=",
        ],
        &[],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("missing-kubeconfig"), "{stderr}");
    assert!(stderr.contains("from-flag"), "{stderr}");

    // The same through the environment, with `run`.
    let output = aetherius_in(
        &dir,
        &["run", "--health-listen=", "--metrics-listen="],
        &[
            ("AETHERIUS_CLUSTER_ID", "from-env"),
            ("AETHERIUS_KUBECONFIG", "missing-too"),
        ],
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("missing-too") && stderr.contains("from-env"),
        "{stderr}"
    );

    let output = aetherius_in(&dir, &["--version"], &[]);
    assert!(text(&output.stdout).starts_with("aetherius "));
    let output = aetherius_in(&dir, &["completions", "bash"], &[]);
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("--cluster-id"));
}

/// `aetherius plugin precompile` writes the built-in plugins' artifacts
/// beside the binary (PREFIX/lib/aetherius/plugins for PREFIX/bin): a start
/// then compiles nothing, and one whose artifact is unusable compiles that
/// plugin into its cache as before.
#[test]
fn plugins_precompiled_beside_the_binary_are_loaded_without_compiling() {
    let scratch = Scratch::new();
    let binary = scratch.path("prefix/bin/aetherius");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    // A copy, not a symlink: the binary finds its prefix from where it is.
    std::fs::copy(env!("CARGO_BIN_EXE_aetherius"), &binary).unwrap();
    let cache = scratch.path("cache");
    let run = |args: &[&str]| {
        Command::new(&binary)
            .args(args)
            .current_dir(repo_root())
            .env("RUST_LOG", "warn")
            .env("XDG_CACHE_HOME", &cache)
            .output()
            .expect("run aetherius")
    };
    let cached = || files_under(&cache.join("aetherius"));

    let precompiled = run(&["plugin", "precompile"]);
    assert!(
        precompiled.status.success(),
        "{}",
        text(&precompiled.stderr)
    );
    let listed = text(&precompiled.stdout);
    let shipped = scratch.path("prefix/lib/aetherius/plugins");
    for name in [
        "type-filter",
        "reason-filter",
        "time-filter",
        "secret-guard",
        "severity-mapper",
    ] {
        let line = listed
            .lines()
            .find(|line| line.starts_with(&format!("builtin:{name}: ")))
            .unwrap_or_else(|| panic!("builtin:{name} in {listed}"));
        let artifact = PathBuf::from(line.split_once(": ").unwrap().1);
        assert!(
            artifact.starts_with(&shipped) && artifact.is_file(),
            "{line}"
        );
    }

    let replay = [
        "replay",
        "--config",
        "config/default.yaml",
        "--input",
        "examples/events.jsonl",
    ];
    let golden = std::fs::read_to_string(golden_path()).unwrap();
    let output = run(&replay);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout) == golden,
        "output differs from the golden file"
    );
    assert_eq!(cached(), Vec::<PathBuf>::new(), "nothing compiled");

    // An artifact that is not one (a damaged image, a file of another
    // build): that plugin is compiled, the others still come from the image.
    let artifact = listed
        .lines()
        .find_map(|line| line.strip_prefix("builtin:secret-guard: "))
        .unwrap();
    std::fs::write(artifact, b"not an artifact").unwrap();
    let output = run(&replay);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout) == golden,
        "output differs from the golden file"
    );
    assert_eq!(cached().len(), 1, "{:?}", cached());
}
