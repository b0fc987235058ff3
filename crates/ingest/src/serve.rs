//! The HTTP server of `serve`: assembles the app (ingest, health and metrics routes,
//! request tracing and latency) and runs it until a shutdown signal, finishing in-flight
//! requests within `shutdown_deadline_ms`.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::connections::{self, ConnectionLimits};
use crate::cors;
use crate::error::Refusal;
use crate::metrics::Metrics;
use crate::{routes, ApiError, AppState, ErrorCode};
use inmoment_config::Config;
use inmoment_store::accept::Acceptor;

/// Builds the whole HTTP app; testable with `oneshot`, no socket needed.
pub fn app(state: AppState) -> Router {
    let cors = cors::layer(&state.config.cors_allowed_origins);
    routes::router()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(check_head))
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        // Outside the head check, so its errors carry the CORS headers too.
        .layer(cors)
        // The span names method and path only: the query may hold a `writeKey`.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish for at most `shutdown_deadline`, and returns.
pub async fn serve(
    config: Config,
    acceptor: Arc<dyn Acceptor>,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let deadline = config.shutdown_deadline;
    let limits = ConnectionLimits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
    };
    let state = AppState::new(Arc::new(config), acceptor, metrics);
    let signal_state = state.clone();
    let signal = async move {
        shutdown.await;
        signal_state.begin_shutdown();
        tracing::info!(
            deadline_ms = deadline.as_millis() as u64,
            "Shutting down: no new connections; finishing requests in flight."
        );
    };
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "Listening.");
    }
    if connections::serve(listener, app(state), limits, signal, deadline).await {
        tracing::info!("Stopped.");
    } else {
        tracing::warn!("Shutdown deadline passed with requests in flight; they are cut off (nothing of theirs was acknowledged).");
    }
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Counts every request by route and status, with its latency.
async fn measure(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let route = route
        .strip_prefix('/')
        .filter(|r| r.starts_with('/'))
        .unwrap_or(route);
    let route = route.to_string();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics.request(&route, status, seconds);
    if let Some(refusal) = response.extensions().get::<Refusal>() {
        log_refusal(&state, &route, status, refusal);
    }
    response
}

/// One line per refused request, within the log budget: a client's mistake at info, a
/// failure of ours (5xx) at warn. The message may quote client text; logs escape it.
fn log_refusal(state: &AppState, route: &str, status: u16, refusal: &Refusal) {
    if !state.log_budget.allow() {
        return;
    }
    let code = refusal.code.as_str();
    let error = refusal.message.as_str();
    if status >= 500 {
        tracing::warn!(
            route,
            status,
            code,
            error,
            "Request failed; the client is asked to retry."
        );
    } else {
        tracing::info!(route, status, code, error, "Request refused.");
    }
}

/// The longest URI taken (no client of ours sends more than a path and a write key).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most headers, and most header bytes, taken in one request. Below hyper's own limit of
/// 100 headers, over which it answers a bare 431 (see `connections.rs`).
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses oversized request heads with the same JSON errors as everything else. The
/// HTTP layer's own limits lie above these (see `connections.rs`), so only a head it
/// cannot parse at all gets its bare answer.
async fn check_head(request: Request, next: Next) -> Response {
    let uri = request.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return ApiError::new(
            ErrorCode::UriTooLong,
            format!("the URI has {uri} bytes, more than {MAX_URI_BYTES}; send events in the body"),
        )
        .into_response();
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!(
                "{} headers of {bytes} bytes; at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes are taken",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Alive: the process answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: configured, not shutting down, and the acceptor can take events.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready"})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such endpoint; events go to /v1/track, /v1/identify, /v1/page, /v1/batch, …",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint takes POST with a JSON body",
    )
}
