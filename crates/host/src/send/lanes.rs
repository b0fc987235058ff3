//! Per-user order with users in parallel. Each user with events waiting has one lane: a
//! task that sends the user's events one after another, each event's calls in order. A
//! user's first event starts the lane; it ends when the user has nothing left queued. How
//! many calls are in flight across lanes is the delivery stack's concurrency limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use inmoment_core::{InMomentCall, SurveySkip};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OwnedSemaphorePermit;

use super::outcome::{Answers, Settled, Verdict};
use inmoment_delivery::{Attempt, Deliver};

/// One event waiting in its user's lane.
#[derive(Debug)]
pub struct Job {
    pub line: u64,
    pub text: Vec<u8>,
    /// The calls to make, or why the event could not be mapped.
    pub work: Result<Vec<InMomentCall>, String>,
    /// The email survey an eligible answer leads to (see `prepare.rs`).
    pub survey: Option<Result<InMomentCall, SurveySkip>>,
    pub slot: OwnedSemaphorePermit,
}

/// The lanes of every user with events waiting or in flight.
pub struct Lanes {
    waiting: Mutex<HashMap<String, VecDeque<Job>>>,
    deliver: Arc<dyn Deliver>,
    source: String,
    settled: UnboundedSender<Settled>,
    /// Users surveyed by email in this run: `send` keeps no state between runs, so
    /// `survey_min_interval_days` holds within one run (InMoment's throttling across).
    surveyed: Mutex<HashSet<String>>,
    /// `survey_min_interval_days` is 0: no limit of ours.
    resurvey: bool,
}

impl Lanes {
    /// Lanes sending with `source`'s client and reporting each settled event to
    /// `settled`; `resurvey`: a user may be surveyed by email more than once in a run.
    pub fn new(
        deliver: Arc<dyn Deliver>,
        source: String,
        settled: UnboundedSender<Settled>,
        resurvey: bool,
    ) -> Arc<Lanes> {
        Arc::new(Lanes {
            waiting: Mutex::new(HashMap::new()),
            deliver,
            source,
            settled,
            surveyed: Mutex::new(HashSet::new()),
            resurvey,
        })
    }

    /// Queues the job behind the user's earlier events, or opens the user's lane.
    pub fn submit(self: &Arc<Self>, user: String, job: Job) {
        let mut waiting = self.lock();
        if let Some(queue) = waiting.get_mut(&user) {
            queue.push_back(job);
            return;
        }
        waiting.insert(user.clone(), VecDeque::new());
        drop(waiting);
        let lanes = Arc::clone(self);
        tokio::spawn(async move { lanes.drain(user, job).await });
    }

    async fn drain(self: Arc<Self>, user: String, first: Job) {
        let mut job = first;
        loop {
            let settled = self.settle(&user, job).await;
            if self.settled.send(settled).is_err() {
                return; // nobody is counting any more: the run is over
            }
            match self.next(&user) {
                Some(next) => job = next,
                None => return,
            }
        }
    }

    /// The user's next job; closes the lane when there is none (under the same lock as
    /// `submit`, so a job is never queued on a lane that has just closed).
    fn next(&self, user: &str) -> Option<Job> {
        let mut waiting = self.lock();
        let next = waiting.get_mut(user).and_then(VecDeque::pop_front);
        if next.is_none() {
            waiting.remove(user);
        }
        next
    }

    /// Whether `user` may be surveyed now (not yet in this run, unless surveys may repeat);
    /// remembers them.
    fn first_survey(&self, user: &str) -> bool {
        let mut surveyed = self.surveyed.lock().unwrap_or_else(PoisonError::into_inner);
        surveyed.insert(user.to_string()) || self.resurvey
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, VecDeque<Job>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn settle(&self, user: &str, job: Job) -> Settled {
        let (mut verdict, mut answers) = match &job.work {
            Ok(calls) => send_calls(self.deliver.as_ref(), &self.source, calls).await,
            Err(reason) => (Verdict::Failed(reason.clone()), Answers::default()),
        };
        if let (Some(Ok(survey)), Verdict::Delivered) = (&job.survey, &verdict) {
            if answers.eligible > 0 && self.first_survey(user) {
                match self.deliver.deliver(&self.source, survey).await {
                    Attempt::Delivered { .. } => answers.surveys += 1,
                    Attempt::Permanent { reason, .. } | Attempt::Retry { reason, .. } => {
                        verdict = Verdict::Failed(format!("email_survey: {reason}"));
                    }
                }
            }
        }
        Settled {
            line: job.line,
            text: job.text,
            verdict,
            answers,
            slot: job.slot,
        }
    }
}

/// Sends the calls of one event in order; the first that fails for good (or still fails
/// after the stack's quick retries) fails the event and the rest are not sent.
pub async fn send_calls(
    deliver: &dyn Deliver,
    source: &str,
    calls: &[InMomentCall],
) -> (Verdict, Answers) {
    let mut answers = Answers::default();
    for call in calls {
        let reason = match deliver.deliver(source, call).await {
            Attempt::Delivered { eligible, .. } => {
                answers.calls += 1;
                match eligible {
                    Some(true) => answers.eligible += 1,
                    Some(false) => answers.not_eligible += 1,
                    None => {}
                }
                continue;
            }
            Attempt::Permanent { reason, .. } => reason,
            Attempt::Retry { reason, .. } => format!("gave up after retries: {reason}"),
        };
        return (
            Verdict::Failed(format!("{}: {reason}", call.kind())),
            answers,
        );
    }
    (Verdict::Delivered, answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use inmoment_core::{Host, HttpRequest, Method, Params};
    use std::time::Duration;
    use tokio::sync::{mpsc, Semaphore};

    /// Answers every call after a pause that shrinks with the line number, so later
    /// events would overtake earlier ones if a user's lane did not keep them in order.
    struct Slow {
        sent: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Deliver for Slow {
        async fn deliver(&self, _: &str, call: &InMomentCall) -> Attempt {
            let n: u64 = call.message_id().parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(20 - n)).await;
            self.sent
                .lock()
                .unwrap()
                .push(call.message_id().to_string());
            if n == 3 {
                return Attempt::Permanent {
                    status: Some(400),
                    reason: "refused".into(),
                };
            }
            Attempt::Delivered {
                status: 200,
                eligible: Some(n % 2 == 0),
            }
        }
    }

    fn check(id: u64) -> InMomentCall {
        InMomentCall::EligibilityCheck {
            message_id: id.to_string(),
            request: HttpRequest {
                method: Method::Get,
                host: Host::Eligibility,
                path: "/eligible.json".into(),
                query: Params::new(),
                form: Params::new(),
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_s_events_go_in_order_and_a_failed_call_stops_its_event() {
        let deliver = Arc::new(Slow {
            sent: Mutex::new(Vec::new()),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let lanes = Lanes::new(deliver.clone(), "default".into(), tx, false);
        let window = Arc::new(Semaphore::new(16));
        for line in 1..=6u64 {
            let user = if line % 2 == 0 { "even" } else { "odd" };
            let calls = if line == 3 {
                vec![check(3), check(4)] // the second call is never sent
            } else {
                vec![check(line)]
            };
            let slot = window.clone().acquire_owned().await.unwrap();
            lanes.submit(
                user.into(),
                Job {
                    line,
                    text: Vec::new(),
                    work: Ok(calls),
                    survey: None,
                    slot,
                },
            );
        }
        drop(lanes);
        let mut settled = Vec::new();
        while let Some(s) = rx.recv().await {
            settled.push((s.line, s.verdict));
        }
        let order = |user_lines: &[u64]| -> Vec<u64> {
            settled
                .iter()
                .map(|(l, _)| *l)
                .filter(|l| user_lines.contains(l))
                .collect()
        };
        assert_eq!(order(&[1, 3, 5]), [1, 3, 5]);
        assert_eq!(order(&[2, 4, 6]), [2, 4, 6]);
        let failed: Vec<_> = settled
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Failed(_)))
            .collect();
        assert_eq!(
            failed,
            [&(3, Verdict::Failed("eligibility_check: refused".into()))]
        );
        let sent = deliver.sent.lock().unwrap();
        assert_eq!(sent.iter().filter(|id| *id == "4").count(), 1, "{sent:?}");
        assert_eq!(window.available_permits(), 16, "every slot came back");
    }
}
