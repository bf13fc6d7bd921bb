//! A rule of the SQL in `src/` that no test of behaviour catches on a small store: the `metrics`
//! view is never joined to. SQLite cannot flatten a view that is a join into the right side of a
//! LEFT JOIN, so `LEFT JOIN metrics m ON m.id = ?` reads the whole view to find one row: seconds
//! on a large store, unnoticed on a test's. Such queries name `metric_rows` and the name tables.

use std::path::Path;

/// The lines of `code` that join to the `metrics` view.
fn joins_to_the_view(code: &str) -> Vec<String> {
    code.lines()
        .filter(|line| {
            let line = line.split("//").next().unwrap_or("");
            line.split("JOIN metrics")
                .skip(1)
                .any(|after| after.starts_with([' ', '\\', '"']) || after.is_empty())
        })
        .map(|line| line.trim().to_owned())
        .collect()
}

fn sources(dir: &Path, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let code = std::fs::read_to_string(&path).unwrap();
            for line in joins_to_the_view(&code) {
                found.push((path.display().to_string(), line));
            }
        }
    }
}

#[test]
fn no_query_joins_to_the_metrics_view() {
    assert_eq!(
        joins_to_the_view("FROM (SELECT 1) LEFT JOIN metrics m ON m.id = ?1 \\"),
        ["FROM (SELECT 1) LEFT JOIN metrics m ON m.id = ?1 \\"]
    );
    assert!(joins_to_the_view("LEFT JOIN metric_rows m ON m.id = ?1").is_empty());

    let mut found = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.is_empty(), "joins to the metrics view: {found:#?}");
}
