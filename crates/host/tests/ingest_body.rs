#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Body handling: size limits (named in the 413), gzip, chunked bodies, content types and
//! invalid JSON with the parser's position.

mod ingest_support;

use std::io::Write as _;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use ingest_support::{basic, config, send_raw, store, Server, KEY};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A track event whose JSON is exactly `size` bytes.
fn track_of_size(size: usize, id: &str) -> Value {
    let base =
        json!({"type":"track","userId":"u","event":"E","messageId":id,"properties":{"pad":""}});
    let pad = size - serde_json::to_vec(&base).unwrap().len();
    json!({"type":"track","userId":"u","event":"E","messageId":id,"properties":{"pad":"x".repeat(pad)}})
}

#[tokio::test]
async fn an_event_over_32_kib_is_413_naming_the_limit() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let at_limit = server
        .post_json("/v1/track", &track_of_size(32_768, "a"))
        .await;
    assert_eq!(at_limit.status, 200, "{}", at_limit.text());
    let over = server
        .post_json("/v1/track", &track_of_size(32_769, "b"))
        .await;
    assert_eq!(over.status, 413);
    let body = over.json();
    assert_eq!(body["code"], "event_too_large");
    assert_eq!(body["limit"], "max_event_bytes");
    assert_eq!(body["max_bytes"], 32_768);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("max_event_bytes"));
    assert_eq!(acceptor.events().len(), 1);
}

#[tokio::test]
async fn a_batch_over_the_limit_is_413_for_the_whole_request() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let items: Vec<Value> = (0..17)
        .map(|i| track_of_size(32_000, &format!("m-{i}")))
        .collect();
    let reply = server
        .post_json("/v1/batch", &json!({ "batch": items }))
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["code"], "batch_too_large");
    assert_eq!(reply.json()["limit"], "max_batch_bytes");
    assert!(acceptor.rows().is_empty());
}

#[tokio::test]
async fn a_full_524288_byte_batch_of_the_analytics_crate_fits() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    // 16 events of 32,767 bytes plus commas: 524,288 bytes of events, plus the envelope.
    let items: Vec<Value> = (0..16)
        .map(|i| track_of_size(32_767, &format!("m-{i}")))
        .collect();
    let body =
        serde_json::to_vec(&json!({ "batch": items, "sentAt": "2024-05-01T12:00:00Z" })).unwrap();
    assert!(
        body.len() > 524_288 && body.len() <= 532_480,
        "{}",
        body.len()
    );
    let auth = basic(KEY);
    let reply = server
        .post("/v1/batch", &[("Authorization", &auth)], &body)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(acceptor.events().len(), 16);
}

#[tokio::test]
async fn an_oversized_batch_item_is_rejected_by_index() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = json!({"batch":[track_of_size(40_000, "big"), track_of_size(500, "small")]});
    let reply = server.post_json("/v1/batch", &body).await;
    assert_eq!(reply.status, 200);
    let results = &reply.json()["results"];
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["code"], "event_too_large");
    assert_eq!(results[0]["limit"], "max_event_bytes");
    assert_eq!(results[1]["status"], "accepted");
    assert_eq!(acceptor.events().len(), 1);
}

#[tokio::test]
async fn gzip_bodies_are_decoded_and_limited_by_decoded_size() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let auth = basic(KEY);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Encoding", "gzip"),
    ];
    let body = gzip(br#"{"batch":[{"type":"identify","userId":"u"}]}"#);
    let reply = server.post("/v1/batch", &headers, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // 40 KB of spaces compress to a few hundred bytes, but the decoded size counts.
    let mut padded = br#"{"userId":"u","event":"E"}"#.to_vec();
    padded.extend(std::iter::repeat_n(b' ', 40_000));
    let bomb = gzip(&padded);
    assert!(bomb.len() < 1_000);
    let reply = server.post("/v1/track", &headers, &bomb).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["limit"], "max_event_bytes");

    let broken = server.post("/v1/track", &headers, b"not gzip").await;
    assert_eq!(broken.status, 400);
    assert_eq!(broken.json()["code"], "invalid_gzip");
    assert_eq!(acceptor.events().len(), 1);
}

#[tokio::test]
async fn chunked_bodies_without_content_length_are_read() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = br#"{"userId":"u","event":"Chunked"}"#;
    let (a, b) = body.split_at(10);
    let mut request = format!(
        "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        basic(KEY)
    )
    .into_bytes();
    for chunk in [a, b] {
        request.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    let reply = send_raw(server.port, &request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(acceptor.events().len(), 1);
}

#[tokio::test]
async fn json_plain_text_and_missing_content_types_are_accepted() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = format!(r#"{{"userId":"u","event":"E","writeKey":"{KEY}"}}"#);
    for content_type in [
        "application/json; charset=utf-8",
        "text/plain;charset=UTF-8",
    ] {
        let reply = server
            .post("/v1/t", &[("Content-Type", content_type)], body.as_bytes())
            .await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.text());
    }
    let bare = format!(
        "POST /v1/track HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = send_raw(server.port, bare.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let brotli = server
        .post("/v1/track", &[("Content-Encoding", "br")], body.as_bytes())
        .await;
    assert_eq!(brotli.status, 415);
    assert_eq!(brotli.json()["code"], "unsupported_encoding");
    assert_eq!(acceptor.events().len(), 3);
}

#[tokio::test]
async fn a_json_body_is_taken_whatever_its_content_type_says() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = format!(r#"{{"userId":"u","event":"E","writeKey":"{KEY}"}}"#);
    // What RudderStack's Node SDK sends: gzip JSON labelled as a form.
    let form = server
        .post(
            "/v1/track",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Encoding", "gzip"),
            ],
            &gzip(body.as_bytes()),
        )
        .await;
    assert_eq!(form.status, 200, "{}", form.text());
    let xml_label = server
        .post(
            "/v1/track",
            &[("Content-Type", "application/xml")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(xml_label.status, 200, "{}", xml_label.text());
    assert_eq!(acceptor.events().len(), 2);

    let xml = server
        .post(
            "/v1/track",
            &[
                ("Content-Type", "application/xml"),
                ("Authorization", &basic(KEY)),
            ],
            b"<track><event>E</event></track>",
        )
        .await;
    assert_eq!(xml.status, 415, "{}", xml.text());
    assert_eq!(xml.json()["code"], "unsupported_media_type");
    let form = server
        .post(
            "/v1/track",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", &basic(KEY)),
            ],
            b"userId=u&event=E",
        )
        .await;
    assert_eq!(form.status, 415, "{}", form.text());
    assert_eq!(acceptor.events().len(), 2);
}

#[tokio::test]
async fn invalid_json_is_400_with_line_and_column() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let auth = basic(KEY);
    let reply = server
        .post(
            "/v1/batch",
            &[("Authorization", &auth)],
            b"{\"batch\": [\n  {\"type\": \"track\",}\n]}",
        )
        .await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["code"], "invalid_json");
    assert_eq!(
        (body["line"].as_u64(), body["column"].as_u64()),
        (Some(2), Some(20))
    );
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("line 2 column 20"));

    let single = server
        .post("/v1/track", &[("Authorization", &auth)], b"{nope")
        .await;
    assert_eq!(single.status, 400);
    assert_eq!(single.json()["code"], "invalid_json");
    assert_eq!(single.json()["line"], 1);

    let no_batch = server
        .post("/v1/batch", &[("Authorization", &auth)], b"[1,2]")
        .await;
    assert_eq!(no_batch.status, 400);
    assert_eq!(no_batch.json()["code"], "invalid_body");
    assert!(acceptor.rows().is_empty());
}
