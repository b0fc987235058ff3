//! SIGKILL in the middle of delivering: after a restart on the same data directory every
//! accepted event reaches InMoment (the sandbox); duplicates are what at-least-once allows
//! and are counted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inmoment_sandbox::{Sandbox, SandboxConfig};
use serde_json::{json, Value};

const WRITE_KEY: &str = "crash-key";
const EVENTS: usize = 4000;

fn spawn_server(data_dir: &Path, listen: SocketAddr, inmoment: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .arg("serve")
        .env("INMOMENT_LISTEN", listen.to_string())
        .env("INMOMENT_DATA_DIR", data_dir)
        .env("INMOMENT_ACCOUNT_TOKEN", "NPS-d3m0d3m0")
        .env("INMOMENT_WRITE_KEYS", WRITE_KEY)
        .env("INMOMENT_ELIGIBILITY_URL", inmoment)
        .env("INMOMENT_API_URL", inmoment)
        .env("INMOMENT_RETRY_BASE_MS", "2")
        .env("INMOMENT_RETRY_CAP_MS", "20")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(client: &reqwest::Client, addr: SocketAddr) {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pending(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("inmoment.sqlite3")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
        .unwrap()
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
    let temp = inmoment_testkit::TempDir::new("crash-delivery");
    let dir = temp.path().to_path_buf();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let listen = {
        let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        spare.local_addr().unwrap()
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut server = spawn_server(&dir, listen, &sandbox.base_url());
    wait_healthy(&client, listen).await;

    for chunk in 0..EVENTS / 100 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                json!({"type":"track","messageId":format!("m{n}"),"userId":format!("u{}", n % 50),"event":format!("E{n}")})
            })
            .collect();
        let response = client
            .post(format!("http://{listen}/v1/batch"))
            .basic_auth(WRITE_KEY, Some(""))
            .json(&json!({"batch": batch}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    // Kill it hard while deliveries are under way.
    let started = Instant::now();
    while delivered(&sandbox).len() < 300 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "delivery did not start"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let at_kill = delivered(&sandbox).len();
    assert!(
        at_kill < EVENTS,
        "everything was delivered before the kill; the test proves nothing"
    );

    let mut server = spawn_server(&dir, listen, &sandbox.base_url());
    wait_healthy(&client, listen).await;
    let started = Instant::now();
    while pending(&dir) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "backlog not drained: {} left",
            pending(&dir)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();

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
