//! Compares this server's answers with the Python reference's, monitor-server-api 1.1.0, route by
//! route, on the same data.
//!
//! ```text
//! # ours, on a fresh database, with the page size both servers will use
//! cargo run -- --db /tmp/ours.db --bind 127.0.0.1:18601 --page-size 5 &
//! # the reference started here from its script (monitor-server-api.sh PORT DB_FILE)...
//! cargo run -p monitor-server-bench --bin compare_reference -- \
//!     http://127.0.0.1:18601/api/v1 --anchor PATH/TO/monitor-server-api.sh
//! # ...or already running, on a fresh database, same page size
//! MONITOR_SERVER_PAGINATION_COUNT=5 bash PATH/TO/monitor-server-api.sh 18600 /tmp/ref.db &
//! cargo run -p monitor-server-bench --bin compare_reference -- \
//!     http://127.0.0.1:18601/api/v1 http://127.0.0.1:18600/api/v1
//! ```
//!
//! Without a reference URL, the anchor script comes from `--anchor PATH`, else from the
//! `MONITOR_SERVER_API_ANCHOR` environment variable; it is started on a fresh database in a
//! temporary directory and a free port, with page size 5, and stopped at the end.
//!
//! It posts one data set to both servers (2 execution contexts, 3 sessions whose `description`
//! carries pipeline, CI and free tags and whose `scm_ref`s share prefixes or are empty, 30 metrics
//! over 3 components plus the empty one, 3 kinds, 6 items and their variants), in pytest-monitor's
//! spelling (`context_h`, `total_time`, `kernel_time`: the reference knows no other). A server
//! that already holds exactly this data set is not posted to again, so a comparison can be re-run;
//! one that holds anything else is compared anyway, with a warning, and the result means little.
//!
//! Then it asks both servers the same questions: every GET route of
//! `monitor_server::routes::ENDPOINTS`, path parameters replaced by values of the data set, each
//! listing also at `page=2` and `page=-1`, plus a few edge cases (unknown records, bad pages, tag
//! filters, every resource ranking). For each answer it compares the status code and the JSON body,
//! after normalising the known, deliberate differences listed in [`normalise::DELIBERATE`] (each with its
//! reason). The same is done for the answers to the POSTs.
//!
//! Both servers must use the same page size (5 above: small, so that pagination is exercised);
//! the reference ignores `per_page`, so it is never sent. Start both on fresh databases: the
//! reference cannot re-create a record it holds (it answers 500), and counts would differ.
//!
//! It prints one line per route: `SAME` (identical answers), `SAME*` (identical once the listed
//! deliberate differences are normalised), or `DIFFERENT` followed by a short diff of each
//! differing request, then a summary count. It is a report: the exit code is 0 whatever the
//! verdicts, and 2 only when a server cannot be reached or started, or the arguments are wrong.

mod dataset;
mod normalise;
mod reference;
mod requests;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use monitor_server::routes::{Answer as Shape, ENDPOINTS};
use serde_json::Value;

use crate::dataset::{contexts, extra_probes, metrics, sessions, CTX_A, METRICS, S1};
use crate::normalise::{judge, Probe, Verdict, DELIBERATE};
use crate::reference::{anchor_script, Reference, PAGE_SIZE};
use crate::requests::{asked_elsewhere, expand, Server, Unreachable};

/// The verdict on one route: its requests, and how they compared.
struct RouteReport {
    name: String,
    requests: usize,
    differences: Vec<String>,
    normalised: BTreeSet<&'static str>,
    note: Option<String>,
}

const USAGE: &str = "usage: compare_reference OURS_URL REFERENCE_URL
       compare_reference OURS_URL [--anchor PATH]
URLs are like http://127.0.0.1:PORT/api/v1. Without REFERENCE_URL the reference is started from
its script (monitor-server-api.sh PORT DB_FILE): --anchor PATH, else $MONITOR_SERVER_API_ANCHOR;
it uses page size 5, so start ours with --page-size 5.";

/// Where the reference comes from.
enum Target {
    Url(String),
    Anchor(Option<PathBuf>),
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<(String, Target), String> {
    let mut urls = vec![];
    let mut anchor = None;
    let mut args = args;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(USAGE.into()),
            "--anchor" => {
                let path = args.next().ok_or("--anchor needs a PATH")?;
                anchor = Some(PathBuf::from(path));
            }
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"))
            }
            _ => urls.push(arg),
        }
    }
    match (urls.as_slice(), anchor) {
        ([ours, reference], None) => Ok((ours.clone(), Target::Url(reference.clone()))),
        ([_, _], Some(_)) => Err("give either REFERENCE_URL or --anchor, not both".into()),
        ([ours], anchor) => Ok((ours.clone(), Target::Anchor(anchor))),
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let (ours, target) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // Kept until the end of main: dropping it stops the reference.
    let mut started = None;
    let reference = match target {
        Target::Url(url) => url,
        Target::Anchor(flag) => {
            let start = anchor_script(flag).and_then(|script| {
                println!(
                    "starting the reference: bash {} (page size {PAGE_SIZE})",
                    script.display()
                );
                Reference::start(&script)
            });
            match start {
                Ok(reference) => started.insert(reference).base.clone(),
                Err(message) => {
                    eprintln!("compare_reference: {message}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let ours = Server::new("ours", &ours);
    let reference = Server::new("reference", &reference);
    match run(&ours, &reference) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Unreachable(detail)) => {
            eprintln!("compare_reference: cannot reach {detail}");
            ExitCode::from(2)
        }
    }
}

fn run(ours: &Server, reference: &Server) -> Result<(), Unreachable> {
    let expected = [
        METRICS as i64,
        sessions().len() as i64,
        contexts().len() as i64,
    ];
    let mut posts = vec![];
    let mut loaded = [false; 2];
    for (i, server) in [ours, reference].into_iter().enumerate() {
        let counts = server.counts()?;
        if counts == expected {
            println!(
                "note: {} already holds the data set; not posting it again",
                server.label
            );
            loaded[i] = true;
        } else if counts != [0, 0, 0] {
            println!(
                "WARNING: {} holds other data (metrics, sessions, contexts = {counts:?}); \
                 start both servers on fresh databases for a meaningful comparison",
                server.label
            );
        }
    }
    // POST the data set, in the order pytest-monitor does: contexts, sessions, metrics
    let bodies: Vec<(&str, Value)> = contexts()
        .into_iter()
        .map(|c| ("/contexts/", c))
        .chain(sessions().into_iter().map(|s| ("/sessions/", s)))
        .chain(metrics().into_iter().map(|m| ("/metrics/", m)))
        .collect();
    for (path, body) in &bodies {
        let ours_reply = (!loaded[0]).then(|| ours.post(path, body)).transpose()?;
        let reference_reply = (!loaded[1])
            .then(|| reference.post(path, body))
            .transpose()?;
        posts.push((*path, ours_reply, reference_reply, None));
    }
    // what pytest-xdist workers do: create the same context and session again
    if loaded == [false, false] {
        for (i, (path, body)) in bodies.iter().enumerate() {
            let context_a = *path == "/contexts/" && body["h"] == CTX_A;
            let session_1 = *path == "/sessions/" && body["session_h"] == S1;
            if context_a || session_1 {
                let first = posts[i].2.clone();
                posts.push((
                    *path,
                    Some(ours.post(path, body)?),
                    Some(reference.post(path, body)?),
                    first,
                ));
            }
        }
    }

    let mut reports = Vec::new();
    for endpoint in ENDPOINTS {
        let route = endpoint.path;
        let name = format!("{} {route}", endpoint.method);
        if endpoint.method.as_str() == "POST" {
            let mut report = RouteReport {
                name,
                requests: 0,
                differences: vec![],
                normalised: BTreeSet::new(),
                note: None,
            };
            for (path, ours_reply, reference_reply, first) in &posts {
                if path.trim_end_matches('/') != route {
                    continue;
                }
                let probe = Probe {
                    route,
                    path: path.to_string(),
                    reference_path: None,
                    shape: endpoint.answer,
                    first_creation: first.clone(),
                };
                let (Some(a), Some(b)) = (ours_reply, reference_reply) else {
                    report.note = Some("not compared: a server already held the data set".into());
                    continue;
                };
                report.requests += 1;
                match judge(&probe, a, b) {
                    Verdict::Same => {}
                    Verdict::Explained(ids) => report.normalised.extend(ids),
                    Verdict::Different(diff) => {
                        let again = if first.is_some() { " (again)" } else { "" };
                        report
                            .differences
                            .push(format!("POST {path}{again}: {diff}"))
                    }
                }
            }
            reports.push(report);
            continue;
        }
        if matches!(endpoint.answer, Shape::Comparison) {
            reports.push(RouteReport {
                name,
                requests: 0,
                differences: vec![],
                normalised: BTreeSet::new(),
                note: Some("this server's own: monitor-server-api has no such route".into()),
            });
            continue;
        }
        let mut probes: Vec<Probe> = Vec::new();
        let paths = match expand(route, endpoint.answer) {
            Ok(paths) => paths,
            Err(why) => {
                reports.push(RouteReport {
                    name,
                    requests: 0,
                    differences: vec![format!("UNTESTED: {why}")],
                    normalised: BTreeSet::new(),
                    note: None,
                });
                continue;
            }
        };
        for path in paths {
            let paged = matches!(endpoint.answer, Shape::Page { .. });
            for query in if paged {
                &["", "?page=2", "?page=-1"][..]
            } else {
                &[""][..]
            } {
                let path = format!("{path}{query}");
                probes.push(Probe {
                    route,
                    reference_path: asked_elsewhere(&path),
                    path,
                    shape: endpoint.answer,
                    first_creation: None,
                });
            }
        }
        for path in extra_probes(route) {
            probes.push(Probe {
                route,
                reference_path: asked_elsewhere(&path),
                path,
                shape: endpoint.answer,
                first_creation: None,
            });
        }
        let mut report = RouteReport {
            name,
            requests: probes.len(),
            differences: vec![],
            normalised: BTreeSet::new(),
            note: None,
        };
        for probe in &probes {
            let a = ours.get(&probe.path)?;
            let asked = probe
                .reference_path
                .as_ref()
                .map_or(&probe.path, |(path, _)| path);
            let b = reference.get(asked)?;
            match judge(probe, &a, &b) {
                Verdict::Same => {}
                Verdict::Explained(ids) => report.normalised.extend(ids),
                Verdict::Different(diff) => report
                    .differences
                    .push(format!("GET {}: {diff}", probe.path)),
            }
        }
        reports.push(report);
    }

    let (mut same, mut explained, mut different, mut skipped) = (0, 0, 0, 0);
    let mut all_fired = BTreeSet::new();
    for report in &reports {
        let requests = format!(
            "[{} request{}]",
            report.requests,
            if report.requests == 1 { "" } else { "s" }
        );
        if report.requests == 0 && report.differences.is_empty() {
            skipped += 1;
            let note = report.note.as_deref().unwrap_or("no request");
            println!("SKIPPED    {} ({note})", report.name);
        } else if !report.differences.is_empty() {
            different += 1;
            println!("DIFFERENT  {} {requests}", report.name);
            for diff in &report.differences {
                println!("             {diff}");
            }
        } else if report.normalised.is_empty() {
            same += 1;
            println!("SAME       {} {requests}", report.name);
        } else {
            explained += 1;
            let ids: Vec<&str> = report.normalised.iter().copied().collect();
            println!(
                "SAME*      {} {requests} after: {}",
                report.name,
                ids.join(", ")
            );
            all_fired.extend(report.normalised.iter().copied());
        }
    }
    println!();
    let skipped = if skipped > 0 {
        format!(", {skipped} SKIPPED")
    } else {
        String::new()
    };
    println!(
        "{} routes: {same} SAME, {explained} SAME* (deliberate differences normalised), \
         {different} DIFFERENT{skipped}",
        reports.len()
    );
    if !all_fired.is_empty() {
        println!("deliberate differences seen:");
        for (id, reason) in DELIBERATE.iter().filter(|(id, _)| all_fired.contains(id)) {
            println!("  {id}: {reason}");
        }
    }
    Ok(())
}
