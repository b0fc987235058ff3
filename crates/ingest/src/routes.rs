//! The endpoints, in the shape of Segment's HTTP Tracking API: one path per call type
//! (the type comes from the path), the batch paths, analytics.js's one-letter paths and
//! its usage counters, and the webhook. Each is also served under a doubled leading slash (`//v1/track`), which
//! a Rust client configured with a trailing `/` on its host sends.

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{post, MethodRouter};
use axum::Router;
use chrono::Utc;
use inmoment_core::EventType;

use super::body::{self, Limit};
use super::error::ApiError;
use super::{auth, batch, respond, webhook, AppState, Clock, Input, Item, Submission};

/// Single-event paths and their call type.
const SINGLE_PATHS: [(&str, EventType); 12] = [
    ("/v1/identify", EventType::Identify),
    ("/v1/track", EventType::Track),
    ("/v1/page", EventType::Page),
    ("/v1/screen", EventType::Screen),
    ("/v1/group", EventType::Group),
    ("/v1/alias", EventType::Alias),
    ("/v1/i", EventType::Identify),
    ("/v1/t", EventType::Track),
    ("/v1/p", EventType::Page),
    ("/v1/s", EventType::Screen),
    ("/v1/g", EventType::Group),
    ("/v1/a", EventType::Alias),
];

/// Paths that take the batch envelope (`/v1/import`: analytics-ruby, classic Android;
/// `/v1/b`: analytics.js).
const BATCH_PATHS: [&str; 3] = ["/v1/batch", "/v1/import", "/v1/b"];

/// The ingest routes; the caller adds state, health routes and layers.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for (path, event_type) in SINGLE_PATHS {
        let handler = post(
            move |State(state): State<AppState>, headers: HeaderMap, body: Body| async move {
                single(&state, &headers, body, event_type)
                    .await
                    .unwrap_or_else(respond::refuse)
            },
        );
        router = both(router, path, handler);
    }
    for path in BATCH_PATHS {
        router = both(router, path, post(batch_handler));
    }
    router = both(router, "/v1/m", post(usage_counters));
    both(router, "/v1/webhook", post(webhook::receive))
}

fn both(router: Router<AppState>, path: &str, handler: MethodRouter<AppState>) -> Router<AppState> {
    router
        .route(path, handler.clone())
        .route(&format!("/{path}"), handler)
}

/// A write key in the header is checked before the body is read, so a wrong key costs
/// nothing; a key in the body is checked after.
fn early_key(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let key = auth::basic_key(headers)?;
    if let Some(key) = &key {
        state.keys.lookup(key)?;
    }
    Ok(key)
}

async fn single(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    event_type: EventType,
) -> Result<Response, ApiError> {
    let received_at = Utc::now();
    let config = &state.config;
    let header_key = early_key(state, headers)?;
    let limit = Limit::event(config.max_event_bytes);
    let bytes = body::read(body, headers, limit, config.request_timeout).await?;
    let mut value = body::parse_json(&bytes)?;
    let key = auth::request_key(header_key, auth::body_key(&value))?;
    let source = state.keys.lookup(&key)?;
    value.remove("writeKey");
    let submission = Submission {
        source,
        received_at,
        clock: Clock::CorrectSkew {
            batch_sent_at: None,
        },
        forced_type: Some(event_type),
        items: vec![Item {
            kind: event_type.as_str(),
            input: Input::Json(value),
        }],
    };
    Ok(respond::single(state.submit(submission).await?))
}

/// analytics.js posts its own usage counters (`{"series": [...]}`, without a write key) to
/// `/m` of the host it sends events to, every 30 s while it has some. They are no events:
/// read (within the event size limit) and dropped, answered 200 so that the page logs no
/// error.
async fn usage_counters(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let config = &state.config;
    let limit = Limit::event(config.max_event_bytes);
    match body::read(body, &headers, limit, config.request_timeout).await {
        Ok(_) => respond::ok(),
        Err(error) => respond::refuse(error),
    }
}

async fn batch_handler(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    batch(&state, &headers, body)
        .await
        .unwrap_or_else(respond::refuse)
}

async fn batch(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let received_at = Utc::now();
    let config = &state.config;
    let header_key = early_key(state, headers)?;
    let limit = Limit::batch(config.max_batch_bytes);
    let bytes = body::read(body, headers, limit, config.request_timeout).await?;
    let envelope = batch::parse(&bytes)?;
    let key = auth::request_key(header_key, envelope.write_key.as_deref())?;
    let source = state.keys.lookup(&key)?;
    if envelope.len() > config.max_batch_items {
        return Err(ApiError::too_many_items(
            envelope.len(),
            config.max_batch_items,
        ));
    }
    let batch_sent_at = envelope.sent_at.clone();
    let items = envelope.into_items(&key, Limit::event(config.max_event_bytes));
    let submission = Submission {
        source,
        received_at,
        clock: Clock::CorrectSkew { batch_sent_at },
        forced_type: None,
        items,
    };
    Ok(respond::batch(state.submit(submission).await?))
}
