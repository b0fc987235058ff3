//! Email surveys of several users in one call: InMoment takes up to 100 emails per
//! `POST /v1/email_survey`, and every call counts against its rate limit. Surveys of one
//! source with the same fields (subject, intro, delay, properties: `end_user[properties]`
//! applies to every email of a call) that arrive within a short window go out together;
//! each user's delivery then settles with the one answer. Other calls pass straight through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::email_survey::MAX_EMAILS_PER_CALL;
use inmoment_core::InMomentCall;
use tokio::sync::oneshot;

use super::attempt::{Attempt, Deliver};

/// How long a survey waits for others to share its call: short against the time a user
/// waits for a survey email, long against the time delivery settles a round of calls.
pub const SURVEY_BATCH_WINDOW: Duration = Duration::from_millis(200);

/// Surveys that can share a call: same source and fields, and all with external ids or
/// none (the two lists are paired by position).
type Key = (String, String, bool);

/// Surveys waiting for their window to close.
struct Waiting {
    emails: Vec<String>,
    external_ids: Vec<String>,
    first: InMomentCall,
    answers: Vec<oneshot::Sender<Attempt>>,
}

struct Shared<D> {
    inner: Arc<D>,
    window: Duration,
    waiting: Mutex<HashMap<Key, Waiting>>,
}

/// Wraps a sender so concurrent email surveys share calls (see the module docs).
pub struct SurveyBatcher<D: Deliver> {
    shared: Arc<Shared<D>>,
}

impl<D: Deliver> SurveyBatcher<D> {
    /// Surveys wait at most `window` for others to join them.
    pub fn new(inner: Arc<D>, window: Duration) -> SurveyBatcher<D> {
        SurveyBatcher {
            shared: Arc::new(Shared {
                inner,
                window,
                waiting: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl<D: Deliver> Shared<D> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends what waits under `key` as one call and gives every waiter the answer.
    async fn flush(&self, source: &str, key: &Key) {
        let waiting = self.lock().remove(key);
        if let Some(waiting) = waiting {
            self.send(source, waiting).await;
        } // else flushed already (full before the window closed)
    }

    async fn send(&self, source: &str, waiting: Waiting) {
        let call = match waiting.first {
            InMomentCall::EmailSurvey {
                message_id, fields, ..
            } => InMomentCall::EmailSurvey {
                message_id,
                emails: waiting.emails,
                external_ids: waiting.external_ids,
                fields,
            },
            other => other,
        };
        let attempt = self.inner.deliver(source, &call).await;
        for answer in waiting.answers {
            let _ = answer.send(attempt.clone());
        }
    }
}

#[async_trait]
impl<D: Deliver> Deliver for SurveyBatcher<D> {
    async fn deliver(&self, source: &str, call: &InMomentCall) -> Attempt {
        let InMomentCall::EmailSurvey {
            emails,
            external_ids,
            fields,
            ..
        } = call
        else {
            return self.shared.inner.deliver(source, call).await;
        };
        let fields_text = serde_json::to_string(fields).unwrap_or_default();
        let key: Key = (source.to_string(), fields_text, !external_ids.is_empty());
        let (answer, answered) = oneshot::channel();
        // A survey that would overflow the waiting call sends that one first.
        let overflowing = {
            let mut waiting = self.shared.lock();
            let overflow = waiting
                .get(&key)
                .is_some_and(|w| w.emails.len() + emails.len() > MAX_EMAILS_PER_CALL);
            if overflow {
                waiting.remove(&key)
            } else {
                None
            }
        };
        if let Some(full) = overflowing {
            self.shared.send(source, full).await;
        }
        let (opened, full) = {
            let mut waiting = self.shared.lock();
            let opened = !waiting.contains_key(&key);
            let entry = waiting.entry(key.clone()).or_insert_with(|| Waiting {
                emails: Vec::new(),
                external_ids: Vec::new(),
                first: call.clone(),
                answers: Vec::new(),
            });
            entry.emails.extend(emails.iter().cloned());
            entry.external_ids.extend(external_ids.iter().cloned());
            entry.answers.push(answer);
            (opened, entry.emails.len() >= MAX_EMAILS_PER_CALL)
        };
        if full {
            self.shared.flush(source, &key).await;
        } else if opened {
            let shared = self.shared.clone();
            let source = source.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(shared.window).await;
                shared.flush(&source, &key).await;
            });
        }
        answered.await.unwrap_or(Attempt::Retry {
            status: None,
            reason: "the batched email survey call was cut off".into(),
            retry_after: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inmoment_core::Params;

    /// Records the emails of every call it gets.
    #[derive(Default)]
    struct Calls(Mutex<Vec<Vec<String>>>);

    #[async_trait]
    impl Deliver for Calls {
        async fn deliver(&self, _: &str, call: &InMomentCall) -> Attempt {
            if let InMomentCall::EmailSurvey { emails, .. } = call {
                self.0.lock().unwrap().push(emails.clone());
            }
            Attempt::Delivered {
                status: 201,
                eligible: None,
            }
        }
    }

    fn survey(n: usize, plan: &str) -> InMomentCall {
        let mut fields = Params::new();
        fields.push("end_user[properties][plan]", plan);
        InMomentCall::EmailSurvey {
            message_id: format!("m{n}"),
            emails: vec![format!("u{n}@example.com")],
            external_ids: vec![format!("u{n}")],
            fields,
        }
    }

    async fn send_all(batcher: Arc<SurveyBatcher<Calls>>, calls: Vec<InMomentCall>) -> usize {
        let tasks: Vec<_> = calls
            .into_iter()
            .map(|call| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.deliver("web", &call).await })
            })
            .collect();
        let mut delivered = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Attempt::Delivered { .. }) {
                delivered += 1;
            }
        }
        delivered
    }

    #[tokio::test]
    async fn surveys_with_the_same_fields_share_calls_of_at_most_100_emails() {
        let inner = Arc::new(Calls::default());
        let batcher = Arc::new(SurveyBatcher::new(inner.clone(), Duration::from_millis(50)));
        let mut calls: Vec<InMomentCall> = (0..150).map(|n| survey(n, "pro")).collect();
        calls.extend((150..153).map(|n| survey(n, "free")));
        assert_eq!(
            send_all(batcher, calls).await,
            153,
            "every survey got the answer"
        );
        let mut sizes: Vec<usize> = inner.0.lock().unwrap().iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [3, 50, 100]);
    }

    #[tokio::test]
    async fn other_calls_pass_straight_through() {
        let inner = Arc::new(Calls::default());
        let batcher = SurveyBatcher::new(inner.clone(), Duration::from_secs(3600));
        let check = InMomentCall::CreateDecline {
            message_id: "d".into(),
            end_user: inmoment_core::EndUserRef {
                external_id: Some("u".into()),
                email: None,
            },
            fields: Params::new(),
        };
        // Would hang for an hour if it waited for a window.
        let attempt = batcher.deliver("web", &check).await;
        assert!(matches!(attempt, Attempt::Delivered { .. }));
    }
}
