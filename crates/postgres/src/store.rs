//! The PostgreSQL journal as one handle: the connection pool, the leases, and the two
//! background tasks (heartbeat; housekeeping: pending count and pruning).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use inmoment_core::Registry;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;

use crate::config::{PgConfig, PgError};
use crate::leases::Leases;
use crate::schema;
use crate::tls;

/// How often the pending count is read again and old records pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Longest wait for a connection (pool or network): a database that does not answer
/// makes requests fail with 503 instead of piling up.
const WAIT_LIMIT: Duration = Duration::from_secs(5);
/// Rows deleted per pruning statement, so one never holds locks for long.
const PRUNE_CHUNK: i64 = 5_000;

/// The shared journal: ingest appends through [`inmoment_store::accept::Acceptor`],
/// delivery reads and settles through [`inmoment_store::Journal`].
pub struct PgStore {
    pub(crate) pool: Pool,
    pub(crate) registry: Registry,
    pub(crate) config: PgConfig,
    pub(crate) partitions: u32,
    pub(crate) leases: Arc<Leases>,
    pub(crate) shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// What the handle and its background tasks share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Journal rows, as last counted plus what this node appended and settled since. A
    /// count that ran while this node changed the figure is dropped (it may have missed
    /// the change); other nodes' changes show at the next count (a second later). The
    /// figure is for backpressure and metrics, not an exact count.
    pub pending: AtomicU64,
    /// How many times this node changed `pending`, so a count can tell it overlapped one.
    pub changes: AtomicU64,
    /// The last statement on the database failed; the next success clears it.
    pub failing: AtomicBool,
    /// Woken when this node appended rows or claimed partitions.
    pub new_work: Notify,
}

impl Shared {
    pub fn add_pending(&self, delta: i64) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add_signed(delta))
            });
    }
}

impl PgStore {
    /// Connects, migrates the schema, takes this node's first leases and starts the
    /// background tasks. Fails with a message naming the setting when PostgreSQL cannot
    /// be used.
    pub async fn open(config: PgConfig, registry: Registry) -> Result<PgStore, PgError> {
        let shown = PgError::redact(&config.url);
        if config.takeover_within < Duration::from_millis(500) {
            return Err(PgError::Takeover {
                within_ms: config.takeover_within.as_millis(),
            });
        }
        let (url, root) = tls::split_root_cert(&config.url);
        let mut pg = tokio_postgres::Config::from_str(&url).map_err(|e| PgError::Url {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(WAIT_LIMIT);
        }
        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = if pg.get_ssl_mode() == SslMode::Require {
            let tls = tls::connector(root.as_deref()).map_err(|reason| PgError::Tls {
                url: shown.clone(),
                reason,
            })?;
            Manager::from_config(pg, tls, recycling)
        } else {
            Manager::from_config(pg, NoTls, recycling)
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(2))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(WAIT_LIMIT))
            .create_timeout(Some(WAIT_LIMIT))
            .recycle_timeout(Some(WAIT_LIMIT))
            .build()
            .map_err(|e| PgError::Url {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        let connect = |reason: String| PgError::Connect {
            url: shown.clone(),
            reason,
        };
        let mut client = pool.get().await.map_err(|e| connect(e.to_string()))?;
        let schema_error = |e: tokio_postgres::Error| PgError::Schema {
            url: shown.clone(),
            reason: e.to_string(),
        };
        let partitions = schema::migrate(&mut client, config.partitions)
            .await
            .map_err(schema_error)?;
        if partitions != config.partitions {
            tracing::warn!(
                stored = partitions,
                configured = config.partitions,
                "The journal was created with another number of partitions; keeping the stored one."
            );
        }
        let ttl = config.lease_ttl();
        let valid_for = ttl
            .saturating_sub(config.attempt_deadline())
            .saturating_sub(config.heartbeat() / 2);
        let leases = Arc::new(Leases::new(
            config.node_id.clone(),
            partitions,
            ttl,
            valid_for,
        ));
        leases.beat(&client).await.map_err(schema_error)?;
        // Nothing was read yet: what the first heartbeat claimed is delivered at once.
        leases.take_gained();
        let shared = Arc::new(Shared::default());
        let pending = count_pending(&client).await.map_err(schema_error)?;
        shared.pending.store(pending, Ordering::Relaxed);
        drop(client);

        let (stop, stopped) = watch::channel(false);
        let store = PgStore {
            pool,
            registry,
            config,
            partitions,
            leases,
            shared,
            stop,
            tasks: Mutex::new(Vec::new()),
        };
        let heartbeat = tokio::spawn(heartbeat(
            store.pool.clone(),
            store.leases.clone(),
            store.shared.clone(),
            store.config.heartbeat(),
            stopped.clone(),
        ));
        let housekeeping = tokio::spawn(housekeeping(
            store.pool.clone(),
            store.shared.clone(),
            store.config.clone(),
            stopped,
        ));
        if let Ok(mut tasks) = store.tasks.lock() {
            tasks.extend([heartbeat, housekeeping]);
        }
        tracing::info!(node = %store.config.node_id, partitions, "Joined the shared journal.");
        Ok(store)
    }

    /// This node's name in the lease table.
    pub fn node_id(&self) -> &str {
        &self.leases.node
    }

    /// The partitions this node holds leases on now (delivered, or about to be once
    /// delivery restarted its scan).
    pub fn held_partitions(&self) -> Vec<i32> {
        self.leases.leased()
    }

    /// Events waiting for delivery across all nodes (counted each second, adjusted by
    /// what this node did since).
    pub fn pending(&self) -> u64 {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// Stops the background tasks and gives this node's leases back, so the other nodes
    /// take over at once. Call after delivery stopped.
    pub async fn close(&self) {
        let _ = self.stop.send(true);
        let tasks = self
            .tasks
            .lock()
            .map(|mut tasks| std::mem::take(&mut *tasks))
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
        match self.pool.get().await {
            Ok(client) => {
                if let Err(error) = self.leases.release(&client).await {
                    tracing::warn!(%error, "Could not give the leases back; they lapse on their own.");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Could not give the leases back; they lapse on their own.")
            }
        }
    }

    /// A connection from the pool, or why there is none.
    pub(crate) async fn client(&self) -> Result<Object, String> {
        self.pool.get().await.map_err(|e| e.to_string())
    }
}

async fn count_pending(client: &Object) -> Result<u64, tokio_postgres::Error> {
    let count: i64 = client
        .query_one("SELECT count(*) FROM journal", &[])
        .await?
        .get(0);
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Renews and claims leases every `every` until stopped; wakes delivery when it gained
/// partitions.
async fn heartbeat(
    pool: Pool,
    leases: Arc<Leases>,
    shared: Arc<Shared>,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = ticks.tick() => {}
        }
        let beat = match pool.get().await {
            Ok(client) => leases.beat(&client).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match beat {
            Ok(beat) if beat.claimed > 0 => {
                tracing::info!(
                    claimed = beat.claimed,
                    held = beat.held,
                    live_nodes = beat.live_nodes,
                    "Took over partitions."
                );
                shared.new_work.notify_one();
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "Could not renew partition leases; delivery stops when they lapse.")
            }
        }
    }
}

/// Recounts pending rows and prunes de-dup keys and delivered events past their windows.
async fn housekeeping(
    pool: Pool,
    shared: Arc<Shared>,
    config: PgConfig,
    mut stopped: watch::Receiver<bool>,
) {
    // The store counted when it opened: the first round is one period later.
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + HOUSEKEEPING_EVERY,
        HOUSEKEEPING_EVERY,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = ticks.tick() => {}
        }
        let Ok(client) = pool.get().await else {
            shared.failing.store(true, Ordering::Relaxed);
            continue;
        };
        let changes = shared.changes.load(Ordering::Acquire);
        match count_pending(&client).await {
            Ok(pending) => {
                if shared.changes.load(Ordering::Acquire) == changes {
                    shared.pending.store(pending, Ordering::Relaxed);
                }
                shared.failing.store(false, Ordering::Relaxed);
            }
            Err(error) => {
                shared.failing.store(true, Ordering::Relaxed);
                tracing::warn!(%error, "Could not count pending events.");
                continue;
            }
        }
        if let Err(error) = prune(&client, &config).await {
            tracing::warn!(%error, "Could not prune old records; trying again later.");
        }
    }
}

async fn prune(client: &Object, config: &PgConfig) -> Result<(), tokio_postgres::Error> {
    let now = chrono::Utc::now().timestamp_millis();
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let seen_cutoff = now.saturating_sub(ms(config.dedup_window));
    client
        .execute(
            "DELETE FROM seen WHERE ctid = ANY(ARRAY(
                 SELECT ctid FROM seen WHERE seen_at_ms < $1 LIMIT $2))",
            &[&seen_cutoff, &PRUNE_CHUNK],
        )
        .await?;
    let delivered_cutoff = now.saturating_sub(ms(config.keep_delivered));
    client
        .execute(
            "DELETE FROM delivered WHERE id IN (
                 SELECT id FROM delivered WHERE delivered_at_ms < $1 LIMIT $2)",
            &[&delivered_cutoff, &PRUNE_CHUNK],
        )
        .await?;
    client
        .execute(
            "DELETE FROM nodes WHERE seen_at < now() - interval '1 day'",
            &[],
        )
        .await?;
    Ok(())
}
