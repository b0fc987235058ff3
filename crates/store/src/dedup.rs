//! The de-dup window, answered from memory.
//!
//! Every accepted `messageId` is written to the `seen_ids` table in the same transaction
//! as its event (so a crash can never keep one without the other), and its 64-bit key is
//! kept in a set here. A commit writes one row per source holding all its ids (a JSON
//! array, in arrival order): a row per id cost a fifth of the writer's work on batches.
//! Looking up a B-tree keyed by messageId instead would dirty a random page per event,
//! which is what bounded ingest before. The set costs about 20 bytes per
//! remembered id; it is rebuilt from the table at start-up.
//!
//! Keys come from a hasher seeded at random per process, so nobody can craft a messageId
//! that collides with another on purpose; by chance, with a million ids remembered, a new
//! id is taken for a duplicate with odds of about 1 in 10^13.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use rusqlite::{params, Connection, Row};

/// About this many old ids are dropped per pruning round, so one round stays short.
const PRUNE_BATCH: usize = 50_000;

/// Rows read per pruning round (each holds one commit's ids of one source).
const PRUNE_ROWS: i64 = 5_000;

pub(crate) struct SeenIndex {
    keys: HashSet<u64>,
    hasher: RandomState,
    /// Keys added by the open transaction: removed again if it rolls back.
    uncommitted: Vec<u64>,
    /// When the oldest remembered id was seen (`i64::MIN`: not known, prune to find out).
    oldest_ms: Option<i64>,
}

impl SeenIndex {
    /// Reads every remembered id from the `seen` table.
    pub fn load(conn: &Connection) -> rusqlite::Result<SeenIndex> {
        let mut index = SeenIndex {
            keys: HashSet::new(),
            hasher: RandomState::new(),
            uncommitted: Vec::new(),
            oldest_ms: None,
        };
        let mut stmt =
            conn.prepare("SELECT source, seen_at_ms, message_ids FROM seen_ids ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let source = row.get_ref(0)?.as_str()?;
            for id in read_ids(row, 2)? {
                let key = index.key(source, &id);
                index.keys.insert(key);
            }
            index.oldest_ms.get_or_insert(row.get(1)?);
        }
        Ok(index)
    }

    pub fn key(&self, source: &str, message_id: &str) -> u64 {
        self.hasher.hash_one((source, message_id))
    }

    pub fn contains(&self, key: u64) -> bool {
        self.keys.contains(&key)
    }

    /// Remembers a key within the open transaction.
    pub fn insert(&mut self, key: u64, now_ms: i64) {
        if self.keys.insert(key) {
            self.uncommitted.push(key);
        }
        self.oldest_ms.get_or_insert(now_ms);
    }

    /// Some remembered id was seen before `cutoff_ms`, or more than `max_ids` are kept:
    /// prune before the next lookup, so the window is exact.
    pub fn needs_pruning(&self, cutoff_ms: i64, max_ids: usize) -> bool {
        self.keys.len() > max_ids || self.oldest_ms.is_some_and(|oldest| oldest < cutoff_ms)
    }

    /// The transaction committed: its keys stay.
    pub fn commit(&mut self) {
        self.uncommitted.clear();
    }

    /// The transaction rolled back: forget the keys it added.
    pub fn rollback(&mut self) {
        for key in self.uncommitted.drain(..) {
            self.keys.remove(&key);
        }
    }

    /// Forgets ids seen before `cutoff_ms`, and the oldest ones beyond `max_ids`, in
    /// arrival order (a row is cut short when only part of it is beyond `max_ids`).
    /// Returns how many were dropped.
    pub fn prune(
        &mut self,
        conn: &Connection,
        cutoff_ms: i64,
        max_ids: usize,
    ) -> rusqlite::Result<usize> {
        let mut excess = self.keys.len().saturating_sub(max_ids);
        let mut last_whole = None;
        let mut cut: Option<(i64, Vec<String>)> = None;
        let mut dropped = Vec::new();
        let mut kept_at = None;
        let mut read = 0;
        let mut stopped = false;
        {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, source, seen_at_ms, message_ids FROM seen_ids ORDER BY seq LIMIT ?1",
            )?;
            let mut rows = stmt.query([PRUNE_ROWS])?;
            while let Some(row) = rows.next()? {
                read += 1;
                let seen_at_ms: i64 = row.get(2)?;
                if excess == 0 && seen_at_ms >= cutoff_ms {
                    kept_at = Some(seen_at_ms);
                    break;
                }
                let seq: i64 = row.get(0)?;
                let source = row.get_ref(1)?.as_str()?;
                let mut ids = read_ids(row, 3)?;
                let drop = if seen_at_ms < cutoff_ms {
                    ids.len()
                } else {
                    excess.min(ids.len())
                };
                excess = excess.saturating_sub(drop);
                dropped.extend(ids.drain(..drop).map(|id| self.key(source, &id)));
                if !ids.is_empty() {
                    kept_at = Some(seen_at_ms);
                    cut = Some((seq, ids));
                    break;
                }
                last_whole = Some(seq);
                if dropped.len() >= PRUNE_BATCH {
                    stopped = true;
                    break;
                }
            }
        }
        // A round that stopped early means more may be due: not known until the next one.
        self.oldest_ms = match kept_at {
            Some(at) => Some(at),
            None if stopped || read == PRUNE_ROWS => Some(i64::MIN),
            None => None,
        };
        if let Some(last) = last_whole {
            conn.execute("DELETE FROM seen_ids WHERE seq <= ?1", params![last])?;
        }
        if let Some((seq, rest)) = cut {
            conn.execute(
                "UPDATE seen_ids SET message_ids = ?2 WHERE seq = ?1",
                params![seq, ids_text(&rest)],
            )?;
        }
        for key in &dropped {
            self.keys.remove(key);
        }
        Ok(dropped.len())
    }
}

/// Writes one commit's ids of one source as one row.
pub(crate) fn write_ids(
    conn: &Connection,
    source: &str,
    seen_at_ms: i64,
    ids: &[String],
) -> rusqlite::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO seen_ids (source, seen_at_ms, message_ids) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![source, seen_at_ms, ids_text(ids)])?;
    Ok(())
}

fn ids_text(ids: &[String]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(ids).unwrap_or_default()
}

fn read_ids(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<String>> {
    let text = row.get_ref(index)?.as_str()?;
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}
