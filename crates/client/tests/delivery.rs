//! Delivery behaviour over real HTTP against the sandbox: token caching and refresh,
//! retries and give-ups through the stack, InMoment's 429 and the client-side limiter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::*;
use inmoment_client::{delivery_stack, DeliveryError, InMomentClient, WallClock};
use inmoment_core::ClientId;
use inmoment_sandbox::{Fault, RateLimitConfig, Sandbox, SandboxConfig};
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;

#[tokio::test]
async fn one_token_serves_many_calls_even_concurrent_ones() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let email = format!("user{n}@example.com");
            let call = upsert(
                end_user(Some(&format!("u-{n}")), Some(&email)),
                &[("email", &email)],
            );
            client.send(&call).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(sandbox.count("oauth.token"), 1);
    assert_eq!(sandbox.count("end_users.create"), 8);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_call_goes_through() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let who = || end_user(Some("u-1"), Some("ken@example.com"));
    client
        .send(&upsert(who(), &[("email", "ken@example.com")]))
        .await
        .unwrap();
    sandbox.expire_tokens();
    let out = client
        .send(&upsert(who(), &[("properties[plan]", "pro")]))
        .await
        .unwrap();
    assert_eq!(out.status, 200);
    let requests = sandbox.requests();
    assert_eq!(
        routes(&requests[requests.len() - 3..]),
        route_list(&[
            ("end_users.update", 401),
            ("oauth.token", 200),
            ("end_users.update", 200)
        ])
    );
    assert_ne!(
        header(&requests[requests.len() - 3], "authorization"),
        header(&requests[requests.len() - 1], "authorization"),
        "the retry carries the new token"
    );
}

#[tokio::test]
async fn a_second_401_after_a_refresh_says_to_check_the_credentials() {
    let sandbox = sandbox().await;
    sandbox.add_fault(Fault::status("end_users.get", 401).times(Some(2)));
    let err = client(&sandbox)
        .send(&upsert(
            end_user(Some("u-1"), None),
            &[("email", "a@example.com")],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("check the Client ID and Client Secret"),
        "{err}"
    );
    assert_eq!(sandbox.count("oauth.token"), 2, "exactly one refresh");
    assert_eq!(sandbox.count("end_users.get"), 2);
}

#[tokio::test]
async fn refused_credentials_are_not_retried() {
    let sandbox = sandbox().await;
    let mut config = config(&sandbox);
    config.client_id = Some(ClientId::parse("not-a-client").unwrap());
    let stack = delivery_stack(InMomentClient::new(config.clone()).unwrap(), &config.stack);
    let err = stack
        .oneshot(upsert(
            end_user(Some("u-1"), None),
            &[("email", "a@example.com")],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert_eq!(sandbox.count("oauth.token"), 1);
}

#[tokio::test]
async fn two_server_errors_then_success_take_three_attempts() {
    let sandbox = sandbox().await;
    sandbox.add_fault(Fault::status("eligible", 500).times(Some(2)));
    let config = config(&sandbox);
    let stack = delivery_stack(InMomentClient::new(config.clone()).unwrap(), &config.stack);
    let out = stack.oneshot(demo_eligibility()).await.unwrap();
    assert_eq!(out.attempts, 3);
    assert_eq!(
        routes(&sandbox.requests()),
        route_list(&[("eligible", 500), ("eligible", 500), ("eligible", 200)])
    );
}

#[tokio::test]
async fn a_bad_request_is_tried_once_and_kept_with_its_body() {
    let sandbox = sandbox().await;
    sandbox.add_fault(
        Fault::status("responses.create", 400).body(json!({"error": "score must be 0-10"})),
    );
    let config = config(&sandbox);
    let stack = delivery_stack(InMomentClient::new(config.clone()).unwrap(), &config.stack);
    let err = stack
        .oneshot(response(
            end_user(Some("u-1"), Some("a@example.com")),
            &[("score", "11")],
        ))
        .await
        .unwrap_err();
    match &err {
        DeliveryError::Permanent { status, body, .. } => {
            assert_eq!(*status, 400);
            assert!(body.contains("score must be 0-10"), "{body}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(sandbox.count("responses.create"), 1);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let sandbox = sandbox().await;
    sandbox.add_fault(Fault::drop_connection("eligible"));
    let config = config(&sandbox);
    let stack = delivery_stack(InMomentClient::new(config.clone()).unwrap(), &config.stack);
    let out = stack.oneshot(demo_eligibility()).await.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(sandbox.count("eligible"), 2);
}

#[tokio::test]
async fn a_slow_answer_is_cut_by_the_attempt_timeout_and_retried() {
    let sandbox = sandbox().await;
    sandbox.add_fault(Fault::delay("eligible", 2000));
    let mut config = config(&sandbox);
    config.stack.attempt_timeout = Duration::from_millis(100);
    let stack = delivery_stack(InMomentClient::new(config.clone()).unwrap(), &config.stack);
    let started = Instant::now();
    let out = stack.oneshot(demo_eligibility()).await.unwrap();
    assert!(out.attempts >= 2, "{out:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "not waited out"
    );
}

#[tokio::test]
async fn a_forgotten_end_user_is_found_or_created_again() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let who = || end_user(Some("u-1"), Some("ken@example.com"));
    let first = client
        .send(&upsert(
            who(),
            &[("email", "ken@example.com"), ("external_id", "u-1")],
        ))
        .await
        .unwrap();
    sandbox.reset(); // InMoment no longer has the user (nor the token).
    let second = client
        .send(&response(who(), &[("score", "10")]))
        .await
        .unwrap();
    let users = demo_state(&sandbox, "end_users");
    assert_eq!(users.len(), 1);
    assert_eq!(second.end_user_id, users[0]["id"].as_u64());
    assert!(first.end_user_id.is_some());
    assert_eq!(
        routes(&sandbox.requests()),
        route_list(&[
            ("responses.create", 401),
            ("oauth.token", 200),
            ("responses.create", 404),
            ("end_users.get", 404),
            ("end_users.create", 201),
            ("responses.create", 201)
        ])
    );
}

/// A sandbox clock frozen one second before a minute boundary, and a client wall clock
/// 50 ms before that boundary: a rate-limit window "resets in 50 ms" for the client.
const FROZEN: i64 = 1_700_000_039;

fn just_before_the_reset() -> WallClock {
    WallClock::from_fn(|| {
        UNIX_EPOCH + Duration::from_secs(FROZEN as u64) + Duration::from_millis(950)
    })
}

async fn rate_limited_sandbox(per_minute: u32) -> Sandbox {
    Sandbox::start(SandboxConfig {
        clock_start: Some(FROZEN),
        rate_limit: RateLimitConfig {
            per_minute: Some(per_minute),
            ..RateLimitConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_429_waits_for_the_rate_limit_reset_then_goes_through() {
    let sandbox = rate_limited_sandbox(1).await;
    let mut config = config(&sandbox);
    config.wall_clock = just_before_the_reset();
    config.max_rate_limit_hold = Duration::ZERO; // limiter off: meet InMoment's 429
    config.stack.retry.max_attempts = 100;
    let stack = delivery_stack(InMomentClient::new(config.clone()).unwrap(), &config.stack);
    stack.clone().oneshot(demo_eligibility()).await.unwrap();

    let started = Instant::now();
    let pending = tokio::spawn(stack.oneshot(demo_eligibility()));
    // Once InMoment has said 429 (woken as the sandbox logs it), let its minute end.
    let refused = sandbox
        .wait_until(Duration::from_secs(10), |requests| {
            requests.iter().any(|r| r.status == 429)
        })
        .await;
    assert!(refused, "InMoment never answered 429");
    sandbox.advance_clock(1);
    let out = pending.await.unwrap().unwrap();

    assert!(out.attempts >= 2, "{out:?}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    let statuses: Vec<u16> = sandbox.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[..2], [200, 429]);
    assert_eq!(statuses.last(), Some(&200));
}

#[tokio::test]
async fn the_limiter_holds_requests_once_the_window_is_used_up() {
    let sandbox = rate_limited_sandbox(2).await;
    let mut config = config(&sandbox);
    config.wall_clock = just_before_the_reset();
    let client = InMomentClient::new(config.clone()).unwrap();
    client.send(&demo_eligibility()).await.unwrap();

    let started = Instant::now();
    client.send(&demo_eligibility()).await.unwrap(); // remaining: 0, reset in 50 ms
    sandbox.advance_clock(1); // InMoment's window has reset
    let stack = delivery_stack(client.clone(), &config.stack);
    let out = stack.oneshot(demo_eligibility()).await.unwrap();

    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(out.attempts, 1);
    let statuses: Vec<u16> = sandbox.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 200, 200], "never a 429");
}
