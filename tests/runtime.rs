//! The plugin runtime against deliberately hostile guests: the host survives
//! each one and applies the configured failure policy, while the other events
//! of the batch keep flowing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aetherius::chain::{Chain, ChainOutput, Processed};
use aetherius::clock::ManualClock;
use aetherius::config::Config;
use aetherius::event::normalize;
use aetherius::occurrence::{Fingerprint, Occurrence, occurrence_id};
use aetherius::pipeline::build_chains;
use aetherius::plugin::{FailureKind, PluginRuntime};
use aetherius_tests::{Scratch, guests};

const START: i64 = 1_795_000_000_000;

/// A chain `test` of one stage running `guest` with the given extra YAML
/// (policy, limits...) for the stage.
fn one_stage(guest: &str, stage_yaml: &str) -> (Chain, ManualClock) {
    named_stage("guest", guest, stage_yaml)
}

/// [`one_stage`] with its own stage name, for tests that read the stage's
/// metrics while other tests run.
fn named_stage(name: &str, guest: &str, stage_yaml: &str) -> (Chain, ManualClock) {
    try_named_chain(name, guest, stage_yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn try_chain(guest: &str, stage_yaml: &str) -> Result<(Chain, ManualClock), String> {
    try_named_chain("guest", guest, stage_yaml)
}

fn try_named_chain(
    name: &str,
    guest: &str,
    stage_yaml: &str,
) -> Result<(Chain, ManualClock), String> {
    let yaml = format!(
        "plugins:\n  {name}:\n    source: {guest:?}\n{stage_yaml}\nchains:\n  test: [{name}]\nsinks:\n  out: {{ chain: test, stdout: {{}} }}\n  dead: {{ chain: dead-letter, stdout: {{}} }}\n"
    );
    let config =
        Config::from_yaml(&yaml, Path::new("test.yaml"), ".".into()).map_err(|e| e.to_string())?;
    let clock = ManualClock::new(START);
    let runtime = PluginRuntime::new(
        Some(aetherius_tests::compile_cache()),
        Arc::new(clock.clone()),
    )
    .map_err(|e| e.to_string())?;
    let mut chains = build_chains(&config, &runtime).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok((chains.remove(0), clock))
}

fn event(reason: &str, name: &str) -> Processed {
    let json = serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": format!("{name}.1"), "namespace": "default", "uid": format!("uid-{name}-{reason}"), "resourceVersion": "1" },
        "involvedObject": { "kind": "Pod", "name": name, "namespace": "default" },
        "reason": reason, "message": format!("{reason} on {name}"), "type": "Warning", "count": 1,
        "lastTimestamp": "2026-11-20T09:00:00Z",
    });
    let event = normalize(json.to_string().as_bytes(), "test").unwrap();
    let occurrence = Occurrence {
        id: occurrence_id(&event),
        fingerprint: Fingerprint::of(&event),
        repeated_count: None,
        event,
    };
    Processed::new(Arc::new(occurrence), 0)
}

fn names(items: &[Processed]) -> Vec<&str> {
    items
        .iter()
        .map(|p| p.occurrence.event.involved.name.as_str())
        .collect()
}

fn run(chain: &mut Chain, reasons: &[(&str, &str)]) -> ChainOutput {
    chain.run(
        reasons
            .iter()
            .map(|(reason, name)| event(reason, name))
            .collect(),
    )
}

#[test]
fn infinite_loop_is_stopped_and_fail_open_passes_events_on() {
    let (mut chain, _) = one_stage(guests::LOOP_FOREVER, "    on_failure: fail-open");
    let output = run(&mut chain, &[("BackOff", "a"), ("BackOff", "b")]);
    assert_eq!(names(&output.passed), ["a", "b"]);
    assert_eq!(output.failures, 2);
}

#[test]
fn memory_bomb_is_capped_and_fail_closed_drops_events() {
    let (mut chain, _) = one_stage(
        guests::MEMORY_BOMB,
        "    on_failure: fail-closed\n    limits: { memory: 16Mi }",
    );
    let output = run(&mut chain, &[("BackOff", "a")]);
    assert!(output.passed.is_empty());
    assert_eq!((output.dropped, output.failures), (1, 1));
    // The host is fine and the stage keeps answering (with a new instance).
    let again = run(&mut chain, &[("BackOff", "b")]);
    assert_eq!(again.dropped, 1);
}

#[test]
fn a_panic_on_one_event_spares_its_neighbours() {
    let (mut chain, _) = one_stage(guests::PANIC_FILTER, "    on_failure: fail-closed");
    let output = run(
        &mut chain,
        &[("BackOff", "a"), ("Boom", "b"), ("BackOff", "c")],
    );
    assert_eq!(names(&output.passed), ["a", "c"]);
    assert_eq!((output.dropped, output.failures), (1, 1));
}

#[test]
fn dead_letter_takes_the_poisonous_event_out_with_the_reason() {
    let (mut chain, _) = one_stage(guests::LOOP_ON_REASON, "    on_failure: dead-letter");
    let output = run(
        &mut chain,
        &[("BackOff", "a"), ("Boom", "b"), ("BackOff", "c")],
    );
    assert_eq!(names(&output.passed), ["a", "c"]);
    assert_eq!(output.dead_letters.len(), 1);
    let dead = &output.dead_letters[0];
    assert_eq!(dead.event.occurrence.event.involved.name, "b");
    assert_eq!(dead.stage, "guest");
    assert_eq!(dead.failure.kind, FailureKind::OutOfFuel);
}

#[test]
fn a_trapped_instance_is_recreated_with_fresh_state() {
    let (mut chain, _) = one_stage(guests::COUNTER_ENRICHER, "    on_failure: fail-open");
    let output = run(
        &mut chain,
        &[
            ("BackOff", "a"),
            ("BackOff", "b"),
            ("Boom", "x"),
            ("BackOff", "c"),
        ],
    );
    let seen: Vec<(&str, &str)> = output
        .passed
        .iter()
        .map(|p| {
            let seen = p
                .labels
                .iter()
                .find(|(k, _)| k == "seen")
                .map(|(_, v)| v.as_str())
                .unwrap_or("-");
            (p.occurrence.event.involved.name.as_str(), seen)
        })
        .collect();
    // The batch trapped; the events were retried one by one on a fresh
    // instance; `x` trapped again (fail-open: passed on unlabelled) and `c`
    // ran on yet another fresh instance.
    assert_eq!(seen, [("a", "1"), ("b", "2"), ("x", "-"), ("c", "1")]);
}

#[test]
fn invalid_output_is_refused() {
    let (mut chain, _) = one_stage(guests::BAD_ENRICHER, "    on_failure: fail-open");
    let output = run(&mut chain, &[("BackOff", "a")]);
    assert_eq!(names(&output.passed), ["a"]);
    assert!(
        output.passed[0].labels.is_empty(),
        "the invalid label was not applied"
    );
    assert_eq!(output.failures, 1);

    let (mut chain, _) = one_stage(guests::WRONG_LENGTH, "    on_failure: fail-closed");
    let output = run(&mut chain, &[("BackOff", "a"), ("BackOff", "b")]);
    assert!(output.passed.is_empty());
    assert_eq!(output.failures, 2);
}

#[test]
fn a_log_flood_is_contained() {
    // Enough fuel and time for 100,000 log calls per event (the debug-built
    // host the tests run takes ~2 µs a call): the host's per-call log budget,
    // not the CPU or time limit, is what contains this one.
    let (mut chain, _) = one_stage(
        guests::LOG_FLOOD,
        "    limits: { fuel_per_event: 1000000000, timeout: 5s }",
    );
    let output = run(&mut chain, &[("BackOff", "a"), ("BackOff", "b")]);
    assert_eq!(names(&output.passed), ["a", "b"]);
    assert_eq!(output.failures, 0);
}

#[test]
fn circuit_breaker_opens_and_retries_after_cooldown() {
    let (mut chain, clock) = one_stage(
        guests::LOOP_FOREVER,
        "    on_failure: fail-open\n    circuit_breaker: { failures: 2, cooldown: 30s }",
    );
    let output = run(
        &mut chain,
        &[("BackOff", "a"), ("BackOff", "b"), ("BackOff", "c")],
    );
    assert_eq!(output.passed.len(), 3, "fail-open passes everything");
    assert!(matches!(
        chain.stages()[0].breaker_state(),
        aetherius::plugin::BreakerState::Open { .. }
    ));
    // While open the plugin is not called at all: no fuel burnt.
    let output = run(&mut chain, &[("BackOff", "d")]);
    assert_eq!(output.failures, 1);
    clock.advance_by(31_000);
    run(&mut chain, &[("BackOff", "e")]);
    assert!(
        matches!(
            chain.stages()[0].breaker_state(),
            aetherius::plugin::BreakerState::Open { .. }
        ),
        "the trial call failed, so the breaker opened again"
    );
}

/// Runs `events` through `chain` and returns the output and how long it took.
fn timed_run(chain: &mut Chain, events: &[(&str, &str)]) -> (ChainOutput, Duration) {
    let started = Instant::now();
    let output = run(chain, events);
    (output, started.elapsed())
}

/// Events of `kind` stage `stage` failed on, from its failure counter.
fn failures(stage: &str, kind: &str) -> u64 {
    aetherius::metrics::PLUGIN_FAILURES
        .get(&[stage, kind])
        .unwrap_or(0)
}

/// A plugin that sleeps 10 s with `std::thread::sleep`: the wait ends its
/// call at once (plugins may not wait), its event gets the failure policy,
/// and its neighbours in the batch are kept. Before the deadline existed, 20
/// such events took over 3 minutes.
#[test]
fn a_sleeping_plugin_fails_its_call_instead_of_stalling_the_pipeline() {
    for (policy, passed, dropped, dead) in [
        ("fail-open", vec!["a", "b", "c"], 0, 0),
        ("fail-closed", vec!["a", "c"], 1, 0),
        ("dead-letter", vec!["a", "c"], 0, 1),
    ] {
        let stage = format!("sleeper-{policy}");
        let (mut chain, _) = named_stage(
            &stage,
            guests::SLEEP_ON_REASON,
            &format!("    on_failure: {policy}\n    limits: {{ timeout: 100ms }}"),
        );
        let (output, took) = timed_run(
            &mut chain,
            &[("BackOff", "a"), ("Sleep", "b"), ("BackOff", "c")],
        );
        assert_eq!(names(&output.passed), passed, "{policy}");
        assert_eq!(
            (output.dropped, output.dead_letters.len(), output.failures),
            (dropped, dead, 1),
            "{policy}"
        );
        // The batch and then `b` alone failed: two calls, each ended at once.
        assert!(took < Duration::from_secs(2), "{policy}: {took:?}");
        assert_eq!(failures(&stage, "timeout"), 1, "{policy}");
        if let Some(dead) = output.dead_letters.first() {
            assert_eq!(dead.failure.kind, FailureKind::Timeout);
            assert!(
                dead.failure.detail.contains("may not wait"),
                "{}",
                dead.failure.detail
            );
        }
    }
}

/// Waiting through `wasi:io/poll` directly — `pollable.block`, `poll`, or a
/// busy loop on `pollable.ready` — fails the call too; a subscription that
/// is ready at once still works.
#[test]
fn waiting_on_a_pollable_fails_the_call_and_a_ready_one_works() {
    let (mut chain, _) = one_stage(
        guests::WAIT_ON_REASON,
        "    on_failure: dead-letter\n    limits: { timeout: 100ms, fuel_per_event: 1000000000000000 }",
    );
    let (output, took) = timed_run(
        &mut chain,
        &[
            ("BackOff", "a"),
            ("Block", "b"),
            ("Poll", "p"),
            ("Zero", "z"),
            ("Spin", "s"),
            ("BackOff", "c"),
        ],
    );
    assert_eq!(names(&output.passed), ["a", "z", "c"]);
    let dead: Vec<(&str, FailureKind)> = output
        .dead_letters
        .iter()
        .map(|d| {
            (
                d.event.occurrence.event.involved.name.as_str(),
                d.failure.kind,
            )
        })
        .collect();
    assert_eq!(
        dead,
        [
            ("b", FailureKind::Timeout),
            ("p", FailureKind::Timeout),
            ("s", FailureKind::Timeout)
        ]
    );
    // The spin is stopped by the deadline: once in the batch, once alone.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// An infinite loop with all the fuel in the world: only the wall-clock
/// deadline stops it, within a few ticks of the deadline.
#[test]
fn an_infinite_loop_with_unlimited_fuel_is_stopped_by_the_deadline() {
    let (mut chain, _) = named_stage(
        "spinner",
        guests::LOOP_ON_REASON,
        "    on_failure: fail-closed\n    limits: { timeout: 50ms, fuel_per_event: 1000000000000000 }",
    );
    let (output, took) = timed_run(
        &mut chain,
        &[("BackOff", "a"), ("Boom", "b"), ("BackOff", "c")],
    );
    assert_eq!(names(&output.passed), ["a", "c"]);
    assert_eq!((output.dropped, output.failures), (1, 1));
    assert_eq!(failures("spinner", "timeout"), 1);
    // Two calls hit the deadline (the batch, then `b` alone).
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The instance was replaced and the stage goes on.
    let (again, _) = timed_run(&mut chain, &[("BackOff", "d")]);
    assert_eq!(names(&again.passed), ["d"]);
}

/// A plugin that keeps timing out opens its breaker, so that it costs the
/// pipeline a few deadlines, not one per event.
#[test]
fn a_plugin_that_always_times_out_costs_a_few_deadlines_not_one_per_event() {
    let (mut chain, _) = one_stage(
        guests::LOOP_FOREVER,
        "    on_failure: fail-open\n    limits: { timeout: 50ms, fuel_per_event: 1000000000000000 }\n    circuit_breaker: { failures: 3, cooldown: 30s }",
    );
    let events: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
    let events: Vec<(&str, &str)> = events.iter().map(|n| ("BackOff", n.as_str())).collect();
    let (output, took) = timed_run(&mut chain, &events);
    assert_eq!(output.passed.len(), 100, "fail-open passes everything");
    assert_eq!(output.failures, 100);
    // The batch and three events alone hit the deadline; the breaker then
    // skips the other 97.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn load_errors_name_the_stage_the_file_and_the_reason() {
    let scratch = Scratch::new();
    let garbage = scratch.write("garbage.wasm", b"this is not wasm");
    let cases = [
        (garbage.display().to_string(), "not WebAssembly"),
        (
            guests::WRONG_WORLD.to_owned(),
            "implements none of the plugin worlds",
        ),
        (
            guests::REJECT_CONFIG.to_owned(),
            "init rejected the config: this plugin rejects every config",
        ),
        (
            guests::FOREIGN_IMPORT.to_owned(),
            "it imports `acme:shell/run@0.1.0`, which plugins do not get",
        ),
        (
            scratch.path("missing.wasm").display().to_string(),
            "No such file",
        ),
    ];
    for (path, expected) in cases {
        let error = try_chain(&path, "").expect_err("loading must fail");
        assert!(error.contains("at `plugins.guest"), "{error}");
        assert!(
            error.contains(&path) || error.contains("missing.wasm"),
            "{error}"
        );
        assert!(error.contains(expected), "expected {expected:?} in {error}");
    }
}

#[test]
fn plugins_get_no_environment_files_network_or_stdio() {
    let (mut chain, _) = one_stage(guests::SANDBOX_PROBE, "");
    let output = run(&mut chain, &[("BackOff", "a")]);
    assert_eq!(output.failures, 0);
    let labels: std::collections::BTreeMap<&str, &str> = output.passed[0]
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels["env"], "empty");
    assert_eq!(labels["fs-root"], "denied");
    assert_eq!(labels["fs-cwd"], "denied");
    assert_eq!(labels["net"], "denied");
    // Writing to stdout "works" but goes nowhere: the host's stdout, where
    // the stdout sink writes events, never sees it (checked by the golden
    // replay, whose output holds nothing but events).
    assert_eq!(labels.len(), 5);
}

/// The version in a `package aetherius:plugin@X.Y.Z;` line.
fn contract_version(wit: &str) -> (u64, u64, u64) {
    let line = wit
        .lines()
        .find_map(|line| line.strip_prefix("package aetherius:plugin@"))
        .expect("a package line");
    let parts: Vec<u64> = line
        .trim_end_matches(';')
        .split('.')
        .map(|part| part.parse().expect("numeric version"))
        .collect();
    (parts[0], parts[1], parts[2])
}

/// A frozen guest's WIT and component: checks that the WIT is `version`
/// and older than the host's, and returns the component's bytes.
fn frozen_guest(dir: &str, version: (u64, u64, u64), wasm: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let host_wit = std::fs::read_to_string(root.join("wit/plugin.wit")).unwrap();
    let frozen_wit =
        std::fs::read_to_string(root.join("tests/plugins").join(dir).join("wit/plugin.wit"))
            .unwrap();
    assert_eq!(contract_version(&frozen_wit), version);
    assert!(
        contract_version(&host_wit) > version,
        "this test is about a host newer than the plugin"
    );
    std::fs::read(wasm).unwrap()
}

/// Whether the component's bytes name `import`.
fn imports(wasm: &[u8], import: &str) -> bool {
    wasm.windows(import.len()).any(|w| w == import.as_bytes())
}

/// Runs a frozen guest's stage over BackOff `a`, Pulled `x` and BackOff `b`
/// labelled `redact`: both guests drop `x` and redact `b`.
fn run_frozen(guest: &str, stage_yaml: &str) -> ChainOutput {
    let (mut chain, _) = one_stage(guest, stage_yaml);
    let mut redacted = event("BackOff", "b");
    redacted.labels.push(("redact".into(), "yes".into()));
    let output = chain.run(vec![event("BackOff", "a"), event("Pulled", "x"), redacted]);
    assert_eq!(names(&output.passed), ["a", "b"]);
    assert_eq!((output.dropped, output.failures), (1, 0));
    assert_eq!(output.passed[0].message, None);
    output
}

/// docs/plugin-versioning.md: a plugin built against `aetherius:plugin@0.1.0`
/// keeps loading, unchanged, in a host that has moved on to a newer contract.
/// The guest is compiled from a frozen copy of the 0.1.0 WIT with raw
/// wit-bindgen, so neither the SDK nor the host's WIT can drift under it.
#[test]
fn a_plugin_built_against_contract_0_1_0_runs_in_the_newer_host() {
    let wasm = frozen_guest("contract-0.1.0", (0, 1, 0), guests::CONTRACT_0_1_0);
    // The guest imports the 0.1.0 interfaces by name, and nothing newer.
    for interface in ["types", "batch", "host"] {
        assert!(imports(
            &wasm,
            &format!("aetherius:plugin/{interface}@0.1.0")
        ));
    }
    assert!(!imports(&wasm, "aetherius:plugin/batch@0.1.1"));

    let output = run_frozen(guests::CONTRACT_0_1_0, "    config: { note: frozen }");
    // `host.now` is the pipeline clock.
    assert_eq!(
        output.passed[1].message.as_deref(),
        Some(format!("redacted at {START}").as_str())
    );
}

/// A plugin built against `aetherius:plugin@0.1.1` (as every SDK 0.1 plugin
/// is) reads each field of each event with its own call; a host that has
/// moved on to column reads (0.1.2) keeps answering those calls the same.
#[test]
fn a_plugin_built_against_contract_0_1_1_reads_one_field_per_call() {
    let wasm = frozen_guest("contract-0.1.1", (0, 1, 1), guests::CONTRACT_0_1_1);
    assert!(imports(&wasm, "aetherius:plugin/batch@0.1.1"));
    assert!(!imports(&wasm, "aetherius:plugin/batch@0.1.2"));

    let output = run_frozen(guests::CONTRACT_0_1_1, "");
    assert_eq!(
        output.passed[1].message.as_deref(),
        Some(
            "Pod/b BackOff on b [Warning] x1 last=Some(1795165200000) first=None low annotation=None"
        )
    );
}
