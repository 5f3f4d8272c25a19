//! Anyone who may create Events writes what the pipeline reads. Generated
//! hostile Events — huge or control-character messages, invalid Unicode,
//! thousands of labels, wrong types, absurd counts and timestamps, deep
//! nesting where the host does not look — go through decoding, the
//! occurrence core and the default chain (the real Wasm plugins) beside an
//! ordinary Event: nothing panics, each event takes bounded time, every
//! output line is valid JSON within the size limits, and the ordinary
//! neighbour is published every time.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aetherius::budget::ByteBudget;
use aetherius::clock::{SharedClock, SystemClock};
use aetherius::config::{Config, OutputFormat};
use aetherius::event::{EventLimits, MAX_FIELD, decode, format_millis};
use aetherius::pipeline::{Pipeline, PipelineClock, build_chains};
use aetherius::plugin::PluginRuntime;
use aetherius::sink::{Outlet, SinkMessage, SinkRoute};
use proptest::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A string of up to `max` characters from an alphabet that favours what
/// breaks parsers and scanners: quotes, backslashes, control characters,
/// surrogate-range escapes spelled out, long runs of token-like text.
fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{1b}[31m".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("\u{fffd}".to_owned()),
        Just("😀".to_owned()),
        Just("password=".to_owned()),
        Just("Bearer ".to_owned()),
        Just("eyJhbGciOiJIUzI1NiJ9.".to_owned()),
        Just("AKIA".to_owned()),
        prop::collection::vec(
            prop::sample::select(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".as_bytes()
            ),
            1..40
        )
        .prop_map(|bytes| String::from_utf8(bytes).expect("ASCII")),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..max).prop_map(|parts| parts.concat())
}

/// A message of any size class, up to 2 MiB.
fn message() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => nasty_text(40).prop_map(Value::from),
        1 => (nasty_text(8), 1usize..(2 * 1024 * 1024))
            .prop_map(|(unit, len)| {
                let unit = if unit.is_empty() { "x".to_owned() } else { unit };
                Value::from(unit.repeat(len / unit.len().max(1) + 1))
            }),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

/// Any JSON number or a value of the wrong type.
fn count() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!("5")),
        Just(json!({"n": 1})),
        Just(Value::Null),
    ]
}

/// A timestamp anywhere a Kubernetes time can be, or not a time at all.
fn timestamp(now: i64) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (-600_000i64..60_000).prop_map(move |offset| Value::from(format_millis(now + offset))),
        1 => Just(json!("0001-01-01T00:00:00Z")),
        1 => Just(json!("9999-12-31T23:59:59.999999Z")),
        1 => Just(json!("yesterday")),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

/// An ignored field nested up to 50,000 levels deep, as text (serde_json's
/// `Value` itself would stop at 128).
fn deep_nesting() -> impl Strategy<Value = String> {
    (0usize..50_000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)))
}

/// A hostile Event, as the bytes of one JSON line.
fn hostile_event(now: i64) -> impl Strategy<Value = Vec<u8>> {
    (
        message(),
        nasty_text(20),
        count(),
        timestamp(now),
        0usize..3000,
        deep_nesting(),
        prop_oneof![Just(json!("Warning")), Just(json!("Normal")), Just(json!(7))],
        prop_oneof![
            Just(0u8), // valid
            Just(1),   // a lone surrogate escape in the message
            Just(2),   // a byte that is not UTF-8
            Just(3),   // involvedObject of the wrong type
        ],
    )
        .prop_map(
            move |(message, reason, count, time, labels, deep, kind, breakage)| {
                let labels: serde_json::Map<String, Value> = (0..labels)
                    .map(|i| (format!("tenant.example/l{i}"), json!("v")))
                    .collect();
                let mut event = json!({
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": { "name": "hostile.1", "namespace": "tenant", "uid": "hostile",
                                  "resourceVersion": "1", "labels": labels },
                    "involvedObject": { "kind": "Pod", "name": reason.clone(), "namespace": "tenant" },
                    "reason": reason,
                    "message": message,
                    "type": kind,
                    "count": count,
                    "lastTimestamp": time,
                });
                if breakage == 3 {
                    event["involvedObject"] = json!("a string");
                }
                let mut text = event.to_string();
                // Deep nesting where the host does not look.
                text.insert_str(1, &format!("\"x-deep\":{deep},"));
                match breakage {
                    1 => text = text.replacen("\"message\":\"", "\"message\":\"\\ud800", 1),
                    2 => {
                        let mut bytes = text.into_bytes();
                        bytes.insert(bytes.len() / 2, 0xff);
                        return bytes;
                    }
                    _ => {}
                }
                text.into_bytes()
            },
        )
}

/// An ordinary Event the default chain publishes.
fn neighbour(n: u64, now: i64) -> Vec<u8> {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": format!("api-{n}.1"), "namespace": "payments", "uid": format!("n-{n}"),
                      "resourceVersion": "1" },
        "involvedObject": { "kind": "Pod", "name": format!("api-{n}"), "namespace": "payments" },
        "reason": "BackOff", "message": "Back-off restarting failed container",
        "type": "Warning", "count": 1, "lastTimestamp": format_millis(now),
    })
    .to_string()
    .into_bytes()
}

/// The default pipeline (config/default.yaml's chain) into one route whose
/// queue the test reads.
fn default_pipeline() -> (Pipeline, mpsc::Receiver<SinkMessage>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let yaml = std::fs::read_to_string(root.join("config/default.yaml")).unwrap();
    let config = Config::from_yaml(&yaml, Path::new("default.yaml"), root.join("config")).unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let runtime =
        PluginRuntime::new(Some(aetherius_tests::compile_cache()), clock.clone()).unwrap();
    let chains = build_chains(&config, &runtime).unwrap();
    let (sender, receiver) = mpsc::channel(1024);
    let route = SinkRoute {
        name: "out".into(),
        chain: "default".into(),
        format: OutputFormat::Standard,
        min_severity: None,
        subject: None,
        key: None,
        outlet: Outlet::Queue {
            sender,
            budget: ByteBudget::new(64 << 20),
        },
    };
    let pipeline = Pipeline::new(
        config.dedup,
        chains,
        vec![route],
        PipelineClock::Live(clock),
        config.plugin_runtime.batch_size,
    );
    (pipeline, receiver)
}

/// What the test reads of a published StandardEvent; `raw_data` stays
/// unparsed (it may be nested deeper than `Value` parses).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Published<'a> {
    labels: std::collections::BTreeMap<String, String>,
    annotations: std::collections::BTreeMap<String, String>,
    #[serde(borrow)]
    raw_data: &'a RawValue,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn hostile_events_never_break_decoding_the_core_or_the_default_chain() {
    // proptest's closure is `Fn`: the pipeline is borrowed mutably per case.
    let state = RefCell::new(default_pipeline());
    let limits = EventLimits::default();
    let now = now_ms();
    let case = AtomicU64::new(0);
    let config = ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(hostile in prop::collection::vec(hostile_event(now), 1..4))| {
        let n = case.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut events = Vec::new();
        for bytes in &hostile {
            // Decoding: an event, or an error; never a panic.
            if let Ok(event) = decode(bytes, "hostile", &limits) {
                prop_assert!(event.message.len() <= limits.max_message);
                prop_assert!(event.reason.len() <= MAX_FIELD);
                prop_assert!(event.involved.name.len() <= MAX_FIELD);
                prop_assert!(event.raw.get().len() <= limits.max_raw_data);
                // Valid JSON (RawValue: no depth limit, as nesting is allowed).
                serde_json::from_str::<&RawValue>(event.raw.get())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                events.push(event);
            }
        }
        let ordinary = decode(&neighbour(n, now_ms()), "hostile", &limits).unwrap();
        events.insert(events.len() / 2, ordinary);
        let (pipeline, published) = &mut *state.borrow_mut();
        pipeline.process(events, None);

        let mut neighbour_published = false;
        while let Ok(message) = published.try_recv() {
            let SinkMessage::Batch(batch) = message else { continue };
            for line in batch.bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                // raw_data, and the message once more, which JSON may escape
                // to six times its bytes (control characters).
                prop_assert!(line.len() < limits.max_raw_data + 6 * limits.max_message + 16 * 1024);
                let line: Published = serde_json::from_slice(line)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                if line.labels.get("involved_name") == Some(&format!("api-{n}")) {
                    neighbour_published = true;
                }
            }
        }
        prop_assert!(neighbour_published, "the ordinary event of case {n} was not published");
        // Bounded time: far below a plugin deadline per event, even for a
        // 2 MiB message (cut to 32 KiB before the chain).
        prop_assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    });
}
