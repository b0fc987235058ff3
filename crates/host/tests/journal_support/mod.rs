//! One journal for a test, on either backend: the embedded SQLite `Store` in a temp dir
//! or the PostgreSQL `PgStore` in a fresh database (started by `cargo xtask prepare`).
//! Tests are written once against [`TestJournal`] and run on both with [`both_backends!`]
//! (shared by `delivery.rs` and `store.rs`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use inmoment_core::UserState;
use inmoment_delivery::{Deliver, DeliveryConfig};
use inmoment_host::linked::registry;
use inmoment_postgres::{PgAdmin, PgConfig, PgStore};
use inmoment_store::accept::{AcceptError, Acceptor, EventOutcome, Source};
use inmoment_store::{Admin, DeadLetter, Journal, PendingRow, Selection, Store, StoreConfig};
use inmoment_testkit::{fresh_database, TempDir};

use crate::engine_support::{self, Running, PATIENCE};

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a journal lives, kept across restarts.
enum Place {
    Dir(TempDir),
    Database(String),
}

/// The open store.
enum Handle {
    Sqlite(Arc<Store>),
    Postgres(Arc<PgStore>),
}

/// Settings a test may change before opening (both backends have them).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Above this many pending events ingest refuses.
    pub max_pending: Option<u64>,
    /// A repeated `messageId` within this window is a duplicate.
    pub dedup_window: Option<Duration>,
}

/// A journal on one backend, reopened in place to simulate a restart.
pub struct TestJournal {
    backend: Backend,
    options: Options,
    place: Place,
    handle: Handle,
    /// A raw connection to the PostgreSQL database, for what the store does not expose.
    raw: Option<tokio_postgres::Client>,
}

impl Backend {
    /// A fresh, empty journal with default settings.
    pub async fn open(self, name: &str) -> TestJournal {
        self.open_with(name, Options::default()).await
    }

    /// A fresh, empty journal with `options`.
    pub async fn open_with(self, name: &str, options: Options) -> TestJournal {
        let place = match self {
            Backend::Sqlite => Place::Dir(TempDir::new(name)),
            Backend::Postgres => Place::Database(fresh_database(name)),
        };
        let handle = open_handle(&place, &options).await;
        let raw = match &place {
            Place::Dir(_) => None,
            Place::Database(url) => Some(connect(url).await),
        };
        TestJournal {
            backend: self,
            options,
            place,
            handle,
            raw,
        }
    }
}

async fn open_handle(place: &Place, options: &Options) -> Handle {
    match place {
        Place::Dir(dir) => {
            let mut config = StoreConfig::new(dir.path());
            if let Some(max) = options.max_pending {
                config.max_pending = max;
            }
            if let Some(window) = options.dedup_window {
                config.dedup_window = window;
            }
            Handle::Sqlite(Arc::new(Store::open(config, registry().unwrap()).unwrap()))
        }
        Place::Database(url) => {
            let mut config = PgConfig::new(url);
            config.partitions = 8;
            config.takeover_within = Duration::from_millis(1500);
            config.poll_every = Duration::from_millis(20);
            if let Some(max) = options.max_pending {
                config.max_pending = max;
            }
            if let Some(window) = options.dedup_window {
                config.dedup_window = window;
            }
            Handle::Postgres(Arc::new(
                PgStore::open(config, registry().unwrap()).await.unwrap(),
            ))
        }
    }
}

/// A raw connection to a test database.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::Config::from_str(url)
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

const COLUMNS: &str =
    "id, source, user_key, message_id, kind, body, accepted_at_ms, done_calls, attempts, next_attempt_ms";

impl TestJournal {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The store as delivery sees it.
    pub fn journal(&self) -> Arc<dyn Journal> {
        match &self.handle {
            Handle::Sqlite(store) => store.clone(),
            Handle::Postgres(store) => store.clone(),
        }
    }

    /// The store as ingest sees it.
    pub async fn accept(
        &self,
        source: &Source,
        events: Vec<inmoment_core::Event>,
    ) -> Result<Vec<EventOutcome>, AcceptError> {
        match &self.handle {
            Handle::Sqlite(store) => store.accept(source, events).await,
            Handle::Postgres(store) => store.accept(source, events).await,
        }
    }

    /// Whether ingest would take events now.
    pub fn ready(&self) -> bool {
        match &self.handle {
            Handle::Sqlite(store) => Acceptor::ready(store.as_ref()),
            Handle::Postgres(store) => Acceptor::ready(store.as_ref()),
        }
    }

    /// Closes the store: the SQLite writer finishes, the PostgreSQL leases are given back.
    pub async fn close(&self) {
        match &self.handle {
            Handle::Sqlite(store) => store.close(),
            Handle::Postgres(store) => store.close().await,
        }
    }

    /// A restart: closes this handle and opens the same journal again.
    pub async fn reopen(&mut self) {
        self.close().await;
        self.handle = open_handle(&self.place, &self.options).await;
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let Place::Dir(dir) = &self.place else {
            unreachable!("not a SQLite journal")
        };
        let conn =
            rusqlite::Connection::open(StoreConfig::new(dir.path()).database_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }

    fn pg(&self) -> &tokio_postgres::Client {
        self.raw.as_ref().expect("not a PostgreSQL journal")
    }

    fn url(&self) -> &str {
        let Place::Database(url) = &self.place else {
            unreachable!("not a PostgreSQL journal")
        };
        url
    }

    /// Rows in the journal, counted in the database (exact, unlike `Journal::pending`
    /// on PostgreSQL, which is recounted each second).
    pub async fn pending_rows(&self) -> u64 {
        let count: i64 = match self.backend {
            Backend::Sqlite => self
                .sqlite()
                .query_row("SELECT COUNT(*) FROM journal", [], |row| row.get(0))
                .unwrap(),
            Backend::Postgres => self
                .pg()
                .query_one("SELECT count(*) FROM journal", &[])
                .await
                .unwrap()
                .get(0),
        };
        u64::try_from(count).unwrap()
    }

    /// Journal rows as (message id, kind, body), oldest first.
    pub async fn rows(&self) -> Vec<(String, String, serde_json::Value)> {
        let query = "SELECT message_id, kind, body FROM journal ORDER BY id";
        let rows: Vec<(String, String, String)> = match self.backend {
            Backend::Sqlite => {
                let conn = self.sqlite();
                let mut stmt = conn.prepare(query).unwrap();
                stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Backend::Postgres => self
                .pg()
                .query(query, &[])
                .await
                .unwrap()
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2)))
                .collect(),
        };
        rows.into_iter()
            .map(|(id, kind, body)| (id, kind, serde_json::from_str(&body).unwrap()))
            .collect()
    }

    /// A user's oldest pending row.
    pub async fn head_of(&self, source: &str, user_key: &str) -> Option<PendingRow> {
        match &self.handle {
            Handle::Sqlite(store) => store.reader().unwrap().head_of(source, user_key).unwrap(),
            Handle::Postgres(_) => self
                .pg()
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM journal WHERE source = $1 AND user_key = $2 ORDER BY id LIMIT 1"
                    ),
                    &[&source, &user_key],
                )
                .await
                .unwrap()
                .map(|row| PendingRow {
                    id: row.get(0),
                    source: row.get(1),
                    user_key: row.get(2),
                    message_id: row.get(3),
                    kind: row.get(4),
                    body: row.get(5),
                    accepted_at_ms: row.get(6),
                    done_calls: row.get(7),
                    attempts: row.get(8),
                    next_attempt_ms: row.get(9),
                }),
        }
    }

    /// A user's state as their last finished event left it.
    pub async fn user_state(&self, source: &str, user_key: &str) -> UserState {
        self.journal().user_state(source, user_key).await.unwrap()
    }

    /// The oldest dead letters, at most `limit`.
    pub async fn dead_letters(&self, limit: usize) -> Vec<DeadLetter> {
        match &self.handle {
            Handle::Sqlite(store) => store.reader().unwrap().dead_letters(limit).unwrap(),
            Handle::Postgres(_) => PgAdmin::connect(self.url())
                .await
                .unwrap()
                .dead_letters(limit)
                .await
                .unwrap(),
        }
    }

    /// `queue dead replay --all`, as another process would run it; returns how many went
    /// back to the journal.
    pub async fn replay_all(&self) -> usize {
        match &self.place {
            Place::Dir(dir) => Admin::open(&StoreConfig::new(dir.path()).database_path())
                .unwrap()
                .replay(&Selection::All)
                .unwrap(),
            Place::Database(url) => {
                PgAdmin::connect(url)
                    .await
                    .unwrap()
                    .replay(&Selection::All)
                    .await
                    .unwrap()
                    .moved
            }
        }
    }

    /// Runs `sql` (no parameters) on the database behind the store's back, as an
    /// operator would; returns the rows changed. Table and column names are the same on
    /// both backends for the journal.
    pub async fn execute(&self, sql: &str) -> u64 {
        match self.backend {
            Backend::Sqlite => u64::try_from(self.sqlite().execute(sql, []).unwrap()).unwrap(),
            Backend::Postgres => self.pg().execute(sql, &[]).await.unwrap(),
        }
    }

    /// Starts the delivery engine on this journal.
    pub fn spawn<D: Deliver>(&self, deliver: Arc<D>, config: DeliveryConfig) -> Running {
        engine_support::spawn(self.journal(), deliver, config)
    }

    /// Waits until the journal has no rows, checked now and after each settlement the
    /// engine commits (its own pending report may lag on PostgreSQL); false after
    /// [`PATIENCE`].
    pub async fn wait_empty(&self, running: &mut Running) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = running.settlements();
            if self.pending_rows().await == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline
                || !running.wait_until(|report| report.settlements > seen).await
            {
                return false;
            }
        }
    }

    /// Runs delivery until the journal is empty (or [`PATIENCE`] passes), then stops it;
    /// returns whether it emptied.
    pub async fn deliver_all<D: Deliver>(&self, deliver: Arc<D>, config: DeliveryConfig) -> bool {
        let mut running = self.spawn(deliver, config);
        let empty = self.wait_empty(&mut running).await;
        running.stop().await;
        empty
    }
}

/// Writes each test once and runs it on both backends: `async fn name(backend: Backend)`
/// becomes the tests `name::sqlite` and `name::postgres` (a module per test, as
/// `macro_rules!` cannot make `name_sqlite`; `cargo test ::postgres` runs one backend).
/// The `#[tokio::test]` attribute (with its arguments) is given once before the
/// function. Declare the module with `#[macro_use]` before the tests.
macro_rules! both_backends {
    ($(
        $(#[doc = $doc:expr])*
        #[tokio::test $(($($args:tt)*))?]
        async fn $name:ident($backend:ident: $backend_type:ty) $body:block
    )*) => {$(
        $(#[doc = $doc])*
        async fn $name($backend: $backend_type) $body

        mod $name {
            #[tokio::test $(($($args)*))?]
            async fn sqlite() {
                super::$name($crate::journal_support::Backend::Sqlite).await;
            }

            #[tokio::test $(($($args)*))?]
            async fn postgres() {
                super::$name($crate::journal_support::Backend::Postgres).await;
            }
        }
    )*};
}
