//! Tables of the store. `user_version` records the schema so later versions can migrate.
//!
//! The store is a journal of accepted events: ingest appends them, delivery maps each
//! one with its user's state when it is that user's turn, sends the calls, and removes it
//! (storing the user's new state) once all its calls are settled. So a fix to the mapping
//! or the settings reaches every event not yet delivered.
//!
//! Ingest writes should append, not scatter: a row inserted at a random place in a B-tree
//! dirties a whole page per event, and under group commit that page is what the log
//! writes. So `journal` and `seen_ids` are appended in id order with no secondary index (the
//! de-dup lookup lives in memory, see `dedup.rs`; delivery finds a user's next event from
//! what its scan saw), and `user_state` is written only by delivery, when a user's state
//! changed. `delivered` (kept for `queue remap`) is appended by delivery under the journal
//! row's id and pruned from its start.

use rusqlite::Connection;

pub const VERSION: i64 = 6;

/// One row per accepted event not yet fully delivered (`kind` `event`, `body` its JSON),
/// or per call replayed from a dead letter (`kind` `call`, `body` the call's JSON).
/// `done_calls` counts the event's calls already settled, so a restart resumes after
/// them; `attempts` and `next_attempt_ms` are the schedule of the next one.
const JOURNAL: &str = "
CREATE TABLE IF NOT EXISTS journal (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT    NOT NULL,
    user_key        TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    accepted_at_ms  INTEGER NOT NULL,
    done_calls      INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_calls TEXT,
    had_dead        INTEGER NOT NULL DEFAULT 0,
    remapped        INTEGER NOT NULL DEFAULT 0
);
";

/// Events delivered (their row finished), kept `keep_delivered` for `queue remap`: the
/// raw event and the calls InMoment accepted (a JSON array). `id` is the journal row's,
/// so rows are appended nearly in order and read in acceptance order; pruned from the
/// oldest. No other index: remap reads the table whole, rarely.
const DELIVERED: &str = "
CREATE TABLE IF NOT EXISTS delivered (
    id              INTEGER PRIMARY KEY,
    source          TEXT    NOT NULL,
    user_key        TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    accepted_at_ms  INTEGER NOT NULL,
    delivered_at_ms INTEGER NOT NULL,
    event           TEXT    NOT NULL,
    calls           TEXT    NOT NULL
);
";

/// The rest; `seen_ids` holds one commit's accepted `messageId`s of one source per row
/// (`message_ids` a JSON array in arrival order, see `dedup.rs`); `dead_letters.event` keeps the event a dead call came from (for `queue
/// remap`), `body` the call itself.
const SCHEMA: &str = "
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
    reason          TEXT    NOT NULL,
    event           TEXT
);
CREATE TABLE IF NOT EXISTS user_state (
    source   TEXT NOT NULL,
    user_key TEXT NOT NULL,
    state    TEXT NOT NULL,
    PRIMARY KEY (source, user_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_ids (
    seq         INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    seen_at_ms  INTEGER NOT NULL,
    message_ids TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS counts (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO counts (name, value) VALUES ('pending', (SELECT COUNT(*) FROM journal));
";

/// Adds `delta` to the number of journal rows, in the caller's transaction, and returns
/// the new number. Every statement that inserts into or deletes from `journal` is paired
/// with one of these (a trigger would cost microseconds per row), so any process reads
/// the true count in O(1). An UPDATE and a SELECT: `RETURNING` cost three times as
/// much (SQLite runs it through a temporary table), per commit of the writer.
pub fn add_pending(conn: &Connection, delta: i64) -> rusqlite::Result<i64> {
    if delta != 0 {
        conn.prepare_cached("UPDATE counts SET value = value + ?1 WHERE name = 'pending'")?
            .execute([delta])?;
    }
    pending(conn)
}

/// The number of journal rows (events and replayed calls waiting), as last committed by
/// any process.
pub fn pending(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM counts WHERE name = 'pending'")?
        .query_row([], |row| row.get(0))
}

/// Version 4 keeps events instead of calls. Calls still pending from version 3 move to the
/// journal as replayed calls (sent as they are), in their order; the count is rebuilt.
const FROM_V3: &str = "
INSERT INTO journal (source, user_key, message_id, kind, body, accepted_at_ms, attempts, next_attempt_ms, last_error)
    SELECT source, user_key, message_id, 'call', body, accepted_at_ms, attempts, next_attempt_ms, last_error
    FROM calls ORDER BY id;
DROP TABLE calls;
DROP TABLE IF EXISTS counts;
";

/// Version 5 keeps delivered events (`delivered`) and, per journal row, the calls
/// InMoment accepted so far (`delivered_calls`), whether one of its calls died
/// (`had_dead`: such an event is remapped through its dead letter, not kept as delivered)
/// and whether `queue remap` queued it (`remapped`). Existing rows keep their data; the
/// new columns start empty.
const FROM_V4: &str = "
ALTER TABLE journal ADD COLUMN delivered_calls TEXT;
ALTER TABLE journal ADD COLUMN had_dead INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journal ADD COLUMN remapped INTEGER NOT NULL DEFAULT 0;
";

/// Version 5 kept one `seen` row per id; each becomes a row of one id, in its order.
const FROM_V5: &str = "
INSERT INTO seen_ids (source, seen_at_ms, message_ids)
    SELECT source, seen_at_ms, json_array(message_id) FROM seen ORDER BY seq;
DROP TABLE seen;
";

/// Version 1 kept `seen` as a B-tree keyed by messageId and indexed `calls` by user: both
/// random writes. The de-dup history is kept, in arrival order.
const FROM_V1: &str = "
DROP INDEX IF EXISTS calls_by_user;
DROP INDEX IF EXISTS seen_by_time;
ALTER TABLE seen RENAME TO seen_v1;
CREATE TABLE seen (
    seq        INTEGER PRIMARY KEY,
    source     TEXT    NOT NULL,
    message_id TEXT    NOT NULL,
    seen_at_ms INTEGER NOT NULL
);
INSERT INTO seen (source, message_id, seen_at_ms)
    SELECT source, message_id, seen_at_ms FROM seen_v1 ORDER BY seen_at_ms;
DROP TABLE seen_v1;
";

/// Opens a connection with the durability settings every connection must share.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // 4 MiB of page cache per connection: writes append, so only the tails of the tables
    // and recent users' state pages need to stay in memory (a larger cache only made the
    // process bigger with a large backlog; measured with `cargo xtask bench`).
    conn.pragma_update(None, "cache_size", -4096)?;
    // Keep the log file from staying at its high-water mark after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// Creates the tables when missing (migrating an older store) and records the version.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 1 {
        conn.execute_batch(&format!("BEGIN; {FROM_V1} COMMIT;"))?;
    }
    if (1..VERSION).contains(&version) && has_table(conn, "calls")? {
        conn.execute_batch(&format!("BEGIN; {JOURNAL} {FROM_V3} COMMIT;"))?;
    }
    if (1..VERSION).contains(&version)
        && has_table(conn, "journal")?
        && !has_column(conn, "journal", "remapped")?
    {
        conn.execute_batch(&format!("BEGIN; {FROM_V4} COMMIT;"))?;
    }
    conn.execute_batch(&format!("BEGIN; {JOURNAL} {SCHEMA} {DELIVERED} COMMIT;"))?;
    if has_table(conn, "seen")? {
        conn.execute_batch(&format!("BEGIN; {FROM_V5} COMMIT;"))?;
    }
    if !has_column(conn, "dead_letters", "event")? {
        conn.execute_batch("ALTER TABLE dead_letters ADD COLUMN event TEXT;")?;
    }
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

fn has_table(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get(0),
    )
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |row| row.get(0),
    )
}
