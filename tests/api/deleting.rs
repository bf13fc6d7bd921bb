//! `DELETE /api/v1/sessions/<h>`: what it removes, what it answers, and that every listing,
//! count and page number stays exact afterwards — deletes leave gaps in the ids that the order
//! stored is paged by.

use serde_json::{json, Value};

use crate::common::dataset::{
    all, listed, listed_session, matching, seeded_app, seeded_app_with_page_size, walk_pages, S1,
    S2, S3, S4,
};
use crate::common::{assert_has_message, metric, spawn_app_with_page_size, TestApp};

fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    app.send("DELETE", path, None, b"")
}

/// Every metric a listing gives, page after page, as data-set numbers.
fn every_page(app: &TestApp, path: &str) -> Vec<usize> {
    if app.get(path).0 == 204 {
        return vec![];
    }
    walk_pages(app, path, "")
        .iter()
        .flat_map(crate::common::dataset::numbers)
        .collect()
}

#[test]
fn deleting_a_session_removes_it_with_its_tags_and_metrics_and_says_what_it_removed() {
    // Arrange
    let app = seeded_app();

    // Act
    let reply = delete(&app, &format!("/api/v1/sessions/{S2}"));

    // Assert
    assert_eq!(
        reply,
        (
            200,
            json!({"session_h": S2, "deleted": {"sessions": 1, "metrics": 4}})
        )
    );
    let rest = matching(|m| m.session_h != S2);
    assert_eq!(listed(&app, "/api/v1/metrics/"), rest);
    assert_eq!(app.get(&format!("/api/v1/sessions/{S2}")).0, 204);
    assert_eq!(app.get(&format!("/api/v1/sessions/{S2}/metrics")).0, 204);
    let (_, sessions) = app.get("/api/v1/sessions/");
    let expected: Vec<Value> = [S1, S3, S4].into_iter().map(listed_session).collect();
    assert_eq!(sessions["sessions"], Value::Array(expected));
    // Its tags went with it: build 10 of `main` and the tag `team=backend` are gone.
    assert_eq!(
        app.get("/api/v1/pipelines/main/builds").1["builds"],
        json!(["7"])
    );
    assert_eq!(
        app.get("/api/v1/sessions/?with_flags=team&restrict_flags=backend")
            .0,
        204
    );
    assert_eq!(app.rows_in("session_tags"), 4 + 4);
    // A second delete finds nothing.
    let (status, body) = delete(&app, &format!("/api/v1/sessions/{S2}"));
    assert_eq!(status, 404, "{body}");
}

#[test]
fn after_a_delete_every_count_and_name_list_follows_the_metrics_left() {
    let app = seeded_app();

    delete(&app, &format!("/api/v1/sessions/{S2}"));

    let count = |path: &str| app.get(path).1["count"].as_u64().unwrap() as usize;
    let left = |keep: fn(&crate::common::dataset::Row) -> bool| {
        matching(|m| m.session_h != S2 && keep(m)).len()
    };
    assert_eq!(count("/api/v1/metrics/count"), left(|_| true));
    assert_eq!(count("/api/v1/sessions/count"), 3);
    assert_eq!(
        count("/api/v1/items/test_login/metrics/count"),
        left(|m| m.item == "test_login")
    );
    assert_eq!(
        count("/api/v1/filters/scope/function/metrics/count"),
        left(|m| m.kind == "function")
    );
    assert_eq!(
        count(&format!(
            "/api/v1/contexts/{}/metrics/count",
            crate::common::dataset::CA
        )),
        left(|m| m.context_h == crate::common::dataset::CA)
    );
    assert_eq!(count(&format!("/api/v1/sessions/{S2}/metrics/count")), 0);
    // `apiXv3` had metrics in S1 and S2, `db/core` in S2 and S3: both stay.
    let (_, components) = app.get("/api/v1/components/");
    assert_eq!(
        components["components"],
        json!(["api", "apiXv3", "api_v2", "db/core"])
    );
    // `testXaYb` was S2's alone: the item search no longer finds it.
    assert_eq!(app.get("/api/v1/items/like/XaY/metrics").0, 204);
    // `db/core` reported in S2 (main, build 10) and S3 (release/2.0): only S3's pipeline is left.
    assert_eq!(
        app.get("/api/v1/components/db%2Fcore/pipelines").1["pipelines"],
        json!(["release/2.0"])
    );
}

#[test]
fn metrics_of_a_session_that_was_never_stored_are_deleted_by_its_hash() {
    // Arrange: metrics naming a session no one posted.
    let app = spawn_app_with_page_size(500);
    for item in ["test_a", "test_b"] {
        app.create("/api/v1/metrics/", &metric(item));
    }
    let orphan = metric("test_c")["session_h"].as_str().unwrap().to_owned();

    // Act
    let reply = delete(&app, &format!("/api/v1/sessions/{orphan}"));

    // Assert
    assert_eq!(
        reply,
        (
            200,
            json!({"session_h": orphan, "deleted": {"sessions": 0, "metrics": 2}})
        )
    );
    assert_eq!(app.rows_in("metrics"), 0);
    assert_eq!(app.get("/api/v1/metrics/count").1, json!({"count": 0}));
    assert_eq!(app.get("/api/v1/components/").0, 204);
}

#[test]
fn deleting_an_unknown_hash_or_a_prefix_is_a_json_404_and_removes_nothing() {
    let app = seeded_app();

    for hash in [
        "0000000000000000000000000000000000000000",
        "5e5520b2",
        "5e55%25",
    ] {
        let (status, body) = delete(&app, &format!("/api/v1/sessions/{hash}"));
        assert_eq!(status, 404, "{hash}: {body}");
        assert_has_message(&body);
    }
    let (status, body) = app.send(
        "DELETE",
        &format!("/api/v1/sessions/{S1}?cascade=yes"),
        None,
        b"",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(listed(&app, "/api/v1/metrics/"), all());
    assert_eq!(app.rows_in("sessions"), 4);
}

#[test]
fn after_deletes_at_the_start_and_in_the_middle_every_page_of_every_listing_is_exact() {
    // Arrange: 2 metrics a page, so that pages straddle the gaps.
    let app = seeded_app_with_page_size(2);

    // Act: the middle session, then the first.
    delete(&app, &format!("/api/v1/sessions/{S2}"));
    let after_middle = every_page(&app, "/api/v1/metrics/");
    delete(&app, &format!("/api/v1/sessions/{S1}"));

    // Assert
    assert_eq!(after_middle, matching(|m| m.session_h != S2));
    let left = matching(|m| m.session_h == S3);
    assert_eq!(every_page(&app, "/api/v1/metrics/"), left);
    for page in 1..=2 {
        let (status, body) = app.get(&format!("/api/v1/metrics/?page={page}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["total_page"], 2);
        let (_, from_end) = app.get(&format!("/api/v1/metrics/?page={}", page as i64 - 3));
        assert_eq!(body["metrics"], from_end["metrics"], "page {page}");
    }
    assert_eq!(app.get("/api/v1/metrics/?page=3").0, 404);
    assert_eq!(
        every_page(&app, "/api/v1/metrics/?sort=total_time&order=desc"),
        crate::common::dataset::ordered_by(&left, |m| m.total_time, true)
    );
    assert_eq!(
        every_page(&app, "/api/v1/components/db%2Fcore/metrics"),
        matching(|m| m.session_h == S3 && m.component == "db/core")
    );
    assert_eq!(
        every_page(&app, "/api/v1/items/test_login/metrics"),
        matching(|m| m.session_h == S3 && m.item == "test_login")
    );
    assert_eq!(
        every_page(&app, &format!("/api/v1/sessions/{S3}/metrics")),
        left
    );
    let (_, sessions) = app.get("/api/v1/sessions/?per_page=1&page=2");
    assert_eq!(sessions["sessions"], json!([listed_session(S4)]));
    assert_eq!(sessions["total_page"], 2);
}

#[test]
fn metrics_stored_after_deletes_are_listed_last_and_every_page_stays_exact() {
    // Arrange: 60 metrics of 6 sessions, interleaved as pytest-xdist's workers post them.
    let app = spawn_app_with_page_size(7);
    let hash = |s: usize| format!("{s:040x}");
    let post = |n: usize| {
        let mut m = metric(&format!("test_{n:03}"));
        m["session_h"] = json!(hash(n % 6));
        app.create("/api/v1/metrics/", &m);
    };
    (0..60).for_each(post);
    let mut expected: Vec<usize> = (0..60).collect();
    let items = |path: &str| -> Vec<usize> {
        let mut found = Vec::new();
        let mut page = 1;
        loop {
            let (status, body) = app.get(&format!("{path}?page={page}"));
            if status != 200 {
                assert!([204, 404].contains(&status), "{path} page {page}: {body}");
                break;
            }
            for m in body["metrics"].as_array().unwrap() {
                let item = m["item"].as_str().unwrap();
                found.push(item["test_".len()..].parse().unwrap());
            }
            page += 1;
        }
        found
    };

    for (round, session) in [0, 3, 5, 1].into_iter().enumerate() {
        // Act: delete a session, then store a few more metrics (whose ids may reuse those of
        // deleted metrics at the end).
        let (status, body) = delete(&app, &format!("/api/v1/sessions/{}", hash(session)));
        assert_eq!(status, 200, "{body}");
        expected.retain(|n| n % 6 != session);
        for n in 100 + round * 10..100 + round * 10 + 4 {
            post(n);
            expected.push(n);
        }

        // Assert
        assert_eq!(
            items("/api/v1/metrics/"),
            expected,
            "after deleting {session}"
        );
        let (_, count) = app.get("/api/v1/metrics/count");
        assert_eq!(count["count"], expected.len());
        let (_, last) = app.get("/api/v1/metrics/?page=-1");
        let pages = expected.len().div_ceil(7);
        assert_eq!(last["total_page"], pages);
        let tail: Vec<Value> = expected[(pages - 1) * 7..]
            .iter()
            .map(|n| json!(format!("test_{n:03}")))
            .collect();
        let listed: Vec<Value> = last["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["item"].clone())
            .collect();
        assert_eq!(listed, tail);
    }
}
