//! Delivery on the shared journal: reads limited to the partitions this node holds, and
//! settlements fenced by the lease, in the same transaction that applies them: a node
//! whose lease lapsed (paused, cut off) cannot overwrite what the new owner recorded.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use inmoment_core::{Registry, UserState};
use inmoment_store::{Journal, JournalError, PendingRow, Settlement};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::partition::partition_of;
use crate::schema::{HORIZON, NEXT_ID};
use crate::store::PgStore;

const COLUMNS: &str =
    "id, source, user_key, message_id, kind, body, accepted_at_ms, done_calls, attempts, next_attempt_ms";

/// The calls array `calls` with `call` appended (both JSON text, kept as sent).
const APPEND_CALL: &str = "CASE WHEN u.call IS NULL THEN j.delivered_calls
     WHEN j.delivered_calls IS NULL THEN '[' || u.call || ']'
     ELSE left(j.delivered_calls, -1) || ',' || u.call || ']' END";

fn pending_row(row: &Row) -> PendingRow {
    PendingRow {
        id: row.get(0),
        source: row.get(1),
        user_key: row.get(2),
        message_id: row.get(3),
        kind: row.get(4),
        body: row.get(5),
        accepted_at_ms: row.get(6),
        done_calls: row.get(7),
        attempts: row.get(8),
        next_attempt_ms: row.get(9),
    }
}

fn read_error(error: impl ToString) -> JournalError {
    JournalError::Read(error.to_string())
}

fn write_error(error: impl ToString) -> JournalError {
    JournalError::Write(error.to_string())
}

/// What a settle statement's row count means.
enum Count {
    Not,
    /// Updates applied (the rest were fenced off).
    Applied,
    /// Rows appended to the journal.
    Added,
    /// Rows that left the journal (also applied).
    Left,
}

/// One settle call's updates, as columns per statement.
#[derive(Default)]
struct Batch {
    dead_ids: Vec<i64>,
    dead_kinds: Vec<String>,
    dead_calls: Vec<String>,
    dead_attempts: Vec<i64>,
    dead_statuses: Vec<Option<i32>>,
    dead_reasons: Vec<String>,
    progress_ids: Vec<i64>,
    progress_done: Vec<i64>,
    progress_calls: Vec<Option<String>>,
    progress_dead: Vec<bool>,
    retry_ids: Vec<i64>,
    retry_attempts: Vec<i64>,
    retry_at: Vec<i64>,
    retry_errors: Vec<String>,
    finished_ids: Vec<i64>,
    /// Finished rows to keep in `delivered` (no dead call), with their last call.
    keep_ids: Vec<i64>,
    keep_calls: Vec<Option<String>>,
    /// Users' new state, by the row that left it.
    state_ids: Vec<i64>,
    states: Vec<String>,
    /// Email survey calls to append after the row whose answer decided them.
    survey_ids: Vec<i64>,
    survey_calls: Vec<String>,
}

impl Batch {
    fn new(updates: &[Settlement], keep_delivered: bool) -> Batch {
        let mut batch = Batch::default();
        for update in updates {
            match update {
                Settlement::Progress {
                    id,
                    done_calls,
                    dead,
                    delivered,
                } => {
                    if let Some(dead) = dead {
                        batch.dead(*id, dead);
                    }
                    batch.progress_ids.push(*id);
                    batch.progress_done.push(*done_calls);
                    batch.progress_calls.push(delivered.clone());
                    batch.progress_dead.push(dead.is_some());
                }
                Settlement::Finished {
                    id,
                    state,
                    dead,
                    delivered,
                } => {
                    if let Some(dead) = dead {
                        batch.dead(*id, dead);
                    }
                    if keep_delivered && dead.is_none() {
                        batch.keep_ids.push(*id);
                        batch.keep_calls.push(delivered.clone());
                    }
                    if let Some(state) = state {
                        batch.state_ids.push(*id);
                        batch.states.push(state.state.clone());
                    }
                    batch.finished_ids.push(*id);
                }
                Settlement::Retry {
                    id,
                    attempts,
                    next_attempt_ms,
                    error,
                } => {
                    batch.retry_ids.push(*id);
                    batch.retry_attempts.push(*attempts);
                    batch.retry_at.push(*next_attempt_ms);
                    batch.retry_errors.push(error.clone());
                }
                Settlement::Survey { id, call } => {
                    batch.survey_ids.push(*id);
                    batch.survey_calls.push(call.clone());
                }
            }
        }
        batch
    }

    fn dead(&mut self, id: i64, dead: &inmoment_store::DeadCall) {
        self.dead_ids.push(id);
        self.dead_kinds.push(dead.kind.clone());
        self.dead_calls.push(dead.call.clone());
        self.dead_attempts.push(dead.attempts);
        self.dead_statuses.push(dead.status.map(i32::from));
        self.dead_reasons.push(dead.reason.clone());
    }
}

impl PgStore {
    /// Applies `batch` in one transaction, only to rows of partitions this node holds a
    /// live lease on (locked against takeover until commit); returns the rows that left
    /// the journal, the rows appended and the updates fenced off.
    async fn apply(&self, batch: &Batch) -> Result<(u64, u64, u64), String> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        let now = chrono::Utc::now().timestamp_millis();
        let held: Vec<i32> = tx
            .query(
                "SELECT partition FROM partitions WHERE owner = $1 AND lease_until > now() FOR SHARE",
                &[&self.leases.node],
            )
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let expected = batch.progress_ids.len() + batch.retry_ids.len() + batch.finished_ids.len();
        let mut plan: Vec<(Count, String, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
        if !batch.dead_ids.is_empty() {
            plan.push((
                Count::Not,
                "INSERT INTO dead_letters (source, user_key, message_id, kind, body, accepted_at_ms, attempts, died_at_ms, status, reason, event)
                 SELECT j.source, j.user_key, j.message_id, d.kind, d.body, j.accepted_at_ms, d.attempts, $7, d.status, d.reason,
                        CASE WHEN j.kind = 'event' THEN j.body END
                 FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::text[])
                      WITH ORDINALITY AS d(id, kind, body, attempts, status, reason, n)
                 JOIN journal j ON j.id = d.id AND j.partition = ANY($8)
                 ORDER BY d.n".into(),
                vec![&batch.dead_ids, &batch.dead_kinds, &batch.dead_calls, &batch.dead_attempts,
                     &batch.dead_statuses, &batch.dead_reasons, &now, &held],
            ));
        }
        if !batch.progress_ids.is_empty() {
            plan.push((
                Count::Applied,
                format!(
                    "UPDATE journal j SET done_calls = u.done, attempts = 0, next_attempt_ms = 0,
                            last_error = NULL, delivered_calls = {APPEND_CALL},
                            had_dead = j.had_dead OR u.dead
                     FROM unnest($1::int8[], $2::int8[], $3::text[], $4::bool[]) AS u(id, done, call, dead)
                     WHERE j.id = u.id AND j.partition = ANY($5)"
                ),
                vec![&batch.progress_ids, &batch.progress_done, &batch.progress_calls,
                     &batch.progress_dead, &held],
            ));
        }
        if !batch.retry_ids.is_empty() {
            plan.push((
                Count::Applied,
                "UPDATE journal j SET attempts = u.attempts, next_attempt_ms = u.at, last_error = u.error
                 FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::text[]) AS u(id, attempts, at, error)
                 WHERE j.id = u.id AND j.partition = ANY($5)".into(),
                vec![&batch.retry_ids, &batch.retry_attempts, &batch.retry_at,
                     &batch.retry_errors, &held],
            ));
        }
        if !batch.keep_ids.is_empty() {
            plan.push((
                Count::Not,
                format!(
                    "INSERT INTO delivered (id, source, user_key, message_id, accepted_at_ms, delivered_at_ms, event, calls)
                     SELECT j.id, j.source, j.user_key, j.message_id, j.accepted_at_ms, $3, j.body,
                            COALESCE({APPEND_CALL}, '[]')
                     FROM unnest($1::int8[], $2::text[]) AS u(id, call)
                     JOIN journal j ON j.id = u.id AND j.partition = ANY($4)
                     WHERE j.kind = 'event' AND NOT j.had_dead
                     ON CONFLICT (id) DO NOTHING"
                ),
                vec![&batch.keep_ids, &batch.keep_calls, &now, &held],
            ));
        }
        if !batch.survey_ids.is_empty() {
            plan.push((
                Count::Added,
                format!(
                    "INSERT INTO journal (id, partition, source, user_key, message_id, kind, body, accepted_at_ms)
                     SELECT {NEXT_ID} u.n), j.partition, j.source, j.user_key, j.message_id, 'call', u.call, $3
                     FROM unnest($1::int8[], $2::text[]) WITH ORDINALITY AS u(id, call, n)
                     JOIN journal j ON j.id = u.id AND j.partition = ANY($4)"
                ),
                vec![&batch.survey_ids, &batch.survey_calls, &now, &held],
            ));
        }
        if !batch.state_ids.is_empty() {
            plan.push((
                Count::Not,
                "INSERT INTO user_state (source, user_key, state)
                 SELECT j.source, j.user_key, u.state
                 FROM unnest($1::int8[], $2::text[]) AS u(id, state)
                 JOIN journal j ON j.id = u.id AND j.partition = ANY($3)
                 ON CONFLICT (source, user_key) DO UPDATE SET state = EXCLUDED.state"
                    .into(),
                vec![&batch.state_ids, &batch.states, &held],
            ));
        }
        if !batch.finished_ids.is_empty() {
            plan.push((
                Count::Left,
                "DELETE FROM journal WHERE id = ANY($1) AND partition = ANY($2)".into(),
                vec![&batch.finished_ids, &held],
            ));
        }
        // Prepared once per connection; then the statements go out together (pipelined:
        // PostgreSQL runs them in the order sent), one round trip instead of one each.
        let mut statements = Vec::with_capacity(plan.len());
        for (_, sql, _) in &plan {
            statements.push(tx.prepare_cached(sql).await.map_err(|e| e.to_string())?);
        }
        let counts = try_join_all(
            plan.iter()
                .zip(&statements)
                .map(|((_, _, params), statement)| tx.execute(statement, params)),
        )
        .await
        .map_err(|e| e.to_string())?;
        let (mut applied, mut added, mut left) = (0, 0, 0);
        for ((count, _, _), rows) in plan.iter().zip(counts) {
            match count {
                Count::Not => {}
                Count::Applied => applied += rows,
                Count::Added => added += rows,
                Count::Left => {
                    left += rows;
                    applied += rows;
                }
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        let fenced = u64::try_from(expected).unwrap_or(0).saturating_sub(applied);
        Ok((left, added, fenced))
    }
}

#[async_trait]
impl Journal for PgStore {
    fn registry(&self) -> &Registry {
        &self.registry
    }

    fn pending(&self) -> u64 {
        PgStore::pending(self)
    }

    /// Events accepted by other nodes wake no one here, so an idle scan also looks again
    /// every `poll_every`.
    async fn new_work(&self) {
        tokio::select! {
            () = self.shared.new_work.notified() => {}
            () = tokio::time::sleep(self.config.poll_every) => {}
        }
    }

    async fn scan_after(&self, cursor: i64, limit: usize) -> Result<Vec<PendingRow>, JournalError> {
        let held = self.leases.held();
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await.map_err(read_error)?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM journal
                 WHERE id > $1 AND id < {HORIZON} AND partition = ANY($2)
                 ORDER BY id LIMIT $3"
            ))
            .await
            .map_err(read_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(&statement, &[&cursor, &held, &limit])
            .await
            .map_err(read_error)?;
        Ok(rows.iter().map(pending_row).collect())
    }

    async fn next_of_user(
        &self,
        source: &str,
        user_key: &str,
        from: i64,
        upto: i64,
    ) -> Result<Option<PendingRow>, JournalError> {
        let client = self.client().await.map_err(read_error)?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM journal
                 WHERE id >= $1 AND id <= $2 AND source = $3 AND user_key = $4
                 ORDER BY id LIMIT 1"
            ))
            .await
            .map_err(read_error)?;
        let row = client
            .query_opt(&statement, &[&from, &upto, &source, &user_key])
            .await
            .map_err(read_error)?;
        Ok(row.as_ref().map(pending_row))
    }

    async fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, JournalError> {
        let client = self.client().await.map_err(read_error)?;
        let statement = client
            .prepare_cached("SELECT state FROM user_state WHERE source = $1 AND user_key = $2")
            .await
            .map_err(read_error)?;
        let text: Option<String> = client
            .query_opt(&statement, &[&source, &user_key])
            .await
            .map_err(read_error)?
            .map(|row| row.get(0));
        Ok(text
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    /// One query for a scan batch's new users, instead of a round trip each.
    async fn user_states(
        &self,
        users: &[(String, String)],
    ) -> Result<Option<HashMap<(String, String), UserState>>, JournalError> {
        let client = self.client().await.map_err(read_error)?;
        let statement = client
            .prepare_cached(
                "SELECT s.source, s.user_key, s.state FROM user_state s
                 JOIN unnest($1::text[], $2::text[]) AS u(source, user_key)
                   ON s.source = u.source AND s.user_key = u.user_key",
            )
            .await
            .map_err(read_error)?;
        let sources: Vec<&str> = users.iter().map(|(source, _)| source.as_str()).collect();
        let keys: Vec<&str> = users.iter().map(|(_, key)| key.as_str()).collect();
        let rows = client
            .query(&statement, &[&sources, &keys])
            .await
            .map_err(read_error)?;
        let mut states: HashMap<(String, String), UserState> = users
            .iter()
            .map(|user| (user.clone(), UserState::default()))
            .collect();
        for row in rows {
            let text: String = row.get(2);
            if let Ok(state) = serde_json::from_str(&text) {
                states.insert((row.get(0), row.get(1)), state);
            }
        }
        Ok(Some(states))
    }

    async fn settle(&self, updates: Vec<Settlement>) -> Result<(), JournalError> {
        let batch = Batch::new(&updates, !self.config.keep_delivered.is_zero());
        let (left, added, fenced) = self.apply(&batch).await.map_err(write_error)?;
        self.shared.failing.store(false, Ordering::Relaxed);
        let net = i64::try_from(added).unwrap_or(0) - i64::try_from(left).unwrap_or(i64::MAX);
        self.shared.add_pending(net);
        if added > 0 {
            self.shared.new_work.notify_one();
        }
        if fenced > 0 {
            tracing::warn!(
                fenced,
                "Delivery results of partitions this node no longer holds were dropped; their new owner delivers them."
            );
        }
        Ok(())
    }

    async fn dead_letter_count(&self) -> Result<u64, JournalError> {
        let client = self.client().await.map_err(read_error)?;
        let count: i64 = client
            .query_one("SELECT count(*) FROM dead_letters", &[])
            .await
            .map_err(read_error)?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn owns(&self, source: &str, user_key: &str) -> bool {
        self.leases
            .holds(partition_of(source, user_key, self.partitions))
    }

    fn take_rescan(&self) -> bool {
        self.leases.take_gained()
    }
}
