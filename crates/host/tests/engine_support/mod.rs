//! Runs the delivery engine in a test: start it, wait until the journal is empty, stop it
//! (shared by `delivery.rs`, `store.rs` and `store_layout.rs`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use inmoment_host::delivery::{Deliver, DeliveryConfig, Engine, NoObserver};
use inmoment_host::store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An engine running on its own task until [`Running::stop`].
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Starts delivery from `store` with `deliver`.
pub fn spawn<D: Deliver>(store: &Arc<Store>, deliver: Arc<D>, config: DeliveryConfig) -> Running {
    let engine = Engine::new(store.clone(), deliver, Arc::new(NoObserver), config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(engine.run(async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

impl Running {
    /// Asks for shutdown and waits until the engine has finished what was in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Runs delivery until the journal is empty or 10 s pass, then stops it; returns whether
/// the journal emptied.
pub async fn deliver_all<D: Deliver>(
    store: &Arc<Store>,
    deliver: Arc<D>,
    config: DeliveryConfig,
) -> bool {
    let running = spawn(store, deliver, config);
    let started = Instant::now();
    while store.pending() > 0 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    running.stop().await;
    store.pending() == 0
}
