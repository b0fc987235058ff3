//! The accept loop of `serve`: HTTP/1.1 connections with a cap on how many are open, a
//! deadline for each request head, and a graceful stop bounded by one deadline.
//!
//! hyper starts a connection's head timer when it waits for a request, so the same
//! deadline also closes a kept-alive connection left idle. At the cap, new connections
//! wait in the kernel's backlog until one closes; that is logged, at most once a second.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// What bounds each connection and their number.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` until `shutdown` resolves, then stops accepting and waits for the open
/// connections (idle ones close at once) until `deadline` after the signal. Returns
/// `true` when every connection finished in time.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    deadline: Duration,
) -> bool {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper's own header limit stays at its default (100, above the app's, so that
        // those answer with a JSON error): setting any limit makes hyper allocate and fill
        // a header table for every request it parses, about 5 % of a single event's work.
        .header_read_timeout(limits.header_read_timeout);
    let mut last_full_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if last_full_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                    last_full_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "All connections are in use; new ones wait until one closes (max_connections)."
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that vanishes or breaks HTTP is its own problem, not the server's.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => true,
        () = tokio::time::sleep(deadline) => false,
    }
}

/// Out of file descriptors and similar: wait a little instead of spinning.
async fn pause_after_accept_error(error: &io::Error) {
    tracing::warn!(%error, "Could not accept a connection; retrying shortly.");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
