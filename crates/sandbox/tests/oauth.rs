//! OAuth grants, their errors, token expiry and the bearer check.

#[cfg(test)]
mod common;

use common::{json, keys_of, Env, DEMO};
use inmoment_sandbox::{AccountConfig, SandboxConfig};
use serde_json::json;

/// The demo account's password grant.
const DEMO_PASSWORD_GRANT: [(&str, &str); 3] = [
    ("grant_type", "password"),
    ("username", "demo@example.com"),
    ("password", "demo-password"),
];

fn two_accounts() -> SandboxConfig {
    let mut other = AccountConfig::new("NPS-0ther000", "other-client");
    other.client_secret = Some("s3cret".into());
    other.username = Some("demo@example.com".into());
    other.password = Some("other-password".into());
    let mut strict = AccountConfig::new("NPS-str1ct00", "strict-client");
    strict.client_secret = Some("strict-secret".into());
    strict.require_client_secret = true;
    let mut config = SandboxConfig::default();
    config.accounts.push(other);
    config.accounts.push(strict);
    config
}

#[tokio::test]
async fn password_grant_returns_the_documented_body_with_refresh_token() {
    let env = Env::start().await;
    let (status, body) = env.token_call("", &DEMO_PASSWORD_GRANT).await;
    assert_eq!(status, 200);
    let keys = keys_of(&body);
    assert_eq!(
        keys,
        [
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "scope",
            "created_at"
        ]
    );
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["scope"], "public");
    assert!(body["created_at"].is_i64());
}

#[tokio::test]
async fn password_grant_is_scoped_by_account_token() {
    let env = Env::with(two_accounts()).await;
    let form = [
        ("grant_type", "password"),
        ("username", "demo@example.com"),
        ("password", "other-password"),
    ];
    let (status, _) = env.token_call("?account_token=NPS-0ther000", &form).await;
    assert_eq!(status, 200);
    let (status, body) = env
        .token_call(&format!("?account_token={DEMO}"), &form)
        .await;
    assert_eq!(
        status, 400,
        "the other account's password is wrong for the demo account"
    );
    assert_eq!(body["error"], "invalid_grant");
    let last = env.sandbox.requests().pop().unwrap();
    assert_eq!(last.params["account_token"], DEMO);
}

#[tokio::test]
async fn unknown_account_token_gives_not_found() {
    let env = Env::start().await;
    let (status, body) = env
        .token_call("?account_token=NPS-nope0000", &DEMO_PASSWORD_GRANT)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "Not found", "status": 404}));
}

#[tokio::test]
async fn bad_password_is_invalid_grant_400() {
    let env = Env::start().await;
    let (status, body) = env
        .token_call(
            "",
            &[
                ("grant_type", "password"),
                ("username", "demo@example.com"),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn client_credentials_with_id_only_has_no_refresh_token() {
    let env = Env::start().await;
    // Mobile SDKs send the client id in the query string of a bodiless POST.
    let (status, body) = json(
        env.http
            .post(env.url("/oauth/token?grant_type=client_credentials&client_id=demo-client-id"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["scope"], "public");
}

#[tokio::test]
async fn client_credentials_checks_a_sent_secret() {
    let env = Env::with(two_accounts()).await;
    let ok = [
        ("grant_type", "client_credentials"),
        ("client_id", "other-client"),
        ("client_secret", "s3cret"),
    ];
    assert_eq!(env.token_call("", &ok).await.0, 200);
    let bad = [
        ("grant_type", "client_credentials"),
        ("client_id", "other-client"),
        ("client_secret", "nope"),
    ];
    let (status, body) = env.token_call("", &bad).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn client_credentials_without_secret_fails_when_required() {
    let env = Env::with(two_accounts()).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "strict-client"),
    ];
    assert_eq!(env.token_call("", &form).await.0, 401);
    let unknown = [("grant_type", "client_credentials"), ("client_id", "who")];
    assert_eq!(env.token_call("", &unknown).await.0, 401);
}

#[tokio::test]
async fn multipart_token_request_works_like_curl_dash_f() {
    let env = Env::start().await;
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "client_credentials")
        .text("client_id", "demo-client-id");
    let r = env
        .http
        .post(env.url("/oauth/token"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn refresh_grant_rotates_the_refresh_token() {
    let env = Env::start().await;
    let (_, first) = env.token_call("", &DEMO_PASSWORD_GRANT).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let (status, second) = env.token_call("", &form).await;
    assert_eq!(status, 200);
    assert_ne!(second["access_token"], first["access_token"]);
    assert!(second["refresh_token"].is_string());
    let (status, body) = env.token_call("", &form).await;
    assert_eq!(status, 400, "a used refresh token is revoked");
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn unsupported_or_missing_grant_type_is_400() {
    let env = Env::start().await;
    let (status, body) = env.token_call("", &[("grant_type", "implicit")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = env.token_call("", &[("client_id", "demo-client-id")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn token_expires_after_7200_seconds_of_sandbox_clock() {
    let env = Env::start().await;
    let token = env.token().await;
    env.sandbox.advance_clock(7199);
    assert_eq!(env.get(&token, "/v1/end_users").await.status(), 200);
    env.sandbox.advance_clock(1);
    let r = env.get(&token, "/v1/end_users").await;
    assert_eq!(r.status(), 401);
    let (_, body) = json(r).await;
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "The access token expired");
}

#[tokio::test]
async fn missing_token_is_401_with_www_authenticate() {
    let env = Env::start().await;
    let r = env.http.get(env.url("/v1/end_users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let (_, body) = json(r).await;
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn unknown_token_is_401() {
    let env = Env::start().await;
    let r = env.get("not-a-token", "/api/v1/end_users").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn access_token_parameter_is_accepted() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env
        .http
        .get(env.url(&format!("/v1/end_users?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_token_only_sees_its_own_account() {
    let env = Env::with(two_accounts()).await;
    let demo = env.token().await;
    let user = env.create_user(&demo, &[("email", "a@x.io")]).await;
    let (_, other) = env
        .token_call(
            "",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "other-client"),
                ("client_secret", "s3cret"),
            ],
        )
        .await;
    let other = other["access_token"].as_str().unwrap();
    let r = env
        .get(other, &format!("/v1/end_users/{}", user["id"]))
        .await;
    assert_eq!(r.status(), 404);
    let (_, list) = json(env.get(other, "/v1/end_users?email=a@x.io").await).await;
    assert_eq!(list, json!([]));
}
