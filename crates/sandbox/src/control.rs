//! Inspection and control endpoints under `/_sandbox/` (not logged, not
//! faulted, not rate limited).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::SandboxState;
use crate::config::ConfigPatch;
use crate::faults::Fault;
use crate::log::RecordedRequest;
use crate::reply::Reply;
use crate::routes::Matcher;

/// Filters of `GET /_sandbox/requests`.
#[derive(Debug, Default, Deserialize)]
pub struct RequestFilter {
    /// Exact raw path.
    path: Option<String>,
    /// Matcher (`responses.create`, `POST /v1/end_users/*`, …).
    route: Option<String>,
    /// Only requests with a larger `seq`.
    since: Option<u64>,
}

/// `GET /_sandbox/requests`: JSON array of recorded requests.
pub async fn requests(
    State(app): State<SandboxState>,
    Query(filter): Query<RequestFilter>,
) -> impl IntoResponse {
    let matcher = filter.route.as_deref().map(Matcher::new);
    let list: Vec<RecordedRequest> = app
        .requests()
        .into_iter()
        .filter(|r| filter.path.as_deref().is_none_or(|p| r.path == p))
        .filter(|r| filter.since.is_none_or(|s| r.seq > s))
        .filter(|r| {
            matcher
                .as_ref()
                .is_none_or(|m| m.matches(&r.method, &r.path, &r.route))
        })
        .collect();
    Reply::json(StatusCode::OK, json!(list))
}

/// `GET /_sandbox/counters`: `{"total":n,"routes":{name:n}}`.
pub async fn counters(State(app): State<SandboxState>) -> impl IntoResponse {
    Reply::json(StatusCode::OK, app.counters())
}

/// `GET /_sandbox/state`: every account's records.
pub async fn state(State(app): State<SandboxState>) -> impl IntoResponse {
    Reply::json(StatusCode::OK, app.state())
}

/// `POST /_sandbox/reset`: 204.
pub async fn reset(State(app): State<SandboxState>) -> impl IntoResponse {
    app.reset();
    Reply::empty(StatusCode::NO_CONTENT)
}

/// `POST /_sandbox/expire_tokens`: 204.
pub async fn expire_tokens(State(app): State<SandboxState>) -> impl IntoResponse {
    app.expire_tokens();
    Reply::empty(StatusCode::NO_CONTENT)
}

/// `GET /_sandbox/faults`: pending faults.
pub async fn list_faults(State(app): State<SandboxState>) -> impl IntoResponse {
    Reply::json(StatusCode::OK, json!(app.faults()))
}

/// `POST /_sandbox/faults`: one fault object or an array of them; 204.
pub async fn add_faults(State(app): State<SandboxState>, body: Bytes) -> impl IntoResponse {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let faults: Result<Vec<Fault>, serde_json::Error> = parsed.and_then(|v| match v {
        Value::Array(_) => serde_json::from_value(v),
        other => serde_json::from_value(other).map(|f| vec![f]),
    });
    match faults {
        Ok(list) => {
            for f in list {
                app.add_fault(f);
            }
            Reply::empty(StatusCode::NO_CONTENT)
        }
        Err(e) => bad_request(&e),
    }
}

/// `GET /_sandbox/config`: current configuration.
pub async fn get_config(State(app): State<SandboxState>) -> impl IntoResponse {
    Reply::json(StatusCode::OK, json!(app.config()))
}

/// `POST /_sandbox/config`: a [`ConfigPatch`]; answers the new configuration.
pub async fn post_config(State(app): State<SandboxState>, body: Bytes) -> impl IntoResponse {
    match serde_json::from_slice::<ConfigPatch>(&body) {
        Ok(patch) => {
            app.configure(patch);
            Reply::json(StatusCode::OK, json!(app.config()))
        }
        Err(e) => bad_request(&e),
    }
}

fn bad_request(e: &serde_json::Error) -> Reply {
    Reply::json(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}))
}
