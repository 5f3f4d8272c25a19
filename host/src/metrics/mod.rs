//! Prometheus metrics: the registry types, the catalog of every metric, and
//! readiness as the metrics see it.

mod catalog;
mod registry;

pub use catalog::*;
pub use registry::{Counter, Gauge, Histogram, Meta, Metric, observe_n};

use std::sync::LazyLock;

use prometheus::core::Collector;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds` and the rest of the standard process metrics, read
/// from /proc at each scrape.
static PROCESS: LazyLock<prometheus::process_collector::ProcessCollector> =
    LazyLock::new(prometheus::process_collector::ProcessCollector::for_self);

/// Every metric with at least one series, and the process metrics, in the
/// Prometheus text format (0.0.4), after refreshing readiness.
pub fn render() -> String {
    READY.set(&[], if ready().is_ok() { 1.0 } else { 0.0 });
    let mut families: Vec<_> = ALL.iter().flat_map(|metric| metric.collect()).collect();
    families.extend(PROCESS.collect());
    families.retain(|family| !family.get_metric().is_empty());
    refine_cpu_seconds(&mut families);
    let mut out = String::with_capacity(16 * 1024);
    prometheus::TextEncoder::new()
        .encode_utf8(&families, &mut out)
        .expect("the families are well-formed");
    out
}

/// The crate's collector counts CPU time in whole seconds (an open upstream
/// issue, tikv/rust-prometheus#451): a process using a few percent of a
/// core would show as idle with a one-second step now and then. The same
/// /proc figures to the clock tick (10 ms) instead.
fn refine_cpu_seconds(families: &mut [prometheus::proto::MetricFamily]) {
    let Ok(stat) = procfs::process::Process::myself().and_then(|me| me.stat()) else {
        return;
    };
    let seconds = (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64;
    let cpu = families
        .iter_mut()
        .filter(|family| family.name() == "process_cpu_seconds_total")
        .flat_map(|family| family.mut_metric().iter_mut());
    for metric in cpu {
        let mut counter = prometheus::proto::Counter::default();
        counter.set_value(seconds);
        metric.set_counter(counter);
    }
}

/// Ready: every watch of the clusters this replica leads has done its
/// initial list and its API server answers, and every sink's broker takes
/// messages. `Err` says what is not.
pub fn ready() -> Result<(), String> {
    let mut waiting = Vec::new();
    // A standby replica does not watch the clusters another one leads.
    let standing_by: Vec<String> = LEADER
        .all()
        .into_iter()
        .filter(|(_, leads)| *leads < 1.0)
        .map(|(labels, _)| labels[0].clone())
        .collect();
    for (labels, value) in WATCH_SYNCED.all() {
        if value < 1.0 && !standing_by.contains(&labels[0]) {
            let scope = if labels[1].is_empty() {
                "*"
            } else {
                &labels[1]
            };
            waiting.push(format!("watch {}/{scope} not synced", labels[0]));
        }
    }
    for (labels, value) in SINK_UP.all() {
        if value < 1.0 {
            waiting.push(format!("sink {} cannot publish", labels[0]));
        }
    }
    if waiting.is_empty() {
        Ok(())
    } else {
        Err(waiting.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST_COUNTER: Counter = Counter::new("test_total", "A test.", &["sink"]);
    static TEST_GAUGE: Gauge = Gauge::new("test_gauge", "A test.", &["cluster_id", "namespace"]);

    #[test]
    fn counts_reads_and_forgets_series() {
        TEST_COUNTER.add(&["a\"b"], 2);
        let handle = TEST_COUNTER.series(&["a\"b"]);
        handle.inc();
        assert_eq!(TEST_COUNTER.get(&["a\"b"]), Some(3));
        assert_eq!(
            TEST_COUNTER.get(&["never"]),
            None,
            "reading creates nothing"
        );
        TEST_GAUGE.set(&["x", "ns"], 1.0);
        TEST_GAUGE.set(&["y", ""], 0.5);
        assert_eq!(TEST_GAUGE.get(&["y", ""]), Some(0.5));
        TEST_GAUGE.retain(|labels| labels[0] != "x");
        assert_eq!(
            TEST_GAUGE.all(),
            vec![(vec!["y".to_owned(), String::new()], 0.5)]
        );
    }

    #[test]
    fn renders_the_text_format_with_the_process_metrics() {
        BUILD_INFO.set(&["test"], 1.0);
        let text = render();
        assert!(
            text.contains("# TYPE aetherius_build_info gauge\n"),
            "{text}"
        );
        assert!(text.contains("aetherius_ready "), "{text}");
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}: {text}");
        }
        // CPU time to the tick, not in whole seconds: 100 ms of work shows.
        let cpu = || -> f64 {
            render()
                .lines()
                .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        let before = cpu();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spent = cpu() - before;
        assert!(spent > 0.0 && spent < 1.0, "{spent}");
    }

    #[test]
    fn every_metric_is_in_the_docs_with_its_labels() {
        let docs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"),
        )
        .expect("docs/metrics.md");
        for metric in ALL {
            let meta = metric.meta();
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` ", meta.name)))
                .unwrap_or_else(|| panic!("{} is not in docs/metrics.md", meta.name));
            assert!(row.contains(metric.kind()), "{row}: kind {}", metric.kind());
            for label in meta.labels {
                assert!(row.contains(&format!("`{label}`")), "{row}: label {label}");
            }
        }
    }
}
