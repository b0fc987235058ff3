#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CORS on the tracking endpoints: analytics.js on another origin sends
//! `Authorization: Basic`, so the browser asks first (a preflight) and then reads every
//! answer only when it carries `Access-Control-Allow-Origin`.

mod ingest_support;

use ingest_support::{basic, config, config_from_toml, post, send_raw, store, Server, KEY};

const PAGE: &str = "http://127.0.0.1:5173";

fn preflight(path: &str, origin: &str) -> Vec<u8> {
    format!(
        "OPTIONS {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nOrigin: {origin}\r\n\
         Access-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: authorization,content-type\r\n\r\n"
    )
    .into_bytes()
}

const TRACK: &[u8] = br#"{"type":"track","userId":"u","event":"Paid"}"#;

#[tokio::test]
async fn a_preflight_is_answered_with_what_analytics_js_needs() {
    let server = Server::start(config(), store()).await;
    for path in ["/v1/t", "/v1/b", "/v1/batch", "/v1/identify"] {
        let reply = send_raw(server.port, &preflight(path, PAGE)).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("access-control-allow-origin"), Some(PAGE));
        let methods = reply.header("access-control-allow-methods").unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let headers = reply
            .header("access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        // X-Retry-Count: analytics.js's header on a retry.
        for needed in [
            "authorization",
            "content-type",
            "content-encoding",
            "x-retry-count",
        ] {
            assert!(headers.contains(needed), "{headers}");
        }
        assert_eq!(reply.header("access-control-max-age"), Some("7200"));
    }
}

#[tokio::test]
async fn every_answer_of_a_tracking_path_carries_the_origin_errors_too() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let auth = basic(KEY);
    let ok = post(
        server.port,
        "/v1/t",
        &[("Origin", PAGE), ("Authorization", &auth)],
        TRACK,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin"), Some(PAGE));
    assert_eq!(acceptor.events().len(), 1);

    let wrong_key = basic("not-a-key");
    let refused = post(
        server.port,
        "/v1/t",
        &[("Origin", PAGE), ("Authorization", &wrong_key)],
        TRACK,
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("access-control-allow-origin"), Some(PAGE));

    let long = format!("/v1/t?{}", "x".repeat(9000));
    let too_long = post(
        server.port,
        &long,
        &[("Origin", PAGE), ("Authorization", &auth)],
        TRACK,
    )
    .await;
    assert_eq!(too_long.status, 414);
    assert_eq!(too_long.header("access-control-allow-origin"), Some(PAGE));
}

#[tokio::test]
async fn health_and_metrics_get_no_cors_headers() {
    let server = Server::start(config(), store()).await;
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nOrigin: {PAGE}\r\n\r\n"
    );
    let reply = send_raw(server.port, request.as_bytes()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), None);
    let reply = send_raw(server.port, &preflight("/readyz", PAGE)).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_list_of_origins_admits_only_those() {
    let config = config_from_toml(
        r#"
        write_keys = ["k"]
        account_token = "NPS-4aeb53c1"
        cors_allowed_origins = ["https://shop.example", "http://127.0.0.1:5173/"]
        "#,
    );
    let server = Server::start(config, store()).await;
    let allowed = send_raw(server.port, &preflight("/v1/t", "https://shop.example")).await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert!(allowed
        .header("vary")
        .is_some_and(|v| v.to_ascii_lowercase().contains("origin")));
    let trailing_slash_listed = send_raw(server.port, &preflight("/v1/t", PAGE)).await;
    assert_eq!(
        trailing_slash_listed.header("access-control-allow-origin"),
        Some(PAGE)
    );
    let other = send_raw(server.port, &preflight("/v1/t", "https://evil.example")).await;
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[test]
fn a_path_in_an_origin_stops_start_up_with_a_message() {
    let dir = ingest_support::config_file(
        "write_keys = [\"k\"]\naccount_token = \"NPS-4aeb53c1\"\ncors_allowed_origins = [\"https://shop.example/checkout\"]\n",
    );
    let path = dir.join("config.toml");
    let error = inmoment_host::config::Config::load(
        Some(&path),
        &|_| None,
        &inmoment_host::config::ConfigFlags::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("cors_allowed_origins") && error.contains("no path"),
        "{error}"
    );
}
