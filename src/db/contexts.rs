//! Execution contexts: storing one (or finding the identical one stored) and listing them by hash
//! prefix.

use rusqlite::{params, Connection, Row};

use crate::db::created::{conflict, Created};
use crate::db::sql::prefix_pattern;
use crate::error::ApiError;
use crate::models::Context;

const CONTEXT_COLUMNS: &str = "h, cpu_count, cpu_frequency, cpu_type, cpu_vendor, ram_total, \
     machine_node, machine_type, machine_arch, system_info, python_info";

fn context_from_row(row: &Row<'_>) -> rusqlite::Result<Context> {
    Ok(Context {
        h: row.get(0)?,
        cpu_count: row.get(1)?,
        cpu_frequency: row.get(2)?,
        cpu_type: row.get(3)?,
        cpu_vendor: row.get(4)?,
        ram_total: row.get(5)?,
        machine_node: row.get(6)?,
        machine_type: row.get(7)?,
        machine_arch: row.get(8)?,
        system_info: row.get(9)?,
        python_info: row.get(10)?,
    })
}

/// Stores a context, or finds the identical one already stored (pytest-xdist workers race to
/// create the same context); a different one under the same hash is a conflict.
pub fn insert_context(conn: &Connection, c: &Context) -> Result<Created<Context>, ApiError> {
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO contexts ({CONTEXT_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (h) DO NOTHING"
        ))?
        .execute(params![
            c.h,
            c.cpu_count,
            c.cpu_frequency,
            c.cpu_type,
            c.cpu_vendor,
            c.ram_total,
            c.machine_node,
            c.machine_type,
            c.machine_arch,
            c.system_info,
            c.python_info
        ])?;
    let outcome = if inserted == 1 {
        Created::New(c.clone())
    } else {
        let stored = conn
            .prepare_cached(&format!(
                "SELECT {CONTEXT_COLUMNS} FROM contexts WHERE h = ?1"
            ))?
            .query_row([&c.h], context_from_row)?;
        if stored != *c {
            return Err(conflict("context", &c.h));
        }
        Created::Existing(stored)
    };
    Ok(outcome)
}

/// How many contexts are stored.
pub fn count_contexts(conn: &Connection) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM contexts")?
        .query_row([], |row| row.get(0))
}

/// How many contexts have a hash starting with `prefix` (all of them for an empty prefix).
pub fn count_contexts_by_prefix(conn: &Connection, prefix: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM contexts WHERE h LIKE ?1 ESCAPE '\\'")?
        .query_row([prefix_pattern(prefix)], |row| row.get(0))
}

/// Contexts whose hash starts with `prefix`, in the order they were stored.
pub fn list_contexts_by_prefix(
    conn: &Connection,
    prefix: &str,
    offset: u64,
    limit: u64,
) -> rusqlite::Result<Vec<Context>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONTEXT_COLUMNS} FROM contexts WHERE h LIKE ?1 ESCAPE '\\' \
         ORDER BY id LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt.query_map(
        params![prefix_pattern(prefix), limit, offset],
        context_from_row,
    )?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::open_temp;

    #[test]
    fn prefix_search_treats_like_wildcards_as_text() {
        let (_dir, db) = open_temp();
        let conn = db.pool.get().unwrap();
        conn.execute_batch(
            "INSERT INTO contexts (h, cpu_count, cpu_frequency, cpu_type, ram_total, machine_node, \
             machine_type, machine_arch, system_info, python_info) VALUES \
             ('ab%x', 1, 1, '', 1, '', '', '', '', ''), ('abcd', 1, 1, '', 1, '', '', '', '', '')",
        )
        .unwrap();
        assert_eq!(count_contexts_by_prefix(&conn, "ab%").unwrap(), 1);
        assert_eq!(count_contexts_by_prefix(&conn, "ab").unwrap(), 2);
        assert_eq!(count_contexts_by_prefix(&conn, "ab_").unwrap(), 0);
    }
}
