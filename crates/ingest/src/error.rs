//! The one JSON error shape every ingest answer uses: `{code, message, index?, path?, …}`.
//!
//! Older analytics-python reads exactly `code` and `message` from any non-200 body and
//! retries a 400 forever when either is missing, so every error carries both as strings.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What went wrong, as a stable machine-readable code (also the `reason` label of metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// No write key in the `Authorization` header or the body.
    MissingWriteKey,
    /// The write key is not configured.
    InvalidWriteKey,
    /// A batch item's `writeKey` differs from the request's.
    WriteKeyMismatch,
    /// The webhook's `X-Signature` is missing or wrong.
    InvalidSignature,
    /// One event is larger than `max_event_bytes`.
    EventTooLarge,
    /// The whole batch request is larger than `max_batch_bytes`.
    BatchTooLarge,
    /// A batch or webhook array holds more than `max_batch_items` events.
    TooManyItems,
    /// The body is not JSON; the message has the parser's line and column.
    InvalidJson,
    /// The JSON is well formed but not the expected envelope (e.g. no `batch` array).
    InvalidBody,
    /// A content type other than JSON or plain text.
    UnsupportedMediaType,
    /// A content encoding other than gzip or identity.
    UnsupportedEncoding,
    /// A gzip body that does not decompress.
    InvalidGzip,
    /// The event fails validation (identity, type, field types); `path` names the field.
    InvalidEvent,
    /// A timestamp that cannot be read as ISO-8601.
    InvalidTimestamp,
    /// A `messageId` longer than Segment's 100 characters.
    InvalidMessageId,
    /// The event is valid but cannot be mapped to InMoment calls.
    MappingFailed,
    /// The store cannot take events now; retry after `Retry-After`.
    Unavailable,
    /// Too many requests are in flight; retry after `Retry-After`.
    Overloaded,
    /// Storing the events took longer than `request_timeout_ms`.
    Timeout,
    /// The client did not send its body within `request_timeout_ms`.
    RequestTimeout,
    /// The request line's URI is longer than the server takes.
    UriTooLong,
    /// More or larger headers than the server takes.
    HeadersTooLarge,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists but takes another method (ingest endpoints take `POST`).
    MethodNotAllowed,
    /// An unexpected failure inside the server.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingWriteKey => "missing_write_key",
            ErrorCode::InvalidWriteKey => "invalid_write_key",
            ErrorCode::WriteKeyMismatch => "write_key_mismatch",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::EventTooLarge => "event_too_large",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::TooManyItems => "too_many_items",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::UnsupportedEncoding => "unsupported_encoding",
            ErrorCode::InvalidGzip => "invalid_gzip",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::InvalidTimestamp => "invalid_timestamp",
            ErrorCode::InvalidMessageId => "invalid_message_id",
            ErrorCode::MappingFailed => "mapping_failed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Timeout => "timeout",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status of a request that fails as a whole with this code. Transient
    /// problems are 503 (every client retries it), never a 4xx other than 408.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::MissingWriteKey
            | ErrorCode::InvalidWriteKey
            | ErrorCode::WriteKeyMismatch
            | ErrorCode::InvalidSignature => StatusCode::UNAUTHORIZED,
            ErrorCode::EventTooLarge | ErrorCode::BatchTooLarge | ErrorCode::TooManyItems => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ErrorCode::UnsupportedMediaType | ErrorCode::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ErrorCode::InvalidJson
            | ErrorCode::InvalidBody
            | ErrorCode::InvalidGzip
            | ErrorCode::InvalidEvent
            | ErrorCode::InvalidTimestamp
            | ErrorCode::InvalidMessageId
            | ErrorCode::MappingFailed => StatusCode::BAD_REQUEST,
            ErrorCode::Unavailable | ErrorCode::Overloaded | ErrorCode::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An ingest error: the whole answer of a failed request, or one rejected batch item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The batch item, counted from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The offending field, e.g. `context.traits`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Rarely set details, boxed to keep `Result<_, ApiError>` small.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<Box<Details>>,
}

/// Where the JSON broke, which size limit was exceeded, when to retry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    /// The configuration key of the size limit that was exceeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<usize>,
    /// Sent as the `Retry-After` header, not in the body.
    #[serde(skip)]
    retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            index: None,
            path: None,
            details: None,
        }
    }

    pub fn at_path(mut self, path: impl Into<String>) -> ApiError {
        let path = path.into();
        self.path = (!path.is_empty()).then_some(path);
        self
    }

    pub fn at_index(mut self, index: usize) -> ApiError {
        self.index = Some(index);
        self
    }

    /// Where a JSON parser stopped (1-based line and column).
    pub fn at_position(mut self, line: usize, column: usize) -> ApiError {
        let details = self.details.get_or_insert_with(Box::default);
        details.line = Some(line);
        details.column = Some(column);
        self
    }

    /// A size limit was exceeded; names the configuration key.
    pub fn too_large(code: ErrorCode, limit: &'static str, max_bytes: usize) -> ApiError {
        let what = match code {
            ErrorCode::BatchTooLarge => "the request",
            _ => "the event",
        };
        let mut error = ApiError::new(
            code,
            format!("{what} is larger than {max_bytes} bytes ({limit})"),
        );
        let details = error.details.get_or_insert_with(Box::default);
        details.limit = Some(limit);
        details.max_bytes = Some(max_bytes);
        error
    }

    /// A batch holds more events than `max_batch_items`; the client should split it.
    pub fn too_many_items(count: usize, max: usize) -> ApiError {
        let mut error = ApiError::new(
            ErrorCode::TooManyItems,
            format!("the request holds {count} events, more than {max} (max_batch_items); send them in smaller batches"),
        )
        .at_path("batch");
        error.details.get_or_insert_with(Box::default).limit = Some("max_batch_items");
        error
    }

    /// A transient failure that the client should retry after `after`.
    pub fn retry_later(code: ErrorCode, message: impl Into<String>, after: Duration) -> ApiError {
        let mut error = ApiError::new(code, message);
        error.details.get_or_insert_with(Box::default).retry_after = Some(after);
        error
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The configuration key of the exceeded size limit.
    pub fn limit(&self) -> Option<&'static str> {
        self.details.as_ref().and_then(|d| d.limit)
    }

    /// Line and column of a JSON syntax error.
    pub fn position(&self) -> Option<(usize, usize)> {
        let details = self.details.as_ref()?;
        Some((details.line?, details.column?))
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.details.as_ref().and_then(|d| d.retry_after)
    }
}

/// `Retry-After` in whole seconds, at least 1 (0 would invite a tight retry loop).
pub fn retry_after_seconds(after: Duration) -> u64 {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    secs.max(1)
}

/// Rides on an error answer so the app's `measure` layer can log the refusal once, with
/// its route and status.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after();
        let refusal = Refusal {
            code: self.code,
            message: self.message.clone(),
        };
        let mut response = (status, axum::Json(self)).into_response();
        response.extensions_mut().insert(refusal);
        if let Some(after) = retry_after {
            let value = HeaderValue::from(retry_after_seconds(after));
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_code_message_and_location_only_when_set() {
        let error = ApiError::new(ErrorCode::InvalidEvent, "bad")
            .at_index(2)
            .at_path("traits");
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code":"invalid_event","message":"bad","index":2,"path":"traits"})
        );
    }

    #[test]
    fn size_limit_and_position_render_flat() {
        let error = ApiError::too_large(ErrorCode::EventTooLarge, "max_event_bytes", 10);
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(json["limit"], "max_event_bytes");
        assert_eq!(json["max_bytes"], 10);
        let error = ApiError::new(ErrorCode::InvalidJson, "x").at_position(2, 3);
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            (json["line"].clone(), json["column"].clone()),
            (2.into(), 3.into())
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
