//! The durable store behind `serve`: what a 200 promises is stored, and delivery maps
//! each event with the state its user's earlier events left.
//!
//! The tests in `both_backends!` run on the embedded SQLite `Store` and on the
//! PostgreSQL `PgStore`. SQLite-only, as they test its file: an unusable `data_dir`, the
//! pending count kept in the `counts` table and updated by a replay from another process
//! (PostgreSQL recounts each second instead), and a full disk (`max_page_count`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::{AccountToken, ClientId, Event, InMomentCall, Settings, SkipReason};
use inmoment_delivery::{Attempt, Deliver, DeliveryConfig};
use inmoment_host::linked::registry;
use inmoment_store::accept::{AcceptError, Acceptor, EventOutcome, Source};
use inmoment_store::{Admin, DeadCall, Selection, Settlement, Store, StoreConfig, StoreError};
use inmoment_testkit::TempDir;

mod engine_support;
#[macro_use]
mod journal_support;

use journal_support::{Backend, Options, TestJournal};
use serde_json::{json, Value};

fn source(name: &str) -> Source {
    let mut settings = Settings::new(AccountToken::parse("NPS-4aeb53c1").unwrap());
    settings.client_id = Some(ClientId::parse("demo-client-id").unwrap());
    Source {
        name: name.into(),
        settings,
    }
}

fn event(value: Value) -> Event {
    Event::from_value(value, None).unwrap()
}

fn identify(id: &str, user: &str) -> Event {
    event(
        json!({"type":"identify","messageId":id,"userId":user,"traits":{"email":format!("{user}@example.com"),"createdAt":"2015-01-01"}}),
    )
}

fn track(id: &str, user: &str) -> Event {
    event(json!({"type":"track","messageId":id,"userId":user,"event":"Paid"}))
}

/// InMoment answering success, keeping every call it was sent, per source.
#[derive(Default)]
struct Capture(Mutex<Vec<(String, InMomentCall)>>);

#[async_trait]
impl Deliver for Capture {
    async fn deliver(&self, source: &str, call: &InMomentCall) -> Attempt {
        self.0
            .lock()
            .unwrap()
            .push((source.to_string(), call.clone()));
        Attempt::Delivered {
            status: 200,
            eligible: None,
        }
    }
}

impl Capture {
    fn calls(&self) -> Vec<(String, InMomentCall)> {
        self.0.lock().unwrap().clone()
    }
}

/// Delivers everything pending with `capture`, mapping with the sources `web` and `mobile`.
async fn deliver_all(journal: &TestJournal, capture: &Arc<Capture>) {
    let mut config = DeliveryConfig::default();
    for name in ["web", "mobile"] {
        config.sources.insert(name.into(), source(name).settings);
    }
    assert!(
        journal.deliver_all(capture.clone(), config).await,
        "delivery did not finish"
    );
}

both_backends! {
    #[tokio::test]
    async fn accepted_events_are_stored_and_survive_a_reopen(backend: Backend) {
        let mut journal = backend.open("store-reopen").await;
        let outcomes = journal
            .accept(&source("web"), vec![identify("m1", "ann")])
            .await
            .unwrap();
        assert_eq!(outcomes, [EventOutcome::Stored]);
        assert_eq!(journal.journal().pending(), 1);
        journal.close().await;

        let stored = journal.rows().await;
        assert_eq!(stored.len(), 1);
        assert_eq!(
            (stored[0].0.as_str(), stored[0].1.as_str()),
            ("m1", "event")
        );
        assert_eq!(stored[0].2["traits"]["email"], "ann@example.com");
        journal.reopen().await;
        assert_eq!(journal.journal().pending(), 1);
        journal.close().await;
    }

    #[tokio::test]
    async fn user_state_survives_a_reopen_so_a_later_track_carries_the_email(backend: Backend) {
        let mut journal = backend.open("store-state-reopen").await;
        let capture = Arc::new(Capture::default());
        journal
            .accept(&source("web"), vec![identify("m1", "ann")])
            .await
            .unwrap();
        deliver_all(&journal, &capture).await;
        journal.reopen().await;
        journal
            .accept(&source("web"), vec![track("m2", "ann")])
            .await
            .unwrap();
        deliver_all(&journal, &capture).await;
        let kinds: Vec<&str> = capture.calls().iter().map(|(_, c)| c.kind()).collect();
        // Already synced by the identify: the track makes only the eligibility check.
        assert_eq!(
            kinds,
            ["upsert_end_user", "eligibility_check", "eligibility_check"]
        );
        let calls = capture.calls();
        let body = serde_json::to_value(&calls.last().unwrap().1).unwrap();
        assert_eq!(body["messageId"], "m2");
        assert_eq!(body["request"]["query"]["email"], "ann@example.com");
        assert_eq!(body["request"]["query"]["external_id"], "ann");
        assert_eq!(
            body["request"]["query"]["end_user_created_at"],
            "1420070400"
        );
        journal.close().await;
    }

    #[tokio::test]
    async fn state_is_kept_per_source(backend: Backend) {
        let journal = backend.open("store-state-per-source").await;
        let capture = Arc::new(Capture::default());
        journal
            .accept(&source("web"), vec![identify("m1", "ann")])
            .await
            .unwrap();
        journal
            .accept(&source("mobile"), vec![track("m2", "ann")])
            .await
            .unwrap();
        deliver_all(&journal, &capture).await;
        let calls = capture.calls();
        let mobile: Vec<&InMomentCall> = calls
            .iter()
            .filter(|(source, _)| source == "mobile")
            .map(|(_, call)| call)
            .collect();
        assert_eq!(mobile.len(), 1, "{mobile:?}");
        let call = mobile[0];
        assert_eq!(call.kind(), "eligibility_check");
        let body = serde_json::to_value(call).unwrap();
        assert_eq!(body["request"]["query"].get("email"), None);
        assert_ne!(
            journal.user_state("web", "ann").await,
            Default::default(),
            "ann's identify left state for web"
        );
        journal.close().await;
    }

    #[tokio::test]
    async fn a_repeated_message_id_is_a_duplicate_and_not_stored_twice(backend: Backend) {
        let journal = backend.open("store-duplicate").await;
        let first = journal
            .accept(&source("web"), vec![track("m1", "ann"), track("m1", "ann")])
            .await
            .unwrap();
        assert_eq!(first[1], EventOutcome::Duplicate);
        let again = journal
            .accept(&source("web"), vec![track("m1", "ann")])
            .await
            .unwrap();
        assert_eq!(again, [EventOutcome::Duplicate]);
        let other_source = journal
            .accept(&source("mobile"), vec![track("m1", "ann")])
            .await
            .unwrap();
        assert_eq!(other_source[0], EventOutcome::Stored);
        assert_eq!(journal.rows().await.len(), 2);
        journal.close().await;
    }

    #[tokio::test]
    async fn a_message_id_older_than_the_window_is_accepted_again(backend: Backend) {
        let options = Options {
            dedup_window: Some(Duration::from_millis(1)),
            ..Options::default()
        };
        let journal = backend.open_with("store-dedup-window", options).await;
        journal
            .accept(&source("web"), vec![track("m1", "ann")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await; // the window passes
        let again = journal
            .accept(&source("web"), vec![track("m1", "ann")])
            .await
            .unwrap();
        assert_eq!(again[0], EventOutcome::Stored, "{again:?}");
        journal.close().await;
    }

    #[tokio::test]
    async fn a_rejected_event_keeps_nothing_and_the_rest_of_the_request_is_stored(
        backend: Backend
    ) {
        let journal = backend.open("store-rejected").await;
        let bad = event(
            json!({"type":"track","messageId":"bad","userId":"ann","event":"Survey Response Submitted","properties":{"score":42}}),
        );
        let outcomes = journal
            .accept(&source("web"), vec![bad, track("ok", "ann")])
            .await
            .unwrap();
        match &outcomes[0] {
            EventOutcome::Rejected(error) => assert_eq!(error.path, "properties.score"),
            other => panic!("expected a rejection, got {other:?}"),
        }
        let ids: Vec<String> = journal.rows().await.into_iter().map(|c| c.0).collect();
        assert!(ids.iter().all(|id| id == "ok"), "{ids:?}");
        // Not remembered as seen: a corrected resend with the same id is accepted.
        let fixed = event(
            json!({"type":"track","messageId":"bad","userId":"ann","event":"Survey Response Submitted","properties":{"score":4}}),
        );
        let outcomes = journal.accept(&source("web"), vec![fixed]).await.unwrap();
        assert_eq!(outcomes[0], EventOutcome::Stored);
        journal.close().await;
    }

    #[tokio::test]
    async fn switched_off_events_are_answered_as_skipped_and_not_stored(backend: Backend) {
        let journal = backend.open("store-switched-off").await;
        let off = event(
            json!({"type":"track","messageId":"m1","userId":"ann","event":"E","integrations":{"InMoment":false}}),
        );
        let outcomes = journal.accept(&source("web"), vec![off]).await.unwrap();
        assert_eq!(
            outcomes,
            [EventOutcome::Skipped(SkipReason::DestinationDisabled)]
        );
        assert!(journal.rows().await.is_empty());
        journal.close().await;
    }

    #[tokio::test]
    async fn over_max_pending_calls_the_store_refuses_with_retry_after(backend: Backend) {
        let options = Options {
            max_pending: Some(1),
            ..Options::default()
        };
        let journal = backend.open_with("store-max-pending", options).await;
        journal
            .accept(&source("web"), vec![identify("m1", "ann")])
            .await
            .unwrap();
        assert!(!journal.ready());
        let refused = journal
            .accept(&source("web"), vec![track("m2", "ann")])
            .await
            .unwrap_err();
        let AcceptError::Unavailable {
            reason,
            retry_after,
        } = refused;
        assert!(reason.contains("max_pending_calls"), "{reason}");
        assert!(
            !reason.contains("retry later"),
            "the HTTP answer says it, once: {reason}"
        );
        assert!(retry_after >= Duration::from_secs(1));
        assert_eq!(journal.rows().await.len(), 1);
        journal.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_all_land_once(backend: Backend) {
        let journal = Arc::new(backend.open("store-concurrent").await);
        let mut tasks = Vec::new();
        for t in 0..50 {
            let journal = journal.clone();
            tasks.push(tokio::spawn(async move {
                let events = (0..10)
                    .map(|i| track(&format!("m-{t}-{i}"), &format!("user-{}", i % 3)))
                    .collect();
                journal.accept(&source("web"), events).await.unwrap()
            }));
        }
        for task in tasks {
            let outcomes = task.await.unwrap();
            assert!(outcomes.iter().all(|o| *o == EventOutcome::Stored));
        }
        assert_eq!(journal.rows().await.len(), 500);
        assert_eq!(journal.journal().pending(), 500);
        journal.close().await;
    }
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(StoreConfig::new(dir), registry().unwrap()).unwrap()
}

#[test]
fn an_unusable_data_dir_names_the_setting() {
    let dir = tempdir();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = Store::open(StoreConfig::new(file.join("data")), registry().unwrap())
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::DataDir { .. }));
    assert!(err.to_string().starts_with("data_dir `"), "{err}");
}

/// The pending count the store keeps, and the true number of rows, read from the file.
fn counted_and_actual(dir: &std::path::Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(StoreConfig::new(dir).database_path()).unwrap();
    let counted = conn
        .query_row(
            "SELECT value FROM counts WHERE name = 'pending'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let actual = conn
        .query_row("SELECT COUNT(*) FROM journal", [], |row| row.get(0))
        .unwrap();
    (counted, actual)
}

#[tokio::test]
async fn the_pending_count_follows_accepts_settlements_and_a_replay_from_another_process() {
    let dir = tempdir();
    let store = open(dir.path());
    store
        .accept(&source("web"), vec![track("m1", "ann"), track("m2", "bob")])
        .await
        .unwrap();
    let ids: Vec<i64> = store
        .reader()
        .unwrap()
        .scan_after(0, 10)
        .unwrap()
        .iter()
        .map(|row| row.id)
        .collect();
    store
        .settle(vec![
            Settlement::Finished {
                id: ids[0],
                state: None,
                dead: Some(DeadCall {
                    kind: "eligibility_check".into(),
                    call: "{}".into(),
                    attempts: 1,
                    status: Some(400),
                    reason: "bad".into(),
                }),
                delivered: None,
            },
            Settlement::Finished {
                id: ids[1],
                state: None,
                dead: None,
                delivered: None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(store.pending(), 0);
    assert_eq!(counted_and_actual(dir.path()), (0, 0));

    // `queue dead replay` runs in another process, on its own connection.
    let mut admin = Admin::open(&StoreConfig::new(dir.path()).database_path()).unwrap();
    assert_eq!(admin.replay(&Selection::All).unwrap(), 1);
    assert_eq!(counted_and_actual(dir.path()), (1, 1));
    // The running store learns of it from the file, and delivering the replayed call
    // brings the count back to zero, not below it.
    let replayed = store.reader().unwrap().scan_after(0, 10).unwrap()[0].id;
    store
        .settle(vec![Settlement::Finished {
            id: replayed,
            state: None,
            dead: None,
            delivered: None,
        }])
        .await
        .unwrap();
    assert_eq!(store.pending(), 0);
    assert_eq!(counted_and_actual(dir.path()), (0, 0));
    assert!(store.ready(), "a replay must not leave ingest refusing");
    store
        .accept(&source("web"), vec![track("m3", "ann")])
        .await
        .unwrap();
    assert_eq!(store.pending(), 1);
}

#[tokio::test]
async fn a_store_that_cannot_write_is_not_ready_until_a_commit_succeeds() {
    let dir = tempdir();
    let mut config = StoreConfig::new(dir.path());
    // Room for the empty tables and little more: a large event then fails like a full disk.
    config.max_page_count = Some(24);
    let store = Store::open(config, registry().unwrap()).unwrap();
    assert!(store.ready());
    let big = "x".repeat(30_000);
    let full = |id: &str| {
        event(
            json!({"type":"track","messageId":id,"userId":"ann","event":"Paid","properties":{"note":big}}),
        )
    };
    let mut refused = None;
    for i in 0..20 {
        if let Err(error) = store
            .accept(&source("web"), vec![full(&format!("f{i}"))])
            .await
        {
            refused = Some(error);
            break;
        }
    }
    let AcceptError::Unavailable { reason, .. } = refused.expect("the store never filled up");
    assert!(reason.contains("full"), "{reason}");
    assert!(
        !store.ready(),
        "a store that refuses writes must not say ready"
    );
    // A small event still fits in the pages left; its commit makes the store ready again.
    store
        .accept(&source("web"), vec![track("small", "bob")])
        .await
        .unwrap();
    assert!(store.ready());
}

fn tempdir() -> TempDir {
    TempDir::new("store-test")
}
