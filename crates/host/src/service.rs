//! The whole service under one shutdown: the durable store, delivery to InMoment, and the
//! HTTP ingest. Shutdown stops ingest (no new connections) and delivery (no new attempts)
//! together, lets both finish what is in flight within the one deadline, then closes the
//! store; whatever is left stays pending for the next start.
//!
//! The store is the embedded SQLite one in `data_dir`, or with `store` set a PostgreSQL
//! journal shared by several nodes; the rest of the service is the same for both.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use inmoment_core::{Registry, Settings};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::config::Config;
use async_trait::async_trait;
use inmoment_delivery::{Backoff, Deliver, DeliveryConfig, DeliveryObserver, Engine};
use inmoment_ingest::metrics::Metrics;
use inmoment_ingest::serve;
use inmoment_postgres::{PgConfig, PgStore};
use inmoment_store::accept::Acceptor;
use inmoment_store::{Journal, Store, StoreConfig};

/// A store `serve` can run on: ingest appends to it, delivery reads it, and it is closed
/// once both stopped.
#[async_trait]
pub trait ServiceStore: Acceptor + Journal {
    /// The same store as delivery sees it.
    fn journal(self: Arc<Self>) -> Arc<dyn Journal>;
    /// The same store as ingest sees it.
    fn acceptor(self: Arc<Self>) -> Arc<dyn Acceptor>;
    /// Partitions this node delivers, for a store shared by several nodes.
    fn partitions_held(&self) -> Option<usize> {
        None
    }
    async fn close(&self);
}

#[async_trait]
impl ServiceStore for Store {
    fn journal(self: Arc<Self>) -> Arc<dyn Journal> {
        self
    }
    fn acceptor(self: Arc<Self>) -> Arc<dyn Acceptor> {
        self
    }
    async fn close(&self) {
        Store::close(self);
    }
}

#[async_trait]
impl ServiceStore for PgStore {
    fn journal(self: Arc<Self>) -> Arc<dyn Journal> {
        self
    }
    fn acceptor(self: Arc<Self>) -> Arc<dyn Acceptor> {
        self
    }
    fn partitions_held(&self) -> Option<usize> {
        Some(self.held_partitions().len())
    }
    async fn close(&self) {
        PgStore::close(self).await;
    }
}

/// The store settings of a service config.
pub fn store_config(config: &Config) -> StoreConfig {
    let mut store = StoreConfig::new(&config.data_dir);
    store.dedup_window = config.dedup_window;
    store.dedup_max_ids = config.dedup_max_ids;
    store.max_pending = config.max_pending_calls;
    store.max_bytes = config.store_max_bytes;
    store.keep_delivered = config.keep_delivered;
    store
}

/// The delivery engine settings of a service config.
pub fn delivery_config(config: &Config) -> DeliveryConfig {
    DeliveryConfig {
        max_in_flight: config.delivery.concurrency.max(1) * 4,
        backoff: Backoff {
            base: config.delivery.retry_base,
            cap: config.delivery.retry_cap,
            max_elapsed: config.delivery.retry_max,
        },
        shutdown_deadline: config.shutdown_deadline,
        sources: source_settings(config),
        attempt_deadline: pg_config(config).map(|pg| pg.attempt_deadline()),
        ..DeliveryConfig::default()
    }
}

/// Each source's settings by name: what events are mapped with at delivery (and remap).
pub fn source_settings(config: &Config) -> HashMap<String, Settings> {
    config
        .sources
        .iter()
        .map(|s| (s.source.name.clone(), s.source.settings.clone()))
        .collect()
}

/// Feeds delivery results into the Prometheus metrics.
pub struct MetricsObserver(pub Arc<Metrics>);

impl DeliveryObserver for MetricsObserver {
    fn settled(&self, kind: &str, outcome: &str, status: Option<u16>, age: Duration) {
        self.0.delivery(kind, outcome, status);
        if outcome == "delivered" {
            self.0.delivery_latency(age.as_secs_f64());
        }
    }

    fn skipped(&self, event_type: &str, reason: &str) {
        self.0.event_skipped(event_type, reason);
    }

    fn queue_depth(&self, pending: u64) {
        self.0.queue_depth(pending);
    }

    fn dead_letters(&self, count: u64) {
        self.0.dead_letters(count);
    }

    fn eligibility(&self, eligible: bool) {
        self.0.eligibility(eligible);
    }

    fn email_survey(&self, decision: &str) {
        self.0.email_survey(decision);
    }
}

/// The shared-store settings of a service config, when `store` is set.
pub fn pg_config(config: &Config) -> Option<PgConfig> {
    let url = config.store.as_ref()?;
    let mut pg = PgConfig::new(url.expose());
    if let Some(node) = &config.node_id {
        pg.node_id = node.clone();
    }
    pg.partitions = config.partitions;
    pg.takeover_within = config.takeover_within;
    pg.dedup_window = config.dedup_window;
    pg.keep_delivered = config.keep_delivered;
    pg.max_pending = config.max_pending_calls;
    Some(pg)
}

/// Opens the durable store: the embedded one, or the shared one when `store` is set.
/// Called before the port is bound, so a bad `data_dir` or `store` stops start-up before
/// anything listens.
pub async fn open_store(
    config: &Config,
    registry: Registry,
) -> Result<Arc<dyn ServiceStore>, String> {
    match pg_config(config) {
        Some(pg) => PgStore::open(pg, registry)
            .await
            .map(|store| Arc::new(store) as Arc<dyn ServiceStore>)
            .map_err(|e| e.to_string()),
        None => Store::open(store_config(config), registry)
            .map(|store| Arc::new(store) as Arc<dyn ServiceStore>)
            .map_err(|e| e.to_string()),
    }
}

/// Starts delivery from `store` with `deliver`, and serves HTTP on `listener` until
/// `shutdown` resolves. Ingest and delivery then stop together under the one
/// `shutdown_deadline`.
pub async fn run<D: Deliver, S: ServiceStore + ?Sized>(
    config: Config,
    store: Arc<S>,
    deliver: Arc<D>,
    delivery: DeliveryConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new());
    metrics.queue_depth(store.pending());
    let observer = Arc::new(MetricsObserver(metrics.clone()));
    let engine = Engine::new(store.clone().journal(), deliver, observer, delivery);

    let (stop, stopped) = watch::channel(false);
    let (served, served_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {}
            _ = served_rx => {}
        }
        let _ = stop.send(true);
    });
    let delivery = tokio::spawn(engine.run(signalled(stopped.clone())));
    if store.partitions_held().is_some() {
        tokio::spawn(report_partitions(
            store.clone(),
            metrics.clone(),
            signalled(stopped.clone()),
        ));
    }
    let acceptor = store.clone().acceptor();
    let result = serve::serve(config, acceptor, metrics, listener, signalled(stopped)).await;
    let _ = served.send(());
    if let Err(error) = delivery.await {
        tracing::error!(%error, "Delivery stopped abnormally; pending calls stay in the store.");
    }
    store.close().await;
    tracing::info!(pending = store.pending(), "Store closed.");
    result.map_err(|e| format!("server failed: {e}"))
}

/// Keeps `inmoment_partitions_held` current (leases change on the store's heartbeat).
async fn report_partitions<S: ServiceStore + ?Sized>(
    store: Arc<S>,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {
                let held = store.partitions_held().unwrap_or(0);
                metrics.partitions_held(u64::try_from(held).unwrap_or(u64::MAX));
            }
        }
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn signalled(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}
