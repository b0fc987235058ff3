//! Every `tests/fixtures/<case>.input.json` must map to exactly `<case>.expected.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

#[test]
fn fixtures_map_to_their_expected_output() {
    use inmoment_group as _;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let count = inmoment_testkit::run_fixture_dir(&dir);
    assert!(count >= 5, "only {count} fixtures");
}
