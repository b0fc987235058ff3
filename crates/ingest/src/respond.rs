//! The answers: exactly `200 {"success": true}` on success (older analytics-python
//! accepts nothing else), per-event `results` for batches, JSON errors otherwise. Also
//! counts and logs each event's fate, in this one place.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
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
        _ => success(None),
    }
}

/// A request that carries no event, taken: `200 {"success": true}`.
pub fn ok() -> Response {
    success(None)
}

/// A batch request: 200 with one result per event, whatever became of each. A rejection
/// whose code, path and message repeat an earlier one's names that one (`same_as`)
/// instead of repeating the message, so the answer stays proportional to the request.
pub fn batch(results: Vec<ItemResult>) -> Response {
    let mut first_of: HashMap<(ErrorCode, Option<String>, String), usize> = HashMap::new();
    let list = results
        .into_iter()
        .enumerate()
        .map(|(index, result)| match result.status {
            Status::Rejected(error) => {
                let key = (error.code, error.path.clone(), error.message.clone());
                let earlier = *first_of.entry(key).or_insert(index);
                let mut json = result_json(index, Status::Rejected(error));
                if earlier != index {
                    if let Value::Object(fields) = &mut json {
                        fields.shift_remove("message");
                        fields.insert("same_as".into(), earlier.into());
                    }
                }
                json
            }
            status => result_json(index, status),
        })
        .collect();
    success(Some(list))
}

fn success(results: Option<Vec<Value>>) -> Response {
    let body = match results {
        None => json!({"success": true}),
        Some(results) => json!({"success": true, "results": results}),
    };
    (StatusCode::OK, Json(body)).into_response()
}

fn result_json(index: usize, status: Status) -> Value {
    let mut fields = Map::new();
    fields.insert("index".into(), index.into());
    match status {
        Status::Accepted => {
            fields.insert("status".into(), "accepted".into());
        }
        Status::Duplicate => {
            fields.insert("status".into(), "duplicate".into());
        }
        Status::Skipped(reason) => {
            fields.insert("status".into(), "skipped".into());
            fields.insert("reason".into(), reason.into());
        }
        Status::Rejected(error) => {
            fields.insert("status".into(), "rejected".into());
            if let Ok(Value::Object(error)) = serde_json::to_value(&error) {
                for (key, value) in error {
                    if key != "index" {
                        fields.insert(key, value);
                    }
                }
            }
        }
    }
    Value::Object(fields)
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
