//! The shared handle of one sandbox: clock, world and request log, passed to
//! the router with `with_state` and used by tests directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{ConfigPatch, SandboxConfig};
use crate::declines;
use crate::email_survey;
use crate::end_users;
use crate::faults::Fault;
use crate::log::{RecordedRequest, RequestLog};
use crate::responses;
use crate::state::World;

/// Cloneable handle on a sandbox's state.
#[derive(Debug, Clone)]
pub struct SandboxState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    clock: Clock,
    world: Mutex<World>,
    log: Mutex<RequestLog>,
    seq: AtomicU64,
    /// When the sandbox started: the origin of `RecordedRequest::arrived_us`.
    started: Instant,
    /// Bumped when a request arrives and when it is logged, so tests can wait for
    /// requests without polling.
    activity: watch::Sender<u64>,
}

impl SandboxState {
    /// Fresh state for this configuration.
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                clock: Clock::new(config.clock_start),
                log: Mutex::new(RequestLog::new(config.request_log_cap)),
                world: Mutex::new(World::new(config)),
                seq: AtomicU64::new(0),
                started: Instant::now(),
                activity: watch::Sender::new(0),
            }),
        }
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.shared
            .world
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Microseconds since the sandbox started (monotonic).
    pub(crate) fn elapsed_us(&self) -> u64 {
        u64::try_from(self.shared.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Logs a request and wakes whoever waits for requests.
    pub(crate) fn record(&self, entry: RecordedRequest) {
        self.log().push(entry);
        self.shared.activity.send_modify(|n| *n += 1);
    }

    /// Waits until `done` holds for the logged requests (checked now and after each newly
    /// logged request); false if `deadline` passes first. `done` sees the kept requests in
    /// logging order while the log is locked: it must not call back into the sandbox.
    pub async fn wait_until(
        &self,
        deadline: Duration,
        mut done: impl FnMut(&[RecordedRequest]) -> bool,
    ) -> bool {
        self.wait_for(deadline, || self.log().with_entries(&mut done))
            .await
    }

    /// Waits until at least `n` requests have arrived (counted when they arrive, before
    /// any fault delays them or they are logged); false if `deadline` passes first.
    pub async fn wait_for_arrivals(&self, n: u64, deadline: Duration) -> bool {
        self.wait_for(deadline, || self.shared.seq.load(Ordering::SeqCst) >= n)
            .await
    }

    /// Checks `done` now and after each arrival or logged request, until it holds or
    /// `deadline` passes (false).
    async fn wait_for(&self, deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
        let mut activity = self.shared.activity.subscribe();
        let wait = async {
            loop {
                activity.borrow_and_update();
                if done() {
                    return;
                }
                if activity.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }

    /// Waits until at least `n` requests are logged; false if `deadline` passes first.
    pub async fn wait_for_requests(&self, n: usize, deadline: Duration) -> bool {
        self.wait_until(deadline, |requests| requests.len() >= n)
            .await
    }

    pub(crate) fn next_seq(&self) -> u64 {
        let seq = self.shared.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.activity.send_modify(|n| *n += 1);
        seq
    }

    /// Sandbox time in unix seconds.
    pub fn now(&self) -> i64 {
        self.shared.clock.now()
    }

    /// Moves the sandbox clock (token expiry, rate-limit windows).
    pub fn advance_clock(&self, secs: i64) {
        self.shared.clock.advance(secs);
    }

    /// Logged requests in arrival order (the newest `request_log_cap`).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log().entries()
    }

    /// Requests counted for a route name (`*`: all), never trimmed.
    pub fn count(&self, route: &str) -> u64 {
        self.log().count(route)
    }

    /// `{"total":n,"routes":{name:n}}`.
    pub fn counters(&self) -> Value {
        self.log().counters_json()
    }

    /// Adds a fault.
    pub fn add_fault(&self, fault: Fault) {
        self.world().faults.add(fault);
    }

    /// Pending faults.
    pub fn faults(&self) -> Vec<Fault> {
        self.world().faults.list().to_vec()
    }

    /// Expires every access token now.
    pub fn expire_tokens(&self) {
        let now = self.now();
        self.world().tokens.expire_all(now);
    }

    /// Clears records, tokens, rate windows, faults, log and counters; keeps
    /// the configuration (including run-time changes) and the clock.
    pub fn reset(&self) {
        self.world().reset();
        self.log().clear();
        self.shared.seq.store(0, Ordering::SeqCst);
    }

    /// Current configuration.
    pub fn config(&self) -> SandboxConfig {
        self.world().config.clone()
    }

    /// Applies a run-time configuration change.
    pub fn configure(&self, patch: ConfigPatch) {
        if let Some(secs) = patch.advance_clock_secs {
            self.advance_clock(secs);
        }
        if let Some(cap) = patch.request_log_cap {
            self.log().set_cap(cap);
        }
        let mut world = self.world();
        let config = &mut world.config;
        if let Some(r) = patch.rate_limit {
            config.rate_limit = r;
        }
        if let Some(cap) = patch.request_log_cap {
            config.request_log_cap = cap;
        }
        if let Some(mode) = patch.properties_update {
            config.properties_update = mode;
        }
        if let Some(status) = patch.create_status {
            config.create_status = status;
        }
        if let Some(errors) = patch.oauth_errors {
            config.oauth_errors = errors;
        }
        for account in patch.accounts.unwrap_or_default() {
            match config
                .accounts
                .iter_mut()
                .find(|a| a.account_token == account.account_token)
            {
                Some(slot) => *slot = account,
                None => config.accounts.push(account),
            }
        }
    }

    /// Every account's end users, responses, declines (both with the `params`
    /// they were created with) and e-mail surveys.
    pub fn state(&self) -> Value {
        let now = self.now();
        let mut world = self.world();
        let offset = world.config.utc_offset_minutes;
        let tokens: Vec<String> = world
            .config
            .accounts
            .iter()
            .map(|a| a.account_token.clone())
            .collect();
        let mut accounts = Map::new();
        for token in tokens {
            let data = world.account(&token);
            let users: Vec<Value> = data
                .end_users
                .values()
                .map(|u| end_users::render(u, data, offset))
                .collect();
            let resp: Vec<Value> = data
                .responses
                .values()
                .map(|r| responses::render_with_params(r, offset))
                .collect();
            let decl: Vec<Value> = data
                .declines
                .values()
                .map(|d| declines::render_with_params(d, offset))
                .collect();
            let surveys: Vec<Value> = data
                .surveys
                .iter()
                .map(|s| email_survey::render(s, offset))
                .collect();
            accounts.insert(
                token,
                json!({"end_users": users, "responses": resp, "declines": decl, "email_surveys": surveys}),
            );
        }
        json!({"now": now, "accounts": accounts})
    }
}
