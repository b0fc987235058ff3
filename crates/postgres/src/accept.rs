//! Ingest on the shared journal: each request is one statement, so one commit, which
//! records the `messageId`s it had not seen (the unique key makes that hold across nodes)
//! and appends those events.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::dispatch::check_stateless;
use inmoment_core::Event;
use inmoment_store::accept::{AcceptError, Acceptor, EventOutcome, Source};

use crate::partition::partition_of;
use crate::schema::{NEXT_ID, ROWS_PER_TRANSACTION};
use crate::store::PgStore;

/// A `messageId` is new when it was never seen from this source, or only before the
/// de-dup window (`$7`); only the rows inserted or refreshed come back, so only their
/// events are appended.
fn append_sql() -> String {
    format!(
        "WITH input AS (
             SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::int4[])
                 WITH ORDINALITY AS t(user_key, message_id, body, part, n)
         ), fresh AS (
             INSERT INTO seen (source, message_id, seen_at_ms)
             SELECT $1, message_id, $2 FROM input
             ON CONFLICT (source, message_id) DO UPDATE SET seen_at_ms = EXCLUDED.seen_at_ms
                 WHERE seen.seen_at_ms < $7
             RETURNING message_id
         )
         INSERT INTO journal (id, partition, source, user_key, message_id, kind, body, accepted_at_ms)
         SELECT {NEXT_ID} input.n), input.part, $1, input.user_key, input.message_id, 'event', input.body, $2
         FROM input JOIN fresh USING (message_id)
         RETURNING message_id"
    )
}

/// One request's events to append, as columns.
#[derive(Default)]
struct Columns {
    user_keys: Vec<String>,
    message_ids: Vec<String>,
    bodies: Vec<String>,
    partitions: Vec<i32>,
}

impl PgStore {
    fn refuse(&self) -> Option<AcceptError> {
        let pending = self.pending();
        if pending >= self.config.max_pending {
            return Some(AcceptError::Unavailable {
                reason: format!(
                    "{pending} events are waiting for delivery (max_pending_calls is {})",
                    self.config.max_pending
                ),
                retry_after: Duration::from_secs(5),
            });
        }
        None
    }

    async fn append(&self, source: &str, columns: &Columns) -> Result<HashSet<String>, String> {
        let client = self.client().await?;
        let now = chrono::Utc::now().timestamp_millis();
        let window = i64::try_from(self.config.dedup_window.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(window);
        let statement = client
            .prepare_cached(&append_sql())
            .await
            .map_err(|e| e.to_string())?;
        let rows = client
            .query(
                &statement,
                &[
                    &source,
                    &now,
                    &columns.user_keys,
                    &columns.message_ids,
                    &columns.bodies,
                    &columns.partitions,
                    &cutoff,
                ],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect())
    }
}

#[async_trait]
impl Acceptor for PgStore {
    async fn accept(
        &self,
        source: &Source,
        events: Vec<Event>,
    ) -> Result<Vec<EventOutcome>, AcceptError> {
        if let Some(refusal) = self.refuse() {
            return Err(refusal);
        }
        // None: to append (its messageId at that index of `columns`); Some: answered.
        let mut answers: Vec<Option<EventOutcome>> = Vec::with_capacity(events.len());
        let mut columns = Columns::default();
        let mut in_request = HashSet::new();
        for event in &events {
            let answer = match check_stateless(&self.registry, event, &source.settings) {
                Err(error) => Some(EventOutcome::Rejected(error)),
                Ok(Some(reason)) => Some(EventOutcome::Skipped(reason)),
                Ok(None) => {
                    let message_id = event.message_id.clone().unwrap_or_default();
                    if in_request.insert(message_id.clone()) {
                        let user_key = event.user_key().to_string();
                        columns.partitions.push(partition_of(
                            &source.name,
                            &user_key,
                            self.partitions,
                        ));
                        columns.user_keys.push(user_key);
                        columns.message_ids.push(message_id);
                        columns.bodies.push(event.to_json());
                        None
                    } else {
                        Some(EventOutcome::Duplicate)
                    }
                }
            };
            answers.push(answer);
        }
        if columns.message_ids.len() >= ROWS_PER_TRANSACTION {
            return Err(AcceptError::Unavailable {
                reason: format!("at most {ROWS_PER_TRANSACTION} events per request"),
                retry_after: Duration::from_secs(1),
            });
        }
        let stored = if columns.message_ids.is_empty() {
            HashSet::new()
        } else {
            match self.append(&source.name, &columns).await {
                Ok(stored) => {
                    self.shared.failing.store(false, Ordering::Relaxed);
                    stored
                }
                Err(reason) => {
                    self.shared.failing.store(true, Ordering::Relaxed);
                    tracing::error!(%reason, "Could not append to the shared journal; the request is refused.");
                    return Err(AcceptError::Unavailable {
                        reason: format!("the store could not commit: {reason}"),
                        retry_after: Duration::from_secs(5),
                    });
                }
            }
        };
        if !stored.is_empty() {
            self.shared
                .add_pending(i64::try_from(stored.len()).unwrap_or(i64::MAX));
            self.shared.new_work.notify_one();
        }
        let mut appended = columns.message_ids.iter();
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                Some(outcome) => outcome,
                None => match appended.next() {
                    Some(id) if stored.contains(id) => EventOutcome::Stored,
                    _ => EventOutcome::Duplicate,
                },
            })
            .collect())
    }

    /// Not ready while the database cannot be reached or refuses commits, or while over
    /// `max_pending_calls`.
    fn ready(&self) -> bool {
        self.refuse().is_none() && !self.shared.failing.load(Ordering::Relaxed)
    }
}
