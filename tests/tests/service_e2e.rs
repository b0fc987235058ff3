//! The whole service (HTTP ingest, store, delivery) against the InMoment sandbox over real
//! HTTP on 127.0.0.1: what InMoment receives, and when.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inmoment_delivery::{Attempts, InMomentDeliver};
use inmoment_host::config::{Config, ConfigFlags};
use inmoment_host::linked::registry;
use inmoment_host::service;
use inmoment_sandbox::{Fault, Sandbox, SandboxConfig};
use inmoment_store::{Admin, Reader, Selection, Store, StoreConfig};
use inmoment_testkit::TempDir;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

const WRITE_KEY: &str = "e2e-key";
const TOKEN: &str = "NPS-d3m0d3m0";

/// How long any wait here may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
    /// Changes with every commit of the service's store.
    commits: watch::Receiver<u64>,
}

impl Running {
    /// Waits until `done` holds, checked now and again after each commit of the store
    /// (where every delivery result lands); fails the test after [`PATIENCE`].
    async fn wait_until(&mut self, what: &str, mut done: impl FnMut() -> bool) {
        let commits = &mut self.commits;
        let wait = async {
            while !done() {
                commits.changed().await.unwrap();
            }
        };
        tokio::time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }

    /// Waits for `n` more commits of the store than it had made when last waited on.
    async fn wait_commits(&mut self, n: usize) {
        for _ in 0..n {
            tokio::time::timeout(PATIENCE, self.commits.changed())
                .await
                .expect("a store commit")
                .unwrap();
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

/// Starts the service with millisecond backoffs, InMoment at `inmoment_url`.
async fn start(data_dir: &Path, inmoment_url: &str, token: &str) -> Running {
    start_with(data_dir, inmoment_url, token, &[]).await
}

/// [`start`] with more `INMOMENT_*` variables.
async fn start_with(
    data_dir: &Path,
    inmoment_url: &str,
    token: &str,
    more: &[(&'static str, &str)],
) -> Running {
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("INMOMENT_ACCOUNT_TOKEN", token.to_string()),
        ("INMOMENT_WRITE_KEYS", WRITE_KEY.to_string()),
        ("INMOMENT_ELIGIBILITY_URL", inmoment_url.to_string()),
        ("INMOMENT_API_URL", inmoment_url.to_string()),
        ("INMOMENT_DATA_DIR", data_dir.display().to_string()),
        ("INMOMENT_RETRY_BASE_MS", "2".to_string()),
        ("INMOMENT_RETRY_CAP_MS", "20".to_string()),
        ("INMOMENT_DELIVERY_CONCURRENCY", "8".to_string()),
        ("INMOMENT_SHUTDOWN_DEADLINE_MS", "2000".to_string()),
    ]);
    vars.extend(more.iter().map(|(name, value)| (*name, value.to_string())));
    let env = move |name: &str| vars.get(name).cloned();
    let config = Config::load(None, &env, &ConfigFlags::default()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut delivery = service::delivery_config(&config);
    delivery.rescan_every = Duration::from_millis(50);
    let deliver = Arc::new(InMomentDeliver::from_config(&config, Attempts::Once).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store = Arc::new(Store::open(service::store_config(&config), registry().unwrap()).unwrap());
    let commits = store.commits();
    let task = tokio::spawn(service::run(
        config,
        store,
        deliver,
        delivery,
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        stop: Some(stop),
        task,
        commits,
    }
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{addr}{path}"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Posts one track and expects it accepted.
async fn track_accepted(addr: SocketAddr, id: &str, user: &str, event: &str) {
    let status = post(addr, "/v1/track", track(id, user, event))
        .await
        .status();
    assert_eq!(status, 200, "track {id}");
}

fn track(id: &str, user: &str, event: &str) -> Value {
    json!({"type":"track","messageId":id,"userId":user,"event":event})
}

/// Eligibility checks the sandbox answered, as (external_id, event_name, status), in order.
fn checks(sandbox: &Sandbox) -> Vec<(String, String, u16)> {
    sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == "/eligible.json")
        .map(|r| {
            let text = |k: &str| {
                r.params
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (text("external_id"), text("event_name"), r.status)
        })
        .collect()
}

/// Waits until the eligibility checks the sandbox answered satisfy `done`, re-checked as
/// each request is logged; fails the test after [`PATIENCE`].
async fn wait_for_checks(sandbox: &Sandbox, what: &str, mut done: impl FnMut(usize) -> bool) {
    let arrived = sandbox
        .wait_until(PATIENCE, |requests| {
            done(
                requests
                    .iter()
                    .filter(|r| r.path == "/eligible.json")
                    .count(),
            )
        })
        .await;
    assert!(arrived, "timed out waiting for {what}");
}

fn reader(dir: &Path) -> Reader {
    Reader::open(&StoreConfig::new(dir).database_path()).unwrap()
}

fn pending(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(StoreConfig::new(dir).database_path()).unwrap();
    conn.query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_accepted_while_inmoment_is_down_are_all_delivered_when_it_is_up() {
    let dir = tempdir();
    let spare = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inmoment = spare.local_addr().unwrap();
    drop(spare); // nothing listens: connections are refused
    let mut server = start(dir.path(), &format!("http://{inmoment}"), TOKEN).await;
    let batch: Vec<Value> = (0..60)
        .map(|i| track(&format!("m{i}"), &format!("u{}", i % 6), &format!("E{i}")))
        .collect();
    assert_eq!(
        post(server.addr, "/v1/batch", json!({"batch": batch}))
            .await
            .status(),
        200
    );
    server.wait_commits(10).await; // the batch, then rounds of failed attempts
    assert_eq!(
        pending(dir.path()),
        60,
        "nothing is lost while InMoment is down"
    );

    let sandbox = Sandbox::start_on(
        TcpListener::bind(inmoment).await.unwrap(),
        SandboxConfig::default(),
    )
    .await
    .unwrap();
    server
        .wait_until("every call delivered", || pending(dir.path()) == 0)
        .await;
    let delivered = checks(&sandbox);
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for (_, event, status) in &delivered {
        assert_eq!(*status, 200);
        *per_event.entry(event.clone()).or_default() += 1;
    }
    assert_eq!(per_event.len(), 60, "every event reached InMoment");
    assert!(
        per_event.values().all(|n| *n == 1),
        "no event was delivered twice: {per_event:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_500_twice_then_200_takes_three_attempts_and_delivers_once() {
    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.add_fault(Fault::status("eligible", 500).times(Some(2)));
    let mut server = start(dir.path(), &sandbox.base_url(), TOKEN).await;
    track_accepted(server.addr, "m1", "ann", "Paid").await;
    server
        .wait_until("delivery", || pending(dir.path()) == 0)
        .await;
    let statuses: Vec<u16> = checks(&sandbox).into_iter().map(|c| c.2).collect();
    assert_eq!(statuses, [500, 500, 200]);
    server.stop().await;
}

#[tokio::test]
async fn a_400_is_tried_once_and_parked_as_a_dead_letter_with_the_reason() {
    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.add_fault(Fault::status("eligible", 400).body(json!({"error": "bad parameter"})));
    let mut server = start(dir.path(), &sandbox.base_url(), TOKEN).await;
    track_accepted(server.addr, "m1", "ann", "Paid").await;
    server
        .wait_until("a dead letter", || {
            reader(dir.path()).dead_letter_count().unwrap() == 1
        })
        .await;
    assert_eq!(checks(&sandbox).len(), 1, "one attempt");
    let dead = reader(dir.path()).dead_letters(10).unwrap();
    assert_eq!(
        (
            dead[0].message_id.as_str(),
            dead[0].status,
            dead[0].attempts
        ),
        ("m1", Some(400), 1)
    );
    assert!(
        dead[0].reason.contains("bad parameter"),
        "{}",
        dead[0].reason
    );
    assert_eq!(pending(dir.path()), 0);
    server.stop().await;
}

/// A group keeps the user's `group_info`: it reaches InMoment as end-user properties (with
/// a Client ID) and with the user's later eligibility checks.
#[tokio::test]
async fn a_group_reaches_the_end_user_and_later_checks() {
    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut server = start_with(
        dir.path(),
        &sandbox.base_url(),
        TOKEN,
        &[("INMOMENT_CLIENT_ID", "demo-client-id")],
    )
    .await;
    let identify = json!({"type":"identify","messageId":"i1","userId":"ann","traits":{"email":"ann@example.com"}});
    let group = json!({"type":"group","messageId":"g1","userId":"ann","groupId":"acct-42","traits":{"name":"Acme","address":{"city":"Madrid"}}});
    let batch = json!({"batch": [identify, group, track("t1", "ann", "Paid")]});
    assert_eq!(post(server.addr, "/v1/batch", batch).await.status(), 200);
    server
        .wait_until("delivery", || pending(dir.path()) == 0)
        .await;

    let last_check = sandbox
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/eligible.json")
        .unwrap();
    assert_eq!(last_check.params["event_name"], "Paid");
    assert_eq!(last_check.params["group_info[name]"], "Acme");
    assert_eq!(last_check.params["group_info[address][city]"], "Madrid");
    assert_eq!(last_check.params["group_info[id]"], "acct-42");
    let state = sandbox.state();
    let users = state.pointer("/accounts/NPS-d3m0d3m0/end_users").unwrap();
    let text = users.to_string();
    assert!(
        text.contains(r#""group_info_name":"Acme""#)
            && text.contains(r#""group_info_id":"acct-42""#),
        "end users: {text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_dead_letter_counts_every_http_attempt_it_took() {
    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.add_fault(Fault::status("eligible", 500).times(None));
    let mut server = start_with(
        dir.path(),
        &sandbox.base_url(),
        TOKEN,
        &[("INMOMENT_RETRY_MAX_SECS", "1")],
    )
    .await;
    track_accepted(server.addr, "m1", "ann", "Paid").await;
    server
        .wait_until("a dead letter", || {
            reader(dir.path()).dead_letter_count().unwrap() == 1
        })
        .await;
    let tries = checks(&sandbox).len();
    let dead = reader(dir.path()).dead_letters(10).unwrap();
    assert!(tries > 1, "retried before giving up: {tries}");
    assert_eq!(
        dead[0].attempts,
        i64::try_from(tries).unwrap(),
        "attempts = the HTTP requests InMoment saw"
    );
    assert!(
        dead[0].reason.contains(&format!("{tries} attempts")),
        "{}",
        dead[0].reason
    );
    server.stop().await;
}

#[tokio::test]
async fn a_429_with_retry_after_2_delays_the_next_attempt_at_least_2_seconds() {
    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.add_fault(Fault::status("eligible", 429).retry_after(2));
    let server = start(dir.path(), &sandbox.base_url(), TOKEN).await;
    track_accepted(server.addr, "m1", "ann", "Paid").await;
    wait_for_checks(&sandbox, "the second attempt", |n| n == 2).await;
    // Measured on the sandbox's monotonic clock, from the 429's arrival (before the
    // service could read it) to the retry's arrival (after the service sent it): no slack.
    let arrivals: Vec<u64> = sandbox
        .requests()
        .iter()
        .filter(|r| r.path == "/eligible.json")
        .map(|r| r.arrived_us)
        .collect();
    let waited = Duration::from_micros(arrivals[1] - arrivals[0]);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}");
    assert_eq!(
        checks(&sandbox).iter().map(|c| c.2).collect::<Vec<_>>(),
        [429, 200]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_of_one_user_arrive_in_acceptance_order_under_concurrency() {
    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.add_fault(Fault::delay("eligible", 2).times(None));
    sandbox.add_fault(Fault::status("eligible", 503).after(7).times(Some(5)));
    let mut server = start(dir.path(), &sandbox.base_url(), TOKEN).await;
    // Accepted one batch after the other (acceptance order = round order), while
    // delivery of earlier rounds already runs concurrently across users.
    for round in 0..10 {
        let batch: Vec<Value> = (0..20)
            .map(|u| {
                track(
                    &format!("m-{u}-{round}"),
                    &format!("user-{u}"),
                    &format!("E{round:02}"),
                )
            })
            .collect();
        assert_eq!(
            post(server.addr, "/v1/batch", json!({"batch": batch}))
                .await
                .status(),
            200
        );
    }
    server
        .wait_until("all delivered", || pending(dir.path()) == 0)
        .await;
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for (user, event, status) in checks(&sandbox) {
        if status == 200 {
            seen.entry(user).or_default().push(event);
        }
    }
    assert_eq!(seen.len(), 20);
    for (user, events) in seen {
        let expected: Vec<String> = (0..10).map(|r| format!("E{r:02}")).collect();
        assert_eq!(events, expected, "order of {user}");
    }
    server.stop().await;
}

#[tokio::test]
async fn dead_letters_from_a_wrong_token_are_delivered_after_the_fix_and_a_replay() {
    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut wrong = start(dir.path(), &sandbox.base_url(), "NPS-wr0ngt0k3n").await;
    track_accepted(wrong.addr, "m1", "ann", "Paid").await;
    wrong
        .wait_until("the dead letter", || {
            reader(dir.path()).dead_letter_count().unwrap() == 1
        })
        .await;
    assert!(reader(dir.path()).dead_letters(1).unwrap()[0]
        .reason
        .contains("Account Token"));
    wrong.stop().await;

    let mut fixed = start(dir.path(), &sandbox.base_url(), TOKEN).await;
    let replayed = Admin::open(&StoreConfig::new(dir.path()).database_path())
        .unwrap()
        .replay(&Selection::All)
        .unwrap();
    assert_eq!(replayed, 1);
    // The unknown account was answered 200 with an "error"; wait for the replayed attempt.
    wait_for_checks(&sandbox, "the replayed delivery", |n| n == 2).await;
    let last = sandbox
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/eligible.json")
        .unwrap();
    assert_eq!(
        last.params["account_token"], TOKEN,
        "sent with the fixed token"
    );
    assert_eq!(last.params["event_name"], "Paid");
    fixed
        .wait_until("the replay settled", || {
            reader(dir.path()).dead_letter_count().unwrap() == 0 && pending(dir.path()) == 0
        })
        .await;
    // Replaying while serving must leave ingest working (the count once wrapped below 0).
    let ready = reqwest::get(format!("http://{}/readyz", fixed.addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    track_accepted(fixed.addr, "m2", "ann", "Paid").await;
    fixed.stop().await;
}

#[tokio::test]
async fn ingest_and_delivery_stop_within_one_shutdown_deadline() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempdir();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.add_fault(Fault::delay("eligible", 60_000));
    // `start` sets shutdown_deadline_ms = 2000.
    let server = start(dir.path(), &sandbox.base_url(), TOKEN).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let body = track("m0", "ann", "Paid").to_string();
    let auth = "Authorization: Basic ZTJlLWtleTo=\r\n";
    let head = |length: usize| {
        format!("POST /v1/track HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
    };
    slow.write_all(format!("{}{body}", head(body.len())).as_bytes())
        .await
        .unwrap();
    let mut status = [0u8; 12];
    slow.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200");
    // A second request on the same connection whose body never completes: in flight.
    slow.write_all(format!("{}{{\"userId\"", head(100)).as_bytes())
        .await
        .unwrap();
    // The delayed check has arrived (it would be logged only when its 60 s delay ends).
    assert!(
        sandbox.wait_for_arrivals(1, PATIENCE).await,
        "a delivery in flight"
    );

    let stopping = Instant::now();
    server.stop().await;
    let took = stopping.elapsed();
    // One deadline for both: about 2 s, never 2 s for ingest and then 2 s for delivery.
    assert!(
        took < Duration::from_millis(3_500),
        "shutdown took {took:?}"
    );
    assert_eq!(pending(dir.path()), 1, "the unfinished call stays pending");
}

fn tempdir() -> TempDir {
    TempDir::new("e2e")
}
