//! What the store writes per event: ingest appends, delivery writes a user's state only
//! when it changed; de-dup answered from memory and rebuilt on open; older stores
//! migrated.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::sync::Arc;

use async_trait::async_trait;
use inmoment_core::{AccountToken, Event, InMomentCall, Settings};
use inmoment_delivery::{Attempt, Deliver, DeliveryConfig};
use inmoment_host::linked::registry;
use inmoment_store::accept::{Acceptor, EventOutcome, Source};
use inmoment_store::{Store, StoreConfig};
use inmoment_testkit::TempDir;
use rusqlite::Connection;
use serde_json::{json, Value};

mod engine_support;

fn source() -> Source {
    Source {
        name: "web".into(),
        settings: Settings::new(AccountToken::parse("NPS-4aeb53c1").unwrap()),
    }
}

fn event(value: Value) -> Event {
    Event::from_value(value, None).unwrap()
}

fn track(id: &str, user: &str, name: &str) -> Event {
    event(
        json!({"type":"track","messageId":id,"userId":user,"event":name,"properties":{"plan":"pro"}}),
    )
}

/// InMoment answering every call with success.
struct AlwaysOk;

#[async_trait]
impl Deliver for AlwaysOk {
    async fn deliver(&self, _source: &str, _call: &InMomentCall) -> Attempt {
        Attempt::Delivered {
            status: 200,
            eligible: None,
        }
    }
}

/// Runs delivery until the journal is empty.
async fn deliver_all(store: &Arc<Store>) {
    let mut config = DeliveryConfig::default();
    config.sources.insert(source().name, source().settings);
    assert!(
        engine_support::deliver_all(store.clone(), Arc::new(AlwaysOk), config).await,
        "delivery did not finish"
    );
}

fn sql(dir: &TempDir) -> Connection {
    Connection::open(StoreConfig::new(dir.path()).database_path()).unwrap()
}

fn count(conn: &Connection, query: &str) -> i64 {
    conn.query_row(query, [], |row| row.get(0)).unwrap()
}

fn stored(outcomes: &[EventOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, EventOutcome::Stored))
        .count()
}

#[tokio::test]
async fn a_user_state_is_written_only_when_what_later_events_read_changed() {
    let dir = TempDir::new("store-layout");
    let store = Arc::new(Store::open(StoreConfig::new(dir.path()), registry().unwrap()).unwrap());
    let conn = sql(&dir);
    conn.execute_batch(
        "CREATE TABLE state_writes (n INTEGER);
         INSERT INTO state_writes VALUES (0);
         CREATE TRIGGER count_state_writes AFTER INSERT ON user_state
         BEGIN UPDATE state_writes SET n = n + 1; END;",
    )
    .unwrap();
    let identify = event(
        json!({"type":"identify","messageId":"m1","userId":"ann","traits":{"email":"ann@example.com","plan":"pro"}}),
    );
    store.accept(&source(), vec![identify]).await.unwrap();
    assert_eq!(
        count(&conn, "SELECT n FROM state_writes"),
        0,
        "ingest only appends"
    );
    deliver_all(&store).await;
    assert_eq!(count(&conn, "SELECT n FROM state_writes"), 1);

    // Tracks change only the event name and properties, which no later event reads.
    let tracks = (2..6)
        .map(|i| track(&format!("m{i}"), "ann", &format!("Event {i}")))
        .collect();
    store.accept(&source(), tracks).await.unwrap();
    deliver_all(&store).await;
    assert_eq!(count(&conn, "SELECT n FROM state_writes"), 1);

    let state: String = conn
        .query_row(
            "SELECT state FROM user_state WHERE user_key = 'ann'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(
        state,
        json!({"email":"ann@example.com"}),
        "only the parts a later event reads are stored"
    );

    // A new email is a change.
    let identify = event(
        json!({"type":"identify","messageId":"m9","userId":"ann","traits":{"email":"ann@new.example"}}),
    );
    store.accept(&source(), vec![identify]).await.unwrap();
    deliver_all(&store).await;
    assert_eq!(count(&conn, "SELECT n FROM state_writes"), 2);

    // A user only ever seen in tracks has nothing to store.
    store
        .accept(
            &source(),
            vec![track("m10", "bob", "A"), track("m11", "bob", "B")],
        )
        .await
        .unwrap();
    deliver_all(&store).await;
    assert_eq!(count(&conn, "SELECT n FROM state_writes"), 2);
}

#[tokio::test]
async fn duplicates_are_still_recognised_after_a_reopen() {
    let dir = TempDir::new("store-layout");
    let store = Store::open(StoreConfig::new(dir.path()), registry().unwrap()).unwrap();
    let first = store
        .accept(
            &source(),
            vec![track("m1", "ann", "A"), track("m2", "bob", "B")],
        )
        .await
        .unwrap();
    assert_eq!(stored(&first), 2);
    drop(store);

    let store = Store::open(StoreConfig::new(dir.path()), registry().unwrap()).unwrap();
    let again = store
        .accept(
            &source(),
            vec![track("m2", "bob", "B"), track("m3", "cat", "C")],
        )
        .await
        .unwrap();
    assert_eq!(again[0], EventOutcome::Duplicate);
    assert_eq!(stored(&again), 1);
    assert_eq!(count(&sql(&dir), "SELECT COUNT(*) FROM journal"), 3);
}

#[tokio::test]
async fn beyond_dedup_max_ids_the_oldest_ids_are_forgotten_first() {
    let dir = TempDir::new("store-layout");
    let mut config = StoreConfig::new(dir.path());
    config.dedup_max_ids = 3;
    let store = Store::open(config.clone(), registry().unwrap()).unwrap();
    let events = (0..5)
        .map(|i| track(&format!("m{i}"), "ann", "A"))
        .collect();
    store.accept(&source(), events).await.unwrap();
    drop(store);
    // The cap is applied before each commit's lookups, so one commit may pass it.
    let conn = sql(&dir);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM seen_ids, json_each(seen_ids.message_ids)"
        ),
        5
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM seen_ids"),
        1,
        "one commit's ids are one row"
    );

    let store = Store::open(config, registry().unwrap()).unwrap();
    store
        .accept(&source(), vec![track("m5", "bob", "B")])
        .await
        .unwrap();
    // Pruned to 3 (m2, m3, m4: the first commit's row is cut short), then m5; the next
    // commit prunes m2 before its lookups.
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM seen_ids, json_each(seen_ids.message_ids)"
        ),
        4
    );
    let again = store
        .accept(
            &source(),
            vec![
                track("m0", "ann", "A"),
                track("m1", "ann", "A"),
                track("m2", "ann", "A"),
                track("m4", "ann", "A"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        [
            EventOutcome::Stored,
            EventOutcome::Stored,
            EventOutcome::Stored,
            EventOutcome::Duplicate,
        ],
        "m0..m2 were the oldest and forgotten; m4 is remembered"
    );
}

#[tokio::test]
async fn an_older_store_is_migrated_keeping_its_calls_their_count_and_dedup_history() {
    // Schema 1: its pending calls become replayed calls of the journal, sent as they are.
    let dir = TempDir::new("store-layout");
    let conn = sql(&dir);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE calls (
            id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, user_key TEXT NOT NULL,
            message_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
            accepted_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT);
         CREATE INDEX calls_by_user ON calls (source, user_key, id);
         CREATE TABLE seen (source TEXT NOT NULL, message_id TEXT NOT NULL,
            seen_at_ms INTEGER NOT NULL, PRIMARY KEY (source, message_id)) WITHOUT ROWID;
         CREATE INDEX seen_by_time ON seen (seen_at_ms);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    conn.execute("INSERT INTO seen VALUES ('web', 'old-1', ?1)", [now - 1000])
        .unwrap();
    for id in ["pending-1", "pending-2"] {
        conn.execute(
            "INSERT INTO calls (source, user_key, message_id, kind, body, accepted_at_ms) VALUES ('web', 'u:ann', ?1, 'eligibility', '{}', ?2)",
            rusqlite::params![id, now],
        )
        .unwrap();
    }
    drop(conn);

    let store = Store::open(StoreConfig::new(dir.path()), registry().unwrap()).unwrap();
    assert_eq!(
        store.pending(),
        2,
        "the count starts from the calls already pending"
    );
    let outcomes = store
        .accept(
            &source(),
            vec![track("old-1", "ann", "A"), track("new-1", "ann", "A")],
        )
        .await
        .unwrap();
    assert_eq!(outcomes[0], EventOutcome::Duplicate);
    assert_eq!(stored(&outcomes), 1);
    assert_eq!(store.pending(), 3);
    let conn = sql(&dir);
    assert_eq!(count(&conn, "PRAGMA user_version"), 6);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM journal WHERE kind = 'call' AND message_id LIKE 'pending-%'"
        ),
        2
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'calls'"
        ),
        0
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('calls_by_user', 'seen_by_time', 'seen_v1')"
        ),
        0
    );
}
