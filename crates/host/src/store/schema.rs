//! Tables of the store. `user_version` records the schema so later versions can migrate.

use rusqlite::Connection;

pub const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT    NOT NULL,
    user_key        TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    accepted_at_ms  INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX IF NOT EXISTS calls_by_user ON calls (source, user_key, id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id              INTEGER PRIMARY KEY,
    source          TEXT    NOT NULL,
    user_key        TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    accepted_at_ms  INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    died_at_ms      INTEGER NOT NULL,
    status          INTEGER,
    reason          TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS user_state (
    source   TEXT NOT NULL,
    user_key TEXT NOT NULL,
    state    TEXT NOT NULL,
    PRIMARY KEY (source, user_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (
    source     TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    seen_at_ms INTEGER NOT NULL,
    PRIMARY KEY (source, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (seen_at_ms);
";

/// Opens a connection with the durability settings every connection must share.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 16 MiB of page cache per connection: recent users' B-tree pages stay in memory
    // while the process stays small with a large backlog.
    conn.pragma_update(None, "cache_size", -16384)?;
    // Keep the log file from staying at its high-water mark after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Creates the tables when missing and records the schema version.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}
