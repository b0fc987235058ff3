//! `POST /v1/email_survey` over real HTTP: validation, end users found or
//! created, surveys in `/_sandbox/state`, the 100-address limit and auth.

#[cfg(test)]
mod common;

use common::{json, Env, DEMO};
use inmoment_sandbox::SandboxConfig;
use serde_json::{json, Value};

/// Frozen sandbox clock: 2023-11-14 22:13:20 UTC.
const NOW: i64 = 1_700_000_000;

async fn env() -> Env {
    Env::with(SandboxConfig {
        clock_start: Some(NOW),
        ..SandboxConfig::default()
    })
    .await
}

/// Posts a form to `/v1/email_survey`; status and JSON body.
async fn survey(env: &Env, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
    json(env.post_form(token, "/v1/email_survey", form).await).await
}

fn account(env: &Env) -> Value {
    env.sandbox.state()["accounts"][DEMO].clone()
}

#[tokio::test]
async fn each_validation_error_is_422_and_changes_nothing() {
    let env = env().await;
    let token = env.token().await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("subject", "Hi")],
            "Validation failed: Emails can't be blank",
        ),
        (
            &[("emails", "a@x.io")],
            "Validation failed: Emails can't be blank",
        ),
        (
            &[("emails[]", "not-an-address")],
            "Validation failed: Emails contains an invalid address: 'not-an-address'",
        ),
        (
            &[
                ("emails[]", "a@x.io"),
                ("emails[]", "b@x.io"),
                ("external_ids[]", "ext-a"),
            ],
            "Validation failed: External ids must have one entry per email",
        ),
        (
            &[("emails[]", "a@x.io"), ("delay", "0")],
            "Validation failed: Delay must be an integer between 1 and 31",
        ),
        (
            &[("emails[]", "a@x.io"), ("delay", "32")],
            "Validation failed: Delay must be an integer between 1 and 31",
        ),
        (
            &[("emails[]", "a@x.io"), ("delay", "two")],
            "Validation failed: Delay must be an integer between 1 and 31",
        ),
        (
            &[
                ("emails[]", "a@x.io"),
                ("delay", "3"),
                ("survey_immediately", "true"),
            ],
            "Validation failed: Delay can't be combined with survey_immediately",
        ),
    ];
    for (form, message) in cases {
        let (status, body) = survey(&env, &token, form).await;
        assert_eq!(
            (status, body),
            (422, json!({ "error": message })),
            "{form:?}"
        );
    }
    let state = account(&env);
    assert_eq!(state["end_users"], json!([]));
    assert_eq!(state["email_surveys"], json!([]));
}

#[tokio::test]
async fn success_creates_the_user_and_records_the_survey() {
    let env = env().await;
    let token = env.token().await;
    let (status, body) = survey(
        &env,
        &token,
        &[
            ("emails[]", "new@x.io"),
            ("external_ids[]", "ext-new"),
            ("end_user[properties][plan]", "pro"),
            ("subject", "How are we doing?"),
            ("intro", "Hello"),
            ("delay", "2"),
            ("survey_settings[custom_messages][followup_text]", "Thanks!"),
        ],
    )
    .await;
    assert_eq!(status, 201);
    let state = account(&env);
    let user = &state["end_users"][0];
    assert_eq!(user["email"], "new@x.io");
    assert_eq!(user["external_id"], "ext-new");
    assert_eq!(user["properties"], json!({"plan": "pro"}));
    assert_eq!(
        body,
        json!({"scheduled": 1, "surveys": [{
            "email": "new@x.io",
            "external_id": "ext-new",
            "end_user_id": user["id"],
            "send_at": "2023-11-16 22:13:20 +0000",
        }]})
    );
    assert_eq!(
        state["email_surveys"],
        json!([{
            "end_user_id": user["id"],
            "email": "new@x.io",
            "external_id": "ext-new",
            "properties": {"plan": "pro"},
            "survey_settings": {"survey_settings[custom_messages][followup_text]": "Thanks!"},
            "subject": "How are we doing?",
            "intro": "Hello",
            "delay": 2,
            "survey_immediately": false,
            "created_at": "2023-11-14 22:13:20 +0000",
            "send_at": "2023-11-16 22:13:20 +0000",
        }])
    );
    let logged = env.sandbox.requests().pop().unwrap();
    assert_eq!(logged.route, "email_survey.create");
    assert_eq!(logged.account.as_deref(), Some(DEMO));
}

#[tokio::test]
async fn known_users_are_matched_by_email_or_external_id_and_updated() {
    let env = env().await;
    let token = env.token().await;
    let by_email = env
        .create_user(
            &token,
            &[("email", "Known@x.io"), ("properties[seats]", "3")],
        )
        .await;
    let by_ext = env
        .create_user(
            &token,
            &[("phone_number", "+15550001"), ("external_id", "e-2")],
        )
        .await;
    let r = env
        .http
        .post(env.url("/api/v1/email_survey"))
        .bearer_auth(&token)
        .json(&json!({
            "emails": ["known@x.io", "second@x.io"],
            "external_ids": ["", "e-2"],
            "survey_immediately": true,
            "end_user": {"properties": {"plan": "max"}},
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = json(r).await;
    assert_eq!(status, 201);
    assert_eq!(body["scheduled"], 2);
    assert_eq!(body["surveys"][0]["end_user_id"], by_email["id"]);
    assert_eq!(body["surveys"][0]["external_id"], Value::Null);
    assert_eq!(body["surveys"][1]["end_user_id"], by_ext["id"]);
    assert_eq!(body["surveys"][1]["send_at"], "2023-11-14 22:13:20 +0000");
    let state = account(&env);
    let users = state["end_users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["properties"], json!({"seats": "3", "plan": "max"}));
    assert_eq!(users[1]["email"], "second@x.io");
    assert_eq!(users[1]["properties"], json!({"plan": "max"}));
    assert_eq!(state["email_surveys"][1]["survey_immediately"], true);
    assert_eq!(state["email_surveys"][1]["delay"], Value::Null);
}

#[tokio::test]
async fn one_hundred_emails_are_accepted_and_one_hundred_and_one_refused() {
    let env = env().await;
    let token = env.token().await;
    let emails: Vec<String> = (0..101).map(|i| format!("u{i}@x.io")).collect();
    let form = |n: usize| -> Vec<(&str, &str)> {
        emails[..n]
            .iter()
            .map(|e| ("emails[]", e.as_str()))
            .collect()
    };
    let (status, body) = survey(&env, &token, &form(101)).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"],
        "Validation failed: Emails is too long (maximum is 100)"
    );
    assert_eq!(account(&env)["end_users"], json!([]));
    let (status, body) = survey(&env, &token, &form(100)).await;
    assert_eq!((status, body["scheduled"].clone()), (201, json!(100)));
    let state = account(&env);
    assert_eq!(state["end_users"].as_array().unwrap().len(), 100);
    assert_eq!(state["email_surveys"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn a_call_without_a_token_is_refused_401() {
    let env = env().await;
    let r = env
        .http
        .post(env.url("/v1/email_survey"))
        .form(&[("emails[]", "a@x.io")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(account(&env)["email_surveys"], json!([]));
}

#[tokio::test]
async fn the_access_token_parameter_is_accepted() {
    let env = env().await;
    let token = env.token().await;
    let r = env
        .http
        .post(env.url("/v1/email_survey"))
        .form(&[("access_token", token.as_str()), ("emails[]", "a@x.io")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn reset_clears_email_surveys() {
    let env = env().await;
    let token = env.token().await;
    let (status, _) = survey(&env, &token, &[("emails[]", "a@x.io")]).await;
    assert_eq!(status, 201);
    assert_eq!(account(&env)["email_surveys"].as_array().unwrap().len(), 1);
    env.sandbox.reset();
    assert_eq!(account(&env)["email_surveys"], json!([]));
}
