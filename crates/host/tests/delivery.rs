//! The delivery engine against a scripted fake sender and the real store, each test run
//! on both backends (`name::sqlite`, `name::postgres`): the embedded SQLite `Store` and
//! the PostgreSQL `PgStore` (on the server `cargo xtask prepare` starts). State is read
//! through `journal_support`: rows are counted in the database, as `Journal::pending` on
//! PostgreSQL is a count refreshed each second.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use inmoment_core::{AccountToken, Event, InMomentCall, Registry, Settings, UserState};
use inmoment_delivery::{Attempt, Backoff, Deliver, DeliveryConfig};
use inmoment_store::accept::Source;
use inmoment_store::{Journal, JournalError, PendingRow, Settlement};

mod engine_support;
#[macro_use]
mod journal_support;

use journal_support::{Backend, TestJournal};

use serde_json::json;

/// Answers from a script per messageId (then success), and records every attempt.
#[derive(Default)]
struct Scripted {
    script: Mutex<HashMap<String, Vec<Attempt>>>,
    log: Mutex<Vec<(String, Instant)>>,
    /// Every call sent, as (messageId, kind).
    kinds: Mutex<Vec<(String, String)>>,
    delay: Duration,
    /// While set, every call fails as if InMoment refused connections.
    down: std::sync::atomic::AtomicBool,
    /// Woken after each attempt is logged, so tests wait for attempts without polling.
    attempted: tokio::sync::Notify,
}

impl Scripted {
    fn with(script: &[(&str, Vec<Attempt>)]) -> Scripted {
        let map = script
            .iter()
            .map(|(id, a)| (id.to_string(), a.clone()))
            .collect();
        Scripted {
            script: Mutex::new(map),
            ..Scripted::default()
        }
    }
    fn attempts(&self, id: &str) -> Vec<Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == id)
            .map(|(_, t)| *t)
            .collect()
    }
    /// Waits until `id` was attempted `n` times; panics after 10 s.
    async fn wait_attempts(&self, id: &str, n: usize) {
        let wait = async {
            loop {
                let notified = self.attempted.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.attempts(id).len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(engine_support::PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("{id} was not attempted {n} times"));
    }
    fn kinds(&self) -> Vec<String> {
        self.kinds
            .lock()
            .unwrap()
            .iter()
            .map(|(_, kind)| kind.clone())
            .collect()
    }
    fn order(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }
}

#[async_trait]
impl Deliver for Scripted {
    async fn deliver(&self, _source: &str, call: &InMomentCall) -> Attempt {
        let id = call.message_id().to_string();
        self.log.lock().unwrap().push((id.clone(), Instant::now()));
        self.kinds
            .lock()
            .unwrap()
            .push((id.clone(), call.kind().to_string()));
        self.attempted.notify_waiters();
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Attempt::Retry {
                status: None,
                reason: "connection refused".into(),
                retry_after: None,
            };
        }
        let mut script = self.script.lock().unwrap();
        match script.get_mut(&id) {
            Some(steps) if !steps.is_empty() => steps.remove(0),
            _ => Attempt::Delivered {
                status: 200,
                eligible: None,
            },
        }
    }
}

fn retry(after: Option<Duration>) -> Attempt {
    Attempt::Retry {
        status: Some(500),
        reason: "HTTP 500".into(),
        retry_after: after,
    }
}

fn config() -> DeliveryConfig {
    DeliveryConfig {
        max_in_flight: 8,
        backoff: Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(60),
        },
        scan_batch: 64,
        max_held_rows: 16_384,
        rescan_every: Duration::from_millis(50),
        shutdown_deadline: Duration::from_secs(2),
        log_deliveries: false,
        sources: HashMap::from([(source().name, source().settings)]),
        attempt_deadline: None,
    }
}

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

async fn accept(journal: &TestJournal, events: Vec<Event>) {
    journal.accept(&source(), events).await.unwrap();
}

/// Runs the engine until the journal has no pending events (or 10 s pass), then stops it.
async fn deliver_all(journal: &TestJournal, fake: Arc<Scripted>, config: DeliveryConfig) {
    journal.deliver_all(fake, config).await;
}

/// ann's oldest pending row.
async fn ann_head(journal: &TestJournal) -> PendingRow {
    journal.head_of("web", "ann").await.unwrap()
}

/// Bounds of the rows held in memory that take each path: none held (every later row is
/// read again), some held then read, all held.
const HELD_BOUNDS: [usize; 3] = [0, 3, 16_384];

both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_call_is_delivered_once_in_per_user_order(backend: Backend) {
        for held in HELD_BOUNDS {
            every_call_is_delivered_once_in_per_user_order_holding(backend, held).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_waiting_for_a_retry_gets_the_calls_the_scan_skipped_in_order(backend: Backend) {
        for held in HELD_BOUNDS {
            a_user_waiting_for_a_retry_gets_the_skipped_calls_holding(backend, held).await;
        }
    }

    #[tokio::test]
    async fn a_retryable_failure_is_retried_until_delivered(backend: Backend) {
        let journal = backend.open("delivery-retried").await;
        accept(&journal, vec![track("m1", "ann"), track("m2", "ann")]).await;
        let fake = Arc::new(Scripted::with(&[("m1", vec![retry(None), retry(None)])]));
        deliver_all(&journal, fake.clone(), config()).await;
        assert_eq!(fake.attempts("m1").len(), 3);
        assert_eq!(fake.order(), ["m1", "m1", "m1", "m2"]);
        assert_eq!(journal.pending_rows().await, 0);
        assert!(journal.dead_letters(10).await.is_empty());
        journal.close().await;
    }

    #[tokio::test]
    async fn a_permanent_failure_becomes_a_dead_letter_and_the_user_moves_on(backend: Backend) {
        let journal = backend.open("delivery-permanent").await;
        accept(&journal, vec![track("m1", "ann"), track("m2", "ann")]).await;
        let bad = Attempt::Permanent {
            status: Some(400),
            reason: "HTTP 400: {\"error\":\"bad\"}".into(),
        };
        let fake = Arc::new(Scripted::with(&[("m1", vec![bad])]));
        deliver_all(&journal, fake.clone(), config()).await;
        assert_eq!(fake.order(), ["m1", "m2"]);
        let dead = journal.dead_letters(10).await;
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (
                dead[0].message_id.as_str(),
                dead[0].status,
                dead[0].attempts
            ),
            ("m1", Some(400), 1)
        );
        assert!(dead[0].reason.contains("HTTP 400"));
        journal.close().await;
    }

    #[tokio::test]
    async fn retry_after_is_honoured(backend: Backend) {
        let journal = backend.open("delivery-retry-after").await;
        accept(&journal, vec![track("m1", "ann")]).await;
        let fake = Arc::new(Scripted::with(&[(
            "m1",
            vec![retry(Some(Duration::from_millis(150)))],
        )]));
        deliver_all(&journal, fake.clone(), config()).await;
        let times = fake.attempts("m1");
        assert_eq!(times.len(), 2);
        assert!(
            times[1] - times[0] >= Duration::from_millis(150),
            "{:?}",
            times[1] - times[0]
        );
        journal.close().await;
    }

    #[tokio::test]
    async fn retries_stop_after_max_elapsed_with_a_dead_letter_saying_why(backend: Backend) {
        let journal = backend.open("delivery-max-elapsed").await;
        accept(&journal, vec![track("m1", "ann")]).await;
        let fake = Arc::new(Scripted::with(&[("m1", vec![retry(None); 1000])]));
        let mut config = config();
        // Counted from acceptance: long enough that the first attempt, which on
        // PostgreSQL may wait for a poll or for other tests' transactions to end, comes
        // well within it, and a retry (at most 5 ms later) too.
        config.backoff.max_elapsed = Duration::from_millis(300);
        deliver_all(&journal, fake.clone(), config).await;
        let dead = journal.dead_letters(10).await;
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].reason.starts_with("gave up after"),
            "{}",
            dead[0].reason
        );
        assert!(fake.attempts("m1").len() >= 2);
        journal.close().await;
    }

    /// The pause before a retry is kept in the store: after a restart the engine waits for
    /// what remains of it instead of trying again at once.
    #[tokio::test]
    async fn a_restart_resumes_the_persisted_retry_schedule(backend: Backend) {
        let pause = Duration::from_secs(3600);
        let mut journal = backend.open("delivery-restart-schedule").await;
        accept(&journal, vec![track("m1", "ann")]).await;
        let fake = Arc::new(Scripted::with(&[("m1", vec![retry(Some(pause))])]));
        let mut running = journal.spawn(fake.clone(), config());
        running.wait_settlements(1).await;
        let retried_at_ms = chrono::Utc::now().timestamp_millis();
        running.stop().await;
        assert_eq!(fake.attempts("m1").len(), 1);

        // Right after the restart, before any delivery: the schedule survived it.
        journal.reopen().await;
        let head = ann_head(&journal).await;
        assert_eq!(head.attempts, 1);
        assert_eq!(journal.pending_rows().await, 1);
        let scheduled = head.next_attempt_ms;
        let remaining = scheduled - chrono::Utc::now().timestamp_millis();
        let pause_ms = i64::try_from(pause.as_millis()).unwrap();
        assert!(
            scheduled >= retried_at_ms + pause_ms - 60_000 && remaining > pause_ms / 2,
            "the persisted retry time must be about an hour ahead: {remaining} ms left"
        );

        // The restarted engine delivers another user's event accepted after ann's (so
        // scanned after it) and leaves ann's until her time comes.
        accept(&journal, vec![track("m2", "bob")]).await;
        let fake = Arc::new(Scripted::default());
        let mut running = journal.spawn(fake.clone(), config());
        fake.wait_attempts("m2", 1).await;
        running.wait_settlements(1).await;
        running.stop().await;
        assert_eq!(
            fake.order(),
            ["m2"],
            "ann's retry must wait for the persisted time"
        );
        let head = ann_head(&journal).await;
        assert_eq!((head.attempts, head.next_attempt_ms), (1, scheduled));
        assert_eq!(journal.pending_rows().await, 1, "bob's event is delivered");
        journal.close().await;
    }

    #[tokio::test]
    async fn shutdown_lets_in_flight_attempts_finish_and_starts_nothing_new(backend: Backend) {
        let journal = backend.open("delivery-shutdown").await;
        accept(&journal, vec![track("m1", "ann"), track("m2", "ann")]).await;
        let fake = Arc::new(Scripted {
            delay: Duration::from_millis(100),
            ..Scripted::default()
        });
        let running = journal.spawn(fake.clone(), config());
        fake.wait_attempts("m1", 1).await;
        running.stop().await;
        assert_eq!(fake.order(), ["m1"]);
        assert_eq!(
            journal.pending_rows().await,
            1,
            "m1 settled, m2 left for the next start"
        );
        assert_eq!(ann_head(&journal).await.message_id, "m2");
        journal.close().await;
    }

    #[tokio::test]
    async fn replayed_dead_letters_are_delivered(backend: Backend) {
        let journal = backend.open("delivery-replayed").await;
        accept(&journal, vec![track("m1", "ann")]).await;
        let bad = Attempt::Permanent {
            status: Some(401),
            reason: "check the token".into(),
        };
        deliver_all(
            &journal,
            Arc::new(Scripted::with(&[("m1", vec![bad])])),
            config(),
        )
        .await;
        assert_eq!(journal.dead_letters(10).await.len(), 1);

        assert_eq!(journal.replay_all().await, 1);
        let fake = Arc::new(Scripted::default());
        let mut running = journal.spawn(fake.clone(), config());
        fake.wait_attempts("m1", 1).await;
        assert!(
            journal.wait_empty(&mut running).await,
            "the replayed call settles"
        );
        running.stop().await;
        assert_eq!(fake.attempts("m1").len(), 1);
        assert!(journal.dead_letters(10).await.is_empty());
        journal.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_outage_pauses_new_users_then_everything_drains_when_inmoment_is_back(
        backend: Backend
    ) {
        let journal = backend.open("delivery-outage").await;
        let events = (0..300)
            .map(|i| track(&format!("m{i}"), &format!("user-{i}")))
            .collect();
        accept(&journal, events).await;
        let fake = Arc::new(Scripted::default());
        fake.down.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut config = config();
        // Pauses long against a settlement's commit on either backend (tens of ms on a
        // busy PostgreSQL): new users start only when a pause ends, so with shorter ones
        // a slow commit lets several rounds start per settlement and the bound below
        // measures the machine, not the engine.
        config.backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(200),
            max_elapsed: Duration::from_secs(60),
        };
        let mut running = journal.spawn(fake.clone(), config);
        // Many rounds of failed attempts (each settled as a retry), however fast the machine.
        running.wait_settlements(15).await;
        let tried: std::collections::HashSet<String> = fake.order().into_iter().collect();
        assert!(
            tried.len() <= 24,
            "an outage must not walk through every user: {} tried",
            tried.len()
        );

        fake.down.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(
            journal.wait_empty(&mut running).await,
            "all delivered once InMoment is back"
        );
        running.stop().await;
        assert_eq!(journal.pending_rows().await, 0);
        journal.close().await;
    }

    /// The journal keeps events, not calls: delivery maps them with the settings of the
    /// time it delivers, so a settings fix reaches events accepted before it.
    #[tokio::test]
    async fn events_accepted_before_a_settings_change_are_mapped_with_the_new_settings(
        backend: Backend
    ) {
        let journal = backend.open("delivery-settings-change").await;
        let skipped = Event::from_value(
            json!({"type":"track","messageId":"m1","userId":"ann","event":"Survey Skipped","context":{"traits":{"email":"ann@example.com"}}}),
            None,
        )
        .unwrap();
        accept(&journal, vec![skipped]).await;
        let mut config = config();
        let mut fixed = source().settings;
        fixed.decline_event = "Survey Skipped".into();
        fixed.client_id = Some(inmoment_core::ClientId::parse("demo-client-id").unwrap());
        config.sources.insert("web".into(), fixed);
        let fake = Arc::new(Scripted::default());
        deliver_all(&journal, fake.clone(), config).await;
        assert_eq!(
            fake.kinds(),
            ["upsert_end_user", "eligibility_check", "create_decline"]
        );
        journal.close().await;
    }

    /// A restart between an event's calls sends only the ones not yet settled.
    #[tokio::test]
    async fn a_restart_between_an_events_calls_resumes_after_the_settled_ones(backend: Backend) {
        let mut settings = source().settings;
        settings.client_id = Some(inmoment_core::ClientId::parse("demo-client-id").unwrap());
        let mut config = config();
        config.sources.insert("web".into(), settings.clone());
        let mut journal = backend.open("delivery-restart-calls").await;
        let identify = Event::from_value(
            json!({"type":"identify","messageId":"m1","userId":"ann","traits":{"email":"ann@example.com"}}),
            None,
        )
        .unwrap();
        let with_client = Source {
            name: "web".into(),
            settings: settings.clone(),
        };
        journal.accept(&with_client, vec![identify]).await.unwrap();
        // The upsert is delivered, the eligibility check must wait a long while.
        let fake = Arc::new(Scripted::with(&[(
            "m1",
            vec![
                Attempt::Delivered {
                    status: 200,
                    eligible: None,
                },
                retry(Some(Duration::from_secs(3600))),
            ],
        )]));
        let mut running = journal.spawn(fake.clone(), config.clone());
        // Two settlements: the delivered upsert, then the check's retry.
        running.wait_settlements(2).await;
        running.stop().await;
        assert_eq!(fake.kinds(), ["upsert_end_user", "eligibility_check"]);
        let head = ann_head(&journal).await;
        assert_eq!((head.done_calls, head.attempts), (1, 1));

        journal.reopen().await;
        let admin_due_now = journal
            .execute("UPDATE journal SET next_attempt_ms = 0")
            .await;
        assert_eq!(admin_due_now, 1);
        let fake = Arc::new(Scripted::default());
        deliver_all(&journal, fake.clone(), config).await;
        assert_eq!(
            fake.kinds(),
            ["eligibility_check"],
            "the upsert is not sent again"
        );
        assert_eq!(journal.pending_rows().await, 0);
        journal.close().await;
    }

    /// An event whose source is no longer configured cannot be mapped: it is parked whole
    /// (`unmapped`, with the reason), the user's later events go on, and once the source
    /// is configured again a replay maps it afresh.
    #[tokio::test]
    async fn an_event_of_a_removed_source_is_parked_and_mapped_again_after_a_replay(
        backend: Backend
    ) {
        let journal = backend.open("delivery-removed-source").await;
        accept(&journal, vec![track("m1", "ann")]).await;
        let mut without_source = config();
        without_source.sources.clear();
        let fake = Arc::new(Scripted::default());
        deliver_all(&journal, fake.clone(), without_source).await;
        assert!(fake.kinds().is_empty(), "nothing can be sent for it");
        let dead = journal.dead_letters(10).await;
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].kind, "unmapped");
        assert!(
            dead[0].reason.contains("source `web` is not configured"),
            "{}",
            dead[0].reason
        );
        assert_eq!(dead[0].call["messageId"], "m1", "the event itself is kept");

        assert_eq!(journal.replay_all().await, 1);
        let head = ann_head(&journal).await;
        assert_eq!(
            head.kind, "event",
            "replayed as an event, to be mapped again"
        );
        deliver_all(&journal, fake.clone(), config()).await;
        assert_eq!(fake.kinds(), ["eligibility_check"]);
        assert!(journal.dead_letters(10).await.is_empty());
        journal.close().await;
    }

    /// A settlement is committed in the background: while ann's result is still being
    /// committed, bob's call goes out (with room for one call in flight, it could not if
    /// the engine waited for the commit); ann's later event waits for her commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_users_calls_go_out_while_a_settlement_commits(backend: Backend) {
        let journal = backend.open("delivery-commit-overlap").await;
        accept(&journal, vec![track("a1", "ann"), track("b1", "bob"), track("a2", "ann")]).await;
        let (open, opened) = tokio::sync::watch::channel(false);
        let gated = Arc::new(GatedSettle {
            inner: journal.journal(),
            first: std::sync::atomic::AtomicBool::new(true),
            held: FirstSettle::Held(opened),
        });
        let fake = Arc::new(Scripted::default());
        let mut one_at_a_time = config();
        one_at_a_time.max_in_flight = 1;
        let mut running = engine_support::spawn(gated, fake.clone(), one_at_a_time);
        fake.wait_attempts("b1", 1).await;
        assert_eq!(
            fake.order(),
            ["a1", "b1"],
            "ann's next event waits for her commit; bob's call does not"
        );
        open.send_replace(true);
        assert!(journal.wait_empty(&mut running).await);
        running.stop().await;
        assert_eq!(fake.order(), ["a1", "b1", "a2"]);
        journal.close().await;
    }

    /// A commit task that fails outright (here it panics) strands no user: the result is
    /// not recorded, so the call is sent again a second later (at least once) and the
    /// user's next event follows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_task_that_fails_leaves_the_calls_to_be_sent_again(backend: Backend) {
        let journal = backend.open("delivery-commit-panics").await;
        accept(&journal, vec![track("a1", "ann"), track("a2", "ann")]).await;
        let failing = Arc::new(GatedSettle {
            inner: journal.journal(),
            first: std::sync::atomic::AtomicBool::new(true),
            held: FirstSettle::Panics,
        });
        let fake = Arc::new(Scripted::default());
        let mut running = engine_support::spawn(failing, fake.clone(), config());
        assert!(journal.wait_empty(&mut running).await);
        running.stop().await;
        assert_eq!(fake.order(), ["a1", "a1", "a2"]);
        journal.close().await;
    }
}

/// The journal with its first settlement held back (see [`FirstSettle`]).
struct GatedSettle {
    inner: Arc<dyn Journal>,
    first: std::sync::atomic::AtomicBool,
    held: FirstSettle,
}

/// What becomes of the first settlement.
enum FirstSettle {
    /// It waits until the flag turns true.
    Held(tokio::sync::watch::Receiver<bool>),
    /// Its task panics before anything is recorded.
    Panics,
}

#[async_trait]
impl Journal for GatedSettle {
    fn registry(&self) -> &Registry {
        self.inner.registry()
    }
    fn pending(&self) -> u64 {
        self.inner.pending()
    }
    async fn new_work(&self) {
        self.inner.new_work().await
    }
    async fn scan_after(&self, cursor: i64, limit: usize) -> Result<Vec<PendingRow>, JournalError> {
        self.inner.scan_after(cursor, limit).await
    }
    async fn next_of_user(
        &self,
        source: &str,
        user_key: &str,
        from: i64,
        upto: i64,
    ) -> Result<Option<PendingRow>, JournalError> {
        self.inner.next_of_user(source, user_key, from, upto).await
    }
    async fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, JournalError> {
        self.inner.user_state(source, user_key).await
    }
    async fn user_states(
        &self,
        users: &[(String, String)],
    ) -> Result<Option<HashMap<(String, String), UserState>>, JournalError> {
        self.inner.user_states(users).await
    }
    async fn settle(&self, updates: Vec<Settlement>) -> Result<(), JournalError> {
        if self.first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            match &self.held {
                FirstSettle::Held(opened) => {
                    let _ = opened.clone().wait_for(|open| *open).await;
                }
                FirstSettle::Panics => panic!("the first commit fails"),
            }
        }
        self.inner.settle(updates).await
    }
    async fn dead_letter_count(&self) -> Result<u64, JournalError> {
        self.inner.dead_letter_count().await
    }
    fn owns(&self, source: &str, user_key: &str) -> bool {
        self.inner.owns(source, user_key)
    }
    fn take_rescan(&self) -> bool {
        self.inner.take_rescan()
    }
}

async fn every_call_is_delivered_once_in_per_user_order_holding(
    backend: Backend,
    max_held_rows: usize,
) {
    let journal = backend.open("delivery-order").await;
    let mut events = Vec::new();
    for i in 0..200 {
        events.push(track(
            &format!("{}-{i:03}", i % 7),
            &format!("user-{}", i % 7),
        ));
    }
    accept(&journal, events).await;
    let fake = Arc::new(Scripted {
        delay: Duration::from_millis(1),
        ..Scripted::default()
    });
    let config = DeliveryConfig {
        max_held_rows,
        ..config()
    };
    deliver_all(&journal, fake.clone(), config).await;

    assert_eq!(journal.pending_rows().await, 0);
    let order = fake.order();
    assert_eq!(order.len(), 200, "holding {max_held_rows}");
    for user in 0..7 {
        let mine: Vec<&String> = order
            .iter()
            .filter(|m| m.starts_with(&format!("{user}-")))
            .collect();
        let mut sorted = mine.clone();
        sorted.sort();
        assert_eq!(
            mine, sorted,
            "user {user} out of order, holding {max_held_rows}"
        );
    }
    journal.close().await;
}

async fn a_user_waiting_for_a_retry_gets_the_skipped_calls_holding(
    backend: Backend,
    max_held_rows: usize,
) {
    // ann's first call waits 30 ms for a retry while the scan, in small steps, passes all
    // of her later calls among 300 of other users: it must come back for them, in order,
    // whether they were held in memory or must be read again.
    let journal = backend.open("delivery-skipped").await;
    let mut events = Vec::new();
    for i in 0..300 {
        if i % 6 == 0 {
            events.push(track(&format!("ann-{i:03}"), "ann"));
        } else {
            events.push(track(&format!("other-{i:03}"), &format!("user-{i}")));
        }
    }
    accept(&journal, events).await;
    let fake = Arc::new(Scripted::with(&[(
        "ann-000",
        vec![retry(Some(Duration::from_millis(30)))],
    )]));
    let mut config = config();
    config.scan_batch = 4;
    config.max_held_rows = max_held_rows;
    config.rescan_every = Duration::from_secs(60); // no rescan to fall back on
    deliver_all(&journal, fake.clone(), config).await;

    assert_eq!(journal.pending_rows().await, 0);
    let ann: Vec<String> = fake
        .order()
        .into_iter()
        .filter(|m| m.starts_with("ann-"))
        .collect();
    let mut expected: Vec<String> = (0..300).step_by(6).map(|i| format!("ann-{i:03}")).collect();
    expected.insert(0, "ann-000".into());
    assert_eq!(ann, expected, "holding {max_held_rows}");
    assert_eq!(
        fake.order().len(),
        301,
        "every call once, ann-000 twice, holding {max_held_rows}"
    );
    journal.close().await;
}
