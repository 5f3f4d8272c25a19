//! Counters, gauges and histograms with fixed label names, rendered in the
//! Prometheus text format. Each is a `static` (see `catalog`), so any part of
//! the program records into it without plumbing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Label values, in the order of the metric's label names.
type Key = Vec<String>;

fn key(values: &[&str]) -> Key {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// What every metric has.
#[derive(Debug)]
pub struct Meta {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

/// The series of one metric, by label values.
#[derive(Debug)]
struct Family<V> {
    meta: Meta,
    values: Mutex<BTreeMap<Key, V>>,
}

impl<V: Default> Family<V> {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            meta: Meta { name, help, labels },
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Applies `change` to the series (created at its default first).
    fn update(&self, labels: &[&str], change: impl FnOnce(&mut V)) {
        debug_assert_eq!(labels.len(), self.meta.labels.len(), "{}", self.meta.name);
        let mut values = self.values.lock().expect("not poisoned");
        match find(&mut values, labels) {
            Some(value) => change(value),
            None => change(values.entry(key(labels)).or_default()),
        }
    }

    fn read<R>(&self, labels: &[&str], read: impl FnOnce(Option<&V>) -> R) -> R {
        let mut values = self.values.lock().expect("not poisoned");
        read(find(&mut values, labels).map(|v| &*v))
    }

    /// Header and one sample per series (counters and gauges).
    fn render_plain(&self, out: &mut String, kind: &str, value: impl Fn(&V) -> String) {
        header(out, &self.meta, kind);
        for (labels, v) in self.values.lock().expect("not poisoned").iter() {
            sample(
                out,
                self.meta.name,
                self.meta.labels,
                labels,
                None,
                &value(v),
            );
        }
    }
}

/// A value that only goes up.
#[derive(Debug)]
pub struct Counter(Family<u64>);

impl Counter {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self(Family::new(name, help, labels))
    }

    /// Adds `n` to the series with these label values.
    pub fn add(&self, labels: &[&str], n: u64) {
        self.0.update(labels, |value| *value += n);
    }

    pub fn inc(&self, labels: &[&str]) {
        self.add(labels, 1);
    }

    /// Makes the series exist at 0, so that it is scraped before anything
    /// happens.
    pub fn touch(&self, labels: &[&str]) {
        self.add(labels, 0);
    }

    /// The series' value.
    pub fn get(&self, labels: &[&str]) -> Option<u64> {
        self.0.read(labels, |v| v.copied())
    }

    fn render(&self, out: &mut String) {
        self.0.render_plain(out, "counter", u64::to_string);
    }
}

/// A value that goes up and down.
#[derive(Debug)]
pub struct Gauge(Family<f64>);

impl Gauge {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Self {
        Self(Family::new(name, help, labels))
    }

    pub fn set(&self, labels: &[&str], value: f64) {
        self.0.update(labels, |slot| *slot = value);
    }

    /// Keeps only the series whose label values pass `keep` (a cluster no
    /// longer watched loses its series).
    pub fn retain(&self, keep: impl Fn(&[String]) -> bool) {
        self.0
            .values
            .lock()
            .expect("not poisoned")
            .retain(|labels, _| keep(labels));
    }

    /// The series' value.
    pub fn get(&self, labels: &[&str]) -> Option<f64> {
        self.0.read(labels, |v| v.copied())
    }

    /// Every series: label values and value.
    pub fn series(&self) -> Vec<(Vec<String>, f64)> {
        let values = self.0.values.lock().expect("not poisoned");
        values.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn render(&self, out: &mut String) {
        self.0
            .render_plain(out, "gauge", |value| format_float(*value));
    }
}

/// Observations counted into buckets, with their sum.
#[derive(Debug)]
pub struct Histogram {
    family: Family<Buckets>,
    /// Upper bounds, ascending; `+Inf` is implied.
    buckets: &'static [f64],
}

#[derive(Debug, Default)]
struct Buckets {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Self {
        Self {
            family: Family::new(name, help, labels),
            buckets,
        }
    }

    /// Records `n` observations of `value` at once (a batch's average).
    pub fn observe_n(&self, labels: &[&str], value: f64, n: u64) {
        if n == 0 {
            return;
        }
        let bucket = self.buckets.iter().position(|bound| value <= *bound);
        self.family.update(labels, |entry| {
            entry.counts.resize(self.buckets.len(), 0);
            if let Some(i) = bucket {
                entry.counts[i] += n;
            }
            entry.sum += value * n as f64;
            entry.count += n;
        });
    }

    pub fn observe(&self, labels: &[&str], value: f64) {
        self.observe_n(labels, value, 1);
    }

    fn render(&self, out: &mut String) {
        let meta = &self.family.meta;
        header(out, meta, "histogram");
        let bucket_name = format!("{}_bucket", meta.name);
        let mut names = meta.labels.to_vec();
        names.push("le");
        for (labels, buckets) in self.family.values.lock().expect("not poisoned").iter() {
            let mut cumulative = 0;
            for (bound, count) in self.buckets.iter().zip(&buckets.counts) {
                cumulative += count;
                sample(
                    out,
                    &bucket_name,
                    &names,
                    labels,
                    Some(&format_float(*bound)),
                    &cumulative.to_string(),
                );
            }
            sample(
                out,
                &bucket_name,
                &names,
                labels,
                Some("+Inf"),
                &buckets.count.to_string(),
            );
            sample(
                out,
                &format!("{}_sum", meta.name),
                meta.labels,
                labels,
                None,
                &format_float(buckets.sum),
            );
            sample(
                out,
                &format!("{}_count", meta.name),
                meta.labels,
                labels,
                None,
                &buckets.count.to_string(),
            );
        }
    }
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
            Self::Counter(m) => &m.0.meta,
            Self::Gauge(m) => &m.0.meta,
            Self::Histogram(m) => &m.family.meta,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Self::Counter(_) => "counter",
            Self::Gauge(_) => "gauge",
            Self::Histogram(_) => "histogram",
        }
    }

    pub fn render(self, out: &mut String) {
        match self {
            Self::Counter(m) => m.render(out),
            Self::Gauge(m) => m.render(out),
            Self::Histogram(m) => m.render(out),
        }
    }
}

/// The series with these label values, found without allocating a key
/// (a metric has a handful of series).
fn find<'m, V>(map: &'m mut BTreeMap<Key, V>, labels: &[&str]) -> Option<&'m mut V> {
    map.iter_mut()
        .find(|(key, _)| key.iter().map(String::as_str).eq(labels.iter().copied()))
        .map(|(_, value)| value)
}

fn header(out: &mut String, meta: &Meta, kind: &str) {
    let _ = writeln!(out, "# HELP {} {}", meta.name, meta.help);
    let _ = writeln!(out, "# TYPE {} {kind}", meta.name);
}

fn sample(
    out: &mut String,
    name: &str,
    names: &[&str],
    values: &[String],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    let pairs = names
        .iter()
        .zip(values.iter().map(String::as_str).chain(le));
    let mut first = true;
    for (label, value) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(label);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

fn format_float(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}
