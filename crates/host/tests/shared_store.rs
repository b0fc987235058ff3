//! The PostgreSQL journal (`store = "postgres://…"`) on a real PostgreSQL (started by
//! `cargo xtask prepare`): de-duplication across nodes, ids in commit order, partitions
//! split between nodes and handed over, results of a lapsed lease fenced off, and the
//! engine delivering through it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::{AccountToken, Event, InMomentCall, Settings};
use inmoment_delivery::{Attempt, Backoff, Deliver, DeliveryConfig, Engine, NoObserver};
use inmoment_host::linked::registry;
use inmoment_postgres::{partition_of, PgAdmin, PgConfig, PgStore};
use inmoment_store::accept::{Acceptor, EventOutcome, Source};
use inmoment_store::{Journal, Settlement};
use inmoment_testkit::fresh_database;
use serde_json::json;

fn source() -> Source {
    Source {
        name: "web".into(),
        settings: Settings::new(AccountToken::parse("NPS-4aeb53c1").unwrap()),
    }
}

fn track(id: &str, user: &str) -> Event {
    Event::from_value(
        json!({"type":"track","messageId":id,"userId":user,"event":"E"}),
        None,
    )
    .unwrap()
}

fn config(url: &str, node: &str) -> PgConfig {
    let mut config = PgConfig::new(url);
    config.node_id = node.into();
    config.partitions = 8;
    config.takeover_within = Duration::from_millis(1500);
    config.poll_every = Duration::from_millis(20);
    config
}

async fn open(url: &str, node: &str) -> Arc<PgStore> {
    Arc::new(
        PgStore::open(config(url, node), registry().unwrap())
            .await
            .unwrap(),
    )
}

/// A raw connection to the test database, for what the store does not expose.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::from_str(url)
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The rows a scan returns once at least `n` are visible: a transaction of another test
/// on the same cluster can hold the commit-order horizon back for a moment.
async fn visible_rows(store: &PgStore, n: usize) -> Vec<inmoment_store::PendingRow> {
    let wait = async {
        loop {
            let rows = store.scan_after(0, 1000).await.unwrap();
            if rows.len() >= n {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("appended rows never became visible to the scan")
}

#[tokio::test]
async fn a_message_id_is_stored_once_across_nodes_and_within_a_request() {
    let url = fresh_database("dedup");
    let (a, b) = (open(&url, "a").await, open(&url, "b").await);
    let outcomes = a
        .accept(
            &source(),
            vec![track("m1", "ann"), track("m1", "ann"), track("m2", "ann")],
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            EventOutcome::Stored,
            EventOutcome::Duplicate,
            EventOutcome::Stored
        ]
    );
    let outcomes = b
        .accept(&source(), vec![track("m2", "ann"), track("m3", "bob")])
        .await
        .unwrap();
    assert_eq!(outcomes, [EventOutcome::Duplicate, EventOutcome::Stored]);
    let count: i64 = connect(&url)
        .await
        .query_one("SELECT count(*) FROM journal", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn the_scan_never_passes_an_event_whose_transaction_is_still_open() {
    let url = fresh_database("horizon");
    let store = open(&url, "solo").await;
    // An older transaction appends a row and stays open...
    let mut raw = connect(&url).await;
    let open_tx = raw.transaction().await.unwrap();
    let part = partition_of("web", "ann", 8);
    open_tx
        .execute(
            "INSERT INTO journal (id, partition, source, user_key, message_id, kind, body, accepted_at_ms)
             VALUES ((pg_current_xact_id()::text::bigint << 20) + 1, $1, 'web', 'ann', 'early', 'event', $2, 0)",
            &[&part, &track("early", "ann").to_json()],
        )
        .await
        .unwrap();
    // ...while a later one commits.
    store
        .accept(&source(), vec![track("late", "ann")])
        .await
        .unwrap();
    let seen = store.scan_after(0, 100).await.unwrap();
    assert!(
        seen.is_empty(),
        "the scan passed an open transaction: {seen:?}"
    );
    open_tx.commit().await.unwrap();
    let seen: Vec<String> = visible_rows(&store, 2)
        .await
        .into_iter()
        .map(|row| row.message_id)
        .collect();
    assert_eq!(seen, ["early", "late"]);
    store.close().await;
}

#[tokio::test]
async fn nodes_share_the_partitions_and_a_leaving_node_hands_its_own_over() {
    let url = fresh_database("leases");
    let a = open(&url, "a").await;
    assert_eq!(
        a.held_partitions().len(),
        8,
        "alone, a node holds every partition"
    );
    let b = open(&url, "b").await;
    // b sees two live nodes and claims what is free: nothing yet, until a lets half lapse.
    let admin = PgAdmin::connect(&url).await.unwrap();
    let split = async {
        loop {
            let owners = admin.partition_owners().await.unwrap();
            let of = |node: &str| {
                owners
                    .iter()
                    .filter(|p| p.live && p.owner.as_deref() == Some(node))
                    .count()
            };
            if of("a") == 4 && of("b") == 4 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), split)
        .await
        .expect("two nodes did not split 8 partitions 4 and 4");
    let (held_a, held_b) = (a.held_partitions(), b.held_partitions());
    assert!(
        held_a.iter().all(|p| !held_b.contains(p)),
        "{held_a:?} {held_b:?}"
    );
    // b claimed its half after its delivery began: it reads none of it until delivery
    // restarts its scan, which would otherwise meet a user's later rows before earlier ones.
    let events = (0..40)
        .map(|n| track(&format!("p{n}"), &format!("user-{n}")))
        .collect();
    a.accept(&source(), events).await.unwrap();
    // Once a reads its half, the rows are visible to any scan.
    visible_rows(&a, 1).await;
    let early = b.scan_after(0, 1000).await.unwrap();
    assert!(early.is_empty(), "read before the rescan: {early:?}");
    assert!(b.take_rescan(), "the claim did not ask for a rescan");
    let rows = b.scan_after(0, 1000).await.unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        let partition = partition_of(&row.source, &row.user_key, 8);
        assert!(held_b.contains(&partition), "b read partition {partition}");
    }
    a.close().await;
    // a gave its leases back: b takes them at its next heartbeat (300 ms here).
    let took = async {
        while b.held_partitions().len() < 8 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), took)
        .await
        .expect("b did not take over a's partitions");
    b.close().await;
}

#[tokio::test]
async fn results_for_a_partition_taken_over_are_fenced_off() {
    let url = fresh_database("fence");
    let store = open(&url, "old").await;
    store
        .accept(&source(), vec![track("m1", "ann")])
        .await
        .unwrap();
    let row = visible_rows(&store, 1).await.remove(0);
    // Another node took the partition over (the lease lapsed while this one was paused).
    connect(&url)
        .await
        .execute(
            "UPDATE partitions SET owner = 'new', lease_until = now() + interval '1 minute' WHERE partition = $1",
            &[&partition_of("web", "ann", 8)],
        )
        .await
        .unwrap();
    store
        .settle(vec![Settlement::Finished {
            id: row.id,
            state: None,
            dead: None,
            delivered: None,
        }])
        .await
        .unwrap();
    let left: i64 = connect(&url)
        .await
        .query_one("SELECT count(*) FROM journal", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1, "a node without the lease removed the event");
    // Its next heartbeat finds the lease gone: it stops starting deliveries for the user.
    let dropped = async {
        while store.owns("web", "ann") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), dropped)
        .await
        .expect("the node kept delivering a partition it lost");
    store.close().await;
}

/// Records every call's messageId in the order sent.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl Deliver for Recorder {
    async fn deliver(&self, _source: &str, call: &InMomentCall) -> Attempt {
        self.0.lock().unwrap().push(call.message_id().to_string());
        Attempt::Delivered {
            status: 200,
            eligible: None,
        }
    }
}

/// Polls `sql` (a count) until `done` holds; panics with `what` after 10 s.
async fn wait_count(
    raw: &tokio_postgres::Client,
    sql: &str,
    done: impl Fn(i64) -> bool,
    what: &str,
) {
    let wait = async {
        while !done(raw.query_one(sql, &[]).await.unwrap().get(0)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect(what);
}

/// Runs delivery on `store` with the recorder (millisecond backoffs, a lease's attempt
/// deadline) until the sender is used or dropped.
fn run_engine(
    store: &Arc<PgStore>,
) -> (
    Arc<Recorder>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let recorder = Arc::new(Recorder::default());
    let delivery = DeliveryConfig {
        backoff: Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(60),
        },
        sources: HashMap::from([(source().name, source().settings)]),
        attempt_deadline: Some(Duration::from_millis(400)),
        ..DeliveryConfig::default()
    };
    let engine = Engine::new(
        store.clone(),
        recorder.clone(),
        Arc::new(NoObserver),
        delivery,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(engine.run(async move {
        let _ = stopped.await;
    }));
    (recorder, stop, task)
}

#[tokio::test]
async fn the_engine_delivers_every_event_in_user_order_and_keeps_state() {
    let url = fresh_database("engine");
    let store = open(&url, "solo").await;
    let mut events = Vec::new();
    for n in 0..50 {
        events.push(track(&format!("m{n:02}"), ["ann", "bob", "cy"][n % 3]));
    }
    let identify = Event::from_value(
        json!({"type":"identify","messageId":"id-ann","userId":"ann","traits":{"email":"ann@example.com"}}),
        None,
    )
    .unwrap();
    store.accept(&source(), vec![identify]).await.unwrap();
    store.accept(&source(), events).await.unwrap();
    let (recorder, stop, task) = run_engine(&store);
    let raw = connect(&url).await;
    wait_count(
        &raw,
        "SELECT count(*) FROM journal",
        |left| left == 0,
        "the journal did not drain",
    )
    .await;
    let _ = stop.send(());
    task.await.unwrap();
    let sent = recorder.0.lock().unwrap().clone();
    for user in 0..3 {
        let expected: Vec<String> = (0..50)
            .filter(|n| n % 3 == user)
            .map(|n| format!("m{n:02}"))
            .collect();
        let got: Vec<String> = sent
            .iter()
            .filter(|m| expected.contains(m))
            .cloned()
            .collect();
        assert_eq!(got, expected, "user {user} out of order");
    }
    let state = store.user_state("web", "ann").await.unwrap();
    assert_ne!(state, Default::default(), "ann's identify left no state");
    store.close().await;
}

fn queue(url: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .arg("queue")
        .args(args)
        .env("INMOMENT_STORE", url)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_commands_show_owners_and_replay_dead_letters_on_the_shared_store() {
    let url = fresh_database("queue");
    let store = open(&url, "node-q").await;
    store
        .accept(&source(), vec![track("m1", "ann"), track("m2", "bob")])
        .await
        .unwrap();
    let row = visible_rows(&store, 1).await.remove(0);
    store
        .settle(vec![Settlement::Finished {
            id: row.id,
            state: None,
            delivered: None,
            dead: Some(inmoment_store::DeadCall {
                kind: "eligibility_check".into(),
                call: r#"{"kind":"eligibility_check"}"#.into(),
                attempts: 3,
                status: Some(400),
                reason: "HTTP 400".into(),
            }),
        }])
        .await
        .unwrap();

    let (ok, out, err) = queue(&url, &["stats"]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let web = lines.iter().find(|l| l["source"] == "web").expect(&out);
    assert_eq!(
        (web["pending"].as_i64(), web["dead"].as_i64()),
        (Some(1), Some(1)),
        "{out}"
    );
    let node = lines.iter().find(|l| l["node"] == "node-q").expect(&out);
    assert_eq!(node["partitions"].as_array().unwrap().len(), 8, "{out}");

    let (ok, out, err) = queue(&url, &["dead", "list"]);
    assert!(ok, "{err}");
    let dead: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("no dead letter listed")).unwrap();
    assert_eq!(dead["messageId"], row.message_id);
    assert_eq!(dead["reason"], "HTTP 400");

    let (ok, _, err) = queue(&url, &["dead", "replay", "--all"]);
    assert!(ok, "{err}");
    assert!(err.contains("1 dead letter(s) back to pending"), "{err}");
    let (ok, _, err) = queue(&url, &["dead", "replay", "999"]);
    assert!(!ok && err.contains("no dead letter with id 999"), "{err}");
    let (_, out, _) = queue(&url, &["stats"]);
    let web: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["source"] == "web")
        .expect(&out);
    assert_eq!(
        (web["pending"].as_i64(), web["dead"].as_i64()),
        (Some(2), Some(0)),
        "{out}"
    );
    let replayed: i64 = connect(&url)
        .await
        .query_one("SELECT count(*) FROM journal WHERE kind = 'call'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(replayed, 1, "the dead call is pending again, as a call");

    store.close().await;
}

#[tokio::test]
async fn sslmode_require_speaks_tls_and_checks_the_certificate() {
    let url = fresh_database("tls");
    let ca = inmoment_testkit::postgres_ca_file();
    assert!(
        ca.exists(),
        "no test CA at {} (run `cargo xtask prepare`)",
        ca.display()
    );
    // Without the CA that signed the server's certificate the connection is refused.
    let untrusted = format!("{url}?sslmode=require");
    let error = PgStore::open(config(&untrusted, "tls-a"), registry().unwrap())
        .await
        .err()
        .expect("an unverified server was trusted");
    assert!(error.to_string().contains("cannot connect"), "{error}");
    // With it, every pooled connection is encrypted.
    let trusted = format!("{url}?sslmode=require&sslrootcert={}", ca.display());
    let store = open(&trusted, "tls-b").await;
    store
        .accept(&source(), vec![track("m1", "ann")])
        .await
        .unwrap();
    let database = url.rsplit('/').next().unwrap().to_string();
    let rows = connect(&url)
        .await
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .await
        .unwrap();
    let encrypted: Vec<bool> = rows.iter().map(|row| row.get(0)).collect();
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|&ssl| ssl),
        "{encrypted:?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_remap_previews_and_requeues_delivered_events_of_the_shared_store() {
    let url = fresh_database("remap");
    let store = open(&url, "node-r").await;
    store
        .accept(&source(), vec![track("r1", "ann"), track("r2", "bob")])
        .await
        .unwrap();
    let (_recorder, stop, task) = run_engine(&store);
    let raw = connect(&url).await;
    let count = |sql: &'static str| {
        let raw = &raw;
        async move { raw.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    wait_count(
        &raw,
        "SELECT count(*) FROM delivered",
        |n| n >= 2,
        "the events were not delivered",
    )
    .await;
    let _ = stop.send(());
    task.await.unwrap();

    // The token is fixed: the calls sent with the old one would change.
    let dir = inmoment_testkit::TempDir::new("remap-config");
    let file = dir.path().join("fixed.toml");
    std::fs::write(
        &file,
        "[[sources]]\nname = \"web\"\nwrite_key = \"wk-web\"\naccount_token = \"NPS-b2b2b2b2\"\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let (ok, out, err) = queue(
        &url,
        &["remap", "--since", "1h", "--dry-run", "--config", &file],
    );
    assert!(ok, "{err}");
    assert!(err.contains("2 events, 2 would change"), "{err}");
    assert!(
        out.contains("NPS-b2b2b2b2") && out.contains("NPS-4aeb53c1"),
        "{out}"
    );
    assert_eq!(
        count("SELECT count(*) FROM journal").await,
        0,
        "a dry run queued events"
    );

    let (ok, _, err) = queue(&url, &["remap", "--since", "1h", "--config", &file]);
    assert!(ok, "{err}");
    assert!(err.contains("2 queued again"), "{err}");
    assert_eq!(
        count("SELECT count(*) FROM journal WHERE remapped").await,
        2
    );
    assert_eq!(count("SELECT count(*) FROM delivered").await, 0);
    // Queued in acceptance order, in commit order like any append.
    let order: Vec<String> = raw
        .query("SELECT message_id FROM journal ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(order, ["r1", "r2"]);
    store.close().await;
}

#[test]
fn serve_stops_at_start_with_a_clear_message_when_the_shared_store_cannot_be_used() {
    let serve = |store: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
            .args(["serve", "--listen", "127.0.0.1:0", "--store", store])
            .env("INMOMENT_ACCOUNT_TOKEN", "NPS-4aeb53c1")
            .env("INMOMENT_WRITE_KEYS", "wk")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // Nothing listens on port 1.
    let (code, err) = serve("postgres://inmoment:secret@127.0.0.1:1/inmoment");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(!err.contains("secret"), "the password was printed: {err}");
    let (code, err) = serve("mysql://127.0.0.1/inmoment");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("store") && err.contains("postgres://"),
        "{err}"
    );
}
