//! `queue` commands on the shared journal: figures per source and per node, dead letters
//! listed, replayed and purged. Works while nodes run; a replay is one transaction.

use std::collections::BTreeMap;
use std::str::FromStr;

use inmoment_core::UserState;
use inmoment_store::{
    DeadEvent, DeadLetter, DeliveredEvent, RemapFrom, Replayed, Requeue, Selection, SourceStats,
};
use serde::Serialize;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use crate::config::PgError;
use crate::partition::partition_of;
use crate::schema::NEXT_ID;
use crate::tls;

/// Drives a connection until it closes, saying why when that was an error.
async fn watch_connection<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(error) = connection.await {
        tracing::warn!(%error, "The PostgreSQL connection closed.");
    }
}

/// Dead letters replayed per transaction, far below the rows one may number.
const REPLAY_CHUNK: usize = 10_000;

/// Who delivers which partitions, and how far behind they are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeLag {
    pub node: String,
    pub partitions: Vec<i32>,
    pub pending: i64,
    /// Age in seconds of the oldest event waiting in its partitions.
    pub oldest_pending_secs: Option<i64>,
    /// Seconds until its leases lapse unless renewed (negative: lapsed).
    pub lease_left_secs: f64,
}

/// One partition's lease, for tests and diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionOwner {
    pub partition: i32,
    pub owner: Option<String>,
    pub live: bool,
}

/// A connection for the `queue` commands.
pub struct PgAdmin {
    client: Client,
    partitions: u32,
}

fn sql(error: tokio_postgres::Error) -> String {
    error.to_string()
}

impl PgAdmin {
    /// Connects to a journal that `serve --store` created (fails with what to do when it
    /// has no schema yet).
    pub async fn connect(url: &str) -> Result<PgAdmin, PgError> {
        let shown = PgError::redact(url);
        let (plain_url, root) = tls::split_root_cert(url);
        let config = tokio_postgres::Config::from_str(&plain_url).map_err(|e| PgError::Url {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let refused = |e: tokio_postgres::Error| PgError::Connect {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let client = if config.get_ssl_mode() == SslMode::Require {
            let tls = tls::connector(root.as_deref()).map_err(|reason| PgError::Tls {
                url: shown.clone(),
                reason,
            })?;
            let (client, connection) = config.connect(tls).await.map_err(refused)?;
            tokio::spawn(watch_connection(connection));
            client
        } else {
            let (client, connection) = config.connect(NoTls).await.map_err(refused)?;
            tokio::spawn(watch_connection(connection));
            client
        };
        let stored = client
            .query_opt("SELECT value FROM meta WHERE key = 'partitions'", &[])
            .await
            .map_err(|_| PgError::Schema {
                url: shown.clone(),
                reason: "no journal there yet (start `serve --store` with this URL once)".into(),
            })?;
        let partitions = stored
            .and_then(|row| row.get::<_, String>(0).parse().ok())
            .unwrap_or(1);
        Ok(PgAdmin { client, partitions })
    }

    /// Pending, in retry, dead and oldest pending age per source.
    pub async fn stats(&self, now_ms: i64) -> Result<Vec<SourceStats>, String> {
        let mut by_source: BTreeMap<String, SourceStats> = BTreeMap::new();
        let rows = self
            .client
            .query(
                "SELECT source, count(*), count(*) FILTER (WHERE attempts > 0 OR next_attempt_ms > $1),
                        min(accepted_at_ms)
                 FROM journal GROUP BY source",
                &[&now_ms],
            )
            .await
            .map_err(sql)?;
        for row in rows {
            let source: String = row.get(0);
            let entry = by_source.entry(source.clone()).or_default();
            entry.source = source;
            entry.pending = row.get(1);
            entry.in_retry = row.get(2);
            entry.oldest_pending_secs = row
                .get::<_, Option<i64>>(3)
                .map(|oldest| (now_ms - oldest).max(0) / 1000);
        }
        let rows = self
            .client
            .query(
                "SELECT source, count(*) FROM dead_letters GROUP BY source",
                &[],
            )
            .await
            .map_err(sql)?;
        for row in rows {
            let source: String = row.get(0);
            let entry = by_source.entry(source.clone()).or_default();
            entry.source = source;
            entry.dead = row.get(1);
        }
        Ok(by_source.into_values().collect())
    }

    /// Each node holding leases, with its partitions and their lag; partitions nobody
    /// holds are listed under the node name `(none)`.
    pub async fn owners(&self, now_ms: i64) -> Result<Vec<NodeLag>, String> {
        let rows = self
            .client
            .query(
                "SELECT CASE WHEN p.owner IS NULL OR p.lease_until <= now() THEN '(none)' ELSE p.owner END AS node,
                        array_agg(p.partition ORDER BY p.partition),
                        COALESCE(sum(j.pending), 0)::int8, min(j.oldest),
                        COALESCE(min(EXTRACT(EPOCH FROM (p.lease_until - now()))), 0)::float8
                 FROM partitions p
                 LEFT JOIN (SELECT partition, count(*) AS pending, min(accepted_at_ms) AS oldest
                            FROM journal GROUP BY partition) j USING (partition)
                 GROUP BY 1 ORDER BY 1",
                &[],
            )
            .await
            .map_err(sql)?;
        Ok(rows
            .iter()
            .map(|row| NodeLag {
                node: row.get(0),
                partitions: row.get(1),
                pending: row.get(2),
                oldest_pending_secs: row
                    .get::<_, Option<i64>>(3)
                    .map(|oldest| (now_ms - oldest).max(0) / 1000),
                lease_left_secs: row.get(4),
            })
            .collect())
    }

    /// Every partition's lease as the database has it now.
    pub async fn partition_owners(&self) -> Result<Vec<PartitionOwner>, String> {
        let rows = self
            .client
            .query(
                "SELECT partition, owner, COALESCE(lease_until > now(), false) FROM partitions ORDER BY partition",
                &[],
            )
            .await
            .map_err(sql)?;
        Ok(rows
            .iter()
            .map(|row| PartitionOwner {
                partition: row.get(0),
                owner: row.get(1),
                live: row.get(2),
            })
            .collect())
    }

    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, String> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "SELECT id, source, user_key, message_id, kind, attempts, accepted_at_ms, died_at_ms,
                        status, reason, body, event
                 FROM dead_letters ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await
            .map_err(sql)?;
        Ok(rows
            .iter()
            .map(|row| {
                let body: String = row.get(10);
                let event: Option<String> = row.get(11);
                let json = |text: String| {
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                };
                DeadLetter {
                    id: row.get(0),
                    source: row.get(1),
                    user_key: row.get(2),
                    message_id: row.get(3),
                    kind: row.get(4),
                    attempts: row.get(5),
                    accepted_at_ms: row.get(6),
                    died_at_ms: row.get(7),
                    status: row
                        .get::<_, Option<i32>>(8)
                        .and_then(|s| u16::try_from(s).ok()),
                    reason: row.get(9),
                    call: json(body),
                    event: event.map(json),
                }
            })
            .collect())
    }

    /// Puts dead letters back in the journal after what their users have pending (a dead
    /// call as it is, an unmappable event to be mapped again), in one transaction.
    pub async fn replay(&mut self, selection: &Selection) -> Result<Replayed, String> {
        let partitions = self.partitions;
        let all = matches!(selection, Selection::All);
        let chosen: Vec<i64> = match selection {
            Selection::All => Vec::new(),
            Selection::Ids(ids) => ids.clone(),
        };
        let rows = self
            .client
            .query(
                "SELECT id, source, user_key FROM dead_letters
                 WHERE ($1 OR id = ANY($2)) AND (kind <> 'unmapped' OR event IS NOT NULL)
                 ORDER BY id",
                &[&all, &chosen],
            )
            .await
            .map_err(sql)?;
        let ids: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
        let parts: Vec<i32> = rows
            .iter()
            .map(|row| partition_of(row.get(1), row.get(2), partitions))
            .collect();
        let mut moved = 0;
        // A transaction numbers its rows in the 20 low bits of their ids (schema.rs).
        for (ids, parts) in ids.chunks(REPLAY_CHUNK).zip(parts.chunks(REPLAY_CHUNK)) {
            let tx = self.client.transaction().await.map_err(sql)?;
            moved += tx
                .execute(
                    &format!(
                        "INSERT INTO journal (id, partition, source, user_key, message_id, kind, body, accepted_at_ms)
                         SELECT {NEXT_ID} u.n), u.part, d.source, d.user_key, d.message_id,
                                CASE WHEN d.kind = 'unmapped' THEN 'event' ELSE 'call' END,
                                CASE WHEN d.kind = 'unmapped' THEN d.event ELSE d.body END,
                                d.accepted_at_ms
                         FROM unnest($1::int8[], $2::int4[]) WITH ORDINALITY AS u(id, part, n)
                         JOIN dead_letters d ON d.id = u.id"
                    ),
                    &[&ids, &parts],
                )
                .await
                .map_err(sql)?;
            tx.execute("DELETE FROM dead_letters WHERE id = ANY($1)", &[&ids])
                .await
                .map_err(sql)?;
            tx.commit().await.map_err(sql)?;
        }
        let found: std::collections::HashSet<i64> = ids.into_iter().collect();
        let unknown = chosen
            .into_iter()
            .filter(|id| !found.contains(id))
            .collect();
        Ok(Replayed {
            moved: usize::try_from(moved).unwrap_or(0),
            unknown,
        })
    }

    /// Deletes dead letters that died before `cutoff_ms`; returns how many went.
    pub async fn purge_older_than(&self, cutoff_ms: i64) -> Result<usize, String> {
        let purged = self
            .client
            .execute(
                "DELETE FROM dead_letters WHERE died_at_ms < $1",
                &[&cutoff_ms],
            )
            .await
            .map_err(sql)?;
        Ok(usize::try_from(purged).unwrap_or(0))
    }
}

/// What `queue remap` reads and writes, as on the embedded store (`inmoment_store::Admin`).
impl PgAdmin {
    /// Up to `limit` delivered events with an id above `after_id`, accepted in
    /// `since_ms..until_ms` (of `source` when given), in acceptance order.
    pub async fn delivered_page(
        &self,
        after_id: i64,
        since_ms: i64,
        until_ms: i64,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveredEvent>, String> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "SELECT id, source, user_key, message_id, accepted_at_ms, event, calls FROM delivered
                 WHERE id > $1 AND accepted_at_ms >= $2 AND accepted_at_ms < $3
                       AND ($4::text IS NULL OR source = $4)
                 ORDER BY id LIMIT $5",
                &[&after_id, &since_ms, &until_ms, &source, &limit],
            )
            .await
            .map_err(sql)?;
        Ok(rows
            .iter()
            .map(|row| DeliveredEvent {
                id: row.get(0),
                source: row.get(1),
                user_key: row.get(2),
                message_id: row.get(3),
                accepted_at_ms: row.get(4),
                event: row.get(5),
                calls: row.get(6),
            })
            .collect())
    }

    /// The ids a selection names (every dead letter's, oldest first, for `All`).
    pub async fn dead_letter_ids(&self, selection: &Selection) -> Result<Vec<i64>, String> {
        match selection {
            Selection::Ids(ids) => Ok(ids.clone()),
            Selection::All => Ok(self
                .client
                .query("SELECT id FROM dead_letters ORDER BY id", &[])
                .await
                .map_err(sql)?
                .iter()
                .map(|row| row.get(0))
                .collect()),
        }
    }

    /// The selected dead letters, oldest first, and the selected ids that are none.
    pub async fn dead_events(
        &self,
        selection: &Selection,
    ) -> Result<(Vec<DeadEvent>, Vec<i64>), String> {
        let ids = self.dead_letter_ids(selection).await?;
        let rows = self
            .client
            .query(
                "SELECT id, source, user_key, message_id, kind, body, event FROM dead_letters
                 WHERE id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await
            .map_err(sql)?;
        let found: Vec<DeadEvent> = rows
            .iter()
            .map(|row| DeadEvent {
                id: row.get(0),
                source: row.get(1),
                user_key: row.get(2),
                message_id: row.get(3),
                kind: row.get(4),
                call: row.get(5),
                event: row.get(6),
            })
            .collect();
        let unknown = ids
            .into_iter()
            .filter(|id| !found.iter().any(|letter| letter.id == *id))
            .collect();
        Ok((found, unknown))
    }

    /// A user's state now (what delivery would map their next event with).
    pub async fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, String> {
        let text: Option<String> = self
            .client
            .query_opt(
                "SELECT state FROM user_state WHERE source = $1 AND user_key = $2",
                &[&source, &user_key],
            )
            .await
            .map_err(sql)?
            .map(|row| row.get(0));
        Ok(text
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    /// Appends `events` to the journal in order, marked `remapped`, after what their users
    /// have pending, and removes the records they came from, in one transaction; returns
    /// how many were queued (a record already gone is skipped).
    pub async fn requeue(&mut self, events: &[Requeue]) -> Result<usize, String> {
        let partitions = self.partitions;
        let tx = self.client.transaction().await.map_err(sql)?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut queued: i64 = 0;
        for event in events {
            let removed = match event.from {
                RemapFrom::Delivered(id) => {
                    tx.execute("DELETE FROM delivered WHERE id = $1", &[&id])
                        .await
                }
                RemapFrom::Dead(id) => {
                    tx.execute("DELETE FROM dead_letters WHERE id = $1", &[&id])
                        .await
                }
            }
            .map_err(sql)?;
            if removed == 0 || event.queued_already {
                continue;
            }
            queued += 1;
            let part = partition_of(&event.source, &event.user_key, partitions);
            tx.execute(
                &format!(
                    "INSERT INTO journal (id, partition, source, user_key, message_id, kind, body, accepted_at_ms, remapped)
                     VALUES ({NEXT_ID} $1::int8), $2, $3, $4, $5, 'event', $6, $7, true)"
                ),
                &[&queued, &part, &event.source, &event.user_key, &event.message_id, &event.event, &now],
            )
            .await
            .map_err(sql)?;
        }
        tx.commit().await.map_err(sql)?;
        Ok(usize::try_from(queued).unwrap_or(0))
    }
}
