#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The published Python Segment client `segment-analytics-python`, unmodified, against the
//! real server binary, in both behaviours users run: 2.3.4 (write key only in the body,
//! only 200 counts as success, reads `code`/`message` of error bodies) and 2.4.0 (Basic
//! auth plus the body key). Each test checks what the store kept and what the InMoment
//! sandbox received.
//!
//! The clients live in virtualenvs under `target/pyclients/<version>`, made by `.ci/run`;
//! `clients/segment_python.py` drives them.

mod clients;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use inmoment_sandbox::{RecordedRequest, Sandbox, SandboxConfig};
use serde_json::{json, Value};

use clients::{
    checks, message_ids, metric, param, run_driver, wait_delivered, ServerProcess, StoreView,
    TempDir, WRITE_KEY,
};

const V2_3_4: &str = "2.3.4";
const V2_4_0: &str = "2.4.0";

/// The interpreter of the virtualenv holding this client version; a missing one fails
/// the test (never skips it) and says how to make it.
fn python(version: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root
        .join("target/pyclients")
        .join(version)
        .join("bin/python");
    assert!(
        python.exists(),
        "segment-analytics-python {version} is not installed at {}: run `cargo xtask prepare`",
        python.display()
    );
    python
}

/// Runs the driver script with `plan` (JSON text) on the given client version; returns
/// its report (see the script's docstring).
async fn drive_text(version: &str, plan: String) -> Value {
    let python = python(version);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/segment_python.py");
    let expected = version.to_string();
    let mut command = Command::new(python);
    // -I: ignore PYTHON* variables and the user's site-packages.
    command.arg("-I").arg(script);
    let output = run_driver(command, plan).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python driver failed ({}):\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}): {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(
        report["version"],
        expected.as_str(),
        "wrong client installed"
    );
    report
}

/// Runs `calls` through a `Client(write_key, host=<server>, **options)`.
async fn drive(
    version: &str,
    server: &ServerProcess,
    write_key: &str,
    options: Value,
    calls: Vec<Value>,
) -> Value {
    let plan = json!({
        "host": server.base_url(),
        "write_key": write_key,
        "options": options,
        "calls": calls,
    });
    drive_text(version, plan.to_string()).await
}

fn call(method: &str, args: Value) -> Value {
    json!({"method": method, "args": args})
}

fn track(user: &str, event: &str) -> Value {
    call(
        "track",
        json!({"user_id": user, "event": event, "properties": {"plan": "pro"}}),
    )
}

/// The HTTP requests the client made, each answered 200.
fn requests_all_200(report: &Value) -> &Vec<Value> {
    let requests = report["requests"].as_array().unwrap();
    assert!(!requests.is_empty(), "no request was made: {report}");
    for request in requests {
        assert_eq!(request["status"], 200, "{report}");
    }
    assert_eq!(report["errors"], json!([]), "the client reported errors");
    requests
}

/// 2.3.4 sends the key only in the body; 2.4.0 sends Basic auth as well.
fn assert_auth_as_released(version: &str, request: &Value) {
    assert_eq!(request["body_write_key"], WRITE_KEY, "{request}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"))
    );
    let expected = match version {
        V2_3_4 => Value::Null,
        _ => Value::String(basic),
    };
    assert_eq!(request["authorization"], expected, "{request}");
}

/// Every id is in the store's `seen` table.
fn assert_stored(dir: &Path, ids: &[String]) {
    let seen = StoreView::open(dir).seen();
    let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "not stored: {missing:?}");
}

async fn start(label: &str) -> (TempDir, Sandbox, ServerProcess) {
    let dir = TempDir::new(label);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let server = ServerProcess::start(dir.path(), &sandbox.base_url()).await;
    (dir, sandbox, server)
}

/// `sync_mode=True`: each call is posted at once as a batch of one.
async fn sync_identify_track_page(version: &str) {
    let (dir, sandbox, mut server) = start("py-sync").await;
    let calls = vec![
        call(
            "identify",
            json!({"user_id": "u-1", "traits": {"email": "ada@example.com", "plan": "pro"}}),
        ),
        track("u-1", "Signed Up"),
        call(
            "page",
            json!({"anonymous_id": "anon-1", "name": "Pricing",
                   "properties": {"url": "https://example.com/pricing"}}),
        ),
    ];
    let report = drive(
        version,
        &server,
        WRITE_KEY,
        json!({"sync_mode": true}),
        calls,
    )
    .await;
    let ids = message_ids(&report);
    let requests = requests_all_200(&report);
    assert_eq!(requests.len(), 3, "one request per call in sync mode");
    for request in requests {
        assert_auth_as_released(version, request);
    }
    assert_stored(dir.path(), &ids);

    wait_delivered(&mut server, dir.path(), &sandbox, 3).await;
    // Users are delivered concurrently, so the checks are found by what they carry.
    let checks = checks(&sandbox);
    let find = |what: &str, matches: &dyn Fn(&RecordedRequest) -> bool| {
        checks
            .iter()
            .find(|c| matches(c))
            .unwrap_or_else(|| panic!("no check for the {what}: {checks:?}"))
    };
    let identify = find("identify", &|c| {
        param(c, "external_id") == Some("u-1") && param(c, "event_name").is_none()
    });
    assert_eq!(param(identify, "email"), Some("ada@example.com"));
    assert_eq!(param(identify, "properties[plan]"), Some("pro"));
    let track = find("track", &|c| param(c, "event_name") == Some("Signed Up"));
    assert_eq!(param(track, "external_id"), Some("u-1"));
    let page = find("page", &|c| {
        param(c, "url") == Some("https://example.com/pricing")
    });
    assert_eq!(param(page, "event_name"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_3_4_identify_track_page_in_sync_mode_are_stored_and_delivered() {
    sync_identify_track_page(V2_3_4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_4_0_identify_track_page_in_sync_mode_are_stored_and_delivered() {
    sync_identify_track_page(V2_4_0).await;
}

/// The default mode: calls are queued and the consumer thread posts them in batches of
/// at most 100; `flush()` waits until every batch was answered.
async fn queued_batches(version: &str, options: Value) -> Value {
    let (dir, sandbox, mut server) = start("py-batch").await;
    let mut calls = vec![call(
        "identify",
        json!({"user_id": "u-1", "traits": {"email": "ada@example.com"}}),
    )];
    calls.extend((0..120).map(|i| track(&format!("u-{}", i % 7), &format!("E-{i}"))));
    let report = drive(version, &server, WRITE_KEY, options, calls).await;
    let ids = message_ids(&report);
    let requests = requests_all_200(&report);
    assert!(
        requests.len() >= 2,
        "121 events need at least two batches of 100"
    );
    for request in requests {
        assert_auth_as_released(version, request);
    }
    assert_stored(dir.path(), &ids);

    wait_delivered(&mut server, dir.path(), &sandbox, 121).await;
    let mut names: Vec<String> = checks(&sandbox)
        .iter()
        .filter_map(|c| param(c, "event_name").map(str::to_string))
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..120).map(|i| format!("E-{i}")).collect();
    expected.sort();
    assert_eq!(names, expected, "each track delivered exactly once");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_3_4_queued_batches_after_flush_are_stored_and_delivered() {
    queued_batches(V2_3_4, json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_4_0_queued_batches_after_flush_are_stored_and_delivered() {
    queued_batches(V2_4_0, json!({})).await;
}

/// `gzip=True` compresses every batch (`Content-Encoding: gzip`).
async fn gzip_batches(version: &str) {
    let report = queued_batches(version, json!({"gzip": true})).await;
    for request in report["requests"].as_array().unwrap() {
        assert_eq!(request["content_encoding"], "gzip", "{request}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_3_4_gzip_batches_are_stored_and_delivered() {
    gzip_batches(V2_3_4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_4_0_gzip_batches_are_stored_and_delivered() {
    gzip_batches(V2_4_0).await;
}

/// A property holding `float("nan")` passes the client's validation, but Python's
/// `json.dumps` writes it as `NaN`, which is not JSON: the server answers the whole batch
/// 400 `invalid_json`. The client must read `code`/`message` and give up after that one
/// attempt (2.3.4 would retry a 400 whose body lacks them). `max_retries=3` keeps a
/// wrongly retrying client to a few seconds.
async fn a_400_is_read_and_given_up(version: &str) {
    let (dir, sandbox, server) = start("py-400").await;
    let plan = json!({
        "host": server.base_url(),
        "write_key": WRITE_KEY,
        "options": {"max_retries": 3},
        "calls": [call("track", json!({"user_id": "u-1", "event": "Scored",
                                       "properties": {"score": "__NaN__"}}))],
    });
    // Python's json reads the bare literal NaN as float("nan").
    let plan = plan.to_string().replace("\"__NaN__\"", "NaN");
    let report = drive_text(version, plan).await;

    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    let error = &errors[0];
    assert_eq!(error["error"], "APIError", "{report}");
    assert_eq!(error["status"], 400);
    assert_eq!(error["code"], "invalid_json");
    assert!(
        error["message"].as_str().unwrap().contains("JSON"),
        "{error}"
    );
    let statuses: Vec<&Value> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [400], "one attempt, no retry: {report}");
    let metrics = server.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "inmoment_http_requests_total{route=\"/v1/batch\",status=\"400\"}"
        ),
        1.0,
        "the server saw one attempt:\n{metrics}"
    );
    let store = StoreView::open(dir.path());
    assert!(store.seen().is_empty());
    assert_eq!(store.pending(), 0);
    assert!(checks(&sandbox).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_3_4_reads_a_400_body_and_gives_up_after_one_attempt() {
    a_400_is_read_and_given_up(V2_3_4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_4_0_reads_a_400_body_and_gives_up_after_one_attempt() {
    a_400_is_read_and_given_up(V2_4_0).await;
}

/// An unknown write key is a 401 whose `code`/`message` the client raises as `APIError`.
async fn a_wrong_write_key_is_reported(version: &str) {
    let (dir, _sandbox, server) = start("py-401").await;
    let report = drive(
        version,
        &server,
        "not-our-key",
        json!({"sync_mode": true}),
        vec![track("u-1", "Signed Up")],
    )
    .await;
    let result = &report["results"][0];
    assert_eq!(result["error"], "APIError", "{report}");
    assert_eq!(result["status"], 401);
    assert_eq!(result["code"], "invalid_write_key");
    assert!(!result["message"].as_str().unwrap().is_empty());
    assert_eq!(report["requests"].as_array().unwrap().len(), 1);
    assert!(StoreView::open(dir.path()).seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_3_4_a_wrong_write_key_is_raised_as_api_error_401() {
    a_wrong_write_key_is_reported(V2_3_4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_4_0_a_wrong_write_key_is_raised_as_api_error_401() {
    a_wrong_write_key_is_reported(V2_4_0).await;
}
