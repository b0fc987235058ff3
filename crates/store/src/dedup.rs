//! The de-dup window, answered from memory.
//!
//! Every accepted `messageId` is appended to the `seen` table in the same transaction as
//! its calls (so a crash can never keep one without the other), and its 64-bit key is kept
//! in a set here. Looking up a B-tree keyed by messageId instead would dirty a random page
//! per event, which is what bounded ingest before. The set costs about 20 bytes per
//! remembered id; it is rebuilt from the table at start-up.
//!
//! Keys come from a hasher seeded at random per process, so nobody can craft a messageId
//! that collides with another on purpose; by chance, with a million ids remembered, a new
//! id is taken for a duplicate with odds of about 1 in 10^13.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use rusqlite::{params, Connection};

/// At most this many old rows are dropped per housekeeping round, so one round stays short.
const PRUNE_BATCH: i64 = 50_000;

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
            conn.prepare("SELECT source, message_id, seen_at_ms FROM seen ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let key = index.key(row.get_ref(0)?.as_str()?, row.get_ref(1)?.as_str()?);
            index.keys.insert(key);
            index.oldest_ms.get_or_insert(row.get(2)?);
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
    /// arrival order. Returns how many were dropped.
    pub fn prune(
        &mut self,
        conn: &Connection,
        cutoff_ms: i64,
        max_ids: usize,
    ) -> rusqlite::Result<usize> {
        let mut excess = self.keys.len().saturating_sub(max_ids);
        let mut last = None;
        let mut dropped = Vec::new();
        let mut kept_at = None;
        let mut read = 0;
        {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, source, message_id, seen_at_ms FROM seen ORDER BY seq LIMIT ?1",
            )?;
            let mut rows = stmt.query([PRUNE_BATCH])?;
            while let Some(row) = rows.next()? {
                read += 1;
                let seen_at_ms: i64 = row.get(3)?;
                if excess == 0 && seen_at_ms >= cutoff_ms {
                    kept_at = Some(seen_at_ms);
                    break;
                }
                excess = excess.saturating_sub(1);
                last = Some(row.get::<_, i64>(0)?);
                dropped.push(self.key(row.get_ref(1)?.as_str()?, row.get_ref(2)?.as_str()?));
            }
        }
        // A full batch dropped means more may be due: not known until the next prune.
        self.oldest_ms = match kept_at {
            Some(at) => Some(at),
            None if read == PRUNE_BATCH => Some(i64::MIN),
            None => None,
        };
        let Some(last) = last else {
            return Ok(0);
        };
        conn.execute("DELETE FROM seen WHERE seq <= ?1", params![last])?;
        for key in &dropped {
            self.keys.remove(key);
        }
        Ok(dropped.len())
    }
}
