//! Each call kind's exact wire form, as the sandbox recorded it, and the regional hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::*;
use inmoment_client::{http_client_builder, ClientConfig, DeliveryError, InMomentClient};
use inmoment_core::{AccountToken, ClientId, VERSION};
use inmoment_sandbox::{AccountConfig, Sandbox, SandboxConfig};

#[tokio::test]
async fn an_eligibility_check_is_a_get_of_eligible_json_with_its_query() {
    let sandbox = sandbox().await;
    let call = eligibility(&[
        ("account_token", DEMO_TOKEN),
        ("email", "ken+1@example.com"),
        ("event_name", "Signed Up"),
        ("properties[plan]", "pro plan"),
    ]);
    let out = client(&sandbox).send(&call).await.unwrap();

    let answer = out.eligibility.unwrap();
    assert!(answer.eligible);
    assert_eq!(answer.code.as_deref(), Some("sampled_in"));
    assert_eq!(
        (out.kind, out.status, out.end_user_id),
        ("eligibility_check", 200, None)
    );

    let requests = sandbox.requests();
    assert_eq!(routes(&requests), route_list(&[("eligible", 200)]));
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/eligible.json")
    );
    assert_eq!(
        r.query,
        "account_token=NPS-d3m0d3m0&email=ken%2B1%40example.com&event_name=Signed+Up&properties%5Bplan%5D=pro+plan"
    );
    assert_eq!(
        recorded_params(r),
        pairs(&[
            ("account_token", DEMO_TOKEN),
            ("email", "ken+1@example.com"),
            ("event_name", "Signed Up"),
            ("properties[plan]", "pro plan"),
        ])
    );
    assert_eq!(header(r, "user-agent"), Some(VERSION));
    assert_eq!(header(r, "accept"), Some("application/json"));
    assert_eq!(header(r, "authorization"), None, "no OAuth on eligibility");
    assert_eq!(sandbox.count("oauth.token"), 0);
}

#[tokio::test]
async fn an_unknown_account_says_to_check_the_account_token() {
    let sandbox = sandbox().await;
    let call = eligibility(&[("account_token", "NPS-00000000")]);
    let err = client(&sandbox).send(&call).await.unwrap_err();
    assert!(matches!(err, DeliveryError::UnknownAccount { .. }), "{err}");
    assert!(err.to_string().contains("check the Account Token"), "{err}");
}

#[tokio::test]
async fn an_upsert_of_a_new_user_looks_it_up_then_creates_it() {
    let sandbox = sandbox().await;
    let fields = [
        ("email", "ken@example.com"),
        ("external_id", "user/1"),
        ("external_created_at", "1700000000"),
        ("properties[plan]", "pro"),
        ("properties[seats_amount]", "12"),
    ];
    let call = upsert(end_user(Some("user/1"), Some("ken@example.com")), &fields);
    let out = client(&sandbox).send(&call).await.unwrap();

    let requests = sandbox.requests();
    assert_eq!(
        routes(&requests),
        route_list(&[
            ("oauth.token", 200),
            ("end_users.get", 404),
            ("end_users.create", 201)
        ])
    );
    let (token, lookup, create) = (&requests[0], &requests[1], &requests[2]);

    assert_eq!(
        (token.method.as_str(), token.path.as_str()),
        ("POST", "/oauth/token")
    );
    assert_eq!(
        recorded_params(token),
        pairs(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID)
        ])
    );
    assert_eq!(
        header(token, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(token, "authorization"), None);

    assert_eq!(lookup.method, "GET");
    assert_eq!(lookup.path, "/api/v1/end_users/user%2F1");
    assert_eq!(lookup.query, "lookup_by_external_id=true");
    let bearer = header(lookup, "authorization").unwrap();
    assert!(
        bearer.starts_with("Bearer ") && bearer.len() > 20,
        "{bearer}"
    );

    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/api/v1/end_users")
    );
    assert_eq!(create.query, "");
    assert_eq!(recorded_params(create), pairs(&fields));
    assert_eq!(header(create, "authorization"), Some(bearer));
    assert_eq!(
        header(create, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(create, "user-agent"), Some(VERSION));

    let users = demo_state(&sandbox, "end_users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "user/1");
    assert_eq!(users[0]["properties"]["plan"], "pro");
    assert_eq!(out.end_user_id, users[0]["id"].as_u64());
    assert_eq!((out.kind, out.status), ("upsert_end_user", 201));
}

#[tokio::test]
async fn a_known_user_is_updated_and_its_id_remembered() {
    let sandbox = sandbox().await;
    let who = || end_user(Some("u-1"), Some("ken@example.com"));
    let first = client(&sandbox);
    let created = first
        .send(&upsert(
            who(),
            &[("email", "ken@example.com"), ("external_id", "u-1")],
        ))
        .await
        .unwrap();
    let id = created.end_user_id.unwrap();

    // Same client: the id is remembered, so no lookup.
    let updated = first
        .send(&upsert(who(), &[("properties[plan]", "team")]))
        .await
        .unwrap();
    assert_eq!((updated.status, updated.end_user_id), (200, Some(id)));
    let requests = sandbox.requests();
    let last = requests.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.clone()),
        ("PUT", format!("/api/v1/end_users/{id}"))
    );
    assert_eq!(
        recorded_params(last),
        pairs(&[("properties[plan]", "team")])
    );
    assert_eq!(sandbox.count("end_users.get"), 1);

    // A new client looks it up (200) and updates.
    let fresh = client(&sandbox);
    fresh
        .send(&upsert(who(), &[("properties[plan]", "enterprise")]))
        .await
        .unwrap();
    let requests = sandbox.requests();
    assert_eq!(
        routes(&requests[requests.len() - 2..]),
        route_list(&[("end_users.get", 200), ("end_users.update", 200)])
    );
    assert_eq!(sandbox.count("end_users.create"), 1);
    assert_eq!(
        demo_state(&sandbox, "end_users")[0]["properties"]["plan"],
        "enterprise"
    );
}

#[tokio::test]
async fn without_an_external_id_the_lookup_is_by_email() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let call = upsert(
        end_user(None, Some("a+b@example.com")),
        &[("email", "a+b@example.com")],
    );
    client.send(&call).await.unwrap();
    let requests = sandbox.requests();
    assert_eq!(
        routes(&requests),
        route_list(&[
            ("oauth.token", 200),
            ("end_users.list", 200),
            ("end_users.create", 201)
        ])
    );
    assert_eq!(requests[1].path, "/api/v1/end_users");
    assert_eq!(requests[1].query, "email=a%2Bb%40example.com");

    // Found by email from another client: update.
    let other = common::client(&sandbox);
    other.send(&call).await.unwrap();
    let requests = sandbox.requests();
    assert_eq!(
        routes(&requests[requests.len() - 2..]),
        route_list(&[("end_users.list", 200), ("end_users.update", 200)])
    );
}

#[tokio::test]
async fn a_taken_email_updates_the_user_that_has_it() {
    let sandbox = sandbox().await;
    let by_email = client(&sandbox)
        .send(&upsert(
            end_user(None, Some("ken@example.com")),
            &[("email", "ken@example.com")],
        ))
        .await
        .unwrap();
    let fields = [("email", "ken@example.com"), ("external_id", "u-9")];
    let out = client(&sandbox)
        .send(&upsert(
            end_user(Some("u-9"), Some("ken@example.com")),
            &fields,
        ))
        .await
        .unwrap();
    assert_eq!(out.end_user_id, by_email.end_user_id);
    let requests = sandbox.requests();
    assert_eq!(
        routes(&requests[requests.len() - 4..]),
        route_list(&[
            ("end_users.get", 404),
            ("end_users.create", 422),
            ("end_users.list", 200),
            ("end_users.update", 200)
        ])
    );
    assert_eq!(recorded_params(requests.last().unwrap()), pairs(&fields));
    let users = demo_state(&sandbox, "end_users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["external_id"], "u-9");
}

#[tokio::test]
async fn a_response_for_a_new_user_creates_the_user_first() {
    let sandbox = sandbox().await;
    let fields = [
        ("score", "9"),
        ("text", "Great & fast"),
        ("ip_address", "203.0.113.9"),
        ("origin_url", "https://example.com/a?b=1"),
        ("created_at", "1700000000"),
    ];
    let call = response(end_user(Some("u-2"), Some("amy@example.com")), &fields);
    let out = client(&sandbox).send(&call).await.unwrap();
    let id = out.end_user_id.unwrap();

    let requests = sandbox.requests();
    assert_eq!(
        routes(&requests),
        route_list(&[
            ("oauth.token", 200),
            ("end_users.get", 404),
            ("end_users.create", 201),
            ("responses.create", 201)
        ])
    );
    assert_eq!(
        recorded_params(&requests[2]),
        pairs(&[("email", "amy@example.com"), ("external_id", "u-2")])
    );
    let post = &requests[3];
    assert_eq!(
        (post.method.as_str(), post.path.clone()),
        ("POST", format!("/api/v1/end_users/{id}/responses"))
    );
    assert_eq!(recorded_params(post), pairs(&fields));
    let responses = demo_state(&sandbox, "responses");
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0]["score"], 9);
    assert_eq!(responses[0]["text"], "Great & fast");
    assert_eq!((out.kind, out.status), ("create_response", 201));
}

#[tokio::test]
async fn a_decline_for_a_known_user_posts_to_its_declines() {
    let sandbox = sandbox().await;
    let client = client(&sandbox);
    let who = || end_user(Some("u-3"), Some("bo@example.com"));
    let id = client
        .send(&upsert(
            who(),
            &[("email", "bo@example.com"), ("external_id", "u-3")],
        ))
        .await
        .unwrap()
        .end_user_id
        .unwrap();
    let fields = [
        ("origin_url", "https://example.com/"),
        ("created_at", "1700000001"),
    ];
    let out = client.send(&decline(who(), &fields)).await.unwrap();
    assert_eq!(out.end_user_id, Some(id));

    let requests = sandbox.requests();
    let post = requests.last().unwrap();
    assert_eq!(
        (post.route.as_str(), post.method.as_str(), post.path.clone()),
        (
            "declines.create",
            "POST",
            format!("/api/v1/end_users/{id}/declines")
        )
    );
    assert_eq!(recorded_params(post), pairs(&fields));
    assert_eq!(sandbox.count("end_users.get"), 1, "the id was remembered");
    assert_eq!(demo_state(&sandbox, "declines").len(), 1);
}

#[tokio::test]
async fn a_rest_call_without_a_client_id_asks_for_one() {
    let sandbox = sandbox().await;
    let mut config = config(&sandbox);
    config.client_id = None;
    let client = InMomentClient::new(config).unwrap();
    let err = client
        .send(&response(end_user(Some("u"), None), &[("score", "5")]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::MissingClientId {
            kind: "create_response"
        }
    );
    assert_eq!(sandbox.count("*"), 0);
}

/// The region's real host names, pinned to the sandbox's address (plain HTTP on its port),
/// so nothing but 127.0.0.1 is ever contacted.
async fn regional(token: &str, client_id: &str) -> (Sandbox, InMomentClient) {
    let mut sandbox_config = SandboxConfig::default();
    sandbox_config
        .accounts
        .push(AccountConfig::new(token, client_id));
    sandbox_config.logged_headers.push("host".into());
    let sandbox = Sandbox::start(sandbox_config).await.unwrap();
    let port = sandbox.addr().port();
    let mut config = ClientConfig::for_token(&AccountToken::parse(token).unwrap())
        .with_client(ClientId::parse(client_id).unwrap(), None);
    let tld = config.api_url.rsplit('.').next().unwrap().to_string();
    let local = |url: &str| format!("{}:{port}", url.replacen("https://", "http://", 1));
    config.eligibility_url = local(&config.eligibility_url);
    config.api_url = local(&config.api_url);
    let here = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let http = http_client_builder(&config)
        .resolve(&format!("eligibility.wootric.{tld}"), here)
        .resolve(&format!("app.wootric.{tld}"), here)
        .build()
        .unwrap();
    (
        sandbox,
        InMomentClient::with_http_client(config, http).unwrap(),
    )
}

#[tokio::test]
async fn regional_tokens_use_their_regions_hosts() {
    for (token, tld) in [
        ("NPS-EU-4aeb53c1", "eu"),
        ("NPS-AU-4aeb53c1", "au"),
        ("NPS-4aeb53c1", "com"),
    ] {
        let (sandbox, client) = regional(token, "regional-client").await;
        let port = sandbox.addr().port();
        client
            .send(&eligibility(&[("account_token", token)]))
            .await
            .unwrap();
        client
            .send(&upsert(
                end_user(Some("u-1"), Some("a@example.com")),
                &[("email", "a@example.com")],
            ))
            .await
            .unwrap();
        let hosts: Vec<(String, String)> = sandbox
            .requests()
            .iter()
            .map(|r| (r.route.clone(), header(r, "host").unwrap_or("").to_string()))
            .collect();
        let eligibility_host = format!("eligibility.wootric.{tld}:{port}");
        let api_host = format!("app.wootric.{tld}:{port}");
        assert_eq!(
            hosts,
            vec![
                ("eligible".to_string(), eligibility_host),
                ("oauth.token".to_string(), api_host.clone()),
                ("end_users.get".to_string(), api_host.clone()),
                ("end_users.create".to_string(), api_host),
            ],
            "{token}"
        );
    }
}
