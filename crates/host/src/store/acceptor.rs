//! The store's side of the [`Acceptor`] contract: queue the request for the writer and
//! answer once its group is committed.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::{Event, Registry};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::dedup::SeenIndex;
use super::reader::Reader;
use super::schema;
use super::writer::{Command, Settlement, Shared, StoreConfig, StoreError, Writer};
use crate::accept::{AcceptError, Acceptor, EventOutcome, Source};

/// How many requests may wait for the writer before callers wait too.
const QUEUE_DEPTH: usize = 4096;

/// The durable store used by `serve`: accepts events (as the [`Acceptor`]), and takes
/// delivery results back.
pub struct Store {
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    shared: Arc<Shared>,
    max_pending_calls: u64,
    writer: Mutex<Option<JoinHandle<()>>>,
    database_path: PathBuf,
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

        let shared = Arc::new(Shared::default());
        shared
            .pending_calls
            .store(u64::try_from(pending).unwrap_or(0), Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let max_pending_calls = config.max_pending_calls;
        let writer = Writer::new(conn, registry, config, shared.clone(), seen);
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
            max_pending_calls,
            writer: Mutex::new(Some(handle)),
            database_path: path,
        })
    }

    /// Calls stored and not yet delivered or dead-lettered.
    pub fn pending_calls(&self) -> u64 {
        self.shared.pending_calls.load(Ordering::Relaxed)
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
    pub async fn settle(&self, updates: Vec<Settlement>) -> Result<(), String> {
        let sender = self.sender().ok_or("the store is closed")?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Command::Settle { updates, reply })
            .await
            .map_err(|_| "the store is closed".to_string())?;
        answer
            .await
            .map_err(|_| "the store is closed".to_string())?
    }

    /// Resolves after a commit that stored new calls.
    pub async fn new_work(&self) {
        self.shared.new_work.notified().await;
    }

    /// A new read connection (for delivery and inspection).
    pub fn reader(&self) -> rusqlite::Result<Reader> {
        Reader::open(&self.database_path)
    }

    fn sender(&self) -> Option<mpsc::Sender<Command>> {
        self.commands.lock().ok().and_then(|c| c.clone())
    }

    fn refuse(&self) -> Option<AcceptError> {
        let pending = self.pending_calls();
        if pending >= self.max_pending_calls {
            return Some(AcceptError::Unavailable {
                reason: format!(
                    "{pending} InMoment calls are waiting for delivery (max_pending_calls is {})",
                    self.max_pending_calls
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
        let (reply, answer) = oneshot::channel();
        let command = Command::Accept {
            source: source.clone(),
            events,
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
