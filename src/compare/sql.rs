//! Reading a side's metrics: per test, the mean of each metric over each run.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use super::sides::SessionRow;

/// A test, as compared: machine (empty when contexts are ignored), module, variant.
pub(super) type TestKey = (String, String, String);

/// What is known of a test on one side.
#[derive(Debug, Default)]
pub(super) struct SideValues {
    /// Per run (by index): the sums of wall time, CPU time and memory, and how many metrics.
    pub(super) per_run: BTreeMap<usize, ([f64; 3], usize)>,
    pub(super) item: String,
    pub(super) item_fs_loc: String,
    pub(super) component: String,
}

impl SideValues {
    /// Each run's mean (a test run several times in one run, by a rerun or in several sessions
    /// of one SCM reference, counts once, as its mean).
    pub(super) fn run_means(&self, metric: usize) -> Vec<f64> {
        self.per_run
            .values()
            .map(|(sums, n)| sums[metric] / *n as f64)
            .collect()
    }
}

/// Reads the metrics of `sessions`, grouped by test, each run's values apart.
///
/// A side may hold tens of thousands of metrics over a few thousand tests: a row's text is
/// read in place and looked up through one reused buffer, so that only a test seen for the first
/// time allocates.
pub(super) fn gather(
    conn: &Connection,
    sessions: &[SessionRow],
    ignore_context: bool,
) -> rusqlite::Result<(BTreeMap<TestKey, SideValues>, Vec<String>)> {
    let mut runs: Vec<String> = Vec::new();
    let mut tests: Vec<(TestKey, SideValues)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut lookup = String::new();
    let mut stmt = conn.prepare_cached(
        "SELECT context_h, item_path, item_variant, item, item_fs_loc, component, total_time, \
         user_time + kernel_time, mem_usage FROM metrics \
         WHERE session_id = (SELECT id FROM session_hashes WHERE h = ?) ORDER BY id",
    )?;
    for session in sessions {
        let name = session.run_name();
        let run = match runs.iter().position(|r| *r == name) {
            Some(run) => run,
            None => {
                runs.push(name);
                runs.len() - 1
            }
        };
        let mut rows = stmt.query([&session.session_h])?;
        while let Some(row) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<&str> {
                row.get_ref(i)?.as_str().map_err(|err| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(err),
                    )
                })
            };
            let context_h = if ignore_context { "" } else { text(0)? };
            lookup.clear();
            for part in [context_h, text(1)?, text(2)?] {
                lookup.push_str(part);
                lookup.push('\0');
            }
            let at = match index.get(lookup.as_str()) {
                Some(at) => *at,
                None => {
                    let key = (
                        context_h.to_owned(),
                        text(1)?.to_owned(),
                        text(2)?.to_owned(),
                    );
                    let values = SideValues {
                        item: text(3)?.to_owned(),
                        item_fs_loc: text(4)?.to_owned(),
                        component: text(5)?.to_owned(),
                        ..SideValues::default()
                    };
                    tests.push((key, values));
                    index.insert(lookup.clone(), tests.len() - 1);
                    tests.len() - 1
                }
            };
            let (sums, n) = tests[at].1.per_run.entry(run).or_insert(([0.0; 3], 0));
            for (i, sum) in sums.iter_mut().enumerate() {
                *sum += row.get::<_, f64>(6 + i)?;
            }
            *n += 1;
        }
    }
    Ok((tests.into_iter().collect(), runs))
}
