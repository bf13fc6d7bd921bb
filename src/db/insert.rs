//! Storing metrics: the one insert every metric goes through, and the counts kept beside the
//! metrics ([`MetricTallies`]), added up in memory and written once per transaction.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection};

use crate::db::ids::NameIds;
use crate::models::{is_canonical_iso8601, Metric};

/// The changes that stored and deleted metrics make to the rows kept beside them — the
/// `metrics` counter, the `metric_facets` counts and the `component_sessions` pairs of stored
/// metrics — added up in memory by [`insert_metrics`] (+1 a metric) and
/// [`MetricEraser`](crate::db::MetricEraser) (−1) and written by [`MetricTallies::apply`].
///
/// Adding up first is what makes a write cheap: the writer applies the tallies of a whole group
/// of requests once, before it commits, so ten metrics of one session, component and kind cost
/// one upsert per distinct value instead of eight per metric (what an insert trigger did), and a
/// session of 10,000 metrics deleted costs a few hundred updates instead of 40,000 (what the
/// delete trigger did). The pairs of `component_sessions` a delete may end are the eraser's to
/// check, since only a look at the metrics left can tell.
#[derive(Debug, Default)]
pub struct MetricTallies {
    /// Metrics stored minus metrics deleted.
    metrics: i64,
    /// For each facet field (the order of [`FACET_FIELDS`]), the change in metrics per value.
    facets: [HashMap<String, i64>; 6],
    /// Component → the sessions that stored metrics of it.
    component_sessions: HashMap<String, HashSet<String>>,
    /// The ids of the names metrics were stored with, kept from one transaction to the next
    /// (unlike the counts, which [`MetricTallies::apply`] empties).
    ids: NameIds,
}

/// The `field` names of `metric_facets`, in the order of [`MetricTallies`]'s maps and of the
/// columns [`MetricEraser`](crate::db::MetricEraser) reads back from a deleted row.
const FACET_FIELDS: [&str; 6] = [
    "component",
    "item",
    "item_variant",
    "kind",
    "context_h",
    "session_h",
];

impl MetricTallies {
    /// Counts one stored metric.
    fn count(&mut self, m: &Metric) {
        self.add(
            [
                m.component.as_str(),
                &m.item,
                &m.item_variant,
                &m.kind,
                &m.context_h,
                &m.session_h,
            ],
            1,
        );
        match self.component_sessions.get_mut(m.component.as_str()) {
            Some(sessions) => {
                if !sessions.contains(m.session_h.as_str()) {
                    sessions.insert(m.session_h.clone());
                }
            }
            None => {
                let sessions = HashSet::from([m.session_h.clone()]);
                self.component_sessions
                    .insert(m.component.clone(), sessions);
            }
        }
    }

    /// Counts one deleted metric, given its values in the order of [`FACET_FIELDS`].
    pub(super) fn uncount(&mut self, values: [&str; 6]) {
        self.add(values, -1);
    }

    /// Adds `delta` metrics to the counter and to the count of each of `values` (in the order of
    /// [`FACET_FIELDS`]): the one path by which stores and deletes change the counts.
    fn add(&mut self, values: [&str; 6], delta: i64) {
        self.metrics += delta;
        for (counts, value) in self.facets.iter_mut().zip(values) {
            // Looked up by `&str` first: most values repeat, and a hit allocates nothing.
            match counts.get_mut(value) {
                Some(n) => *n += delta,
                None => {
                    counts.insert(value.to_owned(), delta);
                }
            }
        }
    }

    /// True when nothing was counted since the last [`MetricTallies::apply`].
    pub fn is_empty(&self) -> bool {
        self.metrics == 0
            && self.facets.iter().all(HashMap::is_empty)
            && self.component_sessions.is_empty()
    }

    /// Writes what was counted into `counters`, `metric_facets` and `component_sessions`, in the
    /// transaction `conn` is in, and starts counting afresh. A value whose count falls to 0
    /// leaves `metric_facets`, as no metric carries it any more. Each statement changes a single
    /// row, so none needs a statement journal.
    pub fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if self.metrics != 0 {
            conn.prepare_cached(
                "INSERT INTO counters (name, n) VALUES ('metrics', ?1) \
                 ON CONFLICT (name) DO UPDATE SET n = n + excluded.n",
            )?
            .execute([self.metrics])?;
        }
        let mut facet = conn.prepare_cached(
            "INSERT INTO metric_facets (field, value, n) VALUES (?1, ?2, ?3) \
             ON CONFLICT (field, value) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut emptied = conn.prepare_cached(
            "DELETE FROM metric_facets WHERE field = ?1 AND value = ?2 AND n <= 0",
        )?;
        for (field, counts) in FACET_FIELDS.iter().zip(&self.facets) {
            for (value, &n) in counts {
                if n == 0 {
                    continue;
                }
                facet.execute(params![field, value, n])?;
                if n < 0 {
                    emptied.execute(params![field, value])?;
                }
            }
        }
        let mut pair = conn.prepare_cached(
            "INSERT OR IGNORE INTO component_sessions (component, session_h) VALUES (?1, ?2)",
        )?;
        for (component, sessions) in &self.component_sessions {
            for session_h in sessions {
                pair.execute(params![component, session_h])?;
            }
        }
        self.clear();
        Ok(())
    }

    /// Forgets what was counted (its metrics were rolled back).
    pub fn clear(&mut self) {
        self.metrics = 0;
        self.facets.iter_mut().for_each(HashMap::clear);
        self.component_sessions.clear();
    }

    /// Forgets what was counted and every id remembered: the transaction, or a savepoint in it,
    /// that stored them was rolled back, and ids given in it no longer exist.
    pub fn rolled_back(&mut self) {
        self.clear();
        self.ids.forget();
    }
}

/// Stores metrics: the one way a metric reaches the `metric_rows` table. Each row is inserted
/// (in the transaction `conn` is in), its names resolved to ids ([`NameIds`], which stores the
/// new ones) and counted in `tallies`, which must then be applied in the same transaction before
/// it commits ([`MetricTallies::apply`]); the writer does so for its groups, [`store_metrics`] at
/// once. `item_start_time` is stored only when the client spelled it otherwise than the store
/// writes it back from `start_us`.
///
/// A failure (a full disk, an I/O error) makes the caller roll the whole transaction back, and
/// then call [`MetricTallies::rolled_back`].
pub fn insert_metrics(
    conn: &Connection,
    tallies: &mut MetricTallies,
    metrics: &[Metric],
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO metric_rows (session_id, context_id, test_id, component_id, kind_id, \
         start_us, item_start_time, total_time, user_time, kernel_time, cpu_usage, mem_usage) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for m in metrics {
        let ids = tallies.ids.of(conn, m)?;
        let spelled = (!is_canonical_iso8601(&m.item_start_time, m.start_us))
            .then_some(m.item_start_time.as_str());
        stmt.execute(params![
            ids.session,
            ids.context,
            ids.test,
            ids.component,
            ids.kind,
            m.start_us,
            spelled,
            m.total_time,
            m.user_time,
            m.kernel_time,
            m.cpu_usage,
            m.mem_usage,
        ])?;
        tallies.count(m);
    }
    Ok(())
}

/// Stores metrics and their tallies at once, in the transaction `conn` is in: [`insert_metrics`]
/// for a caller that is not the writer's group (an import, a test).
pub fn store_metrics(conn: &Connection, metrics: &[Metric]) -> rusqlite::Result<()> {
    let mut tallies = MetricTallies::default();
    insert_metrics(conn, &mut tallies, metrics)?;
    tallies.apply(conn)
}
