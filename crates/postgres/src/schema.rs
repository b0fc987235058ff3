//! Tables of the shared journal, created and migrated on start.
//!
//! Migrations are numbered and applied in order, each in its own transaction under an
//! advisory lock, so nodes starting together migrate once. `schema_migrations` records
//! what was applied.
//!
//! **Ids follow commit order.** A sequence hands out ids in the order transactions ask,
//! not the order they commit: a cursor over such ids would pass an event whose transaction
//! committed after a later one. So a journal id is the inserting transaction's id shifted
//! left by 20 bits, plus the row's place in it; delivery reads only ids below the oldest
//! transaction still running (`pg_snapshot_xmin`), where nothing can appear any more. A
//! long-open transaction anywhere on the cluster therefore holds delivery (not ingest)
//! back: keep `idle_in_transaction_session_timeout` set.

use deadpool_postgres::Object;

/// Rows one transaction may add to the journal (the 20 low bits of an id).
pub const ROWS_PER_TRANSACTION: usize = 1 << 20;

/// The id of the `n`th row (from 1) appended by the current transaction, in SQL.
pub const NEXT_ID: &str = "((pg_current_xact_id()::text::bigint << 20) + ";

/// Ids below this are final: every transaction that could still add one has ended.
pub const HORIZON: &str = "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 20)";

/// Taken while migrating, so two nodes starting at once do not both migrate.
const MIGRATION_LOCK: i64 = 0x696e_6d6f_6d65_6e74; // "inmoment"

const MIGRATIONS: &[(i32, &str)] = &[(1, V1)];

/// The first schema: the journal (`kind` `event` or a replayed `call`, as in the embedded
/// store), de-dup keys, users' state, dead letters, delivered events kept for remap, and
/// the partitions with their leases and the nodes that hold them.
const V1: &str = "
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE journal (
    id              bigint  PRIMARY KEY,
    partition       integer NOT NULL,
    source          text    NOT NULL,
    user_key        text    NOT NULL,
    message_id      text    NOT NULL,
    kind            text    NOT NULL,
    body            text    NOT NULL,
    accepted_at_ms  bigint  NOT NULL,
    done_calls      bigint  NOT NULL DEFAULT 0,
    attempts        bigint  NOT NULL DEFAULT 0,
    next_attempt_ms bigint  NOT NULL DEFAULT 0,
    last_error      text,
    delivered_calls text,
    had_dead        boolean NOT NULL DEFAULT false,
    remapped        boolean NOT NULL DEFAULT false
);
CREATE TABLE seen (
    source     text   NOT NULL,
    message_id text   NOT NULL,
    seen_at_ms bigint NOT NULL,
    PRIMARY KEY (source, message_id)
);
CREATE INDEX seen_by_time ON seen (seen_at_ms);
CREATE TABLE user_state (
    source   text NOT NULL,
    user_key text NOT NULL,
    state    text NOT NULL,
    PRIMARY KEY (source, user_key)
);
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    source         text    NOT NULL,
    user_key       text    NOT NULL,
    message_id     text    NOT NULL,
    kind           text    NOT NULL,
    body           text    NOT NULL,
    accepted_at_ms bigint  NOT NULL,
    attempts       bigint  NOT NULL,
    died_at_ms     bigint  NOT NULL,
    status         integer,
    reason         text    NOT NULL,
    event          text
);
CREATE TABLE delivered (
    id              bigint PRIMARY KEY,
    source          text   NOT NULL,
    user_key        text   NOT NULL,
    message_id      text   NOT NULL,
    accepted_at_ms  bigint NOT NULL,
    delivered_at_ms bigint NOT NULL,
    event           text   NOT NULL,
    calls           text   NOT NULL
);
CREATE INDEX delivered_by_time ON delivered (delivered_at_ms);
CREATE TABLE partitions (
    partition   integer PRIMARY KEY,
    owner       text,
    lease_until timestamptz,
    epoch       bigint NOT NULL DEFAULT 0
);
CREATE TABLE nodes (
    node       text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL
);
";

/// Applies the migrations not yet applied and creates the partitions on first start;
/// returns the number of partitions (the stored one when it differs from `partitions`).
pub async fn migrate(client: &mut Object, partitions: u32) -> Result<u32, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
    }
    let stored: Option<String> = tx
        .query_opt("SELECT value FROM meta WHERE key = 'partitions'", &[])
        .await?
        .map(|row| row.get(0));
    let count = match stored.and_then(|text| text.parse::<u32>().ok()) {
        Some(count) => count,
        None => {
            let count = i32::try_from(partitions.max(1)).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('partitions', $1)",
                &[&count.to_string()],
            )
            .await?;
            tx.execute(
                "INSERT INTO partitions (partition) SELECT generate_series(0, $1 - 1)",
                &[&count],
            )
            .await?;
            partitions.max(1)
        }
    };
    tx.commit().await?;
    Ok(count)
}
