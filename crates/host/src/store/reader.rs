//! Reads for delivery and inspection, on their own connection (WAL lets them run while
//! the writer commits).

use std::path::Path;

use inmoment_core::InMomentCall;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::schema;

/// A stored call waiting for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    pub id: i64,
    pub source: String,
    pub user_key: String,
    pub call: InMomentCall,
    pub accepted_at_ms: i64,
    pub attempts: i64,
    pub next_attempt_ms: i64,
}

/// A pending call as the delivery scan reads it. The body stays text until the call is
/// started: a busy user's rows are only skipped, and parsing them was most of the scan.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRow {
    pub id: i64,
    pub source: String,
    pub user_key: String,
    body: String,
    accepted_at_ms: i64,
    attempts: i64,
    next_attempt_ms: i64,
}

impl PendingRow {
    pub fn into_call(self) -> Result<StoredCall, serde_json::Error> {
        Ok(StoredCall {
            call: serde_json::from_str(&self.body)?,
            id: self.id,
            source: self.source,
            user_key: self.user_key,
            accepted_at_ms: self.accepted_at_ms,
            attempts: self.attempts,
            next_attempt_ms: self.next_attempt_ms,
        })
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
}

/// Queue figures for one source (write key name).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceStats {
    pub source: String,
    pub pending: i64,
    pub in_retry: i64,
    pub dead: i64,
    /// Age in seconds of the oldest pending call.
    pub oldest_pending_secs: Option<i64>,
}

/// A read connection to the store.
pub struct Reader {
    conn: Connection,
}

const CALL_COLUMNS: &str = "id, source, user_key, body, accepted_at_ms, attempts, next_attempt_ms";

impl Reader {
    pub fn open(path: &Path) -> rusqlite::Result<Reader> {
        let conn = Connection::open(path)?;
        schema::configure(&conn)?;
        Ok(Reader { conn })
    }

    /// Pending calls with an id above `cursor`, oldest first.
    pub fn scan_after(&self, cursor: i64, limit: usize) -> rusqlite::Result<Vec<PendingRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![cursor, limit as i64], pending_row)?;
        rows.collect()
    }

    /// A user's oldest pending call with an id in `from..=upto`: a range scan by id, as
    /// the store keeps no per-user index.
    pub fn next_of_user(
        &self,
        source: &str,
        user_key: &str,
        from: i64,
        upto: i64,
    ) -> rusqlite::Result<Option<StoredCall>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE id >= ?1 AND id <= ?2 AND source = ?3 AND user_key = ?4 ORDER BY id LIMIT 1"
        ))?;
        let row = stmt
            .query_row(params![from, upto, source, user_key], pending_row)
            .optional()?;
        stored_call(row)
    }

    /// The oldest pending call of one user: the only one of theirs that may be sent.
    /// Scans every pending call: for inspection and tests, not for delivery.
    pub fn head_of(&self, source: &str, user_key: &str) -> rusqlite::Result<Option<StoredCall>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE source = ?1 AND user_key = ?2 ORDER BY id LIMIT 1"
        ))?;
        let row = stmt
            .query_row(params![source, user_key], pending_row)
            .optional()?;
        stored_call(row)
    }

    pub fn stats(&self, now_ms: i64) -> rusqlite::Result<Vec<SourceStats>> {
        let mut by_source: std::collections::BTreeMap<String, SourceStats> = Default::default();
        let mut stmt = self.conn.prepare(
            "SELECT source, COUNT(*), SUM(attempts > 0 OR next_attempt_ms > ?1), MIN(accepted_at_ms) FROM calls GROUP BY source",
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
            "SELECT id, source, user_key, message_id, kind, attempts, accepted_at_ms, died_at_ms, status, reason, body
             FROM dead_letters ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |row| {
            let body: String = row.get(10)?;
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
            })
        })?;
        rows.collect()
    }
}

fn pending_row(row: &Row<'_>) -> rusqlite::Result<PendingRow> {
    Ok(PendingRow {
        id: row.get(0)?,
        source: row.get(1)?,
        user_key: row.get(2)?,
        body: row.get(3)?,
        accepted_at_ms: row.get(4)?,
        attempts: row.get(5)?,
        next_attempt_ms: row.get(6)?,
    })
}

/// One call to start now: a body that does not parse is an error.
fn stored_call(row: Option<PendingRow>) -> rusqlite::Result<Option<StoredCall>> {
    row.map(|row| {
        row.into_call()
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
    })
    .transpose()
}
