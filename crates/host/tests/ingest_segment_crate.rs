#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real Rust `segment` crate (0.2.6) against the server: Basic auth, its
//! `"anonymousId":""` and `null` defaults, single calls and a batch.

mod ingest_support;

use segment::message::{BatchMessage, Identify, Message, Page, Track, User};
use segment::{Batcher, Client as _, HttpClient};
use serde_json::json;

use ingest_support::{config, store, Server, KEY};

fn client(port: u16) -> HttpClient {
    // No proxy: the test must only ever talk to 127.0.0.1.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    HttpClient::new(http, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn identify_track_and_page_from_the_segment_crate_arrive() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let client = client(server.port);
    let identify = Identify {
        user: User::UserId {
            user_id: "u-1".into(),
        },
        traits: json!({"email":"ada@example.com","createdAt":"2024-01-02T03:04:05Z"}),
        ..Identify::default()
    };
    client.send(KEY.into(), identify.into()).await.unwrap();
    let track = Track {
        user: User::Both {
            user_id: "u-1".into(),
            anonymous_id: String::new(),
        },
        event: "Signed Up".into(),
        ..Track::default()
    };
    client.send(KEY.into(), track.into()).await.unwrap();
    let page = Page {
        user: User::AnonymousId {
            anonymous_id: "anon-1".into(),
        },
        name: "Pricing".into(),
        properties: json!({"url":"https://example.com/pricing"}),
        ..Page::default()
    };
    client.send(KEY.into(), page.into()).await.unwrap();

    let events = acceptor.events();
    let summary: Vec<(String, Option<String>, Option<String>)> = events
        .iter()
        .map(|e| {
            (
                e.event_type().to_string(),
                e.user_id.clone(),
                e.anonymous_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("identify".to_string(), Some("u-1".to_string()), None),
            ("track".to_string(), Some("u-1".to_string()), None),
            ("page".to_string(), None, Some("anon-1".to_string())),
        ]
    );
    let inmoment_core::Payload::Identify { traits } = &events[0].payload else {
        panic!("not an identify")
    };
    assert_eq!(traits["email"], "ada@example.com");
    assert!(
        matches!(&events[1].payload, inmoment_core::Payload::Track { event, properties } if event == "Signed Up" && properties.is_empty())
    );
    assert!(
        matches!(&events[2].payload, inmoment_core::Payload::Page { name: Some(n), .. } if n == "Pricing")
    );
    assert!(events
        .iter()
        .all(|e| e.message_id.is_some() && e.timestamp.is_some()));
}

#[tokio::test]
async fn a_batch_from_the_batcher_arrives_in_order() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let mut batcher = Batcher::new(Some(json!({"library":{"name":"segment-rs"}})));
    for n in 0..3 {
        let track = Track {
            user: User::UserId {
                user_id: format!("u-{n}"),
            },
            event: "Viewed".into(),
            extra: json!({"messageId": format!("batch-{n}")})
                .as_object()
                .unwrap()
                .clone(),
            ..Track::default()
        };
        assert!(batcher.push(BatchMessage::from(track)).unwrap().is_none());
    }
    let page = Page {
        user: User::UserId {
            user_id: "u-9".into(),
        },
        name: "Home".into(),
        ..Page::default()
    };
    assert!(batcher.push(BatchMessage::from(page)).unwrap().is_none());
    client(server.port)
        .send(KEY.into(), batcher.into_message())
        .await
        .unwrap();

    let events = acceptor.events();
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e.message_id.as_deref().unwrap())
        .collect();
    assert_eq!(&ids[..3], ["batch-0", "batch-1", "batch-2"]);
    assert_eq!(events[3].event_type().as_str(), "page");
    assert!(events
        .iter()
        .all(|e| e.context.extra["library"] == json!({"name":"segment-rs"})));
}

#[tokio::test]
async fn the_crates_default_user_has_no_identity_and_is_refused() {
    let acceptor = store();
    let server = Server::start(config(), acceptor.clone()).await;
    let track = Track {
        event: "Nobody".into(),
        ..Track::default()
    };
    let result = client(server.port)
        .send(KEY.into(), Message::from(track))
        .await;
    assert!(result.is_err(), "a 400 is an error for the crate");
    assert!(acceptor.rows().is_empty());
}
