#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What ingest writes to the log: each refused request once, with its code, and a flood
//! of bad events bounded by the log budget. In a test binary of their own: every test
//! here captures the log before anything logs, so no other test's thread can leave a
//! log callsite cached as "nobody listens" (tracing caches that per callsite).

mod ingest_support;

use std::sync::Arc;

use serde_json::json;

use ingest_support::{config, store, Server};

/// Log output written while the test's (single-threaded) runtime runs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// Captures this thread's logs (the test runtime's only thread) until the guard drops.
    fn capture() -> (LogBuffer, tracing::subscriber::DefaultGuard) {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(inmoment_host::logging::escaped_fields())
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn each_refused_request_is_logged_once_with_its_code() {
    let (logs, _guard) = LogBuffer::capture();
    // A real store refusing: more events waiting than max_pending_calls allows.
    let refusing = ingest_support::TestStore::open(|store| store.max_pending = 0);
    let server = Server::start(config(), refusing).await;
    let reply = server
        .post_json("/v1/track", &json!({"userId":"u","event":"E"}))
        .await;
    assert_eq!(reply.status, 503);
    let reply = server
        .post("/v1/track", &[], br#"{"userId":"u","event":"E"}"#)
        .await;
    assert_eq!(reply.status, 401);
    let text = logs.text();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("code=")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("code=\"unavailable\""),
        "{text}"
    );
    assert!(
        lines[1].contains("INFO") && lines[1].contains("code=\"missing_write_key\""),
        "{text}"
    );
    assert!(!text.contains("Some("), "{text}");
}

#[tokio::test]
async fn a_flood_of_bad_events_writes_a_bounded_number_of_log_lines() {
    let (logs, _guard) = LogBuffer::capture();
    let server = Server::start(config(), store()).await;
    let items = vec![json!({}); 2_000];
    let reply = server
        .post_json("/v1/batch", &json!({"batch": items}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let bad_key = server
        .post("/v1/track", &[("Authorization", "Basic !!")], b"{}")
        .await;
    assert_eq!(bad_key.status, 401);
    let text = logs.text();
    let rejected = text
        .lines()
        .filter(|l| l.contains("Event rejected."))
        .count();
    assert!(
        (1..=20).contains(&rejected),
        "{rejected} lines for 2,000 rejected events"
    );
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("reason=\"invalid_event\"} 2000"),
        "every rejection is still counted"
    );
}
