//! The per-request pipeline of the fake API: read parameters, resolve the
//! route, apply faults, answer, and log.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{self, Incoming};
use crate::app::SandboxState;
use crate::log::RecordedRequest;
use crate::params::{self, Params};
use crate::reply::{Reply, ReplyBody};
use crate::routes::{self, Route};

/// Answers every request outside `/_sandbox/`.
pub async fn dispatch(State(app): State<SandboxState>, request: Request) -> Response {
    let seq = app.next_seq();
    let arrived_us = app.elapsed_us();
    let at = app.now();
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let route = routes::resolve(&parts.method, &path);
    let name = route.as_ref().map_or(routes::UNKNOWN, Route::name);
    let params = params::read(&parts, body).await;
    let (plan, logged_headers) = {
        let mut world = app.world();
        let plan = world.faults.take(&method, &path, name);
        (plan, world.config.logged_headers.clone())
    };
    if plan.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
    }
    if plan.expire_tokens {
        app.expire_tokens();
    }
    let logged_params = params
        .as_ref()
        .map(Params::to_flat_json)
        .unwrap_or_default();
    let (reply, account) = match (plan.answer, &params, &route) {
        (Some(answer), _, _) => (answer, None),
        (None, Err(e), _) => (
            Reply::json(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
            None,
        ),
        (None, Ok(_), None) => (Reply::not_found(), None),
        (None, Ok(p), Some(route)) => {
            let incoming = Incoming {
                method: &method,
                path: &path,
                route,
                params: p,
                headers: &parts.headers,
            };
            let now = app.now();
            api::handle(&mut app.world(), now, &incoming)
        }
    };
    let status = match reply.body {
        ReplyBody::Drop => 0,
        _ => reply.status.as_u16(),
    };
    let headers: BTreeMap<String, String> = logged_headers
        .iter()
        .filter_map(|h| {
            let values: Vec<&str> = parts
                .headers
                .get_all(h.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| (h.to_ascii_lowercase(), values.join(", ")))
        })
        .collect();
    if plan.applied.is_empty() {
        tracing::debug!(seq, %method, %path, status, "sandbox request");
    } else {
        tracing::debug!(seq, %method, %path, status, faults = ?plan.applied, "sandbox request");
    }
    app.record(RecordedRequest {
        seq,
        arrived_us,
        at,
        method,
        path,
        query: parts.uri.query().unwrap_or("").to_owned(),
        route: name.to_owned(),
        params: logged_params,
        headers,
        status,
        account,
        faults: plan.applied.iter().map(|s| (*s).to_owned()).collect(),
    });
    reply.into_response()
}
