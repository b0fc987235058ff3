//! The store's side of the [`Acceptor`] contract: check each event as far as it can be
//! checked without its user's state, queue the request for the writer, and answer once
//! its group is committed.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::dispatch::check_stateless;
use inmoment_core::{Event, Registry, UserState};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::dedup::SeenIndex;
use super::journal::{Journal, JournalError};
use super::reader::{PendingRow, Reader};
use super::schema;
use super::writer::{Command, Entry, Settlement, Shared, StoreConfig, StoreError, Writer};
use crate::accept::{AcceptError, Acceptor, EventOutcome, Source};

/// How many requests may wait for the writer before callers wait too.
const QUEUE_DEPTH: usize = 4096;

/// The durable store used by `serve`: accepts events (as the [`Acceptor`]), and takes
/// delivery results back.
pub struct Store {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    shared: Arc<Shared>,
    registry: Registry,
    max_pending: u64,
    writer: Mutex<Option<JoinHandle<()>>>,
    database_path: PathBuf,
    /// The read connection delivery uses (WAL lets it read while the writer commits).
    delivery_reader: Mutex<Reader>,
}

impl Store {
    /// Opens (or creates) the store in `config.data_dir` and starts its writer thread.
    pub fn open(config: StoreConfig, registry: Registry) -> Result<Store, StoreError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StoreError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let path = config.database_path();
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sqlite)?;
        schema::configure(&conn).map_err(sqlite)?;
        schema::create(&conn).map_err(sqlite)?;
        if let Some(pages) = config.max_page_count {
            conn.pragma_update(None, "max_page_count", pages)
                .map_err(sqlite)?;
        }
        let pending = schema::pending(&conn).map_err(sqlite)?;
        let seen = SeenIndex::load(&conn).map_err(sqlite)?;
        let delivery_reader = Reader::open(&path).map_err(sqlite)?;

        let shared = Arc::new(Shared::default());
        shared
            .pending
            .store(u64::try_from(pending).unwrap_or(0), Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let max_pending = config.max_pending;
        let writer = Writer::new(conn, config, shared.clone(), seen);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| StoreError::DataDir {
                path: path.clone(),
                source,
            })?;
        Ok(Store {
            commands: Mutex::new(Some(sender)),
            shared,
            registry,
            max_pending,
            writer: Mutex::new(Some(handle)),
            database_path: path,
            delivery_reader: Mutex::new(delivery_reader),
        })
    }

    /// Events (and replayed calls) stored and not yet fully delivered or dead-lettered.
    pub fn pending(&self) -> u64 {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// The pending count after each commit: a receiver sees a change for every commit made
    /// after it subscribed (even one that left the count as it was).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    /// Stops taking requests, lets the writer finish the queued ones, and waits for it.
    pub fn close(&self) {
        if let Ok(mut commands) = self.commands.lock() {
            commands.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    /// Records delivery results; returns once they are committed.
    pub async fn settle(&self, updates: Vec<Settlement>) -> Result<(), JournalError> {
        let closed = || JournalError::Write("the store is closed".into());
        let sender = self.sender().ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Command::Settle { updates, reply })
            .await
            .map_err(|_| closed())?;
        answer
            .await
            .map_err(|_| closed())?
            .map_err(JournalError::Write)
    }

    /// Runs `read` on delivery's read connection.
    fn read<T>(
        &self,
        read: impl FnOnce(&Reader) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let reader = self
            .delivery_reader
            .lock()
            .map_err(|_| JournalError::Read("the read connection failed earlier".into()))?;
        read(&reader).map_err(|e| JournalError::Read(e.to_string()))
    }

    /// A new read connection (for delivery and inspection).
    pub fn reader(&self) -> rusqlite::Result<Reader> {
        Reader::open(&self.database_path)
    }

    fn sender(&self) -> Option<mpsc::Sender<Command>> {
        self.commands.lock().ok().and_then(|c| c.clone())
    }

    fn refuse(&self) -> Option<AcceptError> {
        let pending = self.pending();
        if pending >= self.max_pending {
            return Some(AcceptError::Unavailable {
                reason: format!(
                    "{pending} events are waiting for delivery (max_pending_calls is {})",
                    self.max_pending
                ),
                retry_after: Duration::from_secs(5),
            });
        }
        if self.shared.over_size.load(Ordering::Relaxed) {
            return Some(AcceptError::Unavailable {
                reason: "the store is over store_max_bytes".into(),
                retry_after: Duration::from_secs(30),
            });
        }
        None
    }
}

/// SQLite reads are short (an indexed point or range read), so they run on the calling task.
#[async_trait]
impl Journal for Store {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn pending(&self) -> u64 {
        Store::pending(self)
    }

    async fn new_work(&self) {
        self.shared.new_work.notified().await;
    }

    async fn scan_after(&self, cursor: i64, limit: usize) -> Result<Vec<PendingRow>, JournalError> {
        self.read(|r| r.scan_after(cursor, limit))
    }

    async fn next_of_user(
        &self,
        source: &str,
        user_key: &str,
        from: i64,
        upto: i64,
    ) -> Result<Option<PendingRow>, JournalError> {
        self.read(|r| r.next_of_user(source, user_key, from, upto))
    }

    async fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, JournalError> {
        self.read(|r| r.user_state(source, user_key))
    }

    async fn settle(&self, updates: Vec<Settlement>) -> Result<(), JournalError> {
        Store::settle(self, updates).await
    }

    async fn dead_letter_count(&self) -> Result<u64, JournalError> {
        self.read(Reader::dead_letter_count)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

fn shutting_down() -> AcceptError {
    AcceptError::Unavailable {
        reason: "the store is shutting down".into(),
        retry_after: Duration::from_secs(1),
    }
}

/// What the writer gets for one event: its JSON to append, or the answer already known.
fn entry(registry: &Registry, source: &Source, event: &Event) -> Entry {
    match check_stateless(registry, event, &source.settings) {
        Err(error) => Entry::Answered(EventOutcome::Rejected(error)),
        Ok(Some(reason)) => Entry::Answered(EventOutcome::Skipped(reason)),
        Ok(None) => Entry::Append {
            user_key: event.user_key().to_string(),
            message_id: event.message_id.clone().unwrap_or_default(),
            body: event.to_json(),
        },
    }
}

#[async_trait]
impl Acceptor for Store {
    async fn accept(
        &self,
        source: &Source,
        events: Vec<Event>,
    ) -> Result<Vec<EventOutcome>, AcceptError> {
        if let Some(refusal) = self.refuse() {
            return Err(refusal);
        }
        let sender = self.sender().ok_or_else(shutting_down)?;
        // Checked and written as JSON here, on the request's task: the writer thread
        // only appends.
        let entries = events
            .into_iter()
            .map(|event| entry(&self.registry, source, &event))
            .collect();
        let (reply, answer) = oneshot::channel();
        let command = Command::Accept {
            source: source.name.clone(),
            entries,
            reply,
        };
        sender.send(command).await.map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }

    /// Not ready while the last commit failed (a full disk, say): accepting is still
    /// tried, and the first commit that succeeds makes the store ready again.
    fn ready(&self) -> bool {
        self.sender().is_some()
            && self.refuse().is_none()
            && !self.shared.commits_failing.load(Ordering::Relaxed)
    }
}
