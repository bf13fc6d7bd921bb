//! The layers of `src/` import each other one way only: the folder-level graph of `crate::`
//! references (a top-level file is a node of its own) has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The layer a source file belongs to: its folder under `src/`, or its own name for a top-level
/// file; `None` for the crate roots, which only declare or call the layers.
fn layer(relative: &Path) -> Option<String> {
    let mut parts = relative.components();
    let first = parts.next()?.as_os_str().to_str()?.to_owned();
    if parts.next().is_some() {
        return Some(first);
    }
    let name = first.strip_suffix(".rs")?;
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// The layers `code` refers to through `crate::X` (`use crate::X`, `crate::X::...` and
/// `use crate::{X, Y::...}`), comments left out.
fn references(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inside = group.split('}').next().unwrap_or("");
                for item in inside.split(',') {
                    found.insert(first_word(item.trim()));
                }
            } else {
                found.insert(first_word(rest));
            }
        }
    }
    found.retain(|name| !name.is_empty() && name != "self");
    found
}

fn first_word(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("src/ is readable").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The folder-level graph of `src/`.
fn source_graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let Some(from) = layer(relative) else {
            continue;
        };
        let code = std::fs::read_to_string(&file).expect("a source file is readable");
        let targets = graph.entry(from.clone()).or_default();
        targets.extend(references(&code).into_iter().filter(|to| *to != from));
    }
    graph
}

/// A cycle of `graph`, as the layers along it with the first repeated at the end.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn graph_of(edges: &[(&str, &str)]) -> Graph {
    let mut graph = Graph::new();
    for (from, to) in edges {
        graph
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string());
    }
    graph
}

#[test]
fn the_layers_of_src_import_each_other_without_a_cycle() {
    let graph = source_graph();
    assert!(
        graph.contains_key("routes") && graph["routes"].contains("db"),
        "the graph misses known references: {graph:?}"
    );

    let cycle = find_cycle(&graph);

    assert!(
        cycle.is_none(),
        "the layers import each other in a cycle: {}",
        cycle.unwrap_or_default().join(" -> ")
    );
}

#[test]
fn a_cycle_between_folders_is_found_and_named() {
    // The cycles the layering removed: dashboard <-> routes (paging) and server <-> config.
    let dashboard = graph_of(&[
        ("routes", "dashboard"),
        ("routes", "db"),
        ("dashboard", "db"),
        ("dashboard", "routes"),
        ("db", "models"),
    ]);
    let config = graph_of(&[("server", "config"), ("config", "server")]);
    let layered = graph_of(&[
        ("routes", "dashboard"),
        ("routes", "db"),
        ("dashboard", "db"),
        ("db", "models"),
    ]);

    assert_eq!(
        find_cycle(&dashboard).map(|c| c.join(" -> ")).as_deref(),
        Some("dashboard -> routes -> dashboard")
    );
    assert!(find_cycle(&config).is_some());
    assert_eq!(find_cycle(&layered), None);
}

#[test]
fn references_are_read_from_uses_paths_and_groups_but_not_comments() {
    let code = "use crate::db::{self, Db};\n\
                use crate::{error::ApiError, models};\n\
                fn f() { crate::state::AppState::x(); }\n\
                /// See [`crate::server`].\n";

    let found = references(code);

    let expected: BTreeSet<String> = ["db", "error", "models", "state"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        layer(Path::new("routes/params/mod.rs")).as_deref(),
        Some("routes")
    );
    assert_eq!(layer(Path::new("server.rs")).as_deref(), Some("server"));
    assert_eq!(layer(Path::new("lib.rs")), None);
}
