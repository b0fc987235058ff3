//! The single writer: owns the write connection and turns queued requests into group
//! commits. Keeping every write on one thread also serializes each user's state updates,
//! so two concurrent requests for one user cannot both read the same old state.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inmoment_core::{map_event_owned, Event, Registry, UserState};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::dedup::SeenIndex;
use super::schema;
use crate::accept::{AcceptError, EventOutcome, Source};

/// Where and how the store keeps events.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// A repeated `messageId` from one source within this window is not stored again.
    pub dedup_window: Duration,
    /// ...unless more than this many newer ids came since (memory: ~20 bytes per id).
    pub dedup_max_ids: usize,
    /// Above this many calls waiting for delivery, ingest answers 503 (backpressure).
    pub max_pending_calls: u64,
    /// Above this database size, ingest answers 503.
    pub max_bytes: Option<u64>,
    /// At most this many requests share one commit.
    pub group_max: usize,
    /// Users whose state is kept in memory between their events.
    pub state_cache_entries: usize,
    /// A hard cap on the database file in pages (SQLite's `max_page_count`): writes past
    /// it fail exactly as on a full disk, which is how tests make one.
    pub max_page_count: Option<i64>,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            dedup_window: Duration::from_secs(24 * 3600),
            dedup_max_ids: 2_000_000,
            max_pending_calls: 1_000_000,
            max_bytes: None,
            group_max: 256,
            state_cache_entries: 20_000,
            max_page_count: None,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("inmoment.sqlite3")
    }
}

/// Why the store could not be opened; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data_dir `{path}`: cannot create or write it: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data_dir `{path}`: cannot open the database: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

pub(crate) type AcceptReply = oneshot::Sender<Result<Vec<EventOutcome>, AcceptError>>;

/// Work for the writer thread.
pub(crate) enum Command {
    Accept {
        source: Source,
        events: Vec<Event>,
        reply: AcceptReply,
    },
    /// Delivery results; the reply fires once they are committed.
    Settle {
        updates: Vec<Settlement>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What happened to one stored call after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// InMoment answered success: the call leaves the store.
    Delivered { id: i64 },
    /// Try again at `next_attempt_ms`; the attempt count and last error are kept so a
    /// restart resumes the schedule instead of starting over.
    Retry {
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
        error: String,
    },
    /// Failed for good or out of retries: moved to the dead letters with the reason.
    Dead {
        id: i64,
        attempts: i64,
        status: Option<u16>,
        reason: String,
    },
}

/// Counters shared between the writer and the handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// As committed in the store's `counts` (never below zero); only the writer sets it.
    pub pending_calls: AtomicU64,
    pub over_size: AtomicBool,
    /// The last commit failed (e.g. the disk is full); the next success clears it.
    pub commits_failing: AtomicBool,
    /// Woken after a commit that stored new calls, so delivery need not poll.
    pub new_work: tokio::sync::Notify,
}

impl Shared {
    fn set_pending(&self, pending: i64) {
        self.pending_calls
            .store(u64::try_from(pending).unwrap_or(0), Ordering::Relaxed);
    }
}

pub(crate) struct Writer {
    conn: Connection,
    registry: Registry,
    config: StoreConfig,
    shared: Arc<Shared>,
    seen: SeenIndex,
    /// Recent users' stored state (see [`stored_part`]), as in the database.
    states: HashMap<(String, String), UserState>,
    last_housekeeping: Instant,
}

/// How often the database size is checked.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

impl Writer {
    pub fn new(
        conn: Connection,
        registry: Registry,
        config: StoreConfig,
        shared: Arc<Shared>,
        seen: SeenIndex,
    ) -> Writer {
        Writer {
            conn,
            registry,
            config,
            shared,
            seen,
            states: HashMap::new(),
            last_housekeeping: Instant::now(),
        }
    }

    /// Runs until every sender is gone; each loop commits one group.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut group = vec![first];
            while group.len() < self.config.group_max {
                match commands.try_recv() {
                    Ok(command) => group.push(command),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
            if self.last_housekeeping.elapsed() >= HOUSEKEEPING_EVERY {
                self.housekeeping();
            }
        }
    }

    fn commit_group(&mut self, mut group: Vec<Command>) {
        let now_ms = now_ms();
        let mut results = Vec::with_capacity(group.len());
        let mut new_calls: u64 = 0;
        let mut settled: u64 = 0;
        let mut pending: i64 = 0;
        let cutoff_ms = now_ms.saturating_sub(self.window_ms());
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            let max_ids = self.config.dedup_max_ids;
            if self.seen.needs_pruning(cutoff_ms, max_ids) {
                self.seen.prune(&tx, cutoff_ms, max_ids)?;
            }
            for command in &mut group {
                match command {
                    Command::Accept { source, events, .. } => {
                        let mut memory = Memory {
                            seen: &mut self.seen,
                            states: &mut self.states,
                        };
                        let events = std::mem::take(events);
                        let (outcomes, calls) =
                            accept(&tx, &self.registry, &mut memory, source, events, now_ms)?;
                        new_calls += calls;
                        results.push(Some(outcomes));
                    }
                    Command::Settle { updates, .. } => {
                        settled += settle(&tx, updates, now_ms)?;
                        results.push(None);
                    }
                }
            }
            let delta = i64::try_from(new_calls).unwrap_or(i64::MAX)
                - i64::try_from(settled).unwrap_or(i64::MAX);
            pending = schema::add_pending(&tx, delta)?;
            tx.commit()
        })();
        match outcome {
            Ok(()) => {
                self.seen.commit();
                self.shared.set_pending(pending);
                self.shared.commits_failing.store(false, Ordering::Relaxed);
                if new_calls > 0 {
                    self.shared.new_work.notify_one();
                }
                for (command, outcomes) in group.into_iter().zip(results) {
                    match command {
                        Command::Accept { reply, .. } => {
                            let _ = reply.send(Ok(outcomes.unwrap_or_default()));
                        }
                        Command::Settle { reply, .. } => {
                            let _ = reply.send(Ok(()));
                        }
                    }
                }
            }
            Err(error) => {
                self.shared.commits_failing.store(true, Ordering::Relaxed);
                tracing::error!(%error, "Store commit failed; the group is refused.");
                // The transaction rolled back: memory may be ahead of the database.
                self.states.clear();
                self.seen.rollback();
                for command in group {
                    match command {
                        Command::Accept { reply, .. } => {
                            let _ = reply.send(Err(AcceptError::Unavailable {
                                reason: format!("the store could not commit: {error}"),
                                retry_after: Duration::from_secs(5),
                            }));
                        }
                        Command::Settle { reply, .. } => {
                            let _ = reply.send(Err(error.to_string()));
                        }
                    }
                }
            }
        }
        if self.states.len() > self.config.state_cache_entries {
            self.states.clear();
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.config.dedup_window.as_millis()).unwrap_or(i64::MAX)
    }

    fn housekeeping(&mut self) {
        self.last_housekeeping = Instant::now();
        // Another process (`queue dead replay`) may have changed the count.
        match schema::pending(&self.conn) {
            Ok(pending) => self.shared.set_pending(pending),
            Err(error) => tracing::warn!(%error, "Could not read the pending count."),
        }
        if let Some(max) = self.config.max_bytes {
            let size: rusqlite::Result<i64> = self.conn.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get(0),
            );
            if let Ok(size) = size {
                self.shared
                    .over_size
                    .store(u64::try_from(size).unwrap_or(0) > max, Ordering::Relaxed);
            }
        }
    }
}

/// The writer's memory that one transaction updates along with the database.
struct Memory<'a> {
    seen: &'a mut SeenIndex,
    states: &'a mut HashMap<(String, String), UserState>,
}

/// Accepts one request's events inside the group's transaction.
fn accept(
    tx: &Transaction<'_>,
    registry: &Registry,
    memory: &mut Memory<'_>,
    source: &Source,
    events: Vec<Event>,
    now_ms: i64,
) -> rusqlite::Result<(Vec<EventOutcome>, u64)> {
    let mut outcomes = Vec::with_capacity(events.len());
    let mut new_calls = 0;
    // Prepared once per request, and one buffer for every call's JSON.
    let mut insert_call = tx.prepare_cached(
        "INSERT INTO calls (source, user_key, message_id, kind, body, accepted_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut insert_seen =
        tx.prepare_cached("INSERT INTO seen (source, message_id, seen_at_ms) VALUES (?1, ?2, ?3)")?;
    let mut body = Vec::with_capacity(1024);
    for event in events {
        let message_id = event.message_id.clone().unwrap_or_default();
        let seen_key = memory.seen.key(&source.name, &message_id);
        if memory.seen.contains(seen_key) {
            outcomes.push(EventOutcome::Duplicate);
            continue;
        }
        let key = (source.name.clone(), event.user_key().to_string());
        let stored = match memory.states.remove(&key) {
            Some(state) => state,
            None => load_state(tx, &key.0, &key.1)?,
        };
        // The event is given away: the handler moves its properties instead of copying.
        let output = match map_event_owned(registry, event, stored.clone(), &source.settings) {
            Ok(output) => output,
            Err(error) => {
                memory.states.insert(key, stored);
                outcomes.push(EventOutcome::Rejected(error));
                continue;
            }
        };
        for call in &output.calls {
            body.clear();
            serde_json::to_writer(&mut body, call).map_err(json_error)?;
            let text = std::str::from_utf8(&body)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            insert_call.execute(params![
                source.name,
                key.1,
                message_id,
                call.kind(),
                text,
                now_ms
            ])?;
        }
        let state = stored_part(output.state);
        if state != stored {
            let text = serde_json::to_string(&state).map_err(json_error)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO user_state (source, user_key, state) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![source.name, key.1, text])?;
        }
        insert_seen.execute(params![source.name, message_id, now_ms])?;
        memory.seen.insert(seen_key, now_ms);
        new_calls += output.calls.len() as u64;
        outcomes.push(EventOutcome::Stored {
            calls: output.calls.len(),
            skipped: output.skipped,
        });
        memory.states.insert(key, state);
    }
    Ok((outcomes, new_calls))
}

/// What a user's next event needs of their state and cannot derive. The event name,
/// properties and page info are rewritten by every event before use, and
/// `segment_user_id` is set again from the event's ids (identify always, track and page
/// when missing), so storing them would only turn each track into a random write.
fn stored_part(state: UserState) -> UserState {
    UserState {
        event_name: None,
        properties: Default::default(),
        page_info: None,
        segment_user_id: None,
        ..state
    }
}

/// Applies delivery results; returns how many calls left the pending set.
fn settle(tx: &Transaction<'_>, updates: &[Settlement], now_ms: i64) -> rusqlite::Result<u64> {
    let mut left = 0;
    for update in updates {
        match update {
            Settlement::Delivered { id } => {
                left += tx
                    .prepare_cached("DELETE FROM calls WHERE id = ?1")?
                    .execute([id])? as u64;
            }
            Settlement::Retry {
                id,
                attempts,
                next_attempt_ms,
                error,
            } => {
                tx.prepare_cached(
                    "UPDATE calls SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
                )?
                .execute(params![id, attempts, next_attempt_ms, error])?;
            }
            Settlement::Dead {
                id,
                attempts,
                status,
                reason,
            } => {
                let moved = tx
                    .prepare_cached(
                        "INSERT INTO dead_letters (id, source, user_key, message_id, kind, body, accepted_at_ms, attempts, died_at_ms, status, reason)
                         SELECT id, source, user_key, message_id, kind, body, accepted_at_ms, ?2, ?3, ?4, ?5 FROM calls WHERE id = ?1",
                    )?
                    .execute(params![id, attempts, now_ms, status, reason])?;
                if moved > 0 {
                    left += tx
                        .prepare_cached("DELETE FROM calls WHERE id = ?1")?
                        .execute([id])? as u64;
                }
            }
        }
    }
    Ok(left)
}

fn load_state(tx: &Transaction<'_>, source: &str, user_key: &str) -> rusqlite::Result<UserState> {
    let text: Option<String> = tx
        .prepare_cached("SELECT state FROM user_state WHERE source = ?1 AND user_key = ?2")?
        .query_row(params![source, user_key], |row| row.get(0))
        .optional()?;
    match text {
        Some(text) => serde_json::from_str(&text)
            .map(stored_part)
            .map_err(json_error),
        None => Ok(UserState::default()),
    }
}

fn json_error(error: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(error))
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
