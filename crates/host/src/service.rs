//! The whole service under one shutdown: the durable store, delivery to InMoment, and the
//! HTTP ingest. Shutdown stops ingest (no new connections) and delivery (no new attempts)
//! together, lets both finish what is in flight within the one deadline, then closes the
//! store; whatever is left stays pending for the next start.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use inmoment_core::{Registry, Settings};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::config::Config;
use inmoment_delivery::{Backoff, Deliver, DeliveryConfig, DeliveryObserver, Engine};
use inmoment_ingest::metrics::Metrics;
use inmoment_ingest::serve;
use inmoment_store::accept::Acceptor;
use inmoment_store::{Store, StoreConfig};

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
}

/// Opens the durable store. Called before the port is bound, so a bad `data_dir` stops
/// start-up before anything listens.
pub fn open_store(config: &Config, registry: Registry) -> Result<Arc<Store>, String> {
    Store::open(store_config(config), registry)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Starts delivery from `store` with `deliver`, and serves HTTP on `listener` until
/// `shutdown` resolves. Ingest and delivery then stop together under the one
/// `shutdown_deadline`.
pub async fn run<D: Deliver>(
    config: Config,
    store: Arc<Store>,
    deliver: Arc<D>,
    delivery: DeliveryConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new());
    metrics.queue_depth(store.pending());
    let observer = Arc::new(MetricsObserver(metrics.clone()));
    let engine = Engine::new(store.clone(), deliver, observer, delivery);

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
    let acceptor: Arc<dyn Acceptor> = store.clone();
    let result = serve::serve(config, acceptor, metrics, listener, signalled(stopped)).await;
    let _ = served.send(());
    if let Err(error) = delivery.await {
        tracing::error!(%error, "Delivery stopped abnormally; pending calls stay in the store.");
    }
    store.close();
    tracing::info!(pending = store.pending(), "Store closed.");
    result.map_err(|e| format!("server failed: {e}"))
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn signalled(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}
