#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every endpoint answers in the shape of Segment's Tracking API, over real HTTP.

mod ingest_support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use inmoment_core::EventType;
use inmoment_ingest::metrics::Metrics;
use inmoment_ingest::AppState;
use serde_json::json;
use tower::ServiceExt as _;

use ingest_support::{config, store, Server};

/// One body that every call type accepts: the path decides the type.
fn universal_event(id: &str) -> serde_json::Value {
    json!({"type":"identify","messageId":id,"userId":"u-1","event":"Signed Up","groupId":"g-1","previousId":"p-1"})
}

#[tokio::test]
async fn each_single_endpoint_takes_its_type_from_the_path() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let paths = [
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
    for (n, (path, _)) in paths.iter().enumerate() {
        let reply = server
            .post_json(path, &universal_event(&format!("m-{n}")))
            .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(reply.json(), json!({"success": true}), "{path}");
    }
    // Types a linked handler claims are stored; the others are skipped, and counted
    // under the type the path gave them.
    let registry = ingest_support::registry();
    let handled = |t: &EventType| registry.get(*t).is_some();
    let types: Vec<EventType> = acceptor.events().iter().map(|e| e.event_type()).collect();
    let expected: Vec<EventType> = paths.iter().map(|(_, t)| *t).filter(handled).collect();
    assert_eq!(types, expected);
    let metrics = server.get("/metrics").await.text();
    for (_, t) in paths.iter().filter(|(_, t)| !handled(t)) {
        let line = format!(
            "inmoment_events_skipped_total{{type=\"{}\",reason=\"no_handler\"}} 2",
            t.as_str()
        );
        assert!(metrics.contains(&line), "missing `{line}` in:\n{metrics}");
    }
}

#[tokio::test]
async fn batch_and_import_and_b_take_the_batch_envelope() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    for (n, path) in ["/v1/batch", "/v1/import", "/v1/b"].iter().enumerate() {
        let body = json!({"batch":[
            {"type":"track","event":"Clicked","userId":"u","messageId":format!("t-{n}")},
            {"type":"page","name":"Home","anonymousId":"a","messageId":format!("p-{n}")}
        ]});
        let reply = server.post_json(path, &body).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(
            reply.json(),
            json!({"success":true,"results":[
                {"index":0,"status":"accepted"},{"index":1,"status":"accepted"}
            ]}),
            "{path}"
        );
    }
    assert_eq!(acceptor.events().len(), 6);
}

/// analytics.js posts its usage counters to `/v1/m` of the host it sends events to, with
/// no write key; a 404 there would be an error in the page's console.
#[tokio::test]
async fn analytics_js_usage_counters_are_taken_and_dropped() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let counters = br#"{"series":[{"type":"Counter","metric":"analytics_js.invoke","value":1,"tags":{"type":"track","library":"analytics.js","library_version":"npm:next-1.84.3"}}]}"#;
    for path in ["/v1/m", "//v1/m"] {
        let reply = server
            .post(path, &[("Content-Type", "text/plain")], counters)
            .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(reply.json(), json!({"success": true}));
    }
    let huge = vec![b' '; config().max_event_bytes + 1];
    let reply = server.post("/v1/m", &[], &huge).await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.json()["limit"], "max_event_bytes");
    assert!(acceptor.events().is_empty());
}

#[tokio::test]
async fn a_doubled_leading_slash_is_served() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let track = server
        .post_json("//v1/track", &json!({"userId":"u","event":"E"}))
        .await;
    assert_eq!(track.status, 200, "{}", track.text());
    let batch = server
        .post_json(
            "//v1/batch",
            &json!({"batch":[{"type":"identify","userId":"u"}]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text());
    assert_eq!(acceptor.events().len(), 2);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = Server::start(config(), store()).await;
    server
        .post_json("/v1/track", &json!({"userId":"u","event":"E"}))
        .await;
    server.post_json("/v1/track", &json!({"userId":"u"})).await;

    let health = server.get("/healthz").await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status":"ok"}))
    );
    let ready = server.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.json()),
        (200, json!({"status":"ready"}))
    );

    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text();
    for line in [
        "inmoment_events_received_total{type=\"track\"} 2",
        "inmoment_events_accepted_total{type=\"track\"} 1",
        "inmoment_events_rejected_total{type=\"track\",reason=\"invalid_event\"} 1",
        "inmoment_http_requests_total{route=\"/v1/track\",status=\"200\"} 1",
        "inmoment_http_requests_total{route=\"/v1/track\",status=\"400\"} 1",
        "inmoment_http_request_duration_seconds_count",
        "inmoment_queue_depth 0",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

fn state() -> AppState {
    AppState::new(Arc::new(config()), store(), Arc::new(Metrics::new()))
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_json() {
    let app = inmoment_ingest::serve::app(state());
    let missing = app
        .clone()
        .oneshot(Request::post("/v2/track").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body = axum::body::to_bytes(missing.into_body(), 10_000)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "not_found");

    let wrong = app
        .oneshot(Request::get("/v1/track").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body = axum::body::to_bytes(wrong.into_body(), 10_000)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn readyz_follows_the_acceptor() {
    let full = ingest_support::TestStore::full().await;
    let state = AppState::new(Arc::new(config()), full, Arc::new(Metrics::new()));
    let reply = inmoment_ingest::serve::app(state)
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
}
