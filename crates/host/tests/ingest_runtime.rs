#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Behaviour under load and at the edges of the process: load shedding, an unavailable
//! store, the store timeout and graceful shutdown with a request in flight.

mod ingest_support;

use std::time::Duration;

use serde_json::json;

use ingest_support::{config, wait_entered, GatedAcceptor, Server, TestStore};

#[tokio::test]
async fn when_saturated_the_next_request_is_shed_with_503_and_retry_after() {
    let (acceptor, mut entered) = GatedAcceptor::new();
    let mut config = config();
    config.max_concurrent_requests = 1;
    let server = Server::start(config, acceptor.clone()).await;
    let port = server.port;
    let first = tokio::spawn(async move {
        let body = br#"{"userId":"u","event":"First"}"#;
        let auth = ingest_support::basic(ingest_support::KEY);
        ingest_support::post(port, "/v1/track", &[("Authorization", &auth)], body).await
    });
    wait_entered(&mut entered, 1).await;

    let shed = server
        .post_json("/v1/track", &json!({"userId":"u","event":"Second"}))
        .await;
    assert_eq!(shed.status, 503);
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert_eq!(shed.json()["code"], "overloaded");

    acceptor.release(1);
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    let names: Vec<String> = acceptor
        .store
        .events()
        .iter()
        .map(|e| format!("{:?}", e.payload))
        .collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].contains("First"));
    let metrics = server.get("/metrics").await.text();
    assert!(metrics.contains("inmoment_handler_errors_total{reason=\"overloaded\"} 1"));
}

#[tokio::test]
async fn an_unavailable_store_is_503_with_retry_after_never_200() {
    let acceptor = TestStore::full().await;
    let server = Server::start(config(), acceptor.clone()).await;
    for (path, body) in [
        ("/v1/track", json!({"userId":"u","event":"E"})),
        (
            "/v1/batch",
            json!({"batch":[{"type":"identify","userId":"u"}]}),
        ),
    ] {
        let reply = server.post_json(path, &body).await;
        assert_eq!(reply.status, 503, "{path}");
        assert_eq!(reply.header("retry-after"), Some("5"), "{path}");
        let body = reply.json();
        assert_eq!(body["code"], "unavailable");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("full"), "{message}");
    }
    assert_eq!(server.get("/readyz").await.status, 503);
    assert!(
        acceptor.rows().iter().all(|row| row.source == "filler"),
        "nothing of the refused requests was stored"
    );
}

#[tokio::test]
async fn a_store_slower_than_the_timeout_is_503() {
    let (acceptor, _entered) = GatedAcceptor::new();
    let mut config = config();
    config.request_timeout = Duration::from_millis(30);
    let server = Server::start(config, acceptor).await;
    let reply = server
        .post_json("/v1/track", &json!({"userId":"u","event":"E"}))
        .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["code"], "timeout");
    assert!(reply.header("retry-after").is_some());
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_stops() {
    let (acceptor, mut entered) = GatedAcceptor::new();
    let mut server = Server::start(config(), acceptor.clone()).await;
    let port = server.port;
    let in_flight = tokio::spawn(async move {
        let auth = ingest_support::basic(ingest_support::KEY);
        let body = br#"{"userId":"u","event":"In flight"}"#;
        ingest_support::post(port, "/v1/track", &[("Authorization", &auth)], body).await
    });
    wait_entered(&mut entered, 1).await;

    server.signal_shutdown();
    tokio::task::yield_now().await;
    assert!(
        !server.task.is_finished(),
        "stopped with a request in flight"
    );
    acceptor.release(1);

    let reply = in_flight.await.unwrap();
    assert_eq!((reply.status, reply.json()), (200, json!({"success":true})));
    let stopped = tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("the server stops once the request is done");
    stopped.unwrap().unwrap();
    assert_eq!(acceptor.store.events().len(), 1);
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        refused.is_err(),
        "still accepting connections after shutdown"
    );
}

#[tokio::test]
async fn shutdown_gives_up_on_a_stuck_request_at_the_deadline() {
    let (acceptor, mut entered) = GatedAcceptor::new();
    let mut config = config();
    config.shutdown_deadline = Duration::from_millis(20);
    let mut server = Server::start(config, acceptor).await;
    let port = server.port;
    let _stuck = tokio::spawn(async move {
        let auth = ingest_support::basic(ingest_support::KEY);
        ingest_support::post(
            port,
            "/v1/track",
            &[("Authorization", &auth)],
            br#"{"userId":"u","event":"E"}"#,
        )
        .await
    });
    wait_entered(&mut entered, 1).await;
    server.signal_shutdown();
    let stopped = tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("the deadline ends the shutdown");
    stopped.unwrap().unwrap();
}
