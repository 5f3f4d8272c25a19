//! `cargo bench -p aetherius --bench metadata`: what the workload metadata
//! cache (contract 0.1.4's `metadata`) costs.
//!
//! - Heap held per 10,000 objects, at 10k and at 100k (the default
//!   `metadata.max_objects`), for Pods with the metadata a Deployment's Pods
//!   carry (five labels, three annotations, an owner) and one ReplicaSet
//!   and Deployment per ten Pods; a counting allocator measures exactly what
//!   is allocated and not freed. Past the bound nothing more is kept.
//! - A lookup with its owner chain (Pod → ReplicaSet → Deployment).
//! - `builtin:workload-enricher` per event: one event per call, and per
//!   event in a batch of 128 — every event's Pod in the cache.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use aetherius::clock::ManualClock;
use aetherius::config::Config;
use aetherius::event::normalize;
use aetherius::item::Processed;
use aetherius::metadata::{Kind, MetadataCache, ObjectMeta};
use aetherius::occurrence::{Fingerprint, Occurrence};
use aetherius::pipeline::build_chains;
use aetherius::plugin::PluginRuntime;
use aetherius_tests::counting::{Counting, held};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NAMESPACE: &str = "payments";

fn pairs(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Deployment `d`'s ReplicaSet name, and Pod `i`'s name.
fn replica_set(d: usize) -> String {
    format!("checkout-api-{d}-7d9f8c6b5")
}

fn pod(i: usize) -> String {
    format!("{}-x{i:05}", replica_set(i / 10))
}

/// Keeps `objects` objects: per ten Pods, their ReplicaSet and Deployment.
fn fill(cache: &MetadataCache, cluster: &Arc<str>, objects: usize) -> usize {
    let mut kept = 0;
    let mut i = 0;
    while kept < objects {
        let d = i / 10;
        let labels = pairs(&[
            ("app.kubernetes.io/name", format!("checkout-api-{d}")),
            ("app.kubernetes.io/instance", "prod".into()),
            ("app.kubernetes.io/part-of", "checkout".into()),
            ("pod-template-hash", "7d9f8c6b5".into()),
            ("team", "payments".into()),
        ]);
        if i % 10 == 0 {
            cache.put(
                cluster,
                Kind::Deployment,
                NAMESPACE,
                &format!("checkout-api-{d}"),
                ObjectMeta {
                    uid: format!("00000000-0000-0000-0000-{d:012}"),
                    labels: labels[..3].to_vec(),
                    ..ObjectMeta::default()
                },
            );
            cache.put(
                cluster,
                Kind::ReplicaSet,
                NAMESPACE,
                &replica_set(d),
                ObjectMeta {
                    uid: format!("10000000-0000-0000-0000-{d:012}"),
                    labels: labels.clone(),
                    controller: Some(("Deployment".into(), format!("checkout-api-{d}"))),
                    ..ObjectMeta::default()
                },
            );
            kept += 2;
        }
        cache.put(
            cluster,
            Kind::Pod,
            NAMESPACE,
            &pod(i),
            ObjectMeta {
                uid: format!("20000000-0000-0000-0000-{i:012}"),
                labels,
                annotations: pairs(&[
                    ("prometheus.io/scrape", "true".into()),
                    (
                        "kubectl.kubernetes.io/restartedAt",
                        "2026-11-30T12:00:00Z".into(),
                    ),
                    (
                        "checksum/config",
                        "9f2c6e0b5a4d3c2b1a09f8e7d6c5b4a39f2c6e0b5a4d3c2b1a09f8e7d6c5b4a3".into(),
                    ),
                ]),
                controller: Some(("ReplicaSet".into(), replica_set(d))),
                node: Some(format!(
                    "ip-10-0-{}-{}.eu-west-1.compute.internal",
                    i % 200,
                    i % 250
                )),
            },
        );
        kept += 1;
        i += 1;
    }
    i
}

fn event(i: usize) -> Processed {
    let json = format!(
        r#"{{"apiVersion":"v1","kind":"Event","metadata":{{"name":"e-{i}","namespace":"{NAMESPACE}","uid":"e-{i}","resourceVersion":"{i}"}},"involvedObject":{{"kind":"Pod","name":"{}","namespace":"{NAMESPACE}","apiVersion":"v1"}},"reason":"BackOff","message":"Back-off restarting failed container app","type":"Warning","count":1,"firstTimestamp":"2026-11-30T12:00:00Z","lastTimestamp":"2026-11-30T12:00:00Z","source":{{"component":"kubelet","host":"node-1"}}}}"#,
        pod(i)
    );
    let event = normalize(json.as_bytes(), "bench").unwrap();
    let occurrence = Occurrence {
        id: format!("id-{i}"),
        fingerprint: Fingerprint::of(&event),
        repeated_count: None,
        event,
    };
    Processed::new(Arc::new(occurrence), i % 128)
}

fn main() {
    let cluster: Arc<str> = Arc::from("bench");
    println!("machine: 2 cores\n");
    for objects in [10_000, 100_000] {
        let before = held();
        let cache = MetadataCache::new(objects);
        fill(&cache, &cluster, objects);
        let bytes = held() - before;
        println!(
            "{:>7} objects kept: heap {:.2} MiB, {:.2} MiB per 10k objects ({:.0} B each)",
            cache.len(),
            bytes as f64 / (1024.0 * 1024.0),
            bytes as f64 / (1024.0 * 1024.0) / (cache.len() as f64 / 10_000.0),
            bytes as f64 / cache.len() as f64
        );
        // Past the bound: refused, nothing more held (the refusals'
        // counter series is made by the first).
        cache.put(&cluster, Kind::Pod, "other", "first", ObjectMeta::default());
        let at_bound = held();
        let refused = (0..1000)
            .filter(|i| {
                !cache.put(
                    &cluster,
                    Kind::Pod,
                    "other",
                    &format!("p{i}"),
                    ObjectMeta::default(),
                )
            })
            .count();
        assert_eq!(refused, 1000, "the bound holds");
        assert_eq!(held(), at_bound, "nothing kept past it");
        drop(cache);
    }

    // Lookups with the owner chain.
    let cache = MetadataCache::new(100_000);
    let pods = fill(&cache, &cluster, 100_000);
    let names: Vec<String> = (0..pods).map(pod).collect();
    let rounds = 5;
    let start = Instant::now();
    for _ in 0..rounds {
        for name in &names {
            black_box(cache.resolve("bench", "Pod", NAMESPACE, name, ""));
        }
    }
    println!(
        "resolve (Pod -> ReplicaSet -> Deployment), 100k objects: {:.0} ns per lookup",
        start.elapsed().as_nanos() as f64 / (rounds * pods) as f64
    );

    // The enricher, as a chain stage.
    let yaml = "plugins:\n  workloads:\n    source: builtin:workload-enricher\n    config: { labels: [app.kubernetes.io/name, team] }\nchains:\n  main: [workloads]\nsinks:\n  out: { chain: main, stdout: {} }\n";
    let config = Config::from_yaml(yaml, Path::new("bench.yaml"), ".".into()).unwrap();
    let runtime = PluginRuntime::new(None, Arc::new(ManualClock::new(0)))
        .unwrap()
        .with_metadata(cache.clone());
    let mut chain = build_chains(&config, &runtime).unwrap().remove(0);
    let batch: Vec<Processed> = (0..128).map(event).collect();
    let check = chain.run(batch.clone());
    assert_eq!(
        check.passed[0]
            .labels
            .iter()
            .find(|(k, _)| k == "workload_name")
            .map(|(_, v)| v.as_str()),
        Some("checkout-api-0"),
        "enriched"
    );
    let iterations = 20_000;
    let inputs: Vec<Vec<Processed>> = (0..iterations).map(|i| vec![event(i % 1000)]).collect();
    let start = Instant::now();
    for input in inputs {
        black_box(chain.run(input));
    }
    let call = start.elapsed().as_nanos() as f64 / iterations as f64;
    let rounds = 500;
    let inputs: Vec<Vec<Processed>> = (0..rounds).map(|_| batch.clone()).collect();
    let start = Instant::now();
    for input in inputs {
        black_box(chain.run(input));
    }
    let batched = start.elapsed().as_nanos() as f64 / (rounds * batch.len()) as f64;
    println!(
        "builtin:workload-enricher: {call:.0} ns/call (1 event), {batched:.0} ns/event (batch of 128)"
    );
}
