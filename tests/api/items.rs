//! `/items` and `/variants`: a test's metrics by exact name, and by substring with `like/`, where
//! `%`, `_` and `\` are plain characters and a `/` can be sent as `%2F`.

use crate::common::dataset::{all, listed, numbers, seeded_app, walk_pages};

#[test]
fn the_metrics_of_an_item_match_its_name_exactly() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/items/test_login/metrics"),
        [1, 2, 6, 12]
    );
    assert_eq!(listed(&app, "/api/v1/items/TestSuite/metrics/"), [5]);
    assert!(listed(&app, "/api/v1/items/test_log/metrics").is_empty());
    assert!(listed(&app, "/api/v1/items/TEST_LOGIN/metrics").is_empty());
}

#[test]
fn item_names_with_percent_backslash_and_slash_are_matched_when_percent_encoded() {
    let app = seeded_app();

    assert_eq!(listed(&app, "/api/v1/items/test_100%25_cover/metrics"), [3]);
    assert_eq!(listed(&app, "/api/v1/items/test_back%5Cslash/metrics"), [8]);
    assert_eq!(listed(&app, "/api/v1/items/test_path%2Fsep/metrics"), [10]);
    // `_` in an exact name is only an underscore.
    assert!(listed(&app, "/api/v1/items/test_aXb/metrics").is_empty());
}

#[test]
fn like_matches_a_substring_of_the_item_name_in_either_ascii_case() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/items/like/login/metrics"),
        [1, 2, 6, 12]
    );
    assert_eq!(
        listed(&app, "/api/v1/items/like/LOGIN/metrics"),
        [1, 2, 6, 12]
    );
    assert_eq!(listed(&app, "/api/v1/items/like/suite/metrics"), [5]);
    assert!(listed(&app, "/api/v1/items/like/logout/metrics").is_empty());
}

#[test]
fn a_percent_in_a_like_pattern_is_a_percent_and_does_not_match_everything() {
    let app = seeded_app();

    assert_eq!(listed(&app, "/api/v1/items/like/%25/metrics"), [3]);
    assert_eq!(listed(&app, "/api/v1/items/like/100%25_c/metrics"), [3]);
    assert!(listed(&app, "/api/v1/items/like/%25%25/metrics").is_empty());
}

#[test]
fn an_underscore_in_a_like_pattern_is_an_underscore_not_any_character() {
    let app = seeded_app();

    // test_a_b, not testXaYb.
    assert_eq!(listed(&app, "/api/v1/items/like/a_b/metrics"), [4]);
    // Every item with an underscore: all but TestSuite and testXaYb.
    assert_eq!(
        listed(&app, "/api/v1/items/like/_/metrics"),
        [1, 2, 3, 4, 6, 8, 9, 10, 11, 12]
    );
}

#[test]
fn a_backslash_in_a_like_pattern_is_a_backslash_not_an_escape() {
    let app = seeded_app();

    assert_eq!(listed(&app, "/api/v1/items/like/%5C/metrics"), [8]);
    assert_eq!(listed(&app, "/api/v1/items/like/k%5Cs/metrics"), [8]);
    // test_back\slash does not contain "backslash"; test_backslash does.
    assert_eq!(listed(&app, "/api/v1/items/like/backslash/metrics"), [9]);
    // `\%` is two characters, not an escaped percent.
    assert!(listed(&app, "/api/v1/items/like/%5C%25/metrics").is_empty());
    assert!(listed(&app, "/api/v1/items/like/%5C_/metrics").is_empty());
}

#[test]
fn a_slash_sent_as_percent_2f_is_part_of_the_pattern() {
    let app = seeded_app();

    assert_eq!(listed(&app, "/api/v1/items/like/h%2Fs/metrics"), [10]);
    assert_eq!(listed(&app, "/api/v1/variants/like/a%2Fb/metrics"), [10]);
    assert_eq!(listed(&app, "/api/v1/variants/like/%2F/metrics"), [10]);
}

#[test]
fn sql_in_an_item_or_pattern_is_data() {
    let app = seeded_app();

    for path in [
        "/api/v1/items/like/'%20OR%201=1%20--/metrics",
        "/api/v1/items/like/x'%20OR%20'1'='1/metrics",
        "/api/v1/items/test_login'%20OR%201=1%20--/metrics",
        "/api/v1/variants/like/%22);%20DROP%20TABLE%20metrics;%20--/metrics",
    ] {
        assert!(listed(&app, path).is_empty(), "{path}");
    }
    assert_eq!(listed(&app, "/api/v1/metrics/"), all());
}

#[test]
fn the_metrics_of_a_variant_match_its_name_exactly() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/variants/test_login%5Buser%5D/metrics"),
        [1, 6, 12]
    );
    assert_eq!(
        listed(&app, "/api/v1/variants/test_path%2Fsep%5Ba%2Fb%5D/metrics"),
        [10]
    );
    assert!(listed(&app, "/api/v1/variants/test_login/metrics").is_empty());
}

#[test]
fn like_matches_a_substring_of_the_variant_with_wildcards_as_text() {
    let app = seeded_app();

    assert_eq!(
        listed(&app, "/api/v1/variants/like/%5BUSER%5D/metrics"),
        [1, 6, 12]
    );
    assert_eq!(listed(&app, "/api/v1/variants/like/%5B%5D/metrics"), [3, 7]);
    assert_eq!(listed(&app, "/api/v1/variants/like/%25_/metrics"), [3]);
    assert_eq!(listed(&app, "/api/v1/variants/like/h%5B1/metrics"), [8, 9]);
    assert!(listed(&app, "/api/v1/variants/like/%25%5Buser/metrics").is_empty());
}

#[test]
fn item_and_variant_listings_take_the_metric_filters_and_sort() {
    let app = seeded_app();

    assert_eq!(
        listed(
            &app,
            "/api/v1/items/like/login/metrics?sort=mem_usage&order=desc"
        ),
        [6, 1, 2, 12]
    );
    assert_eq!(
        listed(&app, "/api/v1/variants/like/%5Buser%5D/metrics?context_h=d8b2f1a3c4e5f6071829304b5c6d7e8f90a123cb"),
        [12]
    );
    assert_eq!(
        listed(
            &app,
            "/api/v1/items/test_login/metrics?component=api&min_total_time=1"
        ),
        [1, 6]
    );
}

#[test]
fn page_links_of_a_pattern_route_keep_its_encoded_segment_and_lead_to_the_next_page() {
    let app = seeded_app();

    let pages = walk_pages(
        &app,
        "/api/v1/variants/like/%5D/metrics?per_page=4&sort=total_time",
        "sort=total_time",
    );

    let listed_in_order: Vec<usize> = pages.iter().flat_map(numbers).collect();
    // Every variant but TestSuite and tests.test_mod ends with `]`, by total_time ascending.
    assert_eq!(listed_in_order, [12, 9, 4, 2, 7, 1, 6, 3, 8, 10]);
    assert_eq!(
        pages[0]["next_url"],
        "/api/v1/variants/like/%5D/metrics?per_page=4&sort=total_time&page=2"
    );
}
