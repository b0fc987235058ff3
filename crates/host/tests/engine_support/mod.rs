//! Runs the delivery engine in a test: start it, wait on what it reports after each
//! committed settlement (no polling), stop it (shared by `delivery.rs`, `store.rs` and
//! `store_layout.rs`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use inmoment_delivery::{Deliver, DeliveryConfig, DeliveryObserver, Engine};
use inmoment_store::Journal;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// How long any wait here may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What the engine last reported: how many settlements it has committed, and the queue
/// depth after the last one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Report {
    pub settlements: u64,
    pub pending: u64,
}

/// Passes the engine's queue-depth reports (sent after each committed settlement) to a
/// watch channel.
struct Reporter(watch::Sender<Report>);

impl DeliveryObserver for Reporter {
    fn settled(&self, _: &str, _: &str, _: Option<u16>, _: Duration) {}

    fn queue_depth(&self, pending: u64) {
        self.0.send_modify(|report| {
            report.settlements += 1;
            report.pending = pending;
        });
    }
}

/// An engine running on its own task until [`Running::stop`].
pub struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    reports: watch::Receiver<Report>,
}

/// Starts delivery from `journal` (the SQLite or the PostgreSQL store) with `deliver`.
pub fn spawn<D: Deliver>(
    journal: Arc<dyn Journal>,
    deliver: Arc<D>,
    config: DeliveryConfig,
) -> Running {
    let (reporter, reports) = watch::channel(Report {
        settlements: 0,
        pending: journal.pending(),
    });
    let engine = Engine::new(journal, deliver, Arc::new(Reporter(reporter)), config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(engine.run(async move {
        let _ = stopped.await;
    }));
    Running {
        stop,
        task,
        reports,
    }
}

impl Running {
    /// Settlements the engine has committed so far.
    pub fn settlements(&self) -> u64 {
        self.reports.borrow().settlements
    }

    /// Waits until `done` holds, checked now and after each committed settlement; false
    /// after [`PATIENCE`].
    pub async fn wait_until(&mut self, mut done: impl FnMut(&Report) -> bool) -> bool {
        let reports = &mut self.reports;
        let wait = async { reports.wait_for(|report| done(report)).await.is_ok() };
        tokio::time::timeout(PATIENCE, wait).await.unwrap_or(false)
    }

    /// Waits until the engine reports an empty journal; false after [`PATIENCE`].
    pub async fn wait_drained(&mut self) -> bool {
        self.wait_until(|report| report.pending == 0).await
    }

    /// Waits until the engine has committed at least `n` settlements; panics after
    /// [`PATIENCE`].
    pub async fn wait_settlements(&mut self, n: u64) {
        assert!(
            self.wait_until(|report| report.settlements >= n).await,
            "the engine committed fewer than {n} settlements in {PATIENCE:?}"
        );
    }

    /// Asks for shutdown and waits until the engine has finished what was in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Runs delivery until the engine reports an empty journal (or [`PATIENCE`] passes), then
/// stops it; returns whether the journal emptied.
pub async fn deliver_all<D: Deliver>(
    journal: Arc<dyn Journal>,
    deliver: Arc<D>,
    config: DeliveryConfig,
) -> bool {
    let mut running = spawn(journal.clone(), deliver, config);
    running.wait_drained().await;
    running.stop().await;
    journal.pending() == 0
}
