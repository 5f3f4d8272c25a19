//! The plugin author's kit as an author uses it: `aetherius plugin new`
//! crates built with both `cargo build --target wasm32-wasip2` and `cargo
//! component build`, checked with `aetherius plugin test --expect`, changed,
//! and run through `aetherius replay`; `plugin test` under the real runtime's
//! limits and policies; and the Python example plugin, built with
//! componentize-py, against the same contract.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aetherius_tests::servers::ServerBinary;
use aetherius_tests::{Scratch, guests, repo_root};
use serde_json::Value;

fn aetherius(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aetherius"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env("XDG_CACHE_HOME", aetherius_tests::compile_cache())
        .output()
        .expect("run aetherius")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// `aetherius plugin test WASM --input events.jsonl --config @config.yaml
/// EXTRA...` in `dir`: a scaffolded crate or an example, which hold those
/// files.
fn plugin_test(wasm: &str, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "plugin",
        "test",
        wasm,
        "--input",
        "events.jsonl",
        "--config",
        "@config.yaml",
    ];
    args.extend_from_slice(extra);
    aetherius(&args, dir)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Every scaffolded crate builds into this one target folder (kept between
/// runs), so the SDK and its dependencies compile once per target.
fn kit_target() -> PathBuf {
    repo_root().join("target").join("plugin-kit")
}

/// `cargo ARGS` in `dir`, as an author runs it: none of the variables the
/// surrounding `cargo test` set for its own build.
fn cargo(args: &[&str], dir: &Path) {
    let mut command = Command::new("cargo");
    command
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", kit_target());
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
    ] {
        command.env_remove(var);
    }
    let output = command.output().expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {} in {} failed:\n{}",
        args.join(" "),
        dir.display(),
        text(&output.stderr)
    );
}

#[test]
fn a_scaffolded_plugin_of_each_kind_builds_both_ways_and_passes_its_expectations() {
    let scratch = Scratch::new();
    for kind in ["filter", "severity-mapper", "enricher"] {
        let name = format!("my-{kind}");
        let created = succeeded(&aetherius(
            &["plugin", "new", &name, "--kind", kind],
            scratch.dir.path(),
        ));
        assert!(
            created.contains(&format!("created the {kind} plugin")),
            "{created}"
        );
        let crate_dir = scratch.path(&name);
        for file in [
            "Cargo.toml",
            "README.md",
            "src/lib.rs",
            "config.yaml",
            "events.jsonl",
            "expected.jsonl",
        ] {
            assert!(crate_dir.join(file).is_file(), "{name}/{file} missing");
        }

        // Its own unit tests, natively.
        cargo(&["test", "--quiet"], &crate_dir);
        // Both ways of building a component.
        cargo(
            &["build", "--target", "wasm32-wasip2", "--release", "--quiet"],
            &crate_dir,
        );
        cargo(&["component", "build", "--release", "--quiet"], &crate_dir);

        let file = format!("{}.wasm", name.replace('-', "_"));
        for target in ["wasm32-wasip2", "wasm32-wasip1"] {
            let wasm = kit_target().join(target).join("release").join(&file);
            let wasm = wasm.to_str().unwrap();
            let output = plugin_test(wasm, &crate_dir, &["--expect", "expected.jsonl"]);
            let stdout = succeeded(&output);
            assert!(
                text(&output.stderr).contains("all 6 events as expected"),
                "{kind} ({target}): {}",
                text(&output.stderr)
            );
            assert!(stdout.contains("6 events:"), "{stdout}");
        }
    }
}

/// The guide's path: scaffold, change the plugin, see `plugin test --expect`
/// catch the change, update the expectation, then run the plugin in a
/// pipeline with `replay`.
#[test]
fn a_changed_plugin_is_caught_by_its_expectations_and_runs_in_replay() {
    let scratch = Scratch::new();
    succeeded(&aetherius(
        &["plugin", "new", "team-label", "--kind", "enricher"],
        scratch.dir.path(),
    ));
    let crate_dir = scratch.path("team-label");
    // The change: the label becomes `owner`.
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    assert!(source.contains(r#"with_label("team", team)"#));
    std::fs::write(
        &lib,
        source.replace(
            r#"with_label("team", team)"#,
            r#"with_label("owner", team)"#,
        ),
    )
    .unwrap();
    cargo(
        &["build", "--target", "wasm32-wasip2", "--release", "--quiet"],
        &crate_dir,
    );
    let wasm = kit_target().join("wasm32-wasip2/release/team_label.wasm");
    let wasm = wasm.to_str().unwrap();
    let output = plugin_test(wasm, &crate_dir, &["--expect", "expected.jsonl"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "MISMATCH event at input line 1 (BackOff Pod/web-1), expected.jsonl:1: `labels.team` expected \"web\", got null"
        ),
        "{stderr}"
    );

    // `--format json` output is an expectation file as it stands.
    let json = succeeded(&plugin_test(wasm, &crate_dir, &["--format", "json"]));
    let results = json_lines(&json);
    assert_eq!(results.len(), 6);
    assert_eq!(results[0]["labels"]["owner"], "web");
    std::fs::write(crate_dir.join("expected.jsonl"), &json).unwrap();
    succeeded(&plugin_test(
        wasm,
        &crate_dir,
        &["--expect", "expected.jsonl"],
    ));

    // Into a pipeline, after the built-in severity mapper.
    let config = scratch.write(
        "pipeline.yaml",
        format!(
            "plugins:\n  severity: {{ source: builtin:severity-mapper }}\n  team-label:\n    source: {wasm}\n    config: {{ owners: {{ shop: web }} }}\nchains:\n  default: [severity, team-label]\nsinks:\n  out: {{ chain: default, stdout: {{}} }}\n"
        ),
    );
    let config = config.to_str().unwrap();
    succeeded(&aetherius(&["check", "--config", config], &crate_dir));
    let published = json_lines(&succeeded(&aetherius(
        &["replay", "--config", config, "--input", "events.jsonl"],
        &crate_dir,
    )));
    assert_eq!(published.len(), 6);
    let owners: Vec<&str> = published
        .iter()
        .map(|event| event["labels"]["owner"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(owners, ["web", "web", "-", "-", "-", "web"]);
}

fn write_events(scratch: &Scratch, name: &str, reasons: &[&str]) -> PathBuf {
    let lines: String = reasons
        .iter()
        .enumerate()
        .map(|(i, reason)| {
            serde_json::json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": { "name": format!("e{i}"), "namespace": "default", "uid": format!("u{i}") },
                "involvedObject": { "kind": "Pod", "name": format!("p{i}"), "namespace": "default" },
                "reason": reason, "message": "m", "type": "Warning", "count": 1,
                "lastTimestamp": "2026-11-20T09:00:00Z",
            })
            .to_string()
                + "\n"
        })
        .collect();
    scratch.write(name, lines)
}

#[test]
fn plugin_test_applies_the_runtimes_limits_and_failure_policies() {
    let scratch = Scratch::new();
    let events = write_events(&scratch, "events.jsonl", &["BackOff", "Boom", "BackOff"]);
    let events = events.to_str().unwrap();
    let run = |plugin: &str, extra: &[&str]| {
        let mut args = vec![
            "plugin", "test", plugin, "--input", events, "--format", "json",
        ];
        args.extend_from_slice(extra);
        json_lines(&succeeded(&aetherius(&args, scratch.dir.path())))
    };

    // A plugin that spins on `Boom`: stopped by fuel, the batch retried one
    // by one, so only that event fails; fail-open (the default) keeps it.
    let results = run(guests::LOOP_ON_REASON, &[]);
    let decisions: Vec<&str> = results
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["kept", "failed", "kept"]);
    assert_eq!(results[1]["failure"]["kind"], "out_of_fuel");
    assert_eq!(results[1]["policy"], "fail-open");
    assert_eq!(results[1]["outcome"], "kept");
    let results = run(guests::LOOP_ON_REASON, &["--on-failure", "dead-letter"]);
    assert_eq!(results[1]["outcome"], "dead-lettered");
    // With fuel to spare, the wall-clock deadline stops it.
    let results = run(
        guests::LOOP_ON_REASON,
        &["--fuel-per-event", "1000000000000000", "--timeout", "50ms"],
    );
    assert_eq!(results[1]["failure"]["kind"], "timeout");
    assert_eq!(results[1]["outcome"], "kept");

    // A plugin that sleeps on `Sleep`: the call fails at once.
    let sleepy = write_events(&scratch, "sleepy.jsonl", &["BackOff", "Sleep", "BackOff"]);
    let results = json_lines(&succeeded(&aetherius(
        &[
            "plugin",
            "test",
            guests::SLEEP_ON_REASON,
            "--input",
            sleepy.to_str().unwrap(),
            "--format",
            "json",
        ],
        scratch.dir.path(),
    )));
    assert_eq!(results[1]["failure"]["kind"], "timeout");
    let detail = results[1]["failure"]["detail"].as_str().unwrap();
    assert!(detail.contains("may not wait"), "{detail}");

    // A memory bomb under a 16 MiB cap, fail-closed (fuel enough for the
    // cap, not the CPU limit, to be what stops it).
    let results = run(
        guests::MEMORY_BOMB,
        &[
            "--memory",
            "16Mi",
            "--on-failure",
            "fail-closed",
            "--fuel-per-event",
            "1000000000",
        ],
    );
    assert!(
        results
            .iter()
            .all(|r| r["failure"]["kind"] == "out_of_memory" && r["outcome"] == "dropped"),
        "{results:?}"
    );

    // A config the plugin rejects stops the run with its message.
    let output = aetherius(
        &[
            "plugin",
            "test",
            "builtin:reason-filter",
            "--input",
            events,
            "--config",
            "{deny: BackOff}",
        ],
        scratch.dir.path(),
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("init rejected the config"), "{stderr}");
    assert!(stderr.contains("`deny`"), "{stderr}");

    // Built-in plugins can be tried the same way.
    let results = run("builtin:reason-filter", &["--config", "deny: [Boom]"]);
    assert_eq!(results[1]["decision"], "dropped");
    assert_eq!(
        results[1]["drop_reason"],
        "reason `Boom` matches deny pattern `Boom`"
    );
}

/// Builds examples/python-plugin with componentize-py against the host's
/// WIT, as its README says.
fn build_python_example(scratch: &Scratch) -> PathBuf {
    let example = repo_root().join("examples/python-plugin");
    let wasm = scratch.path("reason_filter.wasm");
    let output = Command::new(ServerBinary::ComponentizePy.path())
        .arg("-d")
        .arg(repo_root().join("wit"))
        .args(["-w", "filter", "componentize", "app", "-o"])
        .arg(&wasm)
        .current_dir(&example)
        .output()
        .expect("run componentize-py");
    assert!(
        output.status.success(),
        "componentize-py failed:\n{}",
        text(&output.stderr)
    );
    wasm
}

#[test]
fn the_python_example_plugin_decides_like_the_rust_one() {
    let scratch = Scratch::new();
    let wasm = build_python_example(&scratch);
    let wasm = wasm.to_str().unwrap();
    let example = repo_root().join("examples/python-plugin");

    // Its own expectations, under the default limits.
    let output = plugin_test(wasm, &example, &["--expect", "expected.jsonl"]);
    succeeded(&output);
    assert!(text(&output.stderr).contains("all 6 events as expected"));

    // A config it rejects.
    let output = aetherius(
        &[
            "plugin",
            "test",
            wasm,
            "--input",
            "events.jsonl",
            "--config",
            "{alow: [x]}",
        ],
        &example,
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("unknown field `alow`"),
        "{}",
        text(&output.stderr)
    );

    // The default pipeline's reason filter swapped for the Python one: the
    // 371-event sample gives the same published events.
    let default = std::fs::read_to_string(repo_root().join("config/default.yaml")).unwrap();
    let swapped = default.replacen(
        "source: builtin:reason-filter",
        &format!("source: {wasm}"),
        1,
    );
    assert_ne!(
        swapped, default,
        "config/default.yaml uses builtin:reason-filter"
    );
    let rust = scratch.write("rust.yaml", &default);
    let python = scratch.write("python.yaml", &swapped);
    let sample = repo_root().join("examples/events.jsonl");
    let replay = |config: &Path| {
        let output = aetherius(
            &[
                "replay",
                "--config",
                config.to_str().unwrap(),
                "--input",
                sample.to_str().unwrap(),
            ],
            &repo_root(),
        );
        (succeeded(&output), text(&output.stderr))
    };
    let (rust_out, _) = replay(&rust);
    let (python_out, python_summary) = replay(&python);
    assert!(
        python_summary.contains("plugin failures 0"),
        "{python_summary}"
    );
    assert!(!rust_out.is_empty());
    assert!(
        python_out == rust_out,
        "the Python reason filter published something else than builtin:reason-filter"
    );
}
