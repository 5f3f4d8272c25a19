//! A rough native timing of `redact` over ordinary kubelet messages and the
//! messages of `examples/events.jsonl`. Ignored by default; run with
//!
//! ```text
//! cargo test --release --manifest-path plugins/Cargo.toml -p secret-guard \
//!     --target-dir target/wasm --test bench -- --ignored --nocapture
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

const ORDINARY: [&str; 5] = [
    "Back-off restarting failed container app in pod web-0_default(1a2b)",
    "Readiness probe failed: HTTP probe failed with statuscode: 503",
    "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available",
    "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found",
    "Error: ErrImagePull",
];

fn example_messages() -> Vec<String> {
    include_str!("../../../examples/events.jsonl")
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["message"]
                .as_str()
                .or(event["note"].as_str())
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// Best of several rounds of about 20 000 calls each, in ns per message.
fn time(messages: &[&str]) -> f64 {
    let repeats = 20_000 / messages.len() + 1;
    let mut best = Duration::MAX;
    for _ in 0..10 {
        let start = Instant::now();
        for _ in 0..repeats {
            for message in messages {
                black_box(secret_guard::redact(black_box(message)));
            }
        }
        best = best.min(start.elapsed());
    }
    best.as_nanos() as f64 / (repeats * messages.len()) as f64
}

#[test]
#[ignore = "timing, run by hand with --release"]
fn redact_ns_per_message() {
    let examples = example_messages();
    let all: Vec<&str> = examples.iter().map(String::as_str).collect();
    let clean: Vec<&str> = all
        .iter()
        .copied()
        .filter(|message| secret_guard::redact(message).is_none())
        .collect();
    let bytes = |set: &[&str]| set.iter().map(|m| m.len()).sum::<usize>() / set.len().max(1);
    println!(
        "ordinary kubelet messages ({} msgs, avg {} B): {:8.1} ns/msg",
        ORDINARY.len(),
        bytes(&ORDINARY),
        time(&ORDINARY)
    );
    println!(
        "events.jsonl, all        ({} msgs, avg {} B): {:8.1} ns/msg",
        all.len(),
        bytes(&all),
        time(&all)
    );
    println!(
        "events.jsonl, no secret  ({} msgs, avg {} B): {:8.1} ns/msg",
        clean.len(),
        bytes(&clean),
        time(&clean)
    );
}
