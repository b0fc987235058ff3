//! The single writer: owns the write connection and turns queued requests (events to
//! append, delivery results to record) into group commits, so durability costs one fsync
//! per group, not per request.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::append::Appends;
use super::dedup::{self, SeenIndex};
use super::schema;
use crate::accept::{AcceptError, EventOutcome};

/// Where and how the store keeps events.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// A repeated `messageId` from one source within this window is not stored again.
    pub dedup_window: Duration,
    /// ...unless more than this many newer ids came since (memory: ~20 bytes per id).
    pub dedup_max_ids: usize,
    /// Above this many events waiting for delivery, ingest answers 503 (backpressure).
    pub max_pending: u64,
    /// Above this database size, ingest answers 503.
    pub max_bytes: Option<u64>,
    /// At most this many requests share one commit.
    pub group_max: usize,
    /// A hard cap on the database file in pages (SQLite's `max_page_count`): writes past
    /// it fail exactly as on a full disk, which is how tests make one.
    pub max_page_count: Option<i64>,
    /// Delivered events older than this are pruned (kept until then for `queue remap`).
    pub keep_delivered: Duration,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            dedup_window: Duration::from_secs(24 * 3600),
            dedup_max_ids: 2_000_000,
            max_pending: 1_000_000,
            max_bytes: None,
            group_max: 256,
            max_page_count: None,
            keep_delivered: Duration::from_secs(24 * 3600),
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

/// One checked event of a request, ready to append: the request's task did the JSON.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Append {
        user_key: String,
        message_id: String,
        body: String,
    },
    /// Answered without storing (skipped or rejected); the answer is kept in place.
    Answered(EventOutcome),
}

/// Work for the writer thread.
pub(crate) enum Command {
    Accept {
        source: String,
        entries: Vec<Entry>,
        reply: AcceptReply,
    },
    /// Delivery results; the reply fires once they are committed.
    Settle {
        updates: Vec<Settlement>,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What delivery made of a journal row's next call.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    /// The call settled (delivered, or parked in `dead`) and the row has more calls:
    /// `done_calls` of them are settled now, and the next starts with a fresh schedule.
    Progress {
        id: i64,
        done_calls: i64,
        dead: Option<DeadCall>,
        /// The call's JSON when InMoment accepted it, kept for the `delivered` record.
        delivered: Option<String>,
    },
    /// The row's last call settled (or it had none): it leaves the journal, and the
    /// user's state after the event is stored when it changed.
    Finished {
        id: i64,
        state: Option<StateUpdate>,
        dead: Option<DeadCall>,
        /// The last call's JSON when InMoment accepted it.
        delivered: Option<String>,
    },
    /// Append `call` (an email survey decided after row `id`'s eligibility answer) as a
    /// call of the same user, after what they have pending; listed before that row's own
    /// settlement, so both commit together or not at all.
    Survey { id: i64, call: String },
    /// Try the call again at `next_attempt_ms`; the attempt count and last error are kept
    /// so a restart resumes the schedule instead of starting over.
    Retry {
        id: i64,
        attempts: i64,
        next_attempt_ms: i64,
        error: String,
    },
}

/// A call InMoment refused for good or that ran out of retries (or an event that can no
/// longer be mapped, `kind` `unmapped` with the event as `call`), for the dead letters.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadCall {
    pub kind: String,
    /// The call's JSON.
    pub call: String,
    pub attempts: i64,
    pub status: Option<u16>,
    pub reason: String,
}

/// A user's state after an event, as stored (JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    pub source: String,
    pub user_key: String,
    pub state: String,
}

/// Counters shared between the writer and the handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Journal rows as committed in the store's `counts` (never below zero); only the
    /// writer sets it.
    pub pending: AtomicU64,
    pub over_size: AtomicBool,
    /// The last commit failed (e.g. the disk is full); the next success clears it.
    pub commits_failing: AtomicBool,
    /// Woken after a commit that appended events, so delivery need not poll.
    pub new_work: tokio::sync::Notify,
    /// The pending count, sent after every successful commit (even when it is unchanged),
    /// so whoever waits for the store to settle something need not poll.
    pub committed: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    fn set_pending(&self, pending: i64) {
        self.pending
            .store(u64::try_from(pending).unwrap_or(0), Ordering::Relaxed);
    }
}

pub(crate) struct Writer {
    conn: Connection,
    config: StoreConfig,
    shared: Arc<Shared>,
    seen: SeenIndex,
    /// None until the first pass, which runs after the first commit.
    last_housekeeping: Option<Instant>,
    /// The last pruning step deleted something: more may be due.
    prune_backlog: bool,
    /// The connection commits with `synchronous = FULL` (see [`Writer::sync_for`]).
    sync_full: bool,
}

/// How often the database size is checked and old delivered events are pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// Delivered events looked at (and at most deleted) per pruning step: one short commit
/// that never holds ingest up for long. While steps delete something, every group commit
/// is followed by one more.
const PRUNE_CHUNK: i64 = 2_000;

impl Writer {
    pub fn new(
        conn: Connection,
        config: StoreConfig,
        shared: Arc<Shared>,
        seen: SeenIndex,
    ) -> Writer {
        Writer {
            conn,
            config,
            shared,
            seen,
            last_housekeeping: None,
            prune_backlog: false,
            sync_full: true,
        }
    }

    /// Runs until every sender is gone; each loop commits one group.
    pub fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut group = vec![first];
            self.gather(&mut commands, &mut group);
            self.commit_group(group);
            let due = self
                .last_housekeeping
                .is_none_or(|last| last.elapsed() >= HOUSEKEEPING_EVERY);
            if due {
                self.housekeeping();
            } else if self.prune_backlog {
                self.prune_step();
            }
        }
    }

    /// Adds what is already queued to `group`, up to `group_max`.
    fn gather(&self, commands: &mut mpsc::Receiver<Command>, group: &mut Vec<Command>) {
        while group.len() < self.config.group_max {
            match commands.try_recv() {
                Ok(command) => group.push(command),
                Err(_) => break,
            }
        }
    }

    fn commit_group(&mut self, mut group: Vec<Command>) {
        let accepts = group.iter().any(|c| matches!(c, Command::Accept { .. }));
        if let Err(error) = self.sync_for(accepts) {
            tracing::warn!(%error, "Could not set the commit's durability; it keeps the last one.");
        }
        let now_ms = now_ms();
        let mut results = Vec::with_capacity(group.len());
        let mut appended: u64 = 0;
        let mut settled: u64 = 0;
        let mut pending: i64 = 0;
        let cutoff_ms = now_ms.saturating_sub(self.window_ms());
        // The rows this commit appends and the ids it remembers (one row per source).
        let mut appends = Appends::default();
        let outcome = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            let max_ids = self.config.dedup_max_ids;
            let keep = !self.config.keep_delivered.is_zero();
            if self.seen.needs_pruning(cutoff_ms, max_ids) {
                self.seen.prune(&tx, cutoff_ms, max_ids)?;
            }
            for command in &mut group {
                match command {
                    Command::Accept {
                        source, entries, ..
                    } => {
                        let entries = std::mem::take(entries);
                        let (outcomes, count) =
                            append(&mut self.seen, source, entries, &mut appends, now_ms);
                        appended += count;
                        results.push(Some(outcomes));
                    }
                    Command::Settle { updates, .. } => {
                        // Rows keep the order of the commands that added them.
                        appends.flush(&tx, now_ms)?;
                        let (left, added) = settle(&tx, updates, now_ms, keep)?;
                        settled += left;
                        appended += added;
                        results.push(None);
                    }
                }
            }
            appends.flush(&tx, now_ms)?;
            for (source, ids) in appends.seen_ids() {
                dedup::write_ids(&tx, source, now_ms, ids)?;
            }
            let delta = i64::try_from(appended).unwrap_or(i64::MAX)
                - i64::try_from(settled).unwrap_or(i64::MAX);
            pending = schema::add_pending(&tx, delta)?;
            tx.commit()
        })();
        match outcome {
            Ok(()) => {
                self.seen.commit();
                self.shared.set_pending(pending);
                self.shared.commits_failing.store(false, Ordering::Relaxed);
                self.shared
                    .committed
                    .send_replace(u64::try_from(pending).unwrap_or(0));
                if appended > 0 {
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
    }

    /// A commit that accepts events waits for the disk (`synchronous = FULL`): a 200
    /// promises the events survive a power cut. A commit of delivery results only does
    /// not (`NORMAL`): it survives a crash of the process, and a power cut can only undo
    /// the newest results, whose calls are then sent again (never lost): the log is
    /// written in order, and the next accepting commit makes everything before it durable.
    fn sync_for(&mut self, accepts: bool) -> rusqlite::Result<()> {
        if self.sync_full != accepts {
            let level = if accepts { "FULL" } else { "NORMAL" };
            self.conn.pragma_update(None, "synchronous", level)?;
            self.sync_full = accepts;
        }
        Ok(())
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.config.dedup_window.as_millis()).unwrap_or(i64::MAX)
    }

    /// One pruning step of `delivered` (its own short transaction).
    fn prune_step(&mut self) {
        let keep = i64::try_from(self.config.keep_delivered.as_millis()).unwrap_or(i64::MAX);
        let cutoff_ms = now_ms().saturating_sub(keep);
        match prune_delivered(&self.conn, cutoff_ms) {
            // Keep going while steps delete something: more may be due behind the window.
            Ok(deleted) => self.prune_backlog = deleted > 0,
            Err(error) => {
                self.prune_backlog = false;
                tracing::warn!(%error, "Could not prune delivered events; trying again later.");
            }
        }
    }

    fn housekeeping(&mut self) {
        self.last_housekeeping = Some(Instant::now());
        self.prune_step();
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

/// De-duplicates one request's events and queues the new ones in `appends` (written by
/// its next flush, in the group's transaction); returns the outcomes in order and how
/// many rows were queued.
fn append(
    seen: &mut SeenIndex,
    source: &str,
    entries: Vec<Entry>,
    appends: &mut Appends,
    now_ms: i64,
) -> (Vec<EventOutcome>, u64) {
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut appended = 0;
    let handle = appends.source(source);
    for entry in entries {
        let (user_key, message_id, body) = match entry {
            Entry::Answered(outcome) => {
                outcomes.push(outcome);
                continue;
            }
            Entry::Append {
                user_key,
                message_id,
                body,
            } => (user_key, message_id, body),
        };
        let seen_key = seen.key(source, &message_id);
        if seen.contains(seen_key) {
            outcomes.push(EventOutcome::Duplicate);
            continue;
        }
        appends.push(handle, user_key, message_id, body);
        seen.insert(seen_key, now_ms);
        appended += 1;
        outcomes.push(EventOutcome::Stored);
    }
    (outcomes, appended)
}

/// SQL for `delivered_calls` with call `?3` (JSON from our own serializer) appended, or
/// unchanged when `?3` is NULL. The first call is wrapped as plain text: SQLite's JSON
/// functions parse and re-render both texts, which was about a sixth of the work of
/// delivering an event; later calls (rarer) still go through `json_insert`.
macro_rules! with_call {
    () => {
        "CASE WHEN ?3 IS NULL THEN delivered_calls
              WHEN delivered_calls IS NULL THEN '[' || ?3 || ']'
              ELSE json_insert(delivered_calls, '$[#]', json(?3)) END"
    };
}

/// Applies delivery results, keeping finished events in `delivered` when `keep`; returns
/// how many rows left the journal and how many were appended (email surveys).
fn settle(
    tx: &Transaction<'_>,
    updates: &[Settlement],
    now_ms: i64,
    keep: bool,
) -> rusqlite::Result<(u64, u64)> {
    let mut left = 0;
    let mut added = 0;
    for update in updates {
        match update {
            Settlement::Progress {
                id,
                done_calls,
                dead,
                delivered,
            } => {
                if let Some(dead) = dead {
                    park(tx, *id, dead, now_ms)?;
                }
                tx.prepare_cached(concat!(
                    "UPDATE journal SET done_calls = ?2, attempts = 0, next_attempt_ms = 0, last_error = NULL,
                        delivered_calls = ",
                    with_call!(),
                    ", had_dead = had_dead OR ?4 WHERE id = ?1"
                ))?
                .execute(params![id, done_calls, delivered, dead.is_some()])?;
            }
            Settlement::Finished {
                id,
                state,
                dead,
                delivered,
            } => {
                if let Some(dead) = dead {
                    park(tx, *id, dead, now_ms)?;
                }
                // An event with a dead call (or that could not be mapped) is remapped
                // through its dead letter, so it is not kept as delivered too.
                if keep && dead.is_none() {
                    keep_delivered(tx, *id, delivered.as_deref(), now_ms)?;
                }
                if let Some(update) = state {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO user_state (source, user_key, state) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![update.source, update.user_key, update.state])?;
                }
                left += tx
                    .prepare_cached("DELETE FROM journal WHERE id = ?1")?
                    .execute([id])? as u64;
            }
            Settlement::Retry {
                id,
                attempts,
                next_attempt_ms,
                error,
            } => {
                tx.prepare_cached(
                    "UPDATE journal SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
                )?
                .execute(params![id, attempts, next_attempt_ms, error])?;
            }
            Settlement::Survey { id, call } => {
                added += tx
                    .prepare_cached(
                        "INSERT INTO journal (source, user_key, message_id, kind, body, accepted_at_ms)
                         SELECT source, user_key, message_id, 'call', ?2, ?3 FROM journal WHERE id = ?1",
                    )?
                    .execute(params![id, call, now_ms])? as u64;
            }
        }
    }
    Ok((left, added))
}

/// Copies event row `id` to `delivered`, under the same id (so acceptance order), with the
/// calls InMoment accepted (`last`, the final one, if it was); replayed calls have no
/// event, and an event with a dead call has its dead letter: neither is kept.
fn keep_delivered(
    tx: &Transaction<'_>,
    id: i64,
    last: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(concat!(
        "INSERT INTO delivered (id, source, user_key, message_id, accepted_at_ms, delivered_at_ms, event, calls)
         SELECT id, source, user_key, message_id, accepted_at_ms, ?2, body, COALESCE(",
        with_call!(),
        ", '[]') FROM journal WHERE id = ?1 AND kind = 'event' AND had_dead = 0"
    ))?
    .execute(params![id, now_ms, last])?;
    Ok(())
}

/// Deletes the delivered events recorded before `cutoff_ms` among the oldest
/// [`PRUNE_CHUNK`] (by id, which follows delivery closely); returns how many went. Only
/// that window is read, so a pass costs the same however large the table is and whether
/// or not anything is due (a filter over the whole table would scan it every second).
fn prune_delivered(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM delivered WHERE id IN
            (SELECT id FROM (SELECT id, delivered_at_ms FROM delivered ORDER BY id LIMIT ?2)
             WHERE delivered_at_ms < ?1)",
    )?
    .execute(params![cutoff_ms, PRUNE_CHUNK])
}

/// Records a dead call of journal row `id`, with the event it came from.
fn park(tx: &Transaction<'_>, id: i64, dead: &DeadCall, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO dead_letters (source, user_key, message_id, kind, body, accepted_at_ms, attempts, died_at_ms, status, reason, event)
         SELECT source, user_key, message_id, ?2, ?3, accepted_at_ms, ?4, ?5, ?6, ?7, CASE WHEN kind = 'event' THEN body END
         FROM journal WHERE id = ?1",
    )?
    .execute(params![
        id,
        dead.kind,
        dead.call,
        dead.attempts,
        now_ms,
        dead.status,
        dead.reason
    ])?;
    Ok(())
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a panic is a test failure

    use super::*;
    use inmoment_testkit::TempDir;

    fn synchronous(writer: &Writer) -> i64 {
        writer
            .conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    }

    fn accept() -> Command {
        Command::Accept {
            source: "web".into(),
            entries: Vec::new(),
            reply: oneshot::channel().0,
        }
    }

    fn settle() -> Command {
        Command::Settle {
            updates: Vec::new(),
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn only_commits_that_accept_events_wait_for_the_disk() {
        let dir = TempDir::new("writer-sync");
        let config = StoreConfig::new(dir.path());
        let conn = Connection::open(config.database_path()).unwrap();
        schema::configure(&conn).unwrap();
        schema::create(&conn).unwrap();
        let seen = SeenIndex::load(&conn).unwrap();
        let mut writer = Writer::new(conn, config, Arc::new(Shared::default()), seen);
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;

        writer.commit_group(vec![settle()]);
        assert_eq!(synchronous(&writer), NORMAL, "delivery results alone");
        writer.commit_group(vec![settle(), accept()]);
        assert_eq!(
            synchronous(&writer),
            FULL,
            "a group that also accepts events"
        );
        writer.commit_group(vec![settle()]);
        assert_eq!(synchronous(&writer), NORMAL);
        writer.commit_group(vec![accept()]);
        assert_eq!(synchronous(&writer), FULL);
    }
}
