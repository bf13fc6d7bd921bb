//! The ids of the strings metrics name — session and context hashes, components, kinds, tests —
//! found or given once in the tables that store each of them once, and remembered.

use std::collections::HashMap;
use std::fmt::Write as _;

use rusqlite::{params, Connection, OptionalExtension};

use crate::models::Metric;

/// The ids a metric row refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MetricIds {
    pub session: i64,
    pub context: i64,
    pub test: i64,
    pub component: i64,
    pub kind: i64,
}

/// Remembered ids of names, so that storing a metric of a session, machine and test seen before
/// reads no table to find them. A name not remembered is looked up, and stored when new. Each
/// kind of name keeps at most [`REMEMBERED`] ids, so that a server running for years does not
/// hold every session it ever saw: a full map is emptied and fills again with the names in use.
///
/// Ids stay valid once committed (no row of these tables is ever deleted), but one given inside
/// a transaction that is then rolled back does not: whoever rolls back a transaction or a
/// savepoint in which metrics were stored must call [`NameIds::forget`].
#[derive(Debug, Default)]
pub struct NameIds {
    sessions: HashMap<String, i64>,
    contexts: HashMap<String, i64>,
    components: HashMap<String, i64>,
    kinds: HashMap<String, i64>,
    /// Keyed by [`test_key`].
    tests: HashMap<String, i64>,
    /// The key of the test being resolved, reused so that a hit allocates nothing.
    key: String,
}

/// The most ids remembered of each kind of name (some 20 MB for tests with long names).
const REMEMBERED: usize = 65_536;

/// The table and column of each name, written into SQL (fixed names only).
#[derive(Clone, Copy)]
enum Names {
    Sessions,
    Contexts,
    Components,
    Kinds,
}

impl Names {
    fn select(self) -> &'static str {
        match self {
            Names::Sessions => "SELECT id FROM session_hashes WHERE h = ?1",
            Names::Contexts => "SELECT id FROM context_hashes WHERE h = ?1",
            Names::Components => "SELECT id FROM components WHERE name = ?1",
            Names::Kinds => "SELECT id FROM kinds WHERE name = ?1",
        }
    }

    fn insert(self) -> &'static str {
        match self {
            Names::Sessions => "INSERT INTO session_hashes (h) VALUES (?1)",
            Names::Contexts => "INSERT INTO context_hashes (h) VALUES (?1)",
            Names::Components => "INSERT INTO components (name) VALUES (?1)",
            Names::Kinds => "INSERT INTO kinds (name) VALUES (?1)",
        }
    }
}

impl NameIds {
    /// The ids of everything `m` names, stored first where new, in the transaction `conn` is in.
    pub(super) fn of(&mut self, conn: &Connection, m: &Metric) -> rusqlite::Result<MetricIds> {
        let session = Self::id(&mut self.sessions, conn, Names::Sessions, &m.session_h)?;
        let context = Self::id(&mut self.contexts, conn, Names::Contexts, &m.context_h)?;
        let component = Self::id(&mut self.components, conn, Names::Components, &m.component)?;
        let kind = Self::id(&mut self.kinds, conn, Names::Kinds, &m.kind)?;
        test_key(&mut self.key, m, component, kind);
        let test = match self.tests.get(self.key.as_str()) {
            Some(&id) => id,
            None => {
                let id = test_id(conn, m, component, kind)?;
                if self.tests.len() >= REMEMBERED {
                    self.tests.clear();
                }
                self.tests.insert(self.key.clone(), id);
                id
            }
        };
        Ok(MetricIds {
            session,
            context,
            test,
            component,
            kind,
        })
    }

    fn id(
        known: &mut HashMap<String, i64>,
        conn: &Connection,
        names: Names,
        name: &str,
    ) -> rusqlite::Result<i64> {
        if let Some(&id) = known.get(name) {
            return Ok(id);
        }
        let found: Option<i64> = conn
            .prepare_cached(names.select())?
            .query_row([name], |row| row.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached(names.insert())?.execute([name])?;
                conn.last_insert_rowid()
            }
        };
        if known.len() >= REMEMBERED {
            known.clear();
        }
        known.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Forgets every id: some may have been given in a transaction or savepoint that was rolled
    /// back.
    pub fn forget(&mut self) {
        self.sessions.clear();
        self.contexts.clear();
        self.components.clear();
        self.kinds.clear();
        self.tests.clear();
    }
}

/// A test's key in [`NameIds::tests`]: every part with its length, so that no two tests share
/// one whatever their strings hold.
fn test_key(key: &mut String, m: &Metric, component: i64, kind: i64) {
    key.clear();
    let _ = write!(key, "{component}:{kind}");
    for part in [&m.item_path, &m.item, &m.item_variant, &m.item_fs_loc] {
        let _ = write!(key, ":{}:{part}", part.len());
    }
}

/// The id of the test `m` measures, stored first when new.
fn test_id(conn: &Connection, m: &Metric, component: i64, kind: i64) -> rusqlite::Result<i64> {
    let test = params![
        m.item_path,
        m.item,
        m.item_variant,
        m.item_fs_loc,
        kind,
        component
    ];
    let found: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM tests WHERE item_path = ?1 AND item = ?2 AND item_variant = ?3 \
             AND item_fs_loc = ?4 AND kind_id = ?5 AND component_id = ?6",
        )?
        .query_row(test, |row| row.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO tests (item_path, item, item_variant, item_fs_loc, kind_id, component_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(test)?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::{metric, open_temp};

    #[test]
    fn each_name_gets_one_id_remembered_or_looked_up_and_no_two_tests_share_one() {
        let (_dir, db) = open_temp();
        let conn = db.pool.get().unwrap();
        let mut ids = NameIds::default();
        let a = metric("s1", "function", "core");
        let mut b = a.clone();
        b.item_path = "tests.test_a:tests".into();
        b.item = "test_a".into();
        let mut c = a.clone();
        c.item_path = "tests.test_a".into();
        c.item = ":tests.test_a".into();

        let first = ids.of(&conn, &a).unwrap();
        let again = ids.of(&conn, &a).unwrap();
        let (of_b, of_c) = (ids.of(&conn, &b).unwrap(), ids.of(&conn, &c).unwrap());
        ids.forget();
        let looked_up = ids.of(&conn, &a).unwrap();

        assert_eq!(again, first);
        assert_eq!(looked_up, first);
        assert_ne!(of_b.test, first.test);
        assert_ne!(of_c.test, of_b.test);
        assert_eq!(
            (of_b.session, of_b.component),
            (first.session, first.component)
        );
        let tests: i64 = conn
            .query_row("SELECT count(*) FROM tests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tests, 3);
    }
}
