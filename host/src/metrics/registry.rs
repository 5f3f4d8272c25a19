//! The catalog's metric types: each a `static` naming one labelled family of
//! the `prometheus` crate's metrics, created on first use, so that any part
//! of the program records into it without plumbing.
//!
//! Recording by label values (`add`, `set`, `observe`) looks the series up
//! under the family's lock; that is for things that happen a few times a
//! second at most. Hot paths take the series' handle once with `series`
//! and then count into an atomic: the pipeline per cluster, plugin stages
//! per stage, sinks per sink.

use std::sync::OnceLock;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts};

/// What every metric has.
#[derive(Debug)]
pub struct Meta {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

impl Meta {
    fn opts(&self) -> Opts {
        Opts::new(self.name, self.help)
    }
}

/// A value that only goes up.
#[derive(Debug)]
pub struct Counter {
    meta: Meta,
    family: OnceLock<IntCounterVec>,
}

impl Counter {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            meta: Meta { name, help, labels },
            family: OnceLock::new(),
        }
    }

    fn family(&self) -> &IntCounterVec {
        self.family.get_or_init(|| {
            IntCounterVec::new(self.meta.opts(), self.meta.labels).expect("a valid metric")
        })
    }

    /// The series with these label values, to count into without a lookup.
    pub fn series(&self, labels: &[&str]) -> prometheus::IntCounter {
        self.family().with_label_values(labels)
    }

    /// Adds `n` to the series with these label values.
    pub fn add(&self, labels: &[&str], n: u64) {
        self.series(labels).inc_by(n);
    }

    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    /// Makes the series exist at 0, so that it is scraped before anything
    /// happens.
    pub fn touch(&self, labels: &[&str]) {
        self.series(labels);
    }

    /// The series' value, if it exists (reading does not create it).
    pub fn get(&self, labels: &[&str]) -> Option<u64> {
        find(&self.meta, self.family().collect(), labels)
            .map(|m| m.get_counter().get_value() as u64)
    }
}

/// A value that goes up and down.
#[derive(Debug)]
pub struct Gauge {
    meta: Meta,
    family: OnceLock<GaugeVec>,
}

impl Gauge {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self {
            meta: Meta { name, help, labels },
            family: OnceLock::new(),
        }
    }

    fn family(&self) -> &GaugeVec {
        self.family.get_or_init(|| {
            GaugeVec::new(self.meta.opts(), self.meta.labels).expect("a valid metric")
        })
    }

    /// The series with these label values, to set without a lookup.
    pub fn series(&self, labels: &[&str]) -> prometheus::Gauge {
        self.family().with_label_values(labels)
    }

    pub fn set(&self, labels: &[&str], value: f64) {
        self.series(labels).set(value);
    }

    /// Keeps only the series whose label values pass `keep` (a cluster no
    /// longer watched loses its series).
    pub fn retain(&self, keep: impl Fn(&[String]) -> bool) {
        for (labels, _) in self.all() {
            if !keep(&labels) {
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                let _ = self.family().remove_label_values(&labels);
            }
        }
    }

    /// The series' value, if it exists (reading does not create it).
    pub fn get(&self, labels: &[&str]) -> Option<f64> {
        find(&self.meta, self.family().collect(), labels).map(|m| m.get_gauge().get_value())
    }

    /// Every series: label values (in the metric's label order) and value.
    pub fn all(&self) -> Vec<(Vec<String>, f64)> {
        let families = self.family().collect();
        let metrics = families.iter().flat_map(|f| f.get_metric());
        metrics
            .map(|m| (values(&self.meta, m), m.get_gauge().get_value()))
            .collect()
    }
}

/// Observations counted into buckets, with their sum.
#[derive(Debug)]
pub struct Histogram {
    meta: Meta,
    /// Upper bounds, ascending; `+Inf` is implied.
    buckets: &'static [f64],
    family: OnceLock<HistogramVec>,
}

impl Histogram {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        Self {
            meta: Meta { name, help, labels },
            buckets,
            family: OnceLock::new(),
        }
    }

    fn family(&self) -> &HistogramVec {
        self.family.get_or_init(|| {
            let opts = HistogramOpts::from(self.meta.opts()).buckets(self.buckets.to_vec());
            HistogramVec::new(opts, self.meta.labels).expect("a valid metric")
        })
    }

    /// The series with these label values, to observe into without a lookup.
    pub fn series(&self, labels: &[&str]) -> prometheus::Histogram {
        self.family().with_label_values(labels)
    }

    pub fn observe(&self, labels: &[&str], value: f64) {
        self.series(labels).observe(value);
    }
}

/// Records `n` observations of `value` (a batch's average per event): the
/// crate has no weighted observation, so they are counted into `histogram`,
/// a local (unsynchronised) copy, and added to the shared series once.
pub fn observe_n(histogram: &prometheus::local::LocalHistogram, value: f64, n: u64) {
    for _ in 0..n {
        histogram.observe(value);
    }
    histogram.flush();
}

/// Any metric, for rendering and the catalog.
#[derive(Debug, Clone, Copy)]
pub enum Metric {
    Counter(&'static Counter),
    Gauge(&'static Gauge),
    Histogram(&'static Histogram),
}

impl Metric {
    pub fn meta(self) -> &'static Meta {
        match self {
            Self::Counter(m) => &m.meta,
            Self::Gauge(m) => &m.meta,
            Self::Histogram(m) => &m.meta,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Self::Counter(_) => "counter",
            Self::Gauge(_) => "gauge",
            Self::Histogram(_) => "histogram",
        }
    }

    /// The metric's families as they are now (none while it has no series).
    pub fn collect(self) -> Vec<MetricFamily> {
        match self {
            Self::Counter(m) => m.family().collect(),
            Self::Gauge(m) => m.family().collect(),
            Self::Histogram(m) => m.family().collect(),
        }
    }
}

/// The label values of `metric` in `meta`'s label order (the crate sorts
/// label pairs by name).
fn values(meta: &Meta, metric: &prometheus::proto::Metric) -> Vec<String> {
    meta.labels
        .iter()
        .map(|name| {
            metric
                .get_label()
                .iter()
                .find(|pair| pair.name() == *name)
                .map_or_else(String::new, |pair| pair.value().to_owned())
        })
        .collect()
}

/// The sample of the series with these label values.
fn find(
    meta: &Meta,
    families: Vec<MetricFamily>,
    labels: &[&str],
) -> Option<prometheus::proto::Metric> {
    families
        .into_iter()
        .flat_map(|mut family| family.take_metric())
        .find(|metric| {
            values(meta, metric)
                .iter()
                .map(String::as_str)
                .eq(labels.iter().copied())
        })
}
