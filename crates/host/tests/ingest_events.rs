#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Per-event validation and enrichment: bad events rejected by index while the rest is
//! accepted, batch context merged, messageId filled, clock skew corrected exactly.

mod ingest_support;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use inmoment_core::{Event, EventType};
use serde_json::{json, Value};

use ingest_support::{config, config_from_toml, store, Server, KEY, TOKEN};

fn received_at(event: &Event) -> DateTime<Utc> {
    let text = event.extra["receivedAt"].as_str().unwrap();
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn iso(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[tokio::test]
async fn a_batch_with_bad_events_reports_each_by_index_and_keeps_the_good_ones() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = json!({"batch":[
        {"type":"track","userId":"u","event":"Good"},
        {"type":"identify","traits":{"email":"a@b.c"}},
        {"type":"track","userId":"u"},
        42,
        {"type":"delete","userId":"u"},
        {"type":"identify","userId":"u","timestamp":"yesterday"},
        {"type":"identify","userId":"u","messageId":"m".repeat(101)},
        {"type":"page","anonymousId":"a","name":"Also good"},
    ]});
    let reply = server.post_json("/v1/batch", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let results = reply.json()["results"].as_array().unwrap().clone();
    let summary: Vec<(u64, String, String, String)> = results
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                r["index"].as_u64().unwrap(),
                s("status"),
                s("code"),
                s("path"),
            )
        })
        .collect();
    let expected = [
        (0, "accepted", "", ""),
        (1, "rejected", "invalid_event", "userId"),
        (2, "rejected", "invalid_event", "event"),
        (3, "rejected", "invalid_event", ""),
        (4, "rejected", "invalid_event", "type"),
        (5, "rejected", "invalid_timestamp", "timestamp"),
        (6, "rejected", "invalid_message_id", "messageId"),
        (7, "accepted", "", ""),
    ]
    .map(|(i, s, c, p)| (i, s.to_string(), c.to_string(), p.to_string()));
    assert_eq!(summary, expected);
    assert!(results[1]["message"].as_str().unwrap().contains("userId"));
    let kept: Vec<String> = acceptor
        .events()
        .iter()
        .map(|e| e.event_type().to_string())
        .collect();
    assert_eq!(kept, ["track", "page"]);

    let metrics = server.get("/metrics").await.text();
    assert!(metrics
        .contains("inmoment_events_rejected_total{type=\"track\",reason=\"invalid_event\"} 1"));
    assert!(metrics
        .contains("inmoment_events_rejected_total{type=\"delete\",reason=\"invalid_event\"} 1"));
    assert!(metrics
        .contains("inmoment_events_rejected_total{type=\"unknown\",reason=\"invalid_event\"} 1"));
}

#[tokio::test]
async fn a_repeated_rejection_names_the_first_instead_of_repeating_its_message() {
    let server = Server::start(config(), store()).await;
    let body = json!({"batch":[{}, {"type":"track","userId":"u","event":"Good"}, {}, {}]});
    let reply = server.post_json("/v1/batch", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let results = reply.json()["results"].clone();
    assert!(results[0]["message"].is_string(), "{results}");
    assert_eq!(results[1], json!({"index":1,"status":"accepted"}));
    for index in [2, 3] {
        let result = &results[index];
        assert_eq!(result["status"], "rejected");
        assert_eq!(result["code"], results[0]["code"]);
        assert_eq!(result["same_as"], 0);
        assert!(result.get("message").is_none(), "{result}");
    }
}

#[tokio::test]
async fn a_batch_of_more_than_max_batch_items_is_413_and_nothing_is_kept() {
    let mut config = config();
    config.max_batch_items = 100;
    let acceptor = store();
    let server = Server::start(config, acceptor.clone()).await;
    let items: Vec<Value> = (0..101)
        .map(|i| json!({"type":"track","userId":"u","event":format!("E{i}")}))
        .collect();
    let reply = server
        .post_json("/v1/batch", &json!({"batch": items}))
        .await;
    assert_eq!(reply.status, 413, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["code"], "too_many_items");
    assert_eq!(body["limit"], "max_batch_items");
    assert!(body["message"].as_str().unwrap().contains("101"));
    assert!(acceptor.events().is_empty());
    let fits = json!({"batch": items[..100]});
    assert_eq!(server.post_json("/v1/batch", &fits).await.status, 200);
}

#[tokio::test]
async fn batch_context_and_integrations_are_merged_into_each_item() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = json!({
        "batch":[
            {"type":"track","userId":"u","event":"A","context":{"locale":"fr-FR"},"integrations":{"Wootric":true,"Other":true}},
            {"type":"track","userId":"u","event":"B"},
        ],
        "context":{"locale":"en-US","library":{"name":"analytics-python"}},
        "integrations":{"All":false,"Wootric":true,"Other":false},
    });
    let reply = server.post_json("/v1/batch", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let events = acceptor.events();
    assert_eq!(events[0].context.locale.as_deref(), Some("fr-FR"));
    assert_eq!(
        events[0].context.extra["library"],
        json!({"name":"analytics-python"})
    );
    assert_eq!(
        events[0].integrations,
        json!({"Wootric":true,"Other":true,"All":false})
            .as_object()
            .unwrap()
            .clone()
    );
    assert_eq!(events[1].context.locale.as_deref(), Some("en-US"));
    assert_eq!(
        events[1].integrations,
        json!({"All":false,"Wootric":true,"Other":false})
            .as_object()
            .unwrap()
            .clone()
    );
}

#[tokio::test]
async fn a_single_invalid_event_is_400_with_code_message_and_path() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let reply = server.post_json("/v1/track", &json!({"userId":"u"})).await;
    assert_eq!(reply.status, 400);
    let body = reply.json();
    assert_eq!(body["code"], "invalid_event");
    assert_eq!(body["path"], "event");
    assert!(body["message"].is_string());
    assert!(body.get("index").is_none(), "{body}");
    let reply = server
        .post_json(
            "/v1/identify",
            &json!({"userId":"u","traits":"not an object"}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json()["path"].clone()),
        (400, json!("traits"))
    );
    assert!(acceptor.rows().is_empty());
}

#[tokio::test]
async fn an_event_the_store_rejects_is_400_single_and_per_index_in_a_batch() {
    // With a client_id, a survey response is recorded through the API: its score must be
    // from 0 to 10, which the store checks before it takes the event.
    let config = config_from_toml(&format!(
        "account_token = \"{TOKEN}\"\nclient_id = \"demo-client-id\"\nwrite_keys = \"{KEY}\"\n"
    ));
    let acceptor = store();
    let server = Server::start(config, acceptor.clone()).await;
    let response =
        json!({"userId":"u","event":"Survey Response Submitted","properties":{"score":11}});
    let reply = server.post_json("/v1/track", &response).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["code"], "mapping_failed");
    assert_eq!(body["path"], "properties.score");
    assert_eq!(
        body["message"],
        "a survey response needs a score from 0 to 10; found 11"
    );

    let mut in_batch = response.clone();
    in_batch["type"] = json!("track");
    let batch = json!({"batch":[in_batch, {"type":"track","userId":"u","event":"E"}]});
    let reply = server.post_json("/v1/batch", &batch).await;
    assert_eq!(reply.status, 200);
    let results = &reply.json()["results"];
    assert_eq!(results[0]["status"], "rejected");
    assert_eq!(results[0]["code"], "mapping_failed");
    assert_eq!(results[0]["index"], 0);
    assert_eq!(results[1]["status"], "accepted");
    let kept: Vec<String> = acceptor.rows().into_iter().map(|r| r.message_id).collect();
    assert_eq!(kept.len(), 1, "only the good event is stored: {kept:?}");
}

#[tokio::test]
async fn a_repeated_message_id_is_a_duplicate() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let event = json!({"type":"track","userId":"u","event":"E","messageId":"same"});
    let single = server.post_json("/v1/track", &event).await;
    assert_eq!(single.status, 200);
    let reply = server
        .post_json("/v1/batch", &json!({"batch":[event]}))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["results"][0],
        json!({"index":0,"status":"duplicate"})
    );
    let again = server.post_json("/v1/track", &event).await;
    assert_eq!((again.status, again.json()), (200, json!({"success":true})));
    assert_eq!(acceptor.events().len(), 1);
}

/// Any event type no linked handler claims (none left: nothing to check).
#[tokio::test]
async fn a_skipped_event_is_reported_with_its_reason() {
    let registry = ingest_support::registry();
    let Some(unhandled) = EventType::ALL
        .into_iter()
        .find(|t| registry.get(*t).is_none())
    else {
        return;
    };
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let event =
        json!({"type":unhandled.as_str(),"userId":"u","event":"E","groupId":"g","previousId":"p"});
    let body = json!({"batch":[event]});
    let reply = server.post_json("/v1/batch", &body).await;
    assert_eq!(
        reply.json()["results"][0],
        json!({"index":0,"status":"skipped","reason":"no_handler"})
    );
}

#[tokio::test]
async fn message_id_is_filled_when_missing_and_kept_when_given() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = json!({"batch":[
        {"type":"track","userId":"u","event":"A"},
        {"type":"track","userId":"u","event":"B"},
        {"type":"track","userId":"u","event":"C","messageId":"given-1"},
    ]});
    server.post_json("/v1/batch", &body).await;
    let ids: Vec<String> = acceptor
        .events()
        .iter()
        .map(|e| e.message_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    for id in &ids[..2] {
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.matches('-').count(), 4, "{id}");
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[2], "given-1");
}

#[tokio::test]
async fn clock_skew_is_corrected_with_sent_at_exactly() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let body = json!({
        "sentAt":"2024-05-01T12:00:10.000Z",
        "batch":[
            {"type":"track","userId":"u","event":"Batch sentAt","timestamp":"2024-05-01T12:00:00.000Z"},
            {"type":"track","userId":"u","event":"Own sentAt","timestamp":"2024-05-01T12:00:00.000Z","sentAt":"2024-05-01T12:00:05.250Z"},
            {"type":"track","userId":"u","event":"Original","originalTimestamp":"2024-05-01T11:59:00Z"},
            {"type":"track","userId":"u","event":"Nothing"},
            {"type":"track","userId":"u","event":"Python","timestamp":"2024-05-01T12:00:00.123+00:00"},
        ]
    });
    let reply = server.post_json("/v1/batch", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let events = acceptor.events();
    let received = received_at(&events[0]);
    assert!(events.iter().all(|e| received_at(e) == received));
    let expected = [
        received - Duration::seconds(10),
        received - Duration::milliseconds(5_250),
        received - Duration::seconds(70),
        received,
        received - Duration::milliseconds(9_877),
    ];
    let timestamps: Vec<&str> = events
        .iter()
        .map(|e| e.timestamp.as_deref().unwrap())
        .collect();
    let expected: Vec<String> = expected.into_iter().map(iso).collect();
    assert_eq!(timestamps, expected);
    assert_eq!(
        events[0].extra["originalTimestamp"],
        "2024-05-01T12:00:00.000Z"
    );
    assert_eq!(events[2].extra["originalTimestamp"], "2024-05-01T11:59:00Z");
}

#[tokio::test]
async fn without_sent_at_the_timestamp_is_kept_in_utc_milliseconds() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let event = json!({"userId":"u","event":"E","timestamp":"2024-05-01T14:00:00+02:00"});
    server.post_json("/v1/track", &event).await;
    let stored = &acceptor.events()[0];
    assert_eq!(
        stored.timestamp.as_deref(),
        Some("2024-05-01T12:00:00.000Z")
    );
    let received = stored.extra["receivedAt"].as_str().unwrap();
    assert!(
        received.ends_with('Z') && received.len() == 24,
        "{received}"
    );
}

#[tokio::test]
async fn lenient_fields_null_empty_numeric_and_unknown() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let event = json!({
        "userId":42,"anonymousId":"","traits":null,"context":null,"integrations":null,
        "timestamp":null,"sentAt":null,"_metadata":{"nodeVersion":"20"},"channel":"server"
    });
    let reply = server.post_json("/v1/identify", &event).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let stored = &acceptor.events()[0];
    assert_eq!(stored.user_id.as_deref(), Some("42"));
    assert_eq!(stored.anonymous_id, None);
    assert_eq!(stored.extra["_metadata"], json!({"nodeVersion":"20"}));
    assert_eq!(stored.extra["channel"], Value::from("server"));
}
