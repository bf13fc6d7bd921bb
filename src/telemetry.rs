//! The server's Prometheus metrics (`GET /metrics`): one registry holding the HTTP layer's
//! counts and latencies, the writer's queue and commits, and the database's size on disk, read
//! when scraped. Recording is atomics only: no lock is taken on a request's or a commit's path,
//! but the read lock of a label set's map, which only a first-seen label set writes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

/// The media type of the OpenMetrics exposition, which Prometheus asks for first.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The media type of Prometheus' own text format, for every other client (`promtool`, `curl`).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of the request and commit latency buckets: from a cached read to a
/// batch that waits on a slow disk.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the metrics-per-commit buckets: a lone POST, groups of clients, and batches.
pub const GROUP_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0, 20000.0,
];

/// A histogram whose every bucket, sum and count is an atomic: prometheus-client's own takes a
/// mutex per observation, which every request of a route would contend for.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Buckets>);

#[derive(Debug)]
struct Buckets {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative), the last for those above every bound.
    counts: Box<[AtomicU64]>,
    /// The sum, in units of `unit`, so that adding is one fetch_add.
    sum: AtomicU64,
    unit: f64,
}

impl Histogram {
    /// Counts of whole things (metrics per commit) in buckets bounded by `bounds`.
    pub fn counts(bounds: &'static [f64]) -> Histogram {
        Histogram::with_unit(bounds, 1.0)
    }

    /// Durations, exposed in seconds, in buckets bounded by `bounds` seconds.
    pub fn seconds(bounds: &'static [f64]) -> Histogram {
        Histogram::with_unit(bounds, 1e-9)
    }

    fn with_unit(bounds: &'static [f64], unit: f64) -> Histogram {
        Histogram(Arc::new(Buckets {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            unit,
        }))
    }

    /// Records `count` things.
    pub fn observe(&self, count: u64) {
        let bucket = self
            .0
            .bounds
            .iter()
            .position(|bound| count as f64 * self.0.unit <= *bound)
            .unwrap_or(self.0.bounds.len());
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.0.sum.fetch_add(count, Ordering::Relaxed);
    }

    /// Records a duration (of a histogram made by [`Histogram::seconds`]).
    pub fn observe_duration(&self, duration: Duration) {
        self.observe(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .0
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum.load(Ordering::Relaxed) as f64 * self.0.unit;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// What the writer thread reports: filled in by [`crate::db::writer`], registered by
/// [`Telemetry::new`].
#[derive(Debug, Clone)]
pub struct WriterStats {
    /// Changes waiting for the writer.
    pub queued: Gauge,
    /// Metrics stored by each commit that stored some.
    pub metrics_per_commit: Histogram,
    /// How long writing and committing a group took.
    pub commit_seconds: Histogram,
    /// Metrics committed since the server started.
    pub metrics_stored: Counter,
    /// Groups whose commit failed (a full disk, an I/O error), none of whose writes was stored.
    pub failed_commits: Counter,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            queued: Gauge::default(),
            metrics_per_commit: Histogram::counts(GROUP_BUCKETS),
            commit_seconds: Histogram::seconds(LATENCY_BUCKETS),
            metrics_stored: Counter::default(),
            failed_commits: Counter::default(),
        }
    }
}

/// The labels of a request's count: its method, the route's pattern (never the raw path, whose
/// hashes and names would make a series per value) and the status answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// GET, POST...
    pub method: String,
    /// The matched pattern, such as `/api/v1/sessions/{session_h}/metrics`; `unmatched` for a
    /// path no route has.
    pub route: String,
    /// The HTTP status.
    pub status: u16,
}

/// The labels of a request's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// GET, POST...
    pub method: String,
    /// As in [`RequestLabels::route`].
    pub route: String,
}

/// Every metric the server exposes, and the registry that writes them out.
pub struct Telemetry {
    registry: Registry,
    /// Requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Time from a request's arrival to its answer's headers.
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    database_bytes: Gauge,
    wal_bytes: Gauge,
    path: PathBuf,
}

impl Telemetry {
    /// The registry of a server whose writer reports to `writer` and whose database file is
    /// `path`.
    pub fn new(writer: &WriterStats, path: &Path) -> Telemetry {
        let mut registry = Registry::with_prefix("monitor_server");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::seconds(LATENCY_BUCKETS));
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer, by method and route pattern",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register(
            "writer_queue_depth",
            "Writes waiting for the writer thread",
            writer.queued.clone(),
        );
        registry.register(
            "writer_metrics_per_commit",
            "Metrics stored by each commit of the writer that stored some",
            writer.metrics_per_commit.clone(),
        );
        registry.register_with_unit(
            "writer_commit_duration",
            "Time to write and commit one group of writes",
            Unit::Seconds,
            writer.commit_seconds.clone(),
        );
        registry.register(
            "metrics_stored",
            "Metrics committed since the server started",
            writer.metrics_stored.clone(),
        );
        registry.register(
            "writer_failed_commits",
            "Groups of writes whose commit failed (full disk, I/O error); none of them was stored",
            writer.failed_commits.clone(),
        );
        let database_bytes = Gauge::default();
        registry.register_with_unit(
            "database_size",
            "Size of the SQLite database file",
            Unit::Bytes,
            database_bytes.clone(),
        );
        let wal_bytes = Gauge::default();
        registry.register_with_unit(
            "wal_size",
            "Size of the SQLite write-ahead log (0 once checkpointed and truncated)",
            Unit::Bytes,
            wal_bytes.clone(),
        );
        Telemetry {
            registry,
            requests,
            latency,
            database_bytes,
            wal_bytes,
            path: path.to_owned(),
        }
    }

    /// The exposition with the file sizes read now: in the OpenMetrics text format with
    /// `openmetrics`, else in Prometheus' text format.
    pub fn render(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        self.database_bytes.set(file_size(&self.path));
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        self.wal_bytes.set(file_size(Path::new(&wal)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(if openmetrics {
            text
        } else {
            prometheus_text(&text)
        })
    }
}

/// An OpenMetrics exposition in Prometheus' text format 0.0.4, which names a counter's family
/// after its `_total` sample and has neither `# UNIT` nor `# EOF`: read as it is, a counter's
/// samples would belong to no family, with no type and no help.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let described = ["# HELP ", "# TYPE "].into_iter().find_map(|marker| {
            let (name, rest) = line.strip_prefix(marker)?.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{marker}{name}_total {rest}"))
        });
        match described {
            Some(line) => text.push_str(&line),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// A file's size in bytes; 0 when it does not exist (a WAL after a clean shutdown).
fn file_size(path: &Path) -> i64 {
    std::fs::metadata(path)
        .map(|meta| i64::try_from(meta.len()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_each_observation_in_the_first_bucket_that_holds_it() {
        let histogram = Histogram::seconds(&[0.001, 0.01]);
        histogram.observe_duration(Duration::from_micros(500));
        histogram.observe_duration(Duration::from_millis(1));
        histogram.observe_duration(Duration::from_millis(5));
        histogram.observe_duration(Duration::from_secs(1));
        let mut registry = Registry::default();
        registry.register_with_unit("t", "t", Unit::Seconds, histogram);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("t_seconds_bucket{le=\"0.001\"} 2"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"0.01\"} 3"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 4"), "{text}");
        assert!(text.contains("t_seconds_count 4"), "{text}");
        assert!(text.contains("t_seconds_sum 1.0065"), "{text}");
    }
}
