//! Rate limits, fault injection, the request log, counters, reset and the
//! `/_sandbox/*` endpoints.

#[cfg(test)]
mod common;

use common::{header, json, Env, DEMO};
use inmoment_sandbox::{router, ConfigPatch, Fault, RateLimitConfig, SandboxConfig, SandboxState};
use serde_json::json;

fn limited(per_minute: u32) -> SandboxConfig {
    SandboxConfig {
        // 30 s before a minute boundary (1_700_000_040).
        clock_start: Some(1_700_000_010),
        rate_limit: RateLimitConfig {
            per_minute: Some(per_minute),
            ..RateLimitConfig::default()
        },
        ..SandboxConfig::default()
    }
}

#[tokio::test]
async fn limited_routes_send_rate_limit_headers() {
    let env = Env::with(limited(2)).await;
    let token = env.token().await;
    let r = env.get(&token, "/v1/end_users").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-rate-limit-limit").as_deref(), Some("2"));
    assert_eq!(header(&r, "x-rate-limit-remaining").as_deref(), Some("1"));
    assert_eq!(
        header(&r, "x-rate-limit-reset").as_deref(),
        Some("1700000040")
    );
    let e = env
        .http
        .get(env.url(&format!("/eligible.json?account_token={DEMO}")))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&e, "x-rate-limit-remaining").as_deref(), Some("0"));
}

#[tokio::test]
async fn unlimited_routes_and_configs_send_no_headers() {
    let env = Env::with(limited(2)).await;
    let r = env
        .http
        .post(env.url("/oauth/token?grant_type=client_credentials&client_id=demo-client-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-rate-limit-limit"), None);
    let plain = Env::start().await;
    let token = plain.token().await;
    let r = plain.get(&token, "/v1/end_users").await;
    assert_eq!(header(&r, "x-rate-limit-limit"), None);
}

#[tokio::test]
async fn exhausted_limit_answers_429_until_the_reset_second() {
    let env = Env::with(limited(1)).await;
    let token = env.token().await;
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 200);
    let r = env.get(&token, "/v1/end_users").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-rate-limit-remaining").as_deref(), Some("0"));
    assert_eq!(
        header(&r, "x-rate-limit-reset").as_deref(),
        Some("1700000040")
    );
    assert_eq!(r.text().await.unwrap(), "Retry later");
    env.sandbox.advance_clock(29);
    assert_eq!(env.get(&token, "/api/v1/end_users").await.status(), 429);
    env.sandbox.advance_clock(1);
    let r = env.get(&token, "/v1/end_users").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-rate-limit-reset").as_deref(),
        Some("1700000100")
    );
}

#[tokio::test]
async fn rate_limit_is_changeable_at_run_time() {
    let env = Env::with(limited(1)).await;
    let token = env.token().await;
    env.get(&token, "/v1/end_users").await;
    let r = env
        .http
        .post(env.url("/_sandbox/config"))
        .body(r#"{"rate_limit":{"per_minute":5,"body":"{\"error\":\"slow down\"}","content_type":"application/json"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env.get(&token, "/v1/end_users").await;
    assert_eq!(header(&r, "x-rate-limit-remaining").as_deref(), Some("3"));
    let bad = env
        .http
        .post(env.url("/_sandbox/config"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn status_fault_fails_the_next_n_then_succeeds() {
    let env = Env::start().await;
    let token = env.token().await;
    let user = env.create_user(&token, &[("email", "f@x.io")]).await;
    let fault = json!({
        "route": "POST /v1/end_users/*/responses",
        "times": 2,
        "kind": "status",
        "status": 503,
        "body": {"error": "maintenance"},
        "retry_after": 7
    });
    let r = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let path = format!("/v1/end_users/{}/responses", user["id"]);
    for _ in 0..2 {
        let r = env.post_form(&token, &path, &[("score", "9")]).await;
        assert_eq!(header(&r, "retry-after").as_deref(), Some("7"));
        assert_eq!(json(r).await, (503, json!({"error": "maintenance"})));
    }
    assert_eq!(
        env.post_form(&token, &path, &[("score", "9")])
            .await
            .status(),
        201
    );
    let responses = &env.sandbox.state()["accounts"][DEMO]["responses"];
    assert_eq!(responses.as_array().unwrap().len(), 1);
    assert_eq!(env.sandbox.count("responses.create"), 3);
}

#[tokio::test]
async fn status_fault_by_route_name_covers_both_prefixes_and_has_a_default_body() {
    let env = Env::start().await;
    let token = env.token().await;
    env.sandbox
        .add_fault(Fault::status("end_users.list", 500).times(Some(2)));
    assert_eq!(
        json(env.get(&token, "/api/v1/end_users").await).await,
        (
            500,
            json!({"error": "Internal Server Error", "status": 500})
        )
    );
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 500);
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 200);
}

#[tokio::test]
async fn path_pattern_faults_match_only_their_prefix() {
    let env = Env::start().await;
    let token = env.token().await;
    env.sandbox
        .add_fault(Fault::status("GET /v1/end_users", 502));
    assert_eq!(env.get(&token, "/api/v1/end_users").await.status(), 200);
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 502);
}

#[tokio::test]
async fn delay_fault_delays_then_answers_normally() {
    let env = Env::start().await;
    let token = env.token().await;
    env.sandbox.add_fault(Fault::delay("end_users.list", 5));
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 200);
    let logged = env.sandbox.requests().pop().unwrap();
    assert_eq!(
        (logged.status, logged.faults),
        (200, vec!["delay".to_owned()])
    );
}

#[tokio::test]
async fn drop_fault_gives_the_client_a_connection_error() {
    let env = Env::start().await;
    let token = env.token().await;
    env.sandbox
        .add_fault(Fault::drop_connection("end_users.create"));
    // The socket is closed before any byte of an answer: hyper reports an
    // incomplete message on send.
    let sent = env
        .http
        .post(env.url("/v1/end_users"))
        .bearer_auth(&token)
        .form(&[("email", "d@x.io")])
        .send()
        .await;
    assert!(sent.is_err(), "the client must see a transport error");
    assert_eq!(env.sandbox.requests().pop().unwrap().status, 0);
    let again = env
        .post_form(&token, "/v1/end_users", &[("email", "d@x.io")])
        .await;
    assert_eq!(again.status(), 201, "dropped requests are not handled");
}

#[tokio::test]
async fn expire_tokens_fault_makes_the_matching_request_unauthorized() {
    let env = Env::start().await;
    let token = env.token().await;
    env.sandbox
        .add_fault(Fault::expire_tokens("end_users.list").after(1));
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 200);
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 401);
    let fresh = env.token().await;
    assert_eq!(env.get(&fresh, "/v1/end_users").await.status(), 200);
}

#[tokio::test]
async fn expire_tokens_endpoint_expires_at_once() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env
        .http
        .post(env.url("/_sandbox/expire_tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, body) = json(env.get(&token, "/v1/end_users").await).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (401, Some("The access token expired"))
    );
}

#[tokio::test]
async fn request_log_records_method_path_params_headers_and_status() {
    let env = Env::start().await;
    let token = env.token().await;
    env.post_form(
        &token,
        "/v1/end_users?x=1",
        &[("email", "l@x.io"), ("properties[plan]", "pro")],
    )
    .await;
    let r = env
        .http
        .get(env.url("/_sandbox/requests?route=end_users.create"))
        .send()
        .await
        .unwrap();
    let (_, list) = json(r).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let entry = &list[0];
    assert_eq!(entry["seq"], 2, "the token request was first");
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/v1/end_users");
    assert_eq!(entry["route"], "end_users.create");
    assert_eq!(
        entry["params"],
        json!({"x": "1", "email": "l@x.io", "properties[plan]": "pro"})
    );
    assert_eq!(entry["headers"]["authorization"], format!("Bearer {token}"));
    assert_eq!(
        entry["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(entry["status"], 201);
    assert_eq!(entry["account"], DEMO);
    let all = env.sandbox.requests();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
    let (_, by_path) = json(
        env.http
            .get(env.url("/_sandbox/requests?path=/oauth/token"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_path.as_array().unwrap().len(), 1);
    let (_, since) = json(
        env.http
            .get(env.url("/_sandbox/requests?since=1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(since[0]["seq"], 2);
}

#[tokio::test]
async fn log_is_capped_but_counters_are_not() {
    let env = Env::with(SandboxConfig {
        request_log_cap: 3,
        ..SandboxConfig::default()
    })
    .await;
    let token = env.token().await;
    for _ in 0..5 {
        env.get(&token, "/v1/end_users").await;
    }
    let seqs: Vec<u64> = env.sandbox.requests().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![4, 5, 6]);
    assert_eq!(env.sandbox.count("end_users.list"), 5);
    assert_eq!(env.sandbox.count("oauth.token"), 1);
    assert_eq!(env.sandbox.count("*"), 6);
    let (_, counters) = json(
        env.http
            .get(env.url("/_sandbox/counters"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        counters,
        json!({"total": 6, "routes": {"end_users.list": 5, "oauth.token": 1}})
    );
}

#[tokio::test]
async fn reset_clears_state_log_faults_and_tokens_but_keeps_accounts() {
    let env = Env::start().await;
    let token = env.token().await;
    env.create_user(&token, &[("email", "r@x.io")]).await;
    env.sandbox.add_fault(Fault::status("*", 500).times(None));
    let r = env
        .http
        .post(env.url("/_sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(env.sandbox.requests().is_empty());
    assert_eq!(env.sandbox.count("*"), 0);
    assert_eq!(
        env.sandbox.state()["accounts"][DEMO]["end_users"],
        json!([])
    );
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 401);
    let fresh = env.token().await;
    let (status, list) = json(env.get(&fresh, "/v1/end_users").await).await;
    assert_eq!((status, list), (200, json!([])));
}

#[tokio::test]
async fn state_endpoint_lists_records_per_account() {
    let env = Env::start().await;
    let token = env.token().await;
    env.create_user(&token, &[("email", "st@x.io")]).await;
    let (status, state) = json(
        env.http
            .get(env.url("/_sandbox/state"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(state["accounts"][DEMO]["end_users"][0]["email"], "st@x.io");
    assert_eq!(state["accounts"][DEMO]["responses"], json!([]));
    assert_eq!(state["accounts"][DEMO]["declines"], json!([]));
}

#[tokio::test]
async fn config_patch_advances_the_clock() {
    let env = Env::with(SandboxConfig {
        clock_start: Some(1_000),
        ..SandboxConfig::default()
    })
    .await;
    env.sandbox.configure(ConfigPatch {
        advance_clock_secs: Some(500),
        ..ConfigPatch::default()
    });
    assert_eq!(env.sandbox.state()["now"], 1_500);
}

#[tokio::test]
async fn router_works_with_oneshot() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let app = router(SandboxState::new(SandboxConfig::default()));
    let response = app
        .oneshot(
            Request::get(format!("/eligible.json?account_token={DEMO}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let env = Env::start().await;
    let url = env.url("/eligible.json?account_token=NPS-d3m0d3m0");
    assert_eq!(env.http.get(&url).send().await.unwrap().status(), 200);
    env.sandbox.shutdown().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

#[tokio::test]
async fn serve_answers_until_its_shutdown_future_resolves() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(inmoment_sandbox::serve(
        listener,
        SandboxConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let url = format!("http://{addr}/registered_events.json?account_token={DEMO}");
    let (status, body) = json(reqwest::get(&url).await.unwrap()).await;
    assert_eq!((status, body), (200, json!([])));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_wait_for_requests_wakes_on_the_request_that_completes_it() {
    let env = Env::start().await;
    let short = std::time::Duration::from_millis(50);
    assert!(
        !env.sandbox.wait_for_requests(1, short).await,
        "nothing was sent: the wait must time out"
    );
    let waiting = {
        let state = env.sandbox.state_handle().clone();
        tokio::spawn(async move {
            state
                .wait_until(std::time::Duration::from_secs(10), |requests| {
                    requests.iter().any(|r| r.path == "/eligible.json")
                })
                .await
        })
    };
    env.eligible(&format!("account_token={DEMO}&email=a@b.c"))
        .await;
    assert!(waiting.await.unwrap(), "woken by the eligibility request");
    assert!(
        env.sandbox
            .wait_for_requests(1, std::time::Duration::from_secs(10))
            .await
    );
}

#[tokio::test]
async fn an_arrival_is_seen_before_a_delayed_request_is_logged() {
    let env = Env::start().await;
    env.sandbox.add_fault(Fault::delay("eligible", 60_000));
    let url = env.url(&format!("/eligible.json?account_token={DEMO}&email=a@b.c"));
    let http = env.http.clone();
    let in_flight = tokio::spawn(async move { http.get(url).send().await });
    assert!(
        env.sandbox
            .wait_for_arrivals(1, std::time::Duration::from_secs(10))
            .await
    );
    assert!(
        env.sandbox.requests().is_empty(),
        "logged only after its delay"
    );
    in_flight.abort();
}
