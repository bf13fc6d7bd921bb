//! A large, realistic store written fast: the loader of `query_bench`, shared with `bench`,
//! `build_store` and the dashboard's browser test (which includes this file by path).
//!
//! [`load`] creates the schema exactly as the server does ([`Db::open`]), then inserts through one
//! plain SQLite connection into the same `contexts` table `db::insert_*` write, and stores
//! sessions and metrics with the server's own `db::insert_session` and `db::insert_metrics`, in
//! large transactions, so that the counts kept beside them (counters, facets) and each session's
//! hash id are filled as in production: sessions over 5 pipelines and 4 machines, ~2,000 test items
//! in 50 components (5 of them empty), parametrized variants, four kinds of item and log-normal
//! timings and memory. The metrics table's indexes are dropped while loading and rebuilt from
//! `schema.sql` afterwards, which is much faster than maintaining them row by row and ends in the
//! same file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use monitor_server::db::{self, Db, MetricTallies};
use monitor_server::models::{parse_iso8601, Metric, Session};
use rusqlite::{params, Connection};
use serde_json::{Map, Value};

/// How many metrics the file at `path` holds (0 when there is no such file).
pub fn stored_metrics(path: &Path) -> i64 {
    if !path.exists() {
        return 0;
    }
    Connection::open(path)
        .and_then(|conn| {
            conn.query_row(
                "SELECT coalesce((SELECT n FROM counters WHERE name = 'metrics'), 0)",
                [],
                |row| row.get(0),
            )
        })
        .unwrap_or(0)
}

/// The file's size and its WAL's, for the operator.
pub fn size_of_store(path: &Path) -> String {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let (main, wal) = (size(path), size(&wal));
    format!(
        "{:.0} MB, plus {:.0} MB of WAL",
        main as f64 / 1e6,
        wal as f64 / 1e6
    )
}

/// splitmix64: small, fast, and the same store on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// A 32-digit hex hash, as pytest-monitor's md5 hashes.
    fn hash(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

const PIPELINES: [(&str, u64); 5] = [
    ("main", 40),
    ("develop", 25),
    ("release-2.x", 15),
    ("feature-fast-io", 10),
    ("nightly", 10),
];
const ITEMS: usize = 2_000;
const COMPONENTS: usize = 50;
const WORDS: [&str; 40] = [
    "read", "write", "parse", "render", "load", "save", "merge", "split", "sort", "filter",
    "encode", "decode", "connect", "retry", "cache", "index", "query", "update", "delete",
    "create", "login", "logout", "export", "import", "resize", "compress", "hash", "sign",
    "verify", "schedule", "cancel", "notify", "stream", "upload", "download", "sync", "lock",
    "unlock", "migrate", "validate",
];
const AREAS: [&str; 10] = [
    "core", "io", "net", "ui", "db", "auth", "api", "cli", "sched", "report",
];

/// One test the suite can run: an item, one of its variants, and what it costs.
struct Test {
    item: String,
    variant: String,
    path: String,
    fs_loc: String,
    kind: &'static str,
    component: String,
    /// Typical wall time, seconds.
    time: f64,
    /// Typical memory, MB.
    mem: f64,
}

fn suite(rng: &mut Rng) -> Vec<Test> {
    let mut tests = Vec::new();
    for j in 0..ITEMS {
        // 40 items per component; every tenth component is the empty one: items that belong
        // to no component.
        let block = j * COMPONENTS / ITEMS;
        let area = AREAS[block / 5 % AREAS.len()];
        let component = if block % 10 == 9 {
            String::new()
        } else {
            format!("{area}.{}", WORDS[block % WORDS.len()])
        };
        let module = format!("test_{}_{}", WORDS[(j / 10) % WORDS.len()], j / 10);
        let kind = match j % 100 {
            99 => "package",
            49 | 98 => "module",
            48 | 97 => "class",
            _ => "function",
        };
        let item = format!("test_{}_{j}", WORDS[j % WORDS.len()]);
        let time = (rng.normal() * 1.2 - 3.0).exp(); // median 50 ms, some tests take seconds
        let mem = (rng.normal() * 1.0 + 0.5).exp(); // median 1.6 MB, some take hundreds
        let variants: Vec<String> = if j % 5 == 0 {
            ["small", "medium", "large"]
                .iter()
                .map(|p| format!("{item}[{p}]"))
                .collect()
        } else {
            vec![item.clone()]
        };
        for variant in variants {
            tests.push(Test {
                item: item.clone(),
                variant,
                path: format!("tests.{area}.{module}"),
                fs_loc: format!("tests/{area}/{module}.py"),
                kind,
                component: component.clone(),
                time,
                mem,
            });
        }
    }
    tests
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` for microseconds since 1970, as Python's isoformat writes it.
fn iso(micros: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(micros.div_euclid(1_000_000))
        .expect("a time in range");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        micros.rem_euclid(1_000_000)
    )
}

/// Fills the (new) file at `path` with `metrics` metrics spread evenly over `sessions` sessions.
pub fn load(path: &Path, metrics: u64, sessions: u64) -> Result<(), Box<dyn std::error::Error>> {
    // The schema exactly as the server makes it.
    drop(Db::open(path, 1)?);
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA synchronous = OFF;
         PRAGMA cache_size = -262144;
         PRAGMA foreign_keys = ON;",
    )?;
    // Build the metrics table's indexes once at the end rather than row by row.
    let indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'metric_rows' \
             AND sql IS NOT NULL",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for index in &indexes {
        conn.execute_batch(&format!("DROP INDEX \"{index}\""))?;
    }

    let mut rng = Rng(0x5EED);
    let tests = suite(&mut rng);
    let contexts: Vec<String> = (0..4).map(|_| rng.hash()).collect();
    let sessions = sessions.min(metrics.max(1));

    let tx = conn.transaction()?;
    for (n, h) in contexts.iter().enumerate() {
        tx.execute(
            "INSERT INTO contexts (h, cpu_count, cpu_frequency, cpu_type, cpu_vendor, ram_total, \
             machine_node, machine_type, machine_arch, system_info, python_info) \
             VALUES (?1, ?2, ?3, 'x86_64', 'GenuineIntel', ?4, ?5, 'x86_64', '64bit', \
             'Linux - 6.1.0-18-amd64', '3.11.8 (main, Feb 25 2024, 04:18:18) [GCC 12.2.0]')",
            params![
                h,
                4 << n,
                2400.0 + 100.0 * n as f64,
                16384 << n,
                format!("ci-runner-{n}")
            ],
        )?;
    }
    tx.commit()?;

    let base_us: i64 = 1_704_067_200_000_000; // 2024-01-01T00:00:00
    let mut builds: HashMap<&str, (u64, u64)> = HashMap::new(); // pipeline -> (build, sessions left)
    let mut commit = rng.hash() + &rng.hash()[..8];
    let mut stored = 0u64;
    let mut next = 0usize; // where the next session starts in the suite
    let mut tallies = MetricTallies::default();
    let mut tx = conn.transaction()?;
    for i in 0..sessions {
        let session_h = rng.hash();
        let start_us = base_us + i as i64 * 3_600_000_000 + rng.below(600_000_000) as i64;
        let run_date = iso(start_us);
        let context = &contexts[(rng.below(10) as usize).min(contexts.len() - 1)];
        let mut description = Map::new();
        // One session in twelve is a developer's local run: no CI tags.
        let scm_ref = if rng.below(12) == 0 {
            description.insert("description".into(), Value::from("local run"));
            if rng.below(2) == 0 {
                String::new()
            } else {
                commit.clone()
            }
        } else {
            let mut pick = rng.below(100);
            let pipeline = PIPELINES
                .iter()
                .find(|(_, weight)| {
                    let hit = pick < *weight;
                    pick = pick.saturating_sub(*weight);
                    hit
                })
                .map_or("main", |(name, _)| name);
            let (build, left) = builds.entry(pipeline).or_insert((1000, 0));
            if *left == 0 {
                // A new build: a new commit, and one to three sessions (machines) in it.
                *build += 1;
                *left = 1 + rng.below(3);
                commit = rng.hash() + &rng.hash()[..8];
            }
            *left -= 1;
            description.insert("pipeline_branch".into(), Value::from(pipeline));
            description.insert("pipeline_build_no".into(), Value::from(build.to_string()));
            description.insert("__ci__".into(), Value::from("gitlabci"));
            description.insert("description".into(), Value::from("CI run"));
            commit.clone()
        };
        let session = Session {
            session_h: session_h.clone(),
            run_date,
            scm_ref,
            description,
        };
        db::insert_session(&tx, &session).map_err(|err| err.to_string())?;

        let count = metrics * (i + 1) / sessions - metrics * i / sessions;
        let mut at_us = start_us + 2_000_000;
        for k in 0..count as usize {
            let test = &tests[(next + k) % tests.len()];
            let total_time = test.time * (0.15 * rng.normal()).exp();
            let user_time = total_time * (0.55 + 0.4 * rng.unit());
            let kernel_time = total_time * (0.01 + 0.08 * rng.unit());
            let cpu_usage = (user_time + kernel_time) / total_time;
            // Measured against the session's start, so it can be slightly negative.
            let mem_usage = test.mem * (0.1 * rng.normal()).exp() - 0.3 * rng.unit();
            let item_start_time = iso(at_us);
            let start_us = parse_iso8601(&item_start_time).expect("a valid time");
            let metric = Metric {
                session_h: session_h.clone(),
                context_h: context.clone(),
                item_start_time,
                start_us,
                item_path: test.path.clone(),
                item: test.item.clone(),
                item_variant: test.variant.clone(),
                item_fs_loc: test.fs_loc.clone(),
                kind: test.kind.to_string(),
                component: test.component.clone(),
                total_time,
                user_time,
                kernel_time,
                cpu_usage,
                mem_usage,
            };
            db::insert_metrics(&tx, &mut tallies, &[metric])?;
            at_us += (total_time * 1e6) as i64 + 1_000 + rng.below(5_000) as i64;
        }
        next = (next + 397) % tests.len();
        stored += count;
        if stored >= 100_000 {
            tallies.apply(&tx)?;
            tx.commit()?;
            tx = conn.transaction()?;
            stored = 0;
        }
    }
    tallies.apply(&tx)?;
    tx.commit()?;
    // The indexes, exactly as schema.sql declares them.
    conn.execute_batch(db::SCHEMA)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}
