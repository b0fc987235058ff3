#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Write keys as Segment takes them; a wrong or missing key keeps nothing.

mod ingest_support;

use base64::Engine as _;
use serde_json::json;

use ingest_support::{basic, config_from_toml, store, Server, KEY};

const TRACK: &[u8] = br#"{"userId":"u-1","event":"Clicked"}"#;

#[tokio::test]
async fn no_key_is_401_with_a_json_error_and_nothing_kept() {
    let acceptor = store();
    let server = Server::start(ingest_support::config(), acceptor.clone()).await;
    let reply = server.post("/v1/track", &[], TRACK).await;
    assert_eq!(reply.status, 401);
    let body = reply.json();
    assert_eq!(body["code"], "missing_write_key");
    assert!(body["message"].as_str().unwrap().contains("writeKey"));
    assert!(acceptor.rows().is_empty());
}

#[tokio::test]
async fn wrong_key_is_401_and_nothing_kept() {
    let acceptor = store();
    let server = Server::start(ingest_support::config(), acceptor.clone()).await;
    let auth = basic("not-a-key");
    let reply = server
        .post("/v1/track", &[("Authorization", &auth)], TRACK)
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["code"], "invalid_write_key");
    let body_key = server
        .post(
            "/v1/track",
            &[],
            br#"{"userId":"u","event":"E","writeKey":"nope"}"#,
        )
        .await;
    assert_eq!(body_key.status, 401);
    assert!(acceptor.rows().is_empty());
}

#[tokio::test]
async fn basic_without_colon_is_accepted() {
    let acceptor = store();
    let server = Server::start(ingest_support::config(), acceptor.clone()).await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(KEY);
    let auth = format!("Basic {encoded}");
    let reply = server
        .post("/v1/track", &[("Authorization", &auth)], TRACK)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(acceptor.events().len(), 1);
}

#[tokio::test]
async fn body_write_key_alone_is_accepted_and_not_kept() {
    let acceptor = store();
    let server = Server::start(ingest_support::config(), acceptor.clone()).await;
    let body = format!(r#"{{"userId":"u","event":"E","writeKey":"{KEY}"}}"#);
    let reply = server.post("/v1/track", &[], body.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let batch = format!(r#"{{"writeKey":"{KEY}","batch":[{{"type":"identify","userId":"u"}}]}}"#);
    let reply = server.post("/v1/batch", &[], batch.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let events = acceptor.events();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| !e.extra.contains_key("writeKey")));
}

#[tokio::test]
async fn header_and_body_keys_that_differ_are_refused() {
    let acceptor = store();
    let server = Server::start(ingest_support::config(), acceptor.clone()).await;
    let auth = basic(KEY);
    let reply = server
        .post(
            "/v1/track",
            &[("Authorization", &auth)],
            br#"{"userId":"u","event":"E","writeKey":"other"}"#,
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["code"], "write_key_mismatch");
    assert!(acceptor.rows().is_empty());
}

#[tokio::test]
async fn a_batch_item_with_another_write_key_is_rejected_alone() {
    let acceptor = store();
    let server = Server::start(ingest_support::config(), acceptor.clone()).await;
    let body = json!({"batch":[
        {"type":"track","userId":"u","event":"A","writeKey":"someone-else"},
        {"type":"track","userId":"u","event":"B","writeKey":KEY},
    ]});
    let reply = server.post_json("/v1/batch", &body).await;
    assert_eq!(reply.status, 200);
    let results = &reply.json()["results"];
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["code"], "write_key_mismatch");
    assert_eq!(results[0]["path"], "writeKey");
    assert_eq!(results[1], json!({"index":1,"status":"accepted"}));
    assert_eq!(acceptor.events().len(), 1);
}

#[tokio::test]
async fn each_write_key_goes_to_its_own_source() {
    let config = config_from_toml(
        r#"
        account_token = "NPS-4aeb53c1"
        write_keys = "us-key"
        [[sources]]
        name = "eu"
        write_key = "eu-key"
        account_token = "NPS-EU-4aeb53c1"
        "#,
    );
    let acceptor = store();
    let server = Server::start(config, acceptor.clone()).await;
    for key in ["us-key", "eu-key"] {
        let auth = basic(key);
        let reply = server
            .post("/v1/track", &[("Authorization", &auth)], TRACK)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let sources: Vec<String> = acceptor.rows().into_iter().map(|r| r.source).collect();
    assert_eq!(sources, ["default", "eu"]);
}
