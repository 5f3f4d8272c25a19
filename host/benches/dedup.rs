//! `cargo bench -p aetherius --bench dedup`: what the occurrence core (the
//! duplicate suppression's memory) costs at its bound.
//!
//! Distinct objects (one fingerprint each) go through an `OccurrenceCore`
//! with the default settings (`dedup.max_entries` 100,000, TTL 5 min, the
//! event-time clock standing still): first up to the bound, then as many
//! again, which must evict one for one. Printed after each step: the heap
//! bytes the process holds (a counting allocator: exactly what is
//! allocated and not freed) and its RSS, both over the same figures before
//! the core existed.

use std::sync::Arc;

use aetherius::clock::ManualClock;
use aetherius::event::normalize;
use aetherius::occurrence::{Admission, DedupConfig, OccurrenceCore};
use aetherius_tests::counting::{Counting, held};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Resident and anonymous bytes of this process.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("RssAnon:"))
}

fn mib(bytes: i64) -> String {
    format!("{:+.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One Warning event about object `i` (its own fingerprint).
fn event(i: usize) -> aetherius::event::Event {
    let json = format!(
        r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"api-{i}.17f3a","namespace":"payments","uid":"5b0e4f1c-{i:012}","resourceVersion":"{i}"}},"involvedObject":{{"kind":"Pod","name":"api-7d9f-{i}","namespace":"payments","uid":"a1b2c3d4-{i:012}","apiVersion":"v1"}},"reason":"BackOff","message":"Back-off restarting failed container app in pod api-7d9f-{i}","type":"Warning","count":1,"firstTimestamp":"2026-11-30T12:00:00Z","lastTimestamp":"2026-11-30T12:00:00Z","source":{{"component":"kubelet","host":"node-1"}}}}"#
    );
    normalize(json.as_bytes(), "bench").unwrap()
}

fn main() {
    let config = DedupConfig::default();
    let bound = config.max_entries;
    let clock = ManualClock::new(1_795_000_000_000);
    // Warm the allocator and the decoder before the baseline.
    drop(event(0));
    let (held_before, (rss_before, anon_before)) = (held(), rss());
    let mut core = OccurrenceCore::new(config, Arc::new(clock));
    let report = |label: &str, core: &OccurrenceCore| {
        let bytes = held() - held_before;
        let (rss, anon) = rss();
        let each = match core.len() {
            0 => "-".to_owned(),
            n => format!("{:.0} B", bytes as f64 / n as f64),
        };
        println!(
            "{label:<44} {:>7} fingerprints  heap held {:>10}  ({each:>6} each)  RSS {}  anonymous {}",
            core.len(),
            mib(bytes as i64),
            mib(rss as i64 - rss_before as i64),
            mib(anon as i64 - anon_before as i64),
        );
    };
    report("empty core (its queue's room reserved)", &core);
    let mut published = 0usize;
    let mut admitting = std::time::Duration::ZERO;
    let mut admit = |core: &mut OccurrenceCore, range: std::ops::Range<usize>| {
        for i in range {
            let event = event(i);
            let started = std::time::Instant::now();
            let admission = core.admit(event);
            admitting += started.elapsed();
            if let Admission::New(_) = admission {
                published += 1;
            }
        }
    };
    admit(&mut core, 1..bound / 2 + 1);
    report("half the bound", &core);
    admit(&mut core, bound / 2 + 1..bound + 1);
    report("at the bound (100k live)", &core);
    admit(&mut core, bound + 1..2 * bound + 1);
    report("after as many again (evicting one for one)", &core);
    admit(&mut core, 2 * bound + 1..4 * bound + 1);
    report("after 400k distinct in all", &core);
    assert_eq!(published, 4 * bound, "every distinct object published once");
    println!(
        "admit (fingerprint, lookup, insert or evict), mean over {} events: {:.0} ns",
        4 * bound,
        admitting.as_nanos() as f64 / (4 * bound) as f64
    );
}
