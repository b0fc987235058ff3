//! Dead-letter maintenance for `inmoment-destination queue`, on a connection of its own so
//! it works while the server runs (WAL plus a busy timeout share the file).

use std::path::Path;

use rusqlite::{params, Connection};

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
