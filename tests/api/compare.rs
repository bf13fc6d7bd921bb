//! `GET /api/v1/compare`: per test, the baseline's and the candidate's wall time, CPU time and
//! memory, and a verdict from the thresholds; sides given as sessions, SCM references or CI
//! builds, the sessions of one build (xdist's controller and workers) counting as one run.

use serde_json::{json, Value};

use crate::common::{assert_bad_field, assert_has_message, spawn_app, TestApp};

const MACHINE: &str = "c7a1e0f2b3d4e5f60718293a4b5c6d7e8f901234";
const OTHER_MACHINE: &str = "0000e0f2b3d4e5f60718293a4b5c6d7e8f90ffff";

/// One test's measures in one run: variant, wall time, CPU time (all user time), memory.
type Measure<'a> = (&'a str, f64, f64, f64);

fn session(session_h: &str, scm_ref: &str, build: Option<(&str, &str)>) -> Value {
    let mut description = json!({"description": "compare test"});
    if let Some((pipeline, build)) = build {
        description["pipeline_branch"] = json!(pipeline);
        description["pipeline_build_no"] = json!(build);
    }
    json!({
        "session_h": session_h,
        "run_date": "2024-05-01T10:00:00.000001",
        "scm_ref": scm_ref,
        "description": description,
    })
}

fn record(app: &TestApp, session_h: &str, context_h: &str, measure: Measure) {
    let (variant, wall, cpu, mem) = measure;
    app.create(
        "/api/v1/metrics/",
        &json!({
            "session_h": session_h,
            "context_h": context_h,
            "item_start_time": "2024-05-01T10:00:01.000001",
            "item_path": "tests.test_perf",
            "item": variant.split('[').next().unwrap(),
            "item_variant": variant,
            "item_fs_loc": "tests/test_perf.py",
            "kind": "function",
            "component": "perf",
            "total_time": wall,
            "user_time": cpu,
            "kernel_time": 0.0,
            "cpu_usage": if wall > 0.0 { cpu / wall } else { 0.0 },
            "mem_usage": mem,
        }),
    );
}

/// Stores build `build` of `pipeline` on `machine`, as pytest-xdist with `workers` workers runs
/// it: a controller session holding no metric and one session per worker, the tests dealt out
/// among the workers; with no worker, one session holding every test. Returns the session hashes.
fn store_build_on(
    app: &TestApp,
    machine: &str,
    pipeline: &str,
    build: &str,
    workers: usize,
    measures: &[Measure],
) -> Vec<String> {
    let sessions: Vec<String> = (0..=workers)
        .map(|i| format!("{pipeline}-{build}-{machine:.4}-s{i}"))
        .collect();
    let scm_ref = format!("commit-of-{build}");
    for h in &sessions {
        app.create(
            "/api/v1/sessions/",
            &session(h, &scm_ref, Some((pipeline, build))),
        );
    }
    let holders = if workers == 0 {
        &sessions[..]
    } else {
        &sessions[1..]
    };
    for (i, measure) in measures.iter().enumerate() {
        record(app, &holders[i % holders.len()], machine, *measure);
    }
    sessions
}

fn store_build(app: &TestApp, build: &str, measures: &[Measure]) -> Vec<String> {
    store_build_on(app, MACHINE, "main", build, 0, measures)
}

fn compare(app: &TestApp, query: &str) -> (u16, Value) {
    app.get(&format!("/api/v1/compare?{query}"))
}

/// The 200 answer to `query`.
fn comparison(app: &TestApp, query: &str) -> Value {
    let (status, body) = compare(app, query);
    assert_eq!(status, 200, "GET /compare?{query}: {body}");
    body
}

fn test_named<'a>(answer: &'a Value, variant: &str) -> &'a Value {
    answer["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["item_variant"] == variant)
        .unwrap_or_else(|| panic!("{variant} is not in {answer:#}"))
}

fn verdict_of(answer: &Value, variant: &str) -> String {
    test_named(answer, variant)["verdict"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn verdicts(answer: &Value) -> Vec<(String, String)> {
    answer["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["item_variant"].as_str().unwrap().to_owned(),
                t["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn close(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

#[test]
fn a_test_made_twice_as_slow_regressed_and_one_made_twice_as_fast_improved() {
    // Arrange
    let app = spawn_app();
    let base = store_build(
        &app,
        "41",
        &[
            ("test_slowed", 0.4, 0.2, 10.0),
            ("test_sped_up", 1.0, 0.9, 10.0),
            ("test_steady", 1.0, 0.9, 10.0),
        ],
    );
    let cand = store_build(
        &app,
        "42",
        &[
            ("test_slowed", 0.8, 0.2, 10.0),
            ("test_sped_up", 0.5, 0.4, 10.0),
            ("test_steady", 1.05, 0.9, 10.0),
        ],
    );

    // Act
    let answer = comparison(&app, "baseline=build:main/41&candidate=build:main/42");

    // Assert: regressions first, then improvements, then the rest.
    assert_eq!(
        verdicts(&answer),
        [
            ("test_slowed".to_owned(), "regressed".to_owned()),
            ("test_sped_up".to_owned(), "improved".to_owned()),
            ("test_steady".to_owned(), "unchanged".to_owned()),
        ]
    );
    assert_eq!(
        answer["summary"],
        json!({"regressed": 1, "improved": 1, "missing": 0, "new": 0, "unchanged": 1, "total": 3})
    );
    assert_eq!(
        answer["baseline"],
        json!({"spec": "build:main/41", "runs": 1, "run_names": ["main/41"], "sessions": base})
    );
    assert_eq!(answer["candidate"]["sessions"], json!(cand));
    let slowed = test_named(&answer, "test_slowed");
    let wall = &slowed["total_time"];
    assert!(close(&wall["baseline"], 0.4) && close(&wall["candidate"], 0.8));
    assert!(close(&wall["change"], 0.4) && close(&wall["change_percent"], 100.0));
    assert_eq!(wall["verdict"], "regressed");
    assert!(wall.get("baseline_sd").is_none(), "one run has no sd");
    let reasons = slowed["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{slowed}");
    assert!(
        reasons[0]
            .as_str()
            .unwrap()
            .starts_with("wall time +100.0%"),
        "{slowed}"
    );
    assert_eq!(slowed["context_h"], MACHINE);
    assert_eq!(slowed["item_path"], "tests.test_perf");
    assert_eq!(slowed["item_fs_loc"], "tests/test_perf.py");
    assert_eq!(slowed["component"], "perf");
    assert_eq!(
        (
            slowed["baseline_runs"].clone(),
            slowed["candidate_runs"].clone()
        ),
        (json!(1), json!(1))
    );
    let sped_up = test_named(&answer, "test_sped_up");
    assert!(close(&sped_up["total_time"]["change_percent"], -50.0));
    assert!(sped_up["reasons"][0]
        .as_str()
        .unwrap()
        .starts_with("wall time -50.0%"));
    // CPU time is reported (user + kernel), not judged unless asked.
    assert!(close(&sped_up["cpu_time"]["candidate"], 0.4));
    assert!(sped_up["cpu_time"].get("verdict").is_none());
}

#[test]
fn a_change_smaller_than_the_time_floor_is_unchanged_whatever_its_percentage() {
    // Arrange: tiny tests whose time triples, below the default floor of 0.1 s.
    let app = spawn_app();
    store_build(
        &app,
        "1",
        &[
            ("test_tiny", 0.01, 0.0, 0.0),
            ("test_small", 0.03, 0.0, 0.0),
        ],
    );
    store_build(
        &app,
        "2",
        &[
            ("test_tiny", 0.04, 0.0, 0.0),
            ("test_small", 0.09, 0.0, 0.0),
        ],
    );

    // Act
    let by_default = comparison(&app, "baseline=build:main/1&candidate=build:main/2");
    let fine_floor = comparison(
        &app,
        "baseline=build:main/1&candidate=build:main/2&min_time=0.01",
    );
    let reversed = comparison(
        &app,
        "baseline=build:main/2&candidate=build:main/1&min_time=0.01",
    );

    // Assert
    assert_eq!(verdict_of(&by_default, "test_tiny"), "unchanged");
    assert_eq!(verdict_of(&by_default, "test_small"), "unchanged");
    assert!(close(&by_default["thresholds"]["min_time"], 0.1));
    assert_eq!(verdict_of(&fine_floor, "test_tiny"), "regressed");
    assert_eq!(verdict_of(&fine_floor, "test_small"), "regressed");
    assert_eq!(verdict_of(&reversed, "test_small"), "improved");
}

#[test]
fn a_test_only_in_the_candidate_is_new_and_one_only_in_the_baseline_is_missing() {
    // Arrange
    let app = spawn_app();
    store_build(
        &app,
        "1",
        &[
            ("test_kept", 1.0, 0.5, 1.0),
            ("test_removed", 1.0, 0.5, 1.0),
        ],
    );
    store_build(
        &app,
        "2",
        &[("test_kept", 1.0, 0.5, 1.0), ("test_added", 2.0, 0.5, 1.0)],
    );

    // Act
    let answer = comparison(&app, "baseline=build:main/1&candidate=build:main/2");

    // Assert
    assert_eq!(
        verdicts(&answer),
        [
            ("test_removed".to_owned(), "missing".to_owned()),
            ("test_added".to_owned(), "new".to_owned()),
            ("test_kept".to_owned(), "unchanged".to_owned()),
        ]
    );
    let added = test_named(&answer, "test_added");
    assert_eq!(added["total_time"]["baseline"], Value::Null);
    assert!(close(&added["total_time"]["candidate"], 2.0));
    assert_eq!(added["total_time"]["change"], Value::Null);
    assert_eq!(added["baseline_runs"], 0);
    assert_eq!(added["reasons"], json!(["only in the candidate"]));
    let removed = test_named(&answer, "test_removed");
    assert_eq!(removed["mem_usage"]["candidate"], Value::Null);
    assert_eq!(removed["candidate_runs"], 0);
    assert_eq!(
        (
            answer["summary"]["new"].clone(),
            answer["summary"]["missing"].clone()
        ),
        (json!(1), json!(1))
    );
}

#[test]
fn memory_growth_beyond_the_threshold_and_the_floor_regressed() {
    // Arrange
    let app = spawn_app();
    store_build(
        &app,
        "1",
        &[
            ("test_grew", 1.0, 0.5, 50.0),
            ("test_grew_a_little", 1.0, 0.5, 50.0),
            ("test_small_memory", 1.0, 0.5, 0.2),
            ("test_from_nothing", 1.0, 0.5, 0.0),
        ],
    );
    store_build(
        &app,
        "2",
        &[
            ("test_grew", 1.0, 0.5, 60.0),
            ("test_grew_a_little", 1.0, 0.5, 54.0),
            ("test_small_memory", 1.0, 0.5, 0.9),
            ("test_from_nothing", 1.0, 0.5, 5.0),
        ],
    );

    // Act
    let answer = comparison(&app, "baseline=build:main/1&candidate=build:main/2");
    let lenient = comparison(
        &app,
        "baseline=build:main/1&candidate=build:main/2&max_memory_growth=25",
    );

    // Assert
    assert_eq!(verdict_of(&answer, "test_grew"), "regressed");
    let grew = test_named(&answer, "test_grew");
    assert!(close(&grew["mem_usage"]["change_percent"], 20.0));
    assert!(grew["reasons"][0]
        .as_str()
        .unwrap()
        .starts_with("memory +20.0%"));
    assert_eq!(verdict_of(&answer, "test_grew_a_little"), "unchanged");
    assert_eq!(verdict_of(&answer, "test_small_memory"), "unchanged");
    // From a baseline of 0 there is no percentage, and 5 MB is past the 1 MB floor.
    assert_eq!(verdict_of(&answer, "test_from_nothing"), "regressed");
    let from_nothing = test_named(&answer, "test_from_nothing");
    assert_eq!(from_nothing["mem_usage"]["change_percent"], Value::Null);
    // Listed first: an unbounded relative change.
    assert_eq!(answer["tests"][0]["item_variant"], "test_from_nothing");
    assert_eq!(verdict_of(&lenient, "test_grew"), "unchanged");
}

#[test]
fn with_several_baseline_runs_a_slowdown_within_the_noise_is_unchanged() {
    // Arrange: builds 1-3 are the baseline; `test_noisy` varies by ±0.3 s, `test_stable` not.
    let app = spawn_app();
    for (build, noisy) in [("1", 0.7), ("2", 1.0), ("3", 1.3)] {
        store_build(
            &app,
            build,
            &[
                ("test_noisy", noisy, 0.1, 1.0),
                ("test_stable", 1.0, 0.1, 1.0),
            ],
        );
    }
    store_build(
        &app,
        "4",
        &[
            ("test_noisy", 1.5, 0.1, 1.0),
            ("test_stable", 1.5, 0.1, 1.0),
        ],
    );

    // Act
    let answer = comparison(&app, "baseline=builds:main/1..3&candidate=build:main/4");
    let one_sigma = comparison(
        &app,
        "baseline=builds:main/1..3&candidate=build:main/4&sigma=1",
    );
    // The 3 latest builds not counting the candidate's: 1, 2 and 3, not 4.
    let latest = comparison(&app, "baseline=last:main/3&candidate=build:main/4");

    // Assert: +50% is past the 20% threshold, but within 3 sd (0.9 s) of the noisy one.
    assert_eq!(answer["baseline"]["runs"], 3);
    assert_eq!(
        answer["baseline"]["run_names"],
        json!(["main/1", "main/2", "main/3"])
    );
    assert_eq!(verdict_of(&answer, "test_noisy"), "unchanged");
    assert_eq!(verdict_of(&answer, "test_stable"), "regressed");
    let noisy = test_named(&answer, "test_noisy");
    assert!(close(&noisy["total_time"]["baseline"], 1.0));
    assert!(close(&noisy["total_time"]["baseline_sd"], 0.3));
    assert_eq!(noisy["baseline_runs"], 3);
    assert!(close(
        &test_named(&answer, "test_stable")["total_time"]["baseline_sd"],
        0.0
    ));
    assert_eq!(verdict_of(&one_sigma, "test_noisy"), "regressed");
    assert!(test_named(&one_sigma, "test_noisy")["reasons"][0]
        .as_str()
        .unwrap()
        .contains("baseline sd 0.300 s"));
    assert_eq!(
        latest["baseline"]["run_names"],
        answer["baseline"]["run_names"]
    );
    assert_eq!(latest["tests"], answer["tests"]);
}

#[test]
fn the_controller_and_workers_of_one_build_count_as_one_run() {
    // Arrange: pytest-xdist runs with 2 workers, then with 3: each build is 3 or 4 sessions,
    // the controller's holding no metric.
    let app = spawn_app();
    let measures = |slow: f64| -> Vec<Measure<'static>> {
        vec![
            ("test_a", 1.0, 0.5, 1.0),
            ("test_b", 1.0, 0.5, 1.0),
            ("test_c", slow, 0.5, 1.0),
            ("test_d", 1.0, 0.5, 1.0),
        ]
    };
    let base = store_build_on(&app, MACHINE, "main", "7", 2, &measures(1.0));
    let cand = store_build_on(&app, MACHINE, "main", "8", 3, &measures(2.0));

    // Act
    let answer = comparison(&app, "baseline=build:main/7&candidate=build:main/8");

    // Assert
    assert_eq!(answer["baseline"]["runs"], 1);
    assert_eq!(answer["baseline"]["sessions"], json!(base));
    assert_eq!(answer["candidate"]["runs"], 1);
    assert_eq!(answer["candidate"]["sessions"].as_array().unwrap().len(), 4);
    assert_eq!(answer["candidate"]["sessions"], json!(cand));
    assert_eq!(answer["summary"]["total"], 4);
    assert_eq!(answer["summary"]["regressed"], 1);
    assert_eq!(verdict_of(&answer, "test_c"), "regressed");
    for test in answer["tests"].as_array().unwrap() {
        assert_eq!(test["baseline_runs"], 1, "{test}");
        assert_eq!(test["candidate_runs"], 1, "{test}");
    }
}

#[test]
fn a_test_measured_twice_in_one_run_counts_once_as_its_mean() {
    // Arrange: a rerun, in another session of the same build.
    let app = spawn_app();
    store_build(&app, "1", &[("test_flaky", 1.0, 0.5, 1.0)]);
    app.create(
        "/api/v1/sessions/",
        &session("rerun-session", "commit-of-2", Some(("main", "2"))),
    );
    store_build(&app, "2", &[("test_flaky", 1.0, 0.5, 1.0)]);
    record(
        &app,
        "rerun-session",
        MACHINE,
        ("test_flaky", 3.0, 0.5, 1.0),
    );

    // Act
    let answer = comparison(&app, "baseline=build:main/1&candidate=build:main/2");

    // Assert
    let flaky = test_named(&answer, "test_flaky");
    assert!(close(&flaky["total_time"]["candidate"], 2.0), "{flaky}");
    assert_eq!(flaky["candidate_runs"], 1);
    assert_eq!(answer["candidate"]["runs"], 1);
    assert_eq!(answer["candidate"]["sessions"].as_array().unwrap().len(), 2);
}

#[test]
fn an_scm_spec_takes_every_session_of_the_references_it_starts_and_a_run_per_reference() {
    // Arrange: sessions with no pipeline tags, as a local pytest run makes them; two of them
    // (an xdist controller and worker) for commit abc111.
    let app = spawn_app();
    for (h, scm, wall) in [
        ("s-111-ctl", "abc111", None),
        ("s-111-w1", "abc111", Some(1.0)),
        ("s-222", "abc222", Some(1.2)),
        ("s-333", "def333", Some(3.0)),
    ] {
        app.create("/api/v1/sessions/", &session(h, scm, None));
        if let Some(wall) = wall {
            record(&app, h, MACHINE, ("test_x", wall, 0.5, 1.0));
        }
    }

    // Act
    let one_ref = comparison(&app, "baseline=scm:abc1&candidate=scm:def");
    let two_refs = comparison(&app, "baseline=scm:abc&candidate=scm:def333");

    // Assert
    assert_eq!(
        one_ref["baseline"],
        json!({"spec": "scm:abc1", "runs": 1, "run_names": ["abc111"],
               "sessions": ["s-111-ctl", "s-111-w1"]})
    );
    assert_eq!(verdict_of(&one_ref, "test_x"), "regressed");
    assert_eq!(two_refs["baseline"]["runs"], 2);
    assert_eq!(
        two_refs["baseline"]["run_names"],
        json!(["abc111", "abc222"])
    );
    let x = test_named(&two_refs, "test_x");
    assert!(close(&x["total_time"]["baseline"], 1.1));
    assert!(close(&x["total_time"]["baseline_sd"], 0.2 / 2f64.sqrt()));
}

/// Three sessions with one measure each, whose hashes share prefixes: `aa` names two of them,
/// `aa11` is one whole hash and the start of another.
fn app_with_sessions_aa11_aa1122_bb33() -> TestApp {
    let app = spawn_app();
    for h in ["aa11", "aa1122", "bb33"] {
        app.create("/api/v1/sessions/", &session(h, "r", None));
        record(&app, h, MACHINE, ("test_x", 1.0, 0.5, 1.0));
    }
    app
}

#[test]
fn a_session_side_is_a_unique_prefix_of_the_hash_with_or_without_session_colon() {
    // Arrange
    let app = app_with_sessions_aa11_aa1122_bb33();

    for kind in ["session:", ""] {
        // Act
        let side = |query: &str| query.replace('=', &format!("={kind}"));
        let by_prefix = comparison(&app, &side("baseline=bb&candidate=aa112"));
        let exact_wins = comparison(&app, &side("baseline=aa11&candidate=bb33"));
        let ambiguous = compare(&app, &side("baseline=aa&candidate=bb"));

        // Assert
        assert_eq!(by_prefix["baseline"]["sessions"], json!(["bb33"]));
        assert_eq!(by_prefix["candidate"]["sessions"], json!(["aa1122"]));
        assert_eq!(exact_wins["baseline"]["sessions"], json!(["aa11"]));
        let reason = assert_bad_field(&ambiguous, "baseline");
        assert!(reason.contains("more of the session hash"), "{reason}");
        assert!(ambiguous.1["message"]
            .as_str()
            .unwrap()
            .contains("2 sessions"));
    }
}

#[test]
fn a_side_that_is_neither_a_hash_nor_a_spec_is_a_400_listing_the_forms_with_examples() {
    let app = app_with_sessions_aa11_aa1122_bb33();

    let not_a_hash = compare(&app, "baseline=main&candidate=bb");

    let reason = assert_bad_field(&not_a_hash, "baseline");
    for form in [
        "session:<hash",
        "build:<pipeline>/<build>",
        "last:<pipeline>/<n>",
        "such as 3f2a9c",
    ] {
        assert!(reason.contains(form), "`{form}` not in: {reason}");
    }
}

#[test]
fn a_side_that_matches_no_session_is_a_404_naming_it() {
    // Arrange
    let app = spawn_app();
    store_build(&app, "1", &[("test_x", 1.0, 0.5, 1.0)]);

    // Act
    let no_candidate = compare(&app, "baseline=build:main/1&candidate=build:main/2");
    let no_baseline = compare(&app, "baseline=scm:nothing&candidate=build:main/1");
    let no_pipeline = compare(&app, "baseline=last:nightly/3&candidate=build:main/1");

    // Assert
    for ((status, body), side, spec) in [
        (&no_candidate, "candidate", "build:main/2"),
        (&no_baseline, "baseline", "scm:nothing"),
        (&no_pipeline, "baseline", "last:nightly/3"),
    ] {
        assert_eq!(*status, 404, "{body}");
        assert_has_message(body);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(side) && message.contains(spec),
            "{message}"
        );
    }
}

#[test]
fn a_bad_spec_or_threshold_is_a_400_naming_the_parameter() {
    let app = spawn_app();
    store_build(&app, "1", &[("test_x", 1.0, 0.5, 1.0)]);
    let sides = "baseline=build:main/1&candidate=build:main/1";

    for (query, field) in [
        ("candidate=build:main/1".to_owned(), "baseline"),
        ("baseline=build:main/1".to_owned(), "candidate"),
        (
            "baseline=main/1&candidate=build:main/1".to_owned(),
            "baseline",
        ),
        (
            "baseline=build:main/1&candidate=tag:x".to_owned(),
            "candidate",
        ),
        (
            "baseline=builds:main/9..3&candidate=build:main/1".to_owned(),
            "baseline",
        ),
        (
            "baseline=last:main/0&candidate=build:main/1".to_owned(),
            "baseline",
        ),
        (
            "baseline=scm:&candidate=build:main/1".to_owned(),
            "baseline",
        ),
        (format!("{sides}&max_slowdown=-5"), "max_slowdown"),
        (format!("{sides}&max_slowdown=fast"), "max_slowdown"),
        (
            format!("{sides}&max_memory_growth=NaN"),
            "max_memory_growth",
        ),
        (format!("{sides}&min_time="), "min_time"),
        (format!("{sides}&min_memory=x"), "min_memory"),
        (format!("{sides}&sigma=inf"), "sigma"),
        (format!("{sides}&max_cpu_slowdown=-1"), "max_cpu_slowdown"),
        (format!("{sides}&ignore_context=yes"), "ignore_context"),
        (format!("{sides}&only=regressed,worse"), "only"),
        (format!("{sides}&sigma=1&sigma=2"), "sigma"),
        (format!("{sides}&threshold=20"), "threshold"),
    ] {
        let reply = compare(&app, &query);
        assert_bad_field(&reply, field);
    }
}

#[test]
fn the_thresholds_applied_are_echoed_with_the_defaults_for_those_not_given() {
    // Arrange
    let app = spawn_app();
    store_build(&app, "1", &[("test_x", 1.0, 0.5, 1.0)]);
    store_build(&app, "2", &[("test_x", 2.0, 0.5, 1.0)]);

    // Act
    let defaults = comparison(&app, "baseline=build:main/1&candidate=build:main/2");
    let lenient = comparison(
        &app,
        "baseline=build:main/1&candidate=build:main/2&max_slowdown=150%25&sigma=2",
    );

    // Assert
    assert_eq!(
        defaults["thresholds"],
        json!({"max_slowdown": 20.0, "max_memory_growth": 10.0, "max_cpu_slowdown": null,
               "min_time": 0.1, "min_memory": 1.0, "sigma": 3.0, "ignore_context": false})
    );
    assert_eq!(verdict_of(&defaults, "test_x"), "regressed");
    assert_eq!(lenient["thresholds"]["max_slowdown"], 150.0);
    assert_eq!(lenient["thresholds"]["sigma"], 2.0);
    assert_eq!(verdict_of(&lenient, "test_x"), "unchanged");
}

#[test]
fn cpu_time_is_judged_only_when_a_cpu_threshold_is_given() {
    // Arrange: the same wall time, twice the CPU time (say, a second thread).
    let app = spawn_app();
    store_build(&app, "1", &[("test_threads", 1.0, 0.5, 1.0)]);
    store_build(&app, "2", &[("test_threads", 1.0, 1.0, 1.0)]);

    // Act
    let reported = comparison(&app, "baseline=build:main/1&candidate=build:main/2");
    let judged = comparison(
        &app,
        "baseline=build:main/1&candidate=build:main/2&max_cpu_slowdown=50",
    );

    // Assert
    assert_eq!(verdict_of(&reported, "test_threads"), "unchanged");
    assert!(close(
        &test_named(&reported, "test_threads")["cpu_time"]["change_percent"],
        100.0
    ));
    let threads = test_named(&judged, "test_threads");
    assert_eq!(threads["verdict"], "regressed");
    assert_eq!(threads["cpu_time"]["verdict"], "regressed");
    assert!(threads["reasons"][0]
        .as_str()
        .unwrap()
        .starts_with("CPU time +100.0%"));
}

#[test]
fn tests_are_compared_within_a_machine_unless_contexts_are_ignored() {
    // Arrange: the baseline ran on one machine, the candidate on another.
    let app = spawn_app();
    store_build_on(&app, MACHINE, "main", "1", 0, &[("test_x", 1.0, 0.5, 1.0)]);
    store_build_on(
        &app,
        OTHER_MACHINE,
        "main",
        "2",
        0,
        &[("test_x", 2.0, 0.5, 1.0)],
    );

    // Act
    let within = comparison(&app, "baseline=build:main/1&candidate=build:main/2");
    let across = comparison(
        &app,
        "baseline=build:main/1&candidate=build:main/2&ignore_context=true",
    );

    // Assert
    assert_eq!(within["summary"]["missing"], 1);
    assert_eq!(within["summary"]["new"], 1);
    let note = within["notes"][0].as_str().unwrap();
    assert!(note.contains("ignore_context=true"), "{note}");
    assert_eq!(across["summary"]["regressed"], 1);
    assert_eq!(across["tests"][0]["context_h"], Value::Null);
    assert_eq!(across["notes"], json!([]));
}

#[test]
fn only_lists_the_verdicts_asked_for_and_the_summary_still_counts_every_test() {
    // Arrange
    let app = spawn_app();
    store_build(
        &app,
        "1",
        &[
            ("test_a", 1.0, 0.5, 1.0),
            ("test_b", 1.0, 0.5, 1.0),
            ("test_c", 1.0, 0.5, 1.0),
        ],
    );
    store_build(
        &app,
        "2",
        &[
            ("test_a", 2.0, 0.5, 1.0),
            ("test_b", 1.0, 0.5, 1.0),
            ("test_d", 1.0, 0.5, 1.0),
        ],
    );

    // Act
    let answer = comparison(
        &app,
        "baseline=build:main/1&candidate=build:main/2&only=regressed,new",
    );

    // Assert
    assert_eq!(
        verdicts(&answer),
        [
            ("test_a".to_owned(), "regressed".to_owned()),
            ("test_d".to_owned(), "new".to_owned()),
        ]
    );
    assert_eq!(answer["summary"]["total"], 4);
    assert_eq!(answer["summary"]["unchanged"], 1);
}

#[test]
fn a_side_whose_sessions_hold_no_metric_is_compared_and_noted() {
    // Arrange: a build whose sessions were created but whose metrics never arrived.
    let app = spawn_app();
    store_build(&app, "1", &[("test_x", 1.0, 0.5, 1.0)]);
    app.create(
        "/api/v1/sessions/",
        &session("empty-build", "c", Some(("main", "2"))),
    );

    // Act
    let answer = comparison(&app, "baseline=build:main/1&candidate=build:main/2");

    // Assert
    assert_eq!(answer["candidate"]["runs"], 1);
    assert_eq!(answer["candidate"]["run_names"], json!(["main/2"]));
    assert_eq!(verdict_of(&answer, "test_x"), "missing");
    assert!(answer["notes"][0]
        .as_str()
        .unwrap()
        .contains("candidate's 1 session(s) hold no metric"));
}
