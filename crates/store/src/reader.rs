//! Reads for delivery and inspection, on their own connection (WAL lets them run while
//! the writer commits).

use std::path::Path;

use inmoment_core::UserState;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::schema;

/// A journal row waiting for delivery: an accepted event (`kind` `event`, `body` its JSON)
/// or a call replayed from a dead letter (`kind` `call`). The body stays text until the
/// row is started: a busy user's rows are only skipped, and parsing them was most of the
/// scan.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRow {
    pub id: i64,
    pub source: String,
    pub user_key: String,
    pub message_id: String,
    pub kind: String,
    pub body: String,
    pub accepted_at_ms: i64,
    /// The row's calls already settled (delivered or dead).
    pub done_calls: i64,
    /// Attempts of the next call so far, and when it may be tried again.
    pub attempts: i64,
    pub next_attempt_ms: i64,
}

impl PendingRow {
    /// Whether the row is a replayed call rather than an event to map.
    pub fn is_call(&self) -> bool {
        self.kind == "call"
    }
}

/// One dead letter, as `queue dead list` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub source: String,
    pub user_key: String,
    #[serde(rename = "messageId")]
    pub message_id: String,
    pub kind: String,
    pub attempts: i64,
    pub accepted_at_ms: i64,
    pub died_at_ms: i64,
    pub status: Option<u16>,
    pub reason: String,
    pub call: serde_json::Value,
    /// The event the call came from (for `queue remap`); none for a replayed call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
}

/// Queue figures for one source (write key name).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceStats {
    pub source: String,
    pub pending: i64,
    pub in_retry: i64,
    pub dead: i64,
    /// Age in seconds of the oldest pending event.
    pub oldest_pending_secs: Option<i64>,
}

/// A read connection to the store.
pub struct Reader {
    conn: Connection,
}

const COLUMNS: &str =
    "id, source, user_key, message_id, kind, body, accepted_at_ms, done_calls, attempts, next_attempt_ms";

impl Reader {
    pub fn open(path: &Path) -> rusqlite::Result<Reader> {
        let conn = Connection::open(path)?;
        schema::configure(&conn)?;
        Ok(Reader { conn })
    }

    /// Pending rows with an id above `cursor`, oldest first.
    pub fn scan_after(&self, cursor: i64, limit: usize) -> rusqlite::Result<Vec<PendingRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM journal WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![cursor, limit as i64], pending_row)?;
        rows.collect()
    }

    /// A user's oldest pending row with an id in `from..=upto`: a range scan by id, as
    /// the store keeps no per-user index.
    pub fn next_of_user(
        &self,
        source: &str,
        user_key: &str,
        from: i64,
        upto: i64,
    ) -> rusqlite::Result<Option<PendingRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM journal WHERE id >= ?1 AND id <= ?2 AND source = ?3 AND user_key = ?4 ORDER BY id LIMIT 1"
        ))?;
        stmt.query_row(params![from, upto, source, user_key], pending_row)
            .optional()
    }

    /// The oldest pending row of one user: the only one of theirs that may be delivered.
    /// Scans every pending row: for inspection and tests, not for delivery.
    pub fn head_of(&self, source: &str, user_key: &str) -> rusqlite::Result<Option<PendingRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM journal WHERE source = ?1 AND user_key = ?2 ORDER BY id LIMIT 1"
        ))?;
        stmt.query_row(params![source, user_key], pending_row)
            .optional()
    }

    /// A user's state as their last delivered event left it (the default for a new user).
    /// A state that does not parse (a store written by another version) counts as new.
    pub fn user_state(&self, source: &str, user_key: &str) -> rusqlite::Result<UserState> {
        read_user_state(&self.conn, source, user_key)
    }

    pub fn stats(&self, now_ms: i64) -> rusqlite::Result<Vec<SourceStats>> {
        let mut by_source: std::collections::BTreeMap<String, SourceStats> = Default::default();
        let mut stmt = self.conn.prepare(
            "SELECT source, COUNT(*), SUM(attempts > 0 OR next_attempt_ms > ?1), MIN(accepted_at_ms) FROM journal GROUP BY source",
        )?;
        let rows = stmt.query_map([now_ms], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (source, pending, in_retry, oldest) = row?;
            let entry = by_source.entry(source.clone()).or_default();
            entry.source = source;
            entry.pending = pending;
            entry.in_retry = in_retry;
            entry.oldest_pending_secs = Some((now_ms - oldest).max(0) / 1000);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT source, COUNT(*) FROM dead_letters GROUP BY source")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (source, dead) = row?;
            let entry = by_source.entry(source.clone()).or_default();
            entry.source = source;
            entry.dead = dead;
        }
        Ok(by_source.into_values().collect())
    }

    pub fn dead_letter_count(&self) -> rusqlite::Result<u64> {
        let count: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM dead_letters", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    pub fn dead_letters(&self, limit: usize) -> rusqlite::Result<Vec<DeadLetter>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, source, user_key, message_id, kind, attempts, accepted_at_ms, died_at_ms, status, reason, body, event
             FROM dead_letters ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |row| {
            let body: String = row.get(10)?;
            let event: Option<String> = row.get(11)?;
            Ok(DeadLetter {
                id: row.get(0)?,
                source: row.get(1)?,
                user_key: row.get(2)?,
                message_id: row.get(3)?,
                kind: row.get(4)?,
                attempts: row.get(5)?,
                accepted_at_ms: row.get(6)?,
                died_at_ms: row.get(7)?,
                status: row.get(8)?,
                reason: row.get(9)?,
                call: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                event: event.map(|text| {
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                }),
            })
        })?;
        rows.collect()
    }
}

/// A user's stored state on any connection (the default for a new user, or for a state
/// that does not parse: a store written by another version).
pub(crate) fn read_user_state(
    conn: &Connection,
    source: &str,
    user_key: &str,
) -> rusqlite::Result<UserState> {
    let text: Option<String> = conn
        .prepare_cached("SELECT state FROM user_state WHERE source = ?1 AND user_key = ?2")?
        .query_row(params![source, user_key], |row| row.get(0))
        .optional()?;
    Ok(text
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

fn pending_row(row: &Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok(PendingRow {
        id: row.get(0)?,
        source: row.get(1)?,
        user_key: row.get(2)?,
        message_id: row.get(3)?,
        kind: row.get(4)?,
        body: row.get(5)?,
        accepted_at_ms: row.get(6)?,
        done_calls: row.get(7)?,
        attempts: row.get(8)?,
        next_attempt_ms: row.get(9)?,
    })
}
