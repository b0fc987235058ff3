#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Connections: a slow or silent client cannot hold one, their number is capped, and an
//! idle one does not hold up shutdown.

mod ingest_support;

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use ingest_support::{basic, config, store, Server, KEY};

/// Generous bound for things that must happen "soon"; a test only fails past it.
const SOON: Duration = Duration::from_secs(10);

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(SOON, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open");
    received
}

fn track_request(keep_alive: bool) -> Vec<u8> {
    let body = br#"{"userId":"u","event":"E"}"#;
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut request = format!(
        "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        basic(KEY),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[tokio::test]
async fn a_request_head_sent_too_slowly_loses_its_connection() {
    let mut config = config();
    config.header_read_timeout = Duration::from_millis(200);
    let server = Server::start(config, store()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    stream
        .write_all(b"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    until_closed(&mut stream).await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let mut config = config();
    config.header_read_timeout = Duration::from_millis(200);
    let acceptor = store();
    let server = Server::start(config, acceptor.clone()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    stream.write_all(&track_request(true)).await.unwrap();
    let received = until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(acceptor.events().len(), 1);
}

#[tokio::test]
async fn past_max_connections_a_new_one_waits_until_one_closes() {
    let mut config = config();
    config.max_connections = 2;
    let acceptor = store();
    let server = Server::start(config, acceptor.clone()).await;
    let port = server.port;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    // Both silent connections hold their slots: one request each proves the server took them.
    for stream in &mut silent {
        stream.write_all(&track_request(true)).await.unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    let waiting = tokio::spawn(async move {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(&track_request(false)).await.unwrap();
        until_closed(&mut stream).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served while two were open"
    );
    assert_eq!(acceptor.events().len(), 2);
    drop(silent.pop());
    let answer = tokio::time::timeout(SOON, waiting)
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert_eq!(acceptor.events().len(), 3);
}

#[tokio::test]
async fn an_idle_connection_does_not_hold_up_shutdown() {
    let mut config = config();
    config.shutdown_deadline = Duration::from_secs(60);
    let mut server = Server::start(config, store()).await;
    let mut idle = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    idle.write_all(&track_request(true)).await.unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    let _silent = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    server.signal_shutdown();
    let stopped = tokio::time::timeout(SOON, &mut server.task)
        .await
        .expect("shutdown waited for idle connections");
    stopped.unwrap().unwrap();
}

/// Sends `request` on a fresh connection and returns the status line and the JSON body.
async fn exchange(port: u16, request: &[u8]) -> (String, serde_json::Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    let received = until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or_default().to_string();
    let json = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

fn head_only(path: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Length: 0\r\nConnection: close\r\n{extra_headers}\r\n",
        basic(KEY)
    )
    .into_bytes()
}

#[tokio::test]
async fn a_uri_too_long_is_refused_with_a_json_error() {
    let server = Server::start(config(), store()).await;
    let path = format!("/v1/track?pad={}", "a".repeat(9_000));
    let (status, body) = exchange(server.port, &head_only(&path, "")).await;
    assert!(status.starts_with("HTTP/1.1 414"), "{status}");
    assert_eq!(body["code"], "uri_too_long", "{body}");
}

#[tokio::test]
async fn too_many_headers_are_refused_with_a_json_error() {
    let server = Server::start(config(), store()).await;
    let many: String = (0..80).map(|i| format!("X-Pad-{i}: v\r\n")).collect();
    let (status, body) = exchange(server.port, &head_only("/v1/track", &many)).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert_eq!(body["code"], "headers_too_large", "{body}");
    // Past the HTTP layer's own limit the answer is still a 431, without a body.
    let more: String = (0..150).map(|i| format!("X-Pad-{i}: v\r\n")).collect();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    stream
        .write_all(&head_only("/v1/track", &more))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&until_closed(&mut stream).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn headers_too_large_in_bytes_are_refused_with_a_json_error() {
    let server = Server::start(config(), store()).await;
    let big = format!("X-Pad: {}\r\n", "v".repeat(40 * 1024));
    let (status, body) = exchange(server.port, &head_only("/v1/track", &big)).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");
    assert_eq!(body["code"], "headers_too_large", "{body}");
}

#[tokio::test]
async fn non_ascii_bytes_in_a_header_get_a_json_error() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let request =
        b"POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\nAuthorization: Basic \xff\xfe\r\n\r\n"
            .to_vec();
    let (status, body) = exchange(server.port, &request).await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    assert!(body["code"].is_string(), "{body}");
    assert!(acceptor.events().is_empty());
}
