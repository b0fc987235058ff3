#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The published Node.js clients, unmodified, against the real server binary:
//! RudderStack's `@rudderstack/rudder-sdk-node` (by default gzip JSON labelled
//! `application/x-www-form-urlencoded`, and every 4xx final) and Segment's
//! `@segment/analytics-node`. Each test checks what the store kept and what the InMoment
//! sandbox received.
//!
//! The packages are pinned by `clients/node/package-lock.json` and installed by
//! `cargo xtask prepare` (part of `cargo xtask ci`); `clients/node/drive.js` drives them.

mod clients;

use std::path::{Path, PathBuf};

use inmoment_sandbox::{Sandbox, SandboxConfig};
use serde_json::{json, Value};

use clients::{
    checks, message_ids, param, run_node_report, wait_delivered, ServerProcess, StoreView, TempDir,
    WRITE_KEY,
};

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node")
}

/// Runs `drive.js` with `plan`; returns its report. Missing packages fail the test (never
/// skip it) and say how to install them.
async fn drive(plan: Value) -> Value {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/@rudderstack/rudder-sdk-node")
            .exists()
            && dir.join("node_modules/@segment/analytics-node").exists(),
        "the Node clients are not installed in {}: run `cargo xtask prepare`",
        dir.display()
    );
    run_node_report(&dir, "drive.js", &plan).await
}

fn plan(sdk: &str, server: &ServerProcess, calls: Vec<Value>) -> Value {
    json!({"sdk": sdk, "host": server.base_url(), "write_key": WRITE_KEY, "calls": calls})
}

fn call(method: &str, args: Value) -> Value {
    json!({"method": method, "args": args})
}

/// An identify, `tracks` tracks and a page, with ids the test chooses.
fn calls(prefix: &str, tracks: usize) -> Vec<Value> {
    let mut calls = vec![call(
        "identify",
        json!({"userId": "u-1", "messageId": format!("{prefix}-identify"),
               "traits": {"email": "ada@example.com", "plan": "pro"}}),
    )];
    calls.extend((0..tracks).map(|i| {
        call(
            "track",
            json!({"userId": format!("u-{}", i % 3), "messageId": format!("{prefix}-track-{i}"),
                   "event": format!("E-{i}"), "properties": {"plan": "pro"}}),
        )
    }));
    calls.push(call(
        "page",
        json!({"anonymousId": "anon-1", "messageId": format!("{prefix}-page"), "name": "Pricing",
               "properties": {"url": "https://example.com/pricing"}}),
    ));
    calls
}

/// Every id is stored, then all `ids.len()` checks reach the sandbox with the demo token
/// and what each event carries.
async fn assert_stored_and_delivered(
    server: &mut ServerProcess,
    dir: &Path,
    sandbox: &Sandbox,
    ids: &[String],
    tracks: usize,
) {
    let seen = StoreView::open(dir).seen();
    let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "not stored: {missing:?}");
    wait_delivered(server, dir, sandbox, ids.len()).await;
    let checks = checks(sandbox);
    let identify = checks
        .iter()
        .find(|c| param(c, "external_id") == Some("u-1") && param(c, "event_name").is_none())
        .unwrap_or_else(|| panic!("no check for the identify: {checks:?}"));
    assert_eq!(param(identify, "email"), Some("ada@example.com"));
    assert_eq!(param(identify, "properties[plan]"), Some("pro"));
    let mut names: Vec<String> = checks
        .iter()
        .filter_map(|c| param(c, "event_name").map(str::to_string))
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..tracks).map(|i| format!("E-{i}")).collect();
    expected.sort();
    assert_eq!(names, expected, "each track delivered exactly once");
    assert!(checks
        .iter()
        .any(|c| param(c, "url") == Some("https://example.com/pricing")));
}

async fn start(label: &str) -> (TempDir, Sandbox, ServerProcess) {
    let dir = TempDir::new(label);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let server = ServerProcess::start(dir.path(), &sandbox.base_url()).await;
    (dir, sandbox, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rudderstack_node_sdk_with_its_defaults_is_stored_and_delivered() {
    let (dir, sandbox, mut server) = start("node-rudder").await;
    let report = drive(plan("rudderstack", &server, calls("rs", 5))).await;
    assert_eq!(report["version"], "3.0.13", "wrong client installed");
    let ids = message_ids(&report);
    assert_eq!(ids.len(), 7);
    assert_stored_and_delivered(&mut server, dir.path(), &sandbox, &ids, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_analytics_node_is_stored_and_delivered() {
    let (dir, sandbox, mut server) = start("node-segment").await;
    let report = drive(plan("segment", &server, calls("sg", 20))).await;
    assert_eq!(report["version"], "3.1.0", "wrong client installed");
    let ids = message_ids(&report);
    assert_eq!(ids.len(), 22);
    assert_stored_and_delivered(&mut server, dir.path(), &sandbox, &ids, 20).await;
}
