//! Dead-letter maintenance for `inmoment-destination queue`, on a connection of its own so
//! it works while the server runs (WAL plus a busy timeout share the file).

use std::path::Path;

use inmoment_core::UserState;
use rusqlite::{params, Connection};

use super::reader::read_user_state;
use super::schema;

/// Which dead letters to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Ids(Vec<i64>),
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub moved: usize,
    /// Selected ids with no dead letter (never one, or already replayed or purged).
    pub unknown: Vec<i64>,
}

/// A delivered event, as `queue remap` compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredEvent {
    pub id: i64,
    pub source: String,
    pub user_key: String,
    pub message_id: String,
    pub accepted_at_ms: i64,
    /// The raw event's JSON.
    pub event: String,
    /// The calls InMoment accepted, a JSON array.
    pub calls: String,
}

/// A dead letter with what `queue remap --dead` needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadEvent {
    pub id: i64,
    pub source: String,
    pub user_key: String,
    pub message_id: String,
    /// The dead call's kind (`unmapped`: the event could not be mapped).
    pub kind: String,
    /// The dead call's JSON (the event's, for `unmapped`).
    pub call: String,
    /// The event the call came from; none for a call replayed from version 3.
    pub event: Option<String>,
}

/// Where a remapped event comes from; that record is removed when it is queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemapFrom {
    Delivered(i64),
    Dead(i64),
}

/// An event to queue again, remapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    pub from: RemapFrom,
    pub source: String,
    pub user_key: String,
    pub message_id: String,
    pub event: String,
    /// The same event is queued already by this remap (another of its calls died too):
    /// only its record is removed.
    pub queued_already: bool,
}

pub struct Admin {
    conn: Connection,
}

impl Admin {
    pub fn open(path: &Path) -> rusqlite::Result<Admin> {
        let conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::create(&conn)?;
        Ok(Admin { conn })
    }

    /// Puts dead letters back to pending (attempts reset, due now), after whatever the
    /// user has pending already: a dead call is sent again as it is (with the Account
    /// Token configured now), an event that could not be mapped is mapped again. Returns
    /// how many moved.
    pub fn replay(&mut self, selection: &Selection) -> rusqlite::Result<usize> {
        Ok(self.replay_reporting(selection)?.moved)
    }

    /// As [`Admin::replay`], also naming the selected ids that are no dead letter.
    pub fn replay_reporting(&mut self, selection: &Selection) -> rusqlite::Result<Replayed> {
        let tx = self.conn.transaction()?;
        let ids = selected_ids(&tx, selection)?;
        let mut moved = 0;
        let mut unknown = Vec::new();
        for id in ids {
            let inserted = tx.execute(
                "INSERT INTO journal (source, user_key, message_id, kind, body, accepted_at_ms)
                 SELECT source, user_key, message_id,
                        CASE WHEN kind = 'unmapped' THEN 'event' ELSE 'call' END,
                        CASE WHEN kind = 'unmapped' THEN event ELSE body END,
                        accepted_at_ms
                 FROM dead_letters WHERE id = ?1 AND (kind <> 'unmapped' OR event IS NOT NULL)",
                [id],
            )?;
            if inserted == 0 {
                unknown.push(id);
                continue;
            }
            moved += inserted;
            tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
        }
        schema::add_pending(&tx, i64::try_from(moved).unwrap_or(i64::MAX))?;
        tx.commit()?;
        Ok(Replayed { moved, unknown })
    }

    /// Deletes dead letters that died before `cutoff_ms`. Returns how many went.
    pub fn purge_older_than(&mut self, cutoff_ms: i64) -> rusqlite::Result<usize> {
        self.conn.execute(
            "DELETE FROM dead_letters WHERE died_at_ms < ?1",
            params![cutoff_ms],
        )
    }
}

impl Admin {
    /// Up to `limit` delivered events with an id above `after_id`, accepted in
    /// `since_ms..until_ms` (of `source` when given), in acceptance order: a page, so a
    /// day of events is never held in memory at once. Reads by id (the primary key); the
    /// time filter needs no index.
    pub fn delivered_page(
        &self,
        after_id: i64,
        since_ms: i64,
        until_ms: i64,
        source: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<Vec<DeliveredEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, source, user_key, message_id, accepted_at_ms, event, calls FROM delivered
             WHERE id > ?1 AND accepted_at_ms >= ?2 AND accepted_at_ms < ?3
                   AND (?4 IS NULL OR source = ?4)
             ORDER BY id LIMIT ?5",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![after_id, since_ms, until_ms, source, limit],
            |row| {
                Ok(DeliveredEvent {
                    id: row.get(0)?,
                    source: row.get(1)?,
                    user_key: row.get(2)?,
                    message_id: row.get(3)?,
                    accepted_at_ms: row.get(4)?,
                    event: row.get(5)?,
                    calls: row.get(6)?,
                })
            },
        )?;
        rows.collect()
    }

    /// The ids a selection names (every dead letter's, oldest first, for `All`).
    pub fn dead_letter_ids(&self, selection: &Selection) -> rusqlite::Result<Vec<i64>> {
        selected_ids(&self.conn, selection)
    }

    /// The selected dead letters, oldest first, and the selected ids that are none.
    pub fn dead_events(
        &self,
        selection: &Selection,
    ) -> rusqlite::Result<(Vec<DeadEvent>, Vec<i64>)> {
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, source, user_key, message_id, kind, body, event FROM dead_letters WHERE id = ?1",
        )?;
        for id in selected_ids(&self.conn, selection)? {
            let mut rows = stmt.query([id])?;
            match rows.next()? {
                Some(row) => found.push(DeadEvent {
                    id: row.get(0)?,
                    source: row.get(1)?,
                    user_key: row.get(2)?,
                    message_id: row.get(3)?,
                    kind: row.get(4)?,
                    call: row.get(5)?,
                    event: row.get(6)?,
                }),
                None => unknown.push(id),
            }
        }
        Ok((found, unknown))
    }

    /// A user's state now (what delivery would map their next event with).
    pub fn user_state(&self, source: &str, user_key: &str) -> rusqlite::Result<UserState> {
        read_user_state(&self.conn, source, user_key)
    }

    /// Appends `events` to the journal in order, as new events marked `remapped` (they
    /// bypass the messageId de-dup, which only ingest applies), after whatever their users
    /// have pending, and removes the records they came from, in one transaction. They
    /// count as accepted now, so their retries get the whole `retry_max_secs`. Returns how
    /// many were queued (a record already gone is skipped).
    pub fn requeue(&mut self, events: &[Requeue]) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut queued = 0;
        for event in events {
            let removed = match event.from {
                RemapFrom::Delivered(id) => {
                    tx.execute("DELETE FROM delivered WHERE id = ?1", [id])?
                }
                RemapFrom::Dead(id) => {
                    tx.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?
                }
            };
            if removed == 0 || event.queued_already {
                continue;
            }
            tx.execute(
                "INSERT INTO journal (source, user_key, message_id, kind, body, accepted_at_ms, remapped)
                 VALUES (?1, ?2, ?3, 'event', ?4, ?5, 1)",
                params![
                    event.source,
                    event.user_key,
                    event.message_id,
                    event.event,
                    now_ms
                ],
            )?;
            queued += 1;
        }
        schema::add_pending(&tx, i64::try_from(queued).unwrap_or(i64::MAX))?;
        tx.commit()?;
        Ok(queued)
    }
}

fn selected_ids(conn: &Connection, selection: &Selection) -> rusqlite::Result<Vec<i64>> {
    match selection {
        Selection::Ids(ids) => Ok(ids.clone()),
        Selection::All => {
            let mut stmt = conn.prepare("SELECT id FROM dead_letters ORDER BY id")?;
            let ids = stmt.query_map([], |row| row.get(0))?;
            ids.collect()
        }
    }
}
