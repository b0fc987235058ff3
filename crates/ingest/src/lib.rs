//! The HTTP side of the pipeline in its own crate: the ingest endpoints, the server that
//! runs them (connections, CORS, health and `/metrics`) and the metrics themselves. It
//! hands events to an [`Acceptor`](inmoment_store::accept::Acceptor) and knows nothing of
//! delivery or of the binary that wires them together.
//!
//! HTTP ingest in the shape of Segment's Tracking API, so unmodified Segment clients
//! (and Segment itself, through webhooks) can send events here.
//!
//! A request goes: route (type from the path) → auth (write key → [`Source`]) → body
//! (size limits, gzip, JSON) → items (batch envelope, webhook array) → the per-request
//! tower stack of [`stack`] (span, payload check, timeout, load shedding, dispatch to the
//! [`Acceptor`](inmoment_store::accept::Acceptor)) → a JSON answer.

pub mod auth;
pub mod batch;
pub mod body;
mod check;
pub mod connections;
pub mod cors;
mod dispatch;
pub mod error;
mod log_budget;
pub mod message_id;
pub mod metrics;
mod respond;
pub mod routes;
pub mod serve;
pub mod skew;
pub mod stack;
mod state;
pub mod webhook;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use inmoment_core::{EventFields, EventType};
use serde_json::Value;

pub use error::{ApiError, ErrorCode};
use inmoment_store::accept::Source;
pub use state::AppState;

/// One request's events on their way through the stack.
#[derive(Debug)]
pub struct Submission {
    pub source: Arc<Source>,
    /// When the request arrived; every event of the request gets this `receivedAt`.
    pub received_at: DateTime<Utc>,
    pub clock: Clock,
    /// The type given by the endpoint path (`/v1/track`), which wins over the body's.
    pub forced_type: Option<EventType>,
    pub items: Vec<Item>,
}

/// How an event's `timestamp` is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clock {
    /// Straight from a client: correct its clock skew with `sentAt` (the event's, else
    /// this batch-level one).
    CorrectSkew { batch_sent_at: Option<String> },
    /// Forwarded by Segment, which already corrected the timestamp and set `receivedAt`.
    Forwarded,
}

/// One event of a request, before the payload check.
#[derive(Debug)]
pub struct Item {
    /// The event type as far as known, for metrics and logs (`unknown` otherwise).
    pub kind: &'static str,
    pub input: Input,
}

#[derive(Debug)]
pub enum Input {
    /// The event's JSON, still to be validated.
    Json(EventFields),
    /// Already decided before the stack (too large, wrong write key, Segment `delete`).
    Decided(Status),
}

/// What became of one event, in request order (the position is the batch index).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    pub kind: &'static str,
    pub message_id: Option<String>,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Stored for delivery.
    Accepted,
    /// Its `messageId` was seen before: success, stored once.
    Duplicate,
    /// Accepted but produces no InMoment call, with the reason (e.g. `no_handler`).
    Skipped(String),
    /// Not kept, with why and where.
    Rejected(ApiError),
}

/// The metrics label of a `type` value: a known type's name, else `unknown`.
pub fn kind_of(value: &EventFields, forced: Option<EventType>) -> &'static str {
    if let Some(t) = forced {
        return t.as_str();
    }
    match value.get("type").and_then(Value::as_str) {
        Some("delete") => "delete",
        Some(name) => EventType::parse(name).map_or("unknown", EventType::as_str),
        None => "unknown",
    }
}
