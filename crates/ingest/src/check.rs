//! The payload check of the stack: turns each item's JSON into a validated [`Event`]
//! (identity, types, track name: all through `Event::from_value`, whose errors carry the
//! field path), fills a missing `messageId` and settles the timestamps. A bad event is
//! rejected alone; the rest of its batch goes on.

use std::sync::Arc;
use std::task::{Context, Poll};

use inmoment_core::Event;
use tower::Service;

use super::error::{ApiError, ErrorCode};
use super::message_id::new_message_id;
use super::{skew, Input, Status, Submission};
use inmoment_store::accept::Source;

/// Segment's limit on `messageId` length.
const MAX_MESSAGE_ID_CHARS: usize = 100;

/// A request after the payload check.
#[derive(Debug)]
pub struct Checked {
    pub source: Arc<Source>,
    pub slots: Vec<Slot>,
}

/// One event after the check: ready for the acceptor, or already decided.
#[derive(Debug)]
pub struct Slot {
    pub kind: &'static str,
    pub message_id: Option<String>,
    pub event: Result<Event, Status>,
}

/// The payload-check layer's service.
#[derive(Debug, Clone)]
pub struct Check<S> {
    inner: S,
}

impl<S> Check<S> {
    pub fn new(inner: S) -> Check<S> {
        Check { inner }
    }
}

impl<S: Service<Checked>> Service<Submission> for Check<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, submission: Submission) -> Self::Future {
        let checked = check(submission);
        if let [slot] = checked.slots.as_slice() {
            let span = tracing::Span::current();
            span.record("event_type", slot.kind);
            if let Some(id) = &slot.message_id {
                span.record("message_id", id.as_str());
            }
        }
        self.inner.call(checked)
    }
}

fn check(submission: Submission) -> Checked {
    let Submission {
        source,
        received_at,
        clock,
        forced_type,
        items,
    } = submission;
    let received = skew::Received::new(received_at);
    let slots = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let value = match item.input {
                Input::Decided(status) => {
                    return Slot {
                        kind: item.kind,
                        message_id: None,
                        event: Err(status),
                    }
                }
                Input::Json(value) => value,
            };
            let message_id = value
                .get("messageId")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let checked = Event::from_fields(value, forced_type)
                .map_err(|e| ApiError::new(ErrorCode::InvalidEvent, e.message).at_path(e.path))
                .and_then(|mut event| {
                    fill_message_id(&mut event)?;
                    skew::settle(&mut event, &received, &clock)?;
                    // Never keep a write key, even one that arrived under another name's rules.
                    event.extra.shift_remove("writeKey");
                    Ok(event)
                });
            match checked {
                Ok(event) => Slot {
                    kind: event.event_type().as_str(),
                    message_id: event.message_id.clone(),
                    event: Ok(event),
                },
                Err(error) => Slot {
                    kind: item.kind,
                    message_id,
                    event: Err(Status::Rejected(error.at_index(index))),
                },
            }
        })
        .collect();
    Checked { source, slots }
}

fn fill_message_id(event: &mut Event) -> Result<(), ApiError> {
    match &event.message_id {
        Some(id) if id.chars().count() > MAX_MESSAGE_ID_CHARS => Err(ApiError::new(
            ErrorCode::InvalidMessageId,
            format!("messageId is longer than {MAX_MESSAGE_ID_CHARS} characters"),
        )
        .at_path("messageId")),
        Some(_) => Ok(()),
        None => {
            event.message_id = Some(new_message_id());
            Ok(())
        }
    }
}
