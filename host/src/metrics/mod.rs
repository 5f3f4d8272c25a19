//! Prometheus metrics: the registry types, the catalog of every metric, and
//! readiness as the metrics see it.

mod catalog;
mod registry;

pub use catalog::*;
pub use registry::{Counter, Gauge, Histogram, Meta, Metric};

/// Every metric in the Prometheus text format (0.0.4), after refreshing
/// readiness.
pub fn render() -> String {
    READY.set(&[], if ready().is_ok() { 1.0 } else { 0.0 });
    let mut out = String::with_capacity(16 * 1024);
    for metric in ALL {
        metric.render(&mut out);
    }
    out
}

/// Ready: every watch of the clusters this replica leads has done its
/// initial list and its API server answers, and every sink's broker takes
/// messages. `Err` says what is not.
pub fn ready() -> Result<(), String> {
    let mut waiting = Vec::new();
    // A standby replica does not watch the clusters another one leads.
    let standing_by: Vec<String> = LEADER
        .series()
        .into_iter()
        .filter(|(_, leads)| *leads < 1.0)
        .map(|(labels, _)| labels[0].clone())
        .collect();
    for (labels, value) in WATCH_SYNCED.series() {
        if value < 1.0 && !standing_by.contains(&labels[0]) {
            let scope = if labels[1].is_empty() {
                "*"
            } else {
                &labels[1]
            };
            waiting.push(format!("watch {}/{scope} not synced", labels[0]));
        }
    }
    for (labels, value) in SINK_UP.series() {
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
    static TEST_HISTOGRAM: Histogram =
        Histogram::new("test_seconds", "A test.", &["plugin"], &[0.1, 1.0]);

    #[test]
    fn renders_the_text_format() {
        TEST_COUNTER.add(&["a\"b"], 2);
        TEST_COUNTER.inc(&["a\"b"]);
        TEST_HISTOGRAM.observe(&["p"], 0.05);
        TEST_HISTOGRAM.observe_n(&["p"], 0.5, 2);
        TEST_HISTOGRAM.observe(&["p"], 3.0);
        let mut out = String::new();
        Metric::Counter(&TEST_COUNTER).render(&mut out);
        Metric::Histogram(&TEST_HISTOGRAM).render(&mut out);
        assert_eq!(
            out,
            "# HELP test_total A test.\n# TYPE test_total counter\ntest_total{sink=\"a\\\"b\"} 3\n\
             # HELP test_seconds A test.\n# TYPE test_seconds histogram\n\
             test_seconds_bucket{plugin=\"p\",le=\"0.1\"} 1\n\
             test_seconds_bucket{plugin=\"p\",le=\"1\"} 3\n\
             test_seconds_bucket{plugin=\"p\",le=\"+Inf\"} 4\n\
             test_seconds_sum{plugin=\"p\"} 4.05\n\
             test_seconds_count{plugin=\"p\"} 4\n"
        );
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
