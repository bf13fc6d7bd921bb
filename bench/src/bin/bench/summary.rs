//! The last table: every target of the performance issue, the measured value, PASS or MISS.

use crate::curve::CurveRow;
use crate::headline::{Batches, Load};
use crate::ours::mb;
use crate::size_label;

#[derive(Default)]
pub(crate) struct Summary {
    pub(crate) post_ours: Option<Load>,
    pub(crate) get_ours: Option<Load>,
    pub(crate) post_ceiling: Option<Load>,
    pub(crate) reference: Option<(Load, Load)>,
    /// Idle after start-up, and idle again after the load.
    pub(crate) idle_kb: Option<u64>,
    pub(crate) idle_after_kb: Option<u64>,
    pub(crate) load_kb: Option<u64>,
    pub(crate) batch: Option<Batches>,
    pub(crate) bytes_per_metric: Option<f64>,
    pub(crate) binary_size: Option<u64>,
    pub(crate) curve: Vec<CurveRow>,
}

impl Summary {
    pub(crate) fn print(&self, reference_asked: bool) {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut add = |target: &str, measured: String, verdict: String| {
            rows.push((target.to_owned(), measured, verdict));
        };
        let pass = |ok: bool| if ok { "PASS" } else { "MISS" }.to_owned();
        let not_run = || ("not measured".to_owned(), "-".to_owned());

        // Throughput against the reference and the ceiling.
        match (&self.post_ours, &self.reference) {
            (Some(ours), Some((post_ref, _))) => {
                let ratio = ours.rps / post_ref.rps;
                add(
                    "POST /metrics/ >= 50x the reference (16 conns)",
                    format!("{ratio:.1}x ({:.0} vs {:.0} req/s)", ours.rps, post_ref.rps),
                    pass(ratio >= 50.0),
                );
            }
            _ => {
                let (m, v) = not_run();
                let m = if reference_asked {
                    m
                } else {
                    "no --reference".into()
                };
                add("POST /metrics/ >= 50x the reference (16 conns)", m, v);
            }
        }
        match (&self.post_ours, &self.post_ceiling) {
            (Some(ours), Some(ceiling)) => {
                let share = 100.0 * ours.rps / ceiling.rps;
                add(
                    "POST /metrics/ >= 50% of the parse-only ceiling",
                    format!("{share:.1}% ({:.0} vs {:.0} req/s)", ours.rps, ceiling.rps),
                    pass(share >= 50.0),
                );
            }
            _ => {
                let (m, v) = not_run();
                add("POST /metrics/ >= 50% of the parse-only ceiling", m, v);
            }
        }
        match &self.batch {
            Some(batch) => add(
                "POST /metrics/batch >= 200,000 metrics/s",
                format!(
                    "{:.0} metrics/s ({} x {})",
                    batch.metrics_per_s, batch.batches, batch.size
                ),
                pass(batch.metrics_per_s >= 200_000.0),
            ),
            None => {
                let (m, v) = not_run();
                add("POST /metrics/batch >= 200,000 metrics/s", m, v);
            }
        }
        match &self.batch {
            Some(batch) => add(
                "POST /metrics/batch >= 150,000 metrics/s (40-hex data)",
                format!("{:.0} metrics/s", batch.metrics_per_s),
                pass(batch.metrics_per_s >= 150_000.0),
            ),
            None => {
                let (m, v) = not_run();
                add(
                    "POST /metrics/batch >= 150,000 metrics/s (40-hex data)",
                    m,
                    v,
                );
            }
        }
        match self.bytes_per_metric {
            Some(bytes) => add(
                "<= 250 bytes per stored metric",
                format!("{bytes:.0} bytes"),
                pass(bytes <= 250.0),
            ),
            None => {
                let (m, v) = not_run();
                add("<= 250 bytes per stored metric", m, v);
            }
        }
        match (&self.get_ours, &self.reference) {
            (Some(ours), Some((_, get_ref))) => {
                let ratio = ours.rps / get_ref.rps;
                add(
                    "GET /metrics/?page=1 (500 rows) >= 20x the reference",
                    format!("{ratio:.1}x ({:.0} vs {:.0} req/s)", ours.rps, get_ref.rps),
                    pass(ratio >= 20.0),
                );
            }
            _ => {
                let (m, v) = not_run();
                let m = if reference_asked {
                    m
                } else {
                    "no --reference".into()
                };
                add("GET /metrics/?page=1 (500 rows) >= 20x the reference", m, v);
            }
        }

        // The curve: latency at the largest size, flatness from the smallest to the largest.
        let largest = self.curve.last();
        let smallest = self.curve.first();
        let at_10m = largest.is_some_and(|row| row.size >= 10_000_000);
        // Verdicts measured below 10M are marked, and say at which size.
        let mark = |ok: bool| {
            if at_10m {
                pass(ok)
            } else {
                format!("{}*", pass(ok))
            }
        };
        match largest {
            Some(row) => {
                let worst = row.page1.0.max(row.middle.0).max(row.last.0);
                add(
                    "any page of a 10M store < 5 ms p50",
                    format!(
                        "{}: page 1 {:.2}, middle {:.2}, -1 {:.2} ms",
                        size_label(row.size),
                        row.page1.0,
                        row.middle.0,
                        row.last.0
                    ),
                    mark(worst < 5.0),
                );
            }
            None => {
                let (m, v) = not_run();
                add("any page of a 10M store < 5 ms p50", m, v);
            }
        }
        match (smallest, largest) {
            (Some(small), Some(large)) if self.curve.len() > 1 => {
                // Flat: the largest store within twice the smallest's time, plus 0.5 ms of noise.
                let flat = |a: f64, b: f64| b <= 2.0 * a + 0.5;
                add(
                    "count O(1) (/metrics/count p50)",
                    format!(
                        "{} {:.2} ms -> {} {:.2} ms",
                        size_label(small.size),
                        small.count.0,
                        size_label(large.size),
                        large.count.0
                    ),
                    mark(flat(small.count.0, large.count.0)),
                );
                add(
                    "total_page O(1) (page 1 p50, which carries it)",
                    format!(
                        "{} {:.2} ms -> {} {:.2} ms",
                        size_label(small.size),
                        small.page1.0,
                        size_label(large.size),
                        large.page1.0
                    ),
                    mark(flat(small.page1.0, large.page1.0)),
                );
            }
            _ => {
                let (m, v) = not_run();
                add("count and total_page O(1)", m, v);
            }
        }

        // Memory: the headline's, and every store's of the curve.
        let at_start = self
            .idle_kb
            .into_iter()
            .chain(self.curve.iter().filter_map(|r| r.idle_kb))
            .max();
        let idle = at_start.into_iter().chain(self.idle_after_kb).max();
        let peak = self
            .load_kb
            .into_iter()
            .chain(self.curve.iter().filter_map(|r| r.peak_kb))
            .max();
        match idle {
            Some(kb) => add(
                "RSS idle < 20 MB",
                format!(
                    "{} at start (worst store), {} idle after the load",
                    mb(at_start),
                    mb(self.idle_after_kb)
                ),
                pass(kb < 20 * 1024),
            ),
            None => {
                let (m, v) = not_run();
                add("RSS idle < 20 MB", m, v);
            }
        }
        match peak {
            Some(kb) => add(
                "RSS during the load < 100 MB",
                format!("{:.1} MB (peak, VmHWM)", kb as f64 / 1024.0),
                pass(kb < 100 * 1024),
            ),
            None => {
                let (m, v) = not_run();
                add("RSS during the load < 100 MB", m, v);
            }
        }
        match largest {
            Some(row) => add(
                "start-up on a 10M store < 200 ms",
                format!(
                    "{}: {:.0} ms to the first answer ({:.0} ms to listening)",
                    size_label(row.size),
                    row.first_answer_ms,
                    row.listening_ms
                ),
                mark(row.first_answer_ms < 200.0),
            ),
            None => {
                let (m, v) = not_run();
                add("start-up on a 10M store < 200 ms", m, v);
            }
        }
        if let Some(size) = self.binary_size {
            add(
                "release binary < 15 MB",
                format!("{:.1} MB", size as f64 / 1e6),
                pass(size < 15_000_000),
            );
        }

        println!("targets");
        println!("{:<54} {:<58} verdict", "target", "measured");
        for (target, measured, verdict) in &rows {
            println!("{target:<54} {measured:<58} {verdict}");
        }
        if !at_10m && largest.is_some() {
            println!("* measured on the largest store of this run, not on 10M (--with-10m)");
        }
    }
}
