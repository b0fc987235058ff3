//! A faithful fake of InMoment's (formerly Wootric's) HTTP API, the ground
//! truth for every test of our client, since the real service cannot be
//! reached from here. It follows the research note `inmoment-api.md`: REST
//! routes under `/v1/` and `/api/v1/`, `/oauth/token`, `/eligible.json` and
//! `/registered_events.json`, all on one address, plus `/_sandbox/*`
//! endpoints to inspect and steer it (request log, counters, state, faults,
//! configuration, clock).
//!
//! Control endpoints (never logged, faulted or rate limited):
//! - `GET /_sandbox/requests[?route=MATCHER&path=EXACT&since=SEQ]`: array of
//!   [`RecordedRequest`] in `seq` order;
//! - `GET /_sandbox/counters`: `{"total":n,"routes":{"end_users.create":n}}`;
//! - `GET /_sandbox/state`: `{"now":unix,"accounts":{TOKEN:{"end_users":[…],"responses":[…],"declines":[…],"email_surveys":[…]}}}`;
//! - `POST /_sandbox/reset`, `POST /_sandbox/expire_tokens`: 204;
//! - `GET|POST /_sandbox/faults`: list, or add one [`Fault`] or an array (204);
//! - `GET|POST /_sandbox/config`: the [`SandboxConfig`], or apply a
//!   [`ConfigPatch`] (answers the new configuration).
//!
//! Faults and rate-limited routes select requests with a [`Matcher`]: `*`,
//! a route name (`responses.create`, or `responses.*`), or `METHOD /path`
//! where `*` is one segment and a final `**` any rest.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod answers;
mod api;
mod app;
mod auth;
mod clock;
mod config;
mod control;
mod declines;
mod eligibility;
mod email_survey;
mod end_users;
mod faults;
mod listing;
mod log;
mod params;
mod rate_limit;
mod reply;
mod responses;
mod routes;
mod server;
mod state;

pub use app::SandboxState;
pub use config::{
    AccountConfig, ConfigPatch, EligibilityRules, ErrorReply, OAuthErrors, PropertiesUpdate,
    RateLimitConfig, SandboxConfig, SurveyType,
};
pub use faults::{Fault, FaultAction};
pub use log::RecordedRequest;
pub use params::{key_path, Params, ParamsError};
pub use routes::Matcher;

/// The router of a sandbox: the fake API plus `/_sandbox/*`, so it can be
/// served or driven with `tower::ServiceExt::oneshot`.
pub fn router(state: SandboxState) -> Router {
    Router::new()
        .route("/_sandbox/requests", get(control::requests))
        .route("/_sandbox/counters", get(control::counters))
        .route("/_sandbox/state", get(control::state))
        .route("/_sandbox/reset", post(control::reset))
        .route("/_sandbox/expire_tokens", post(control::expire_tokens))
        .route(
            "/_sandbox/faults",
            get(control::list_faults).post(control::add_faults),
        )
        .route(
            "/_sandbox/config",
            get(control::get_config).post(control::post_config),
        )
        .fallback(server::dispatch)
        .with_state(state)
}

/// Serves a sandbox on `listener` until `shutdown` resolves (used by
/// `inmoment-destination sandbox --listen ADDR`).
pub async fn serve(
    listener: TcpListener,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(SandboxState::new(config)))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A sandbox serving in a background task, for tests.
#[derive(Debug)]
pub struct Sandbox {
    state: SandboxState,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sandbox {
    /// Binds `127.0.0.1:0` and serves in a background tokio task.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        Self::start_on(listener, config).await
    }

    /// Serves on the given listener in a background tokio task.
    pub async fn start_on(
        listener: TcpListener,
        config: SandboxConfig,
    ) -> std::io::Result<Sandbox> {
        let addr = listener.local_addr()?;
        let state = SandboxState::new(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Sandbox {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for both the REST/OAuth and eligibility roles.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state (also reachable over `/_sandbox/*`).
    pub fn state_handle(&self) -> &SandboxState {
        &self.state
    }

    /// Logged requests in arrival order (same data as `GET /_sandbox/requests`).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Waits until `done` holds for the logged requests, re-checked each time one is
    /// logged (no polling); false if `deadline` passes first.
    pub async fn wait_until(
        &self,
        deadline: std::time::Duration,
        done: impl FnMut(&[RecordedRequest]) -> bool,
    ) -> bool {
        self.state.wait_until(deadline, done).await
    }

    /// Waits until at least `n` requests are logged; false if `deadline` passes first.
    pub async fn wait_for_requests(&self, n: usize, deadline: std::time::Duration) -> bool {
        self.state.wait_for_requests(n, deadline).await
    }

    /// Waits until at least `n` requests have arrived (before any fault delays them or
    /// they are logged); false if `deadline` passes first.
    pub async fn wait_for_arrivals(&self, n: u64, deadline: std::time::Duration) -> bool {
        self.state.wait_for_arrivals(n, deadline).await
    }

    /// Requests counted for a route name such as `responses.create` (`*`: all).
    pub fn count(&self, route: &str) -> u64 {
        self.state.count(route)
    }

    /// Adds a fault.
    pub fn add_fault(&self, fault: Fault) {
        self.state.add_fault(fault);
    }

    /// Moves the sandbox clock by `secs`.
    pub fn advance_clock(&self, secs: i64) {
        self.state.advance_clock(secs);
    }

    /// Expires every access token now.
    pub fn expire_tokens(&self) {
        self.state.expire_tokens();
    }

    /// Applies a run-time configuration change.
    pub fn configure(&self, patch: ConfigPatch) {
        self.state.configure(patch);
    }

    /// Clears records, tokens, log, counters and faults; keeps accounts.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Every account's end users, responses and declines, as JSON.
    pub fn state(&self) -> serde_json::Value {
        self.state.state()
    }

    /// Stops serving (gracefully) and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "sandbox server failed"),
                Err(e) => tracing::warn!(error = %e, "sandbox server task failed"),
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
