//! The answers: exactly `200 {"success": true}` on success (older analytics-python
//! accepts nothing else), per-event `results` for batches, JSON errors otherwise. Also
//! counts and logs each event's fate, in this one place.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::BoxError;

use super::error::{ApiError, ErrorCode};
use super::log_budget::LogBudget;
use super::{ItemResult, Status};
use crate::metrics::Metrics;
use inmoment_store::accept::AcceptError;

/// How long a shed or timed-out client should wait.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A single-event request: 200 unless the event was rejected (400 with code/message/path).
pub fn single(mut results: Vec<ItemResult>) -> Response {
    match results.pop().map(|r| r.status) {
        Some(Status::Rejected(mut error)) => {
            error.index = None;
            refuse(error)
        }
        _ => success(),
    }
}

/// A request that carries no event, taken: `200 {"success": true}`.
pub fn ok() -> Response {
    success()
}

/// A batch request: 200 with one result per event, whatever became of each. A rejection
/// whose code, path and message repeat an earlier one's names that one (`same_as`)
/// instead of repeating the message, so the answer stays proportional to the request.
pub fn batch(results: Vec<ItemResult>) -> Response {
    let mut first_of: HashMap<(ErrorCode, Option<String>, String), usize> = HashMap::new();
    let results = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| match result.status {
            Status::Accepted => Answer::plain(index, "accepted", None),
            Status::Duplicate => Answer::plain(index, "duplicate", None),
            Status::Skipped(reason) => Answer::plain(index, "skipped", Some(reason)),
            Status::Rejected(error) => {
                let key = (error.code, error.path.clone(), error.message.clone());
                let earlier = *first_of.entry(key).or_insert(index);
                let mut json = rejected_json(index, &error);
                if earlier != index {
                    json.shift_remove("message");
                    json.insert("same_as".into(), earlier.into());
                }
                Answer::Rejected(json)
            }
        })
        .collect();
    (
        StatusCode::OK,
        Json(BatchAnswer {
            success: true,
            results,
        }),
    )
        .into_response()
}

/// The answer to a batch; written straight to text, since a batch of 100 accepted events
/// would otherwise build 100 small maps to be thrown away.
#[derive(Serialize)]
struct BatchAnswer {
    success: bool,
    results: Vec<Answer>,
}

/// One event's result in a batch answer.
#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    /// Accepted, duplicate or skipped (with why).
    Plain {
        index: usize,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Rejected: the error's fields (rare, so built as a map).
    Rejected(Map<String, Value>),
}

impl Answer {
    fn plain(index: usize, status: &'static str, reason: Option<String>) -> Answer {
        Answer::Plain {
            index,
            status,
            reason,
        }
    }
}

fn success() -> Response {
    (StatusCode::OK, Json(json!({"success": true}))).into_response()
}

fn rejected_json(index: usize, error: &ApiError) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("index".into(), index.into());
    fields.insert("status".into(), "rejected".into());
    if let Ok(Value::Object(error)) = serde_json::to_value(error) {
        for (key, value) in error {
            if key != "index" {
                fields.insert(key, value);
            }
        }
    }
    fields
}

/// An error answer for the whole request (logged by the app's `measure` layer).
pub fn refuse(error: ApiError) -> Response {
    error.into_response()
}

/// What a failure of the stack means for the client: always retryable, never a 200.
pub fn stack_error(error: &BoxError) -> ApiError {
    if let Some(AcceptError::Unavailable {
        reason,
        retry_after,
    }) = error.downcast_ref::<AcceptError>()
    {
        return ApiError::retry_later(
            ErrorCode::Unavailable,
            format!("events not stored: {reason}; retry later"),
            *retry_after,
        );
    }
    if error.is::<Overloaded>() {
        return ApiError::retry_later(
            ErrorCode::Overloaded,
            "too many requests in flight; retry later",
            BUSY_RETRY_AFTER,
        );
    }
    if error.is::<Elapsed>() {
        return ApiError::retry_later(
            ErrorCode::Timeout,
            "storing the events took too long (request_timeout_ms); retry later",
            BUSY_RETRY_AFTER,
        );
    }
    ApiError::new(ErrorCode::Internal, format!("events not stored: {error}"))
}

/// Counts each event by type and fate, and logs rejections with where they failed (as
/// many as the log budget allows).
pub fn record(metrics: &Metrics, budget: &LogBudget, source: &str, results: &[ItemResult]) {
    for (index, result) in results.iter().enumerate() {
        let kind = result.kind;
        let message_id = result.message_id.as_deref().unwrap_or_default();
        metrics.event_received(kind);
        match &result.status {
            Status::Accepted => {
                metrics.event_accepted(kind);
                tracing::debug!(source, message_id, event_type = kind, "Event accepted.");
            }
            Status::Duplicate => {
                metrics.event_duplicate(kind);
                tracing::debug!(
                    source,
                    message_id,
                    event_type = kind,
                    "Duplicate event not stored again."
                );
            }
            Status::Skipped(reason) => {
                metrics.event_skipped(kind, reason);
                tracing::debug!(source, message_id, event_type = kind, reason = %reason, "Event accepted without InMoment calls.");
            }
            Status::Rejected(error) => {
                metrics.event_rejected(kind, error.code.as_str());
                if !budget.allow() {
                    continue;
                }
                tracing::info!(
                    source,
                    message_id,
                    event_type = kind,
                    index,
                    code = error.code.as_str(),
                    path = error.path.as_deref().unwrap_or_default(),
                    error = %error.message,
                    "Event rejected."
                );
            }
        }
    }
}
