//! Answers of the fake and the error bodies the research note attests.

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

/// What the sandbox answers: a status, extra headers and a body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers added to the answer.
    pub headers: Vec<(HeaderName, String)>,
    /// Body.
    pub body: ReplyBody,
}

/// Body of a [`Reply`].
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// No body.
    Empty,
    /// `application/json`.
    Json(Value),
    /// A text body with its content type.
    Text(String, String),
    /// Abort the connection instead of answering (fault injection).
    Drop,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Json(body),
        }
    }

    /// An answer without a body.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Empty,
        }
    }

    /// A text answer.
    pub fn text(status: StatusCode, content_type: &str, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ReplyBody::Text(content_type.to_owned(), body.to_owned()),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// `404 {"error":"Not found","status":404}`, the shape used for unknown
    /// account tokens and unknown routes.
    pub fn not_found() -> Self {
        Self::json(
            StatusCode::NOT_FOUND,
            json!({"error": "Not found", "status": 404}),
        )
    }
}

/// Status from a configured number, falling back to 500 when invalid.
pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            ReplyBody::Empty => Response::new(Body::empty()),
            ReplyBody::Json(value) => {
                // Straight to bytes: `to_string` goes through `Display`, whose formatter
                // adapter doubled the sandbox's cost of answering an eligibility check.
                let bytes = serde_json::to_vec(&value).unwrap_or_default();
                let mut r = Response::new(Body::from(bytes));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                r
            }
            ReplyBody::Text(content_type, text) => {
                let mut r = Response::new(Body::from(text));
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                r
            }
            ReplyBody::Drop => {
                Response::new(Body::from_stream(futures_util::stream::once(async {
                    Err::<Bytes, std::io::Error>(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "sandbox fault: connection dropped",
                    ))
                })))
            }
        };
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, v);
            }
        }
        response
    }
}

/// Errors of the REST handlers, each with the body InMoment is known (or
/// guessed, see the note's §7) to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 404 with the attested `error_list` body.
    #[error("record not found")]
    RecordNotFound,
    /// 422 `{"error":"Validation failed: …"}`.
    #[error("Validation failed: {0}")]
    Validation(String),
    /// 423 when historical property edits are off for the account.
    #[error("{0}")]
    Locked(String),
}

impl ApiError {
    /// The answer for this error.
    pub fn reply(&self) -> Reply {
        match self {
            Self::RecordNotFound => Reply::json(
                StatusCode::NOT_FOUND,
                json!({
                    "type": "error_list",
                    "errors": [{
                        "status": "record_not_found",
                        "message": "The record could not be found",
                        "field": null
                    }]
                }),
            ),
            Self::Validation(_) => Reply::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": self.to_string()}),
            ),
            Self::Locked(msg) => Reply::json(StatusCode::LOCKED, json!({"error": msg})),
        }
    }
}
