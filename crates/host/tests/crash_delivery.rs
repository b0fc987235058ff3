//! SIGKILL in the middle of delivering: after a restart on the same data directory every
//! accepted event reaches InMoment (the sandbox); duplicates are what at-least-once allows
//! and are counted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

mod clients;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use clients::{ServerProcess, StoreView, TempDir, WRITE_KEY};
use inmoment_sandbox::{RecordedRequest, Sandbox, SandboxConfig};
use serde_json::{json, Value};

const EVENTS: usize = 4000;

/// Waits, as the sandbox logs requests (no polling), until `n` distinct events were
/// answered 200; fails after a minute (a whole backlog is delivered in the meantime).
async fn wait_distinct_delivered(sandbox: &Sandbox, what: &str, n: usize) {
    let mut names = HashSet::new();
    let mut counted = 0;
    let done = sandbox
        .wait_until(Duration::from_secs(60), |requests: &[RecordedRequest]| {
            for request in &requests[counted.min(requests.len())..] {
                if request.path == "/eligible.json" && request.status == 200 {
                    let name = clients::param(request, "event_name").unwrap_or_default();
                    names.insert(name.to_string());
                }
            }
            counted = requests.len();
            names.len() >= n
        })
        .await;
    assert!(
        done,
        "timed out waiting for {what}: {} delivered",
        names.len()
    );
}

/// How often each event name reached the sandbox's eligibility endpoint with a 200.
fn delivered(sandbox: &Sandbox) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in sandbox.requests() {
        if request.path == "/eligible.json" && request.status == 200 {
            let name = request
                .params
                .get("event_name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            *counts.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delivery_loses_nothing_and_duplicates_are_counted() {
    let dir = TempDir::new("crash-delivery");
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut server = ServerProcess::start(dir.path(), &sandbox.base_url()).await;
    let client = clients::http();
    let url = format!("{}/v1/batch", server.base_url());

    for chunk in 0..EVENTS / 100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                json!({"type":"track","messageId":format!("m{n}"),"userId":format!("u{}", n % 50),"event":format!("E{n}")})
            })
            .collect();
        let response = client
            .post(&url)
            .basic_auth(WRITE_KEY, Some(""))
            .json(&json!({"batch": batch}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    // Kill it hard while deliveries are under way.
    wait_distinct_delivered(&sandbox, "300 events delivered", 300).await;
    server.sigkill();
    let at_kill = delivered(&sandbox).len();
    assert!(
        at_kill < EVENTS,
        "everything was delivered before the kill; the test proves nothing"
    );

    let mut server = ServerProcess::start(dir.path(), &sandbox.base_url()).await;
    wait_distinct_delivered(&sandbox, "every event delivered", EVENTS).await;
    // Stopped, the server has recorded the results of everything it had in flight.
    server.stop().await;
    assert_eq!(StoreView::open(dir.path()).pending(), 0, "backlog drained");

    let counts = delivered(&sandbox);
    let total: usize = counts.values().sum();
    let duplicates = total - counts.len();
    eprintln!(
        "crash test: {EVENTS} events accepted, {at_kill} delivered before SIGKILL, {} distinct delivered after restart, {duplicates} duplicate deliveries",
        counts.len()
    );
    assert_eq!(
        counts.len(),
        EVENTS,
        "every accepted event reached InMoment"
    );
    assert!(
        duplicates <= 64,
        "duplicates bounded by the calls in flight at the kill: {duplicates}"
    );
}
