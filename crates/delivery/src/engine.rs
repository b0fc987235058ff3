//! The delivery scheduler: one task that owns who is busy, so per-user order needs no locks.
//!
//! It reads the journal in id order (acceptance order), a batch at a time. A user with a
//! row in delivery (a call in flight or waiting for a retry) is "busy": the scan holds
//! their later rows in memory, in order, up to a bound across users; past it, it only
//! notes the last one it skipped, and the user's next row is read from the id range
//! between the two (the store keeps no per-user index: it would make every accepted event
//! a random write). Each row is mapped when it is started (see `prepare.rs`) with the
//! user's state, kept from their previous row while they stay busy, and its calls go one
//! at a time; the progress, and the user's state once the row finishes, are committed
//! with each result. New commits wake the scan; a periodic rescan from the start catches
//! rows replayed by another process.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use inmoment_core::{Settings, UserState};

use super::attempt::{Attempt, Deliver, DeliveryObserver};
use super::backoff::{Backoff, Jitter};
use super::prepare::{prepare, Job, Mapping};
use inmoment_core::email_survey::after_answer;
use inmoment_store::{DeadCall, Journal, JournalError, PendingRow, Settlement, StateUpdate};

/// How the engine paces itself.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Calls in flight at once, across users.
    pub max_in_flight: usize,
    pub backoff: Backoff,
    /// Rows read per scan step.
    pub scan_batch: usize,
    /// Rows of busy users held in memory, across users; past it they are read again
    /// when their turn comes.
    pub max_held_rows: usize,
    /// How often the scan restarts from the beginning (replayed dead letters).
    pub rescan_every: Duration,
    /// After shutdown is asked, in-flight attempts get this long to finish.
    pub shutdown_deadline: Duration,
    /// Log every delivered call at info level (the demo); otherwise at debug.
    pub log_deliveries: bool,
    /// Each source's settings, applied when its events are mapped.
    pub sources: HashMap<String, Settings>,
    /// A delivery still running after this counts as a retryable failure. A shared
    /// journal sets it so that no call outlives the lease of the node that started it.
    pub attempt_deadline: Option<Duration>,
}

impl Default for DeliveryConfig {
    fn default() -> DeliveryConfig {
        DeliveryConfig {
            max_in_flight: 64,
            backoff: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(300),
                max_elapsed: Duration::from_secs(24 * 3600),
            },
            scan_batch: 512,
            max_held_rows: 16_384,
            rescan_every: Duration::from_secs(30),
            shutdown_deadline: Duration::from_secs(10),
            log_deliveries: false,
            sources: HashMap::new(),
            attempt_deadline: None,
        }
    }
}

type UserKey = (String, String);

/// A busy user: the row in delivery (`head`), and the highest id of theirs the scan has
/// passed meanwhile (their later rows all lie in `head..=last_skipped`).
#[derive(Debug, Default)]
struct Busy {
    head: i64,
    last_skipped: i64,
    /// The head row finished (committed): the next start is the user's next row.
    head_done: bool,
    /// The first of the later rows, in order, held so starting them needs no read.
    held: VecDeque<PendingRow>,
    /// Later rows past `held` were not kept (the bound was reached): read them.
    unheld: bool,
    /// The user's state as their last finished row left it, when known.
    state: Option<UserState>,
}

/// A row's call settled, or (`attempt` none) a row with nothing to send.
struct Done {
    job: Job,
    attempt: Option<Attempt>,
}

/// A settlement batch being committed in the background, and what to do for each of its
/// users once it is. The users are kept here, not in the task, so a task that fails
/// cannot strand them.
struct Commit {
    task: JoinHandle<Result<(), JournalError>>,
    next: Vec<AfterCommit>,
    /// When the batch was settled (ms): a failed commit retries a second after.
    now: i64,
    any_dead: bool,
}

/// What to do for a user once their settlement is committed.
struct AfterCommit {
    key: UserKey,
    /// When to retry; none: go on now.
    retry_at: Option<i64>,
    /// Whether the row finished, and then the state it left (none: read it when needed).
    finished: bool,
    state: Option<UserState>,
}

/// Runs delivery until shutdown; see the module docs.
pub struct Engine<D: Deliver> {
    store: Arc<dyn Journal>,
    deliver: Arc<D>,
    observer: Arc<dyn DeliveryObserver>,
    config: DeliveryConfig,
    busy: HashMap<UserKey, Busy>,
    /// Rows read by the scan and not yet looked at; the cursor is the last one's id.
    lookahead: VecDeque<PendingRow>,
    /// States of users in `lookahead` who were idle when it was read, fetched in one read
    /// where the store offers it (a shared database), taken when each user starts.
    prefetched: HashMap<UserKey, UserState>,
    /// Rows in all `Busy::held`.
    held_rows: usize,
    timers: BTreeSet<(i64, UserKey)>,
    in_flight: usize,
    cursor: i64,
    at_end: bool,
    stopping: bool,
    /// Retryable failures in a row, across users; reset by any success.
    failures_in_a_row: u32,
    /// While InMoment looks down, no new user is started before this instant (ms); the
    /// users already waiting for a retry act as probes. Keeps memory flat in an outage.
    paused_until_ms: i64,
    pauses: u32,
    jitter: Jitter,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// The settlement batch being committed; the next one waits for it (and grows).
    commit: Option<Commit>,
}

impl<D: Deliver> Engine<D> {
    pub fn new(
        store: Arc<dyn Journal>,
        deliver: Arc<D>,
        observer: Arc<dyn DeliveryObserver>,
        config: DeliveryConfig,
    ) -> Engine<D> {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Engine {
            store,
            deliver,
            observer,
            config,
            busy: HashMap::new(),
            lookahead: VecDeque::new(),
            prefetched: HashMap::new(),
            held_rows: 0,
            timers: BTreeSet::new(),
            in_flight: 0,
            cursor: 0,
            at_end: false,
            stopping: false,
            failures_in_a_row: 0,
            paused_until_ms: 0,
            pauses: 0,
            jitter: Jitter::from_clock(),
            done_tx,
            done_rx,
            commit: None,
        }
    }

    /// Delivers until `shutdown` resolves, then lets in-flight attempts finish within the
    /// deadline. Whatever is not settled stays pending for the next start.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut rescan = tokio::time::interval(self.config.rescan_every);
        rescan.tick().await;
        loop {
            if self.store.take_rescan() {
                self.restart_scan();
            }
            // Users already under way go before new ones: their next rows are held in
            // memory with their state, and each user started anew costs a state read.
            self.wake_due().await;
            self.fill().await;
            let has_room = self.in_flight < self.config.max_in_flight;
            let paused = self.paused_until_ms > now_ms();
            let resume_at = instant_at(self.paused_until_ms);
            let next_timer = self.timers.first().map(|(ms, _)| instant_at(*ms));
            let store = self.store.clone();
            let can_settle = self.commit.is_none();
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                result = committed(&mut self.commit) => self.after_commit(result).await,
                Some(done) = self.done_rx.recv(), if can_settle => self.settle(done),
                () = sleep_until(next_timer.unwrap_or_else(far_future)), if has_room && next_timer.is_some() => self.wake_due().await,
                () = store.new_work(), if self.at_end && !paused => self.at_end = false,
                () = sleep_until(resume_at), if paused => {}
                _ = rescan.tick() => {
                    self.restart_scan();
                    self.report_dead_letters().await;
                }
            }
        }
        self.drain().await;
    }

    /// Reads the journal from its start again: rows replayed by another process, or
    /// handed over from another node, may lie behind the cursor.
    fn restart_scan(&mut self) {
        self.cursor = 0;
        self.lookahead.clear();
        self.prefetched.clear();
        self.at_end = false;
    }

    /// Reads forward and dispatches until the scan reaches the end or there is no room.
    async fn fill(&mut self) {
        if self.paused_until_ms > now_ms() {
            return;
        }
        while self.in_flight < self.config.max_in_flight {
            let Some(row) = self.next_scanned().await else {
                return;
            };
            let key = (row.source.clone(), row.user_key.clone());
            let Some(busy) = self.busy.get_mut(&key) else {
                self.start(key, row).await;
                continue;
            };
            // A rescan passes rows already held or noted: only later ones are new.
            if row.id <= busy.last_skipped {
                continue;
            }
            busy.last_skipped = row.id;
            if !busy.unheld && self.held_rows < self.config.max_held_rows {
                busy.held.push_back(row);
                self.held_rows += 1;
            } else {
                busy.unheld = true;
            }
        }
    }

    /// The next row in id order, reading a batch when none is left; none at the end.
    async fn next_scanned(&mut self) -> Option<PendingRow> {
        if self.lookahead.is_empty() && !self.at_end {
            match self
                .store
                .scan_after(self.cursor, self.config.scan_batch)
                .await
            {
                Ok(rows) => {
                    self.at_end = rows.is_empty();
                    if let Some(last) = rows.last() {
                        self.cursor = last.id;
                    }
                    self.prefetch_states(&rows).await;
                    self.lookahead.extend(rows);
                }
                Err(error) => {
                    tracing::error!(%error, "Could not read pending calls; retrying shortly.");
                    self.at_end = true;
                }
            }
        }
        self.lookahead.pop_front()
    }

    /// Reads the states of the idle users among `rows` at once, when the store can. Only
    /// idle users: nothing of theirs is in flight here, so their stored state is current
    /// until they start (a busy user's state is kept in `Busy` instead).
    async fn prefetch_states(&mut self, rows: &[PendingRow]) {
        let mut seen = HashSet::new();
        let mut users: Vec<UserKey> = Vec::new();
        for row in rows.iter().filter(|row| !row.is_call()) {
            let key = (row.source.clone(), row.user_key.clone());
            let idle = !self.busy.contains_key(&key) && !self.prefetched.contains_key(&key);
            if idle && seen.insert(key.clone()) {
                users.push(key);
            }
        }
        if users.is_empty() {
            return;
        }
        match self.store.user_states(&users).await {
            Ok(Some(states)) => self.prefetched.extend(states),
            Ok(None) => {}
            // Each user's state is read when they start instead.
            Err(error) => tracing::debug!(%error, "Could not read users' states ahead."),
        }
    }

    /// Starts the user's head row now (its next call), or waits for its retry time.
    async fn start(&mut self, key: UserKey, row: PendingRow) {
        if self.stopping {
            return;
        }
        if !self.store.owns(&key.0, &key.1) {
            // Another node delivers this user now (or will, once this node's lease on
            // them lapses): forget them; a later takeover finds their rows again.
            if let Some(busy) = self.busy.remove(&key) {
                self.held_rows -= busy.held.len();
            }
            return;
        }
        let busy = self.busy.entry(key.clone()).or_insert_with(|| Busy {
            last_skipped: row.id,
            ..Busy::default()
        });
        busy.head = row.id;
        busy.head_done = false;
        if busy.state.is_none() {
            busy.state = self.prefetched.remove(&key);
        }
        let known = busy.state.clone();
        if row.next_attempt_ms > now_ms() {
            self.timers.insert((row.next_attempt_ms, key));
            return;
        }
        let mapping = Mapping {
            registry: self.store.registry(),
            sources: &self.config.sources,
        };
        let job = match prepare(row, known, &mapping, &*self.store).await {
            Ok(job) => job,
            Err(error) => {
                tracing::error!(%error, "Could not read a user's state; retrying in a second.");
                self.timers.insert((now_ms() + 1000, key));
                return;
            }
        };
        self.in_flight += 1;
        let done = self.done_tx.clone();
        let Some(call) = job.call.clone() else {
            let _ = done.send(Done { job, attempt: None });
            return;
        };
        let deliver = self.deliver.clone();
        let deadline = self.config.attempt_deadline;
        tokio::spawn(async move {
            let attempt = match deadline {
                None => deliver.deliver(&job.source, &call).await,
                Some(deadline) => {
                    tokio::time::timeout(deadline, deliver.deliver(&job.source, &call))
                        .await
                        .unwrap_or_else(|_| Attempt::Retry {
                            status: None,
                            reason: format!(
                                "no answer within {} ms (the lease deadline of a shared store)",
                                deadline.as_millis()
                            ),
                            retry_after: None,
                        })
                }
            };
            let _ = done.send(Done {
                job,
                attempt: Some(attempt),
            });
        });
    }

    async fn wake_due(&mut self) {
        let now = now_ms();
        while self.in_flight < self.config.max_in_flight {
            let Some((ms, key)) = self.timers.first().cloned() else {
                return;
            };
            if ms > now {
                return;
            }
            self.timers.remove(&(ms, key.clone()));
            self.advance(key).await;
        }
    }

    /// Starts a busy user's oldest pending row (the head again, for its next call or a
    /// retry, else the next one the scan passed); a user with none left is no longer busy.
    async fn advance(&mut self, key: UserKey) {
        let Some(busy) = self.busy.get_mut(&key) else {
            return;
        };
        if busy.head_done {
            if let Some(row) = busy.held.pop_front() {
                self.held_rows -= 1;
                self.start(key, row).await;
                return;
            }
            if !busy.unheld {
                self.busy.remove(&key);
                return;
            }
        }
        let (head, upto) = (busy.head, busy.head.max(busy.last_skipped));
        match self.store.next_of_user(&key.0, &key.1, head, upto).await {
            Ok(Some(row)) => {
                // Read past held rows (the head was gone): they are not started twice.
                if let Some(busy) = self.busy.get_mut(&key) {
                    while busy.held.front().is_some_and(|held| held.id <= row.id) {
                        busy.held.pop_front();
                        self.held_rows -= 1;
                    }
                }
                self.start(key, row).await
            }
            Ok(None) => {
                if let Some(busy) = self.busy.remove(&key) {
                    self.held_rows -= busy.held.len();
                }
            }
            Err(error) => {
                tracing::error!(%error, "Could not read a user's next event; retrying in a second.");
                self.timers.insert((now_ms() + 1000, key));
            }
        }
    }

    /// Settles this result and every other one already waiting, in one commit made in
    /// the background: the engine goes on starting other users' rows meanwhile (these
    /// users stay busy until it is done), and results arriving make the next, larger
    /// commit once this one is over.
    fn settle(&mut self, first: Done) {
        let mut batch = vec![first];
        while let Ok(done) = self.done_rx.try_recv() {
            batch.push(done);
        }
        self.in_flight -= batch.len();
        let now = now_ms();
        let mut updates = Vec::with_capacity(batch.len());
        let mut next = Vec::with_capacity(batch.len());
        for Done { mut job, attempt } in batch {
            let age = Duration::from_millis(u64::try_from(now - job.accepted_at_ms).unwrap_or(0));
            let key = (job.source.clone(), job.user_key.clone());
            let (update, retry_at) = match attempt {
                Some(attempt) => {
                    if let Attempt::Delivered {
                        eligible: Some(eligible),
                        ..
                    } = &attempt
                    {
                        updates.extend(self.email_survey(&mut job, *eligible, now));
                    }
                    let kind = job.call.as_ref().map_or("call", |c| c.kind());
                    let attempts = job.attempts + 1;
                    let (update, outcome, status, retry_at) =
                        self.decide(&job, attempt, attempts, age, now);
                    self.note_health(outcome, status);
                    self.observer.settled(kind, outcome, status, age);
                    (update, retry_at)
                }
                None => (self.nothing_to_send(&job), None),
            };
            let finished = matches!(update, Settlement::Finished { .. });
            updates.push(update);
            next.push(AfterCommit {
                key,
                retry_at,
                finished,
                state: job.state,
            });
        }
        let any_dead = updates.iter().any(|u| {
            matches!(
                u,
                Settlement::Progress { dead: Some(_), .. }
                    | Settlement::Finished { dead: Some(_), .. }
            )
        });
        let store = self.store.clone();
        self.commit = Some(Commit {
            task: tokio::spawn(async move { store.settle(updates).await }),
            next,
            now,
            any_dead,
        });
    }

    /// Moves each user of a committed batch on: their next call or row, or a retry
    /// timer. A failed commit leaves the rows pending; they are tried again in a second.
    async fn after_commit(&mut self, result: Result<(), JournalError>) {
        let Some(Commit {
            next,
            now,
            any_dead,
            ..
        }) = self.commit.take()
        else {
            return;
        };
        if let Err(error) = result {
            tracing::error!(%error, "Could not record delivery results; they stay pending and are retried.");
            for AfterCommit { key, .. } in next {
                self.timers.insert((now + 1000, key));
            }
            return;
        }
        self.observer.queue_depth(self.store.pending());
        if any_dead {
            self.report_dead_letters().await;
        }
        for AfterCommit {
            key,
            retry_at,
            finished,
            state,
        } in next
        {
            // A finished row leaves the user's state for their next row.
            if let Some(busy) = self.busy.get_mut(&key).filter(|_| finished) {
                busy.head_done = true;
                busy.state = state;
            }
            match retry_at {
                Some(at) => {
                    self.timers.insert((at, key));
                }
                None => {
                    if self.in_flight < self.config.max_in_flight {
                        self.advance(key).await;
                    } else {
                        self.timers.insert((now_ms(), key));
                    }
                }
            }
        }
    }

    /// What an eligibility answer means for an email survey (sources with
    /// `survey_channel = "email"`): the settlement that queues the survey after this row,
    /// with the time kept in the user's state (so a replay or another node does not
    /// survey them again within the interval), or none; the decision is logged and counted.
    fn email_survey(&self, job: &mut Job, eligible: bool, now_ms: i64) -> Option<Settlement> {
        let survey = job.survey.take()?;
        let settings = &self.config.sources.get(&job.source)?.email_survey;
        let last = job
            .state
            .as_ref()
            .and_then(|state| state.last_email_survey_at);
        let now_secs = now_ms / 1000;
        let call = match survey
            .and_then(|call| after_answer(settings, eligible, last, now_secs).map(|()| call))
        {
            Ok(call) => call,
            Err(skip) => {
                self.observer.email_survey(skip.label());
                tracing::info!(message_id = job.message_id, user = %job.user_key, decision = %skip.reason(), "No email survey.");
                return None;
            }
        };
        let text = serde_json::to_string(&call).ok()?;
        let mut state = job.state.clone().unwrap_or_default();
        state.last_email_survey_at = Some(now_secs);
        job.state_after = serde_json::to_string(&state).ok().map(|text| StateUpdate {
            source: job.source.clone(),
            user_key: job.user_key.clone(),
            state: text,
        });
        job.state = Some(state);
        self.observer.email_survey("sent");
        tracing::info!(message_id = job.message_id, user = %job.user_key, decision = "sent", "Email survey queued.");
        Some(Settlement::Survey {
            id: job.id,
            call: text,
        })
    }

    /// A row with no call (left) to send: it finishes, or is parked whole when it cannot
    /// be mapped.
    fn nothing_to_send(&self, job: &Job) -> Settlement {
        if let Some(reason) = &job.unmappable {
            tracing::warn!(message_id = job.message_id, %reason, "An event cannot be delivered; parked as a dead letter.");
            return Settlement::Finished {
                id: job.id,
                state: None,
                delivered: None,
                dead: Some(DeadCall {
                    kind: "unmapped".into(),
                    call: job.body.clone(),
                    attempts: 0,
                    status: None,
                    reason: reason.clone(),
                }),
            };
        }
        if let Some(reason) = job.skipped {
            self.observer.skipped(&job.event_type, reason.as_str());
        }
        Settlement::Finished {
            id: job.id,
            state: job.state_after.clone(),
            dead: None,
            delivered: None,
        }
    }

    /// What to record for one attempt: the settlement, the outcome name for metrics, the
    /// status, and when to retry (for a retry).
    fn decide(
        &mut self,
        job: &Job,
        attempt: Attempt,
        attempts: i64,
        age: Duration,
        now: i64,
    ) -> (Settlement, &'static str, Option<u16>, Option<i64>) {
        let kind = job.call.as_ref().map_or("call", |c| c.kind());
        let call_text = || {
            job.call
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok())
                .unwrap_or_default()
        };
        let park = |status: Option<u16>, reason: String| {
            let dead = DeadCall {
                kind: kind.to_string(),
                call: call_text(),
                attempts,
                status,
                reason,
            };
            (settled(job, Some(dead), None), "dead", status, None)
        };
        match attempt {
            Attempt::Delivered { status, eligible } => {
                if let Some(eligible) = eligible {
                    self.observer.eligibility(eligible);
                }
                let message_id = job.message_id.as_str();
                if self.config.log_deliveries {
                    tracing::info!(kind, status, eligible, user = %job.user_key, message_id, "Delivered.");
                } else {
                    tracing::debug!(kind, status, eligible, message_id, "Delivered.");
                }
                (
                    settled(job, None, Some(call_text())),
                    "delivered",
                    Some(status),
                    None,
                )
            }
            Attempt::Permanent { status, reason } => {
                tracing::warn!(kind, status, %reason, attempts, "Delivery failed for good; parked as a dead letter.");
                park(status, reason)
            }
            Attempt::Retry { status, reason, .. } if age >= self.config.backoff.max_elapsed => {
                let reason = format!(
                    "gave up after {attempts} attempts over {}s: {reason}",
                    age.as_secs()
                );
                tracing::warn!(kind, status, %reason, "Retries exhausted; parked as a dead letter.");
                park(status, reason)
            }
            Attempt::Retry {
                status,
                reason,
                retry_after,
            } => {
                let pause = self
                    .config
                    .backoff
                    .delay(
                        u32::try_from(attempts).unwrap_or(u32::MAX),
                        self.jitter.next_f64(),
                    )
                    .max(retry_after.unwrap_or_default());
                // +1 ms: `now` is truncated to the millisecond, and a pause InMoment asked
                // for must never be cut short.
                let at = now + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 2) + 1;
                tracing::info!(kind, status, %reason, attempts, retry_in_ms = pause.as_millis() as u64, "Delivery will be retried.");
                let update = Settlement::Retry {
                    id: job.id,
                    attempts,
                    next_attempt_ms: at,
                    error: reason,
                };
                (update, "retry", status, Some(at))
            }
        }
    }

    /// Counts retryable failures in a row (connection errors, timeouts, 5xx, 429: InMoment
    /// down or pushing back) and pauses new work once a full round of them failed.
    fn note_health(&mut self, outcome: &str, status: Option<u16>) {
        let pushing_back = status.is_none_or(|s| s == 429 || s >= 500);
        if outcome == "delivered" {
            self.failures_in_a_row = 0;
            self.pauses = 0;
            self.paused_until_ms = 0;
            return;
        }
        if outcome != "retry" || !pushing_back {
            return;
        }
        self.failures_in_a_row += 1;
        if self.failures_in_a_row >= self.config.max_in_flight as u32 {
            self.failures_in_a_row = 0;
            self.pauses += 1;
            let pause = self
                .config
                .backoff
                .delay(self.pauses + 1, 1.0)
                .max(self.config.backoff.base);
            self.paused_until_ms =
                now_ms() + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 2);
            tracing::warn!(
                pause_ms = pause.as_millis() as u64,
                "InMoment looks unavailable; pausing new deliveries (waiting calls keep probing)."
            );
        }
    }

    async fn report_dead_letters(&self) {
        match self.store.dead_letter_count().await {
            Ok(count) => self.observer.dead_letters(count),
            Err(error) => tracing::warn!(%error, "Could not count dead letters."),
        }
    }

    /// Records the results of attempts in flight (starting nothing new) until none is
    /// left or the deadline passes.
    async fn drain(&mut self) {
        self.stopping = true;
        let deadline = Instant::now() + self.config.shutdown_deadline;
        while self.in_flight > 0 || self.commit.is_some() {
            let can_settle = self.commit.is_none();
            tokio::select! {
                result = committed(&mut self.commit) => self.after_commit(result).await,
                Some(done) = self.done_rx.recv(), if can_settle => self.settle(done),
                () = sleep_until(deadline) => {
                    tracing::warn!(in_flight = self.in_flight, "Shutdown deadline reached; unfinished events stay pending.");
                    return;
                }
            }
        }
    }
}

/// The call settled (delivered, with its JSON, or parked): the row moves on to its next
/// call, or finishes with the user's new state.
fn settled(job: &Job, dead: Option<DeadCall>, delivered: Option<String>) -> Settlement {
    if job.is_last() {
        Settlement::Finished {
            id: job.id,
            state: job.state_after.clone(),
            dead,
            delivered,
        }
    } else {
        Settlement::Progress {
            id: job.id,
            done_calls: job.index + 1,
            dead,
            delivered,
        }
    }
}

/// The result of the commit under way; never resolves while there is none.
async fn committed(commit: &mut Option<Commit>) -> Result<(), JournalError> {
    match commit {
        Some(commit) => (&mut commit.task).await.unwrap_or_else(|error| {
            Err(JournalError::Write(format!(
                "the commit task failed: {error}"
            )))
        }),
        None => std::future::pending().await,
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn instant_at(ms: i64) -> Instant {
    let wait = u64::try_from(ms - now_ms()).unwrap_or(0);
    Instant::now() + Duration::from_millis(wait)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}
