#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `/v1/webhook` for Segment in front: type from the body, one event or an array,
//! `X-Signature` checked, `delete` answered 200 and counted as skipped.

mod ingest_support;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha1::Sha1;

use ingest_support::{basic, config, config_from_toml, store, Server, KEY};

const SECRET: &str = "hook-secret";

fn sign(data: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(data);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn signed_config() -> inmoment_host::config::Config {
    let mut config = config();
    config.webhook_secret = Some(inmoment_host::config::Secret::new(SECRET));
    config
}

const EVENT: &str = r#"{"type":"track","userId":"u","event":"Forwarded","messageId":"w-1","writeKey":"segments-own-key","timestamp":"2024-05-01T12:00:00.000Z","sentAt":"2024-05-01T12:00:30.000Z","receivedAt":"2024-05-01T12:00:31.000Z"}"#;

#[tokio::test]
async fn a_signed_single_event_is_accepted_as_forwarded() {
    let acceptor = store();
    let server = Server::start(signed_config(), acceptor.clone()).await;
    let signature = sign(EVENT.as_bytes());
    let reply = server
        .post(
            "/v1/webhook",
            &[("X-Signature", &signature)],
            EVENT.as_bytes(),
        )
        .await;
    assert_eq!((reply.status, reply.json()), (200, json!({"success":true})));
    let stored = &acceptor.events()[0];
    assert_eq!(stored.event_type().as_str(), "track");
    // Segment already corrected the timestamp and stamped receivedAt: both are kept.
    assert_eq!(
        stored.timestamp.as_deref(),
        Some("2024-05-01T12:00:00.000Z")
    );
    assert_eq!(stored.extra["receivedAt"], "2024-05-01T12:00:31.000Z");
    assert!(!stored.extra.contains_key("writeKey"));
}

#[tokio::test]
async fn an_array_signed_over_the_whole_body_is_accepted_per_index() {
    let acceptor = store();
    let server = Server::start(signed_config(), acceptor.clone()).await;
    let body = r#"[{"type":"identify","userId":"u","traits":{"email":"a@b.c"}}, {"type":"page","userId":"u","name":"Home"}, {"type":"track","userId":"u"}]"#;
    let signature = sign(body.as_bytes());
    let reply = server
        .post(
            "/v1/webhook",
            &[("X-Signature", &signature)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let results = reply.json()["results"].clone();
    assert_eq!(results[0], json!({"index":0,"status":"accepted"}));
    assert_eq!(results[1], json!({"index":1,"status":"accepted"}));
    assert_eq!(results[2]["status"], "rejected");
    assert_eq!(results[2]["path"], "event");
}

#[tokio::test]
async fn a_signature_of_the_first_element_does_not_admit_what_follows_it() {
    let acceptor = store();
    let server = Server::start(signed_config(), acceptor.clone()).await;
    let first = r#"{"type":"identify","userId":"u","traits":{"email":"a@b.c"}}"#;
    let forged = r#"{"type":"track","userId":"victim","event":"Forged"}"#;
    let body = format!("[{first},{forged}]");
    let signature = sign(first.as_bytes());
    let reply = server
        .post(
            "/v1/webhook",
            &[("X-Signature", &signature)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json()["code"], "invalid_signature");
    assert!(acceptor.rows().is_empty());

    // Segment's Actions batches sign only the first element: they send the write key too.
    let auth = basic(KEY);
    let reply = server
        .post(
            "/v1/webhook",
            &[("X-Signature", &signature), ("Authorization", &auth)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(acceptor.rows().len(), 2);
}

#[tokio::test]
async fn without_a_secret_the_webhook_needs_a_write_key() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let plain = br#"{"type":"track","userId":"u","event":"A","messageId":"k-1"}"#;
    let reply = server.post("/v1/webhook", &[], plain).await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json()["code"], "missing_write_key");
    let reply = server
        .post("/v1/webhook?writeKey=not-ours", &[], plain)
        .await;
    assert_eq!(reply.json()["code"], "invalid_write_key");
    // A signature means nothing without a secret to check it against.
    let reply = server
        .post("/v1/webhook", &[("X-Signature", &sign(plain))], plain)
        .await;
    assert_eq!(reply.status, 401);
    assert!(acceptor.rows().is_empty());

    let reply = server
        .post(&format!("/v1/webhook?writeKey={KEY}"), &[], plain)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let auth = basic(KEY);
    let reply = server
        .post(
            "/v1/webhook",
            &[("Authorization", &auth)],
            br#"{"type":"track","userId":"u","event":"A","messageId":"k-2"}"#,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let in_body = format!(
        r#"[{{"type":"track","userId":"u","event":"A","messageId":"k-3","writeKey":"{KEY}"}},{{"type":"track","userId":"u","event":"B","messageId":"k-4","writeKey":"{KEY}"}}]"#
    );
    let reply = server.post("/v1/webhook", &[], in_body.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mixed = format!(
        r#"[{{"type":"track","userId":"u","event":"A","messageId":"k-5","writeKey":"{KEY}"}},{{"type":"track","userId":"u","event":"B","messageId":"k-6"}}]"#
    );
    let reply = server.post("/v1/webhook", &[], mixed.as_bytes()).await;
    assert_eq!(reply.status, 401, "every element must carry the key");
    assert_eq!(acceptor.rows().len(), 4);
}

#[test]
fn an_empty_webhook_secret_is_a_configuration_error() {
    let error = inmoment_host::config::Config::load(
        Some(
            &ingest_support::config_file(
                "account_token = \"NPS-4aeb53c1\"\nwrite_keys = [\"k\"]\nwebhook_secret = \"  \"\n",
            )
            .join("config.toml"),
        ),
        &|_: &str| None,
        &inmoment_host::config::ConfigFlags::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains("webhook_secret"), "{error}");
}

#[tokio::test]
async fn more_items_than_max_batch_items_are_refused_whole() {
    let mut config = config();
    config.max_batch_items = 3;
    let acceptor = store();
    let server = Server::start(config, acceptor.clone()).await;
    let body = format!("[{}]", ["{}"; 4].join(","));
    let auth = basic(KEY);
    let reply = server
        .post("/v1/webhook", &[("Authorization", &auth)], body.as_bytes())
        .await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.json()["code"], "too_many_items");
    assert_eq!(reply.json()["limit"], "max_batch_items");
    assert!(acceptor.rows().is_empty());
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_401_and_nothing_kept() {
    let acceptor = store();
    let server = Server::start(signed_config(), acceptor.clone()).await;
    let wrong = sign(b"something else");
    let reply = server
        .post("/v1/webhook", &[("X-Signature", &wrong)], EVENT.as_bytes())
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["code"], "invalid_signature");
    let reply = server.post("/v1/webhook", &[], EVENT.as_bytes()).await;
    assert_eq!(reply.status, 401);
    let reply = server
        .post("/v1/webhook", &[("X-Signature", "zz")], EVENT.as_bytes())
        .await;
    assert_eq!(reply.status, 401);
    assert!(acceptor.rows().is_empty());
}

#[tokio::test]
async fn delete_is_answered_200_and_counted_as_skipped() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = br#"{"type":"delete","userId":"u","timestamp":"2024-05-01T12:00:00Z"}"#;
    let auth = basic(KEY);
    let reply = server
        .post("/v1/webhook", &[("Authorization", &auth)], body)
        .await;
    assert_eq!((reply.status, reply.json()), (200, json!({"success":true})));
    assert!(acceptor.rows().is_empty());
    let metrics = server.get("/metrics").await.text();
    assert!(metrics.contains(
        "inmoment_events_skipped_total{type=\"delete\",reason=\"delete_not_supported\"} 1"
    ));
}

#[tokio::test]
async fn with_several_sources_the_webhook_needs_a_key() {
    let config = config_from_toml(
        r#"
        account_token = "NPS-4aeb53c1"
        write_keys = ["us-key"]
        webhook_secret = "hook-secret"
        [[sources]]
        name = "eu"
        write_key = "eu-key"
        account_token = "NPS-EU-4aeb53c1"
        "#,
    );
    let acceptor = store();
    let server = Server::start(config, acceptor.clone()).await;
    // A valid signature authenticates, but cannot choose among several sources.
    let signature = sign(EVENT.as_bytes());
    let reply = server
        .post(
            "/v1/webhook",
            &[("X-Signature", &signature)],
            EVENT.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["code"], "missing_write_key");

    let reply = server
        .post("/v1/webhook?writeKey=eu-key", &[], EVENT.as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let auth = basic("us-key");
    let event = EVENT.replace("w-1", "w-2");
    let reply = server
        .post("/v1/webhook", &[("Authorization", &auth)], event.as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sources: Vec<String> = acceptor.rows().into_iter().map(|r| r.source).collect();
    assert_eq!(sources, ["eu", "default"]);
}
