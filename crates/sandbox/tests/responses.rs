//! Responses and declines over real HTTP.

#[cfg(test)]
mod common;

use common::{json, Env, DEMO};
use inmoment_sandbox::{AccountConfig, ConfigPatch, SandboxConfig, SurveyType};
use serde_json::json;

#[tokio::test]
async fn response_is_created_and_updates_profile_properties() {
    let env = Env::start().await;
    let token = env.token().await;
    let id = env.user_id(&token).await;
    let r = env
        .post_form(
            &token,
            &format!("/v1/end_users/{id}/responses"),
            &[
                ("score", "9"),
                ("text", "great"),
                ("ip_address", "10.0.0.1"),
                ("origin_url", "https://app.example/x"),
                ("created_at", "1700000000"),
                ("end_user[properties][plan]", "pro"),
                ("survey[channel]", "mobile"),
                ("priority", "0"),
            ],
        )
        .await;
    let (status, resp) = json(r).await;
    assert_eq!(status, 201);
    assert_eq!(resp["score"], 9);
    assert_eq!(resp["text"], "great");
    assert_eq!(resp["ip_address"], "10.0.0.1");
    assert_eq!(resp["created_at"], "2023-11-14 22:13:20 +0000");
    assert_eq!(resp["end_user"]["properties"], json!({"plan": "pro"}));
    let (_, profile) = json(env.get(&token, &format!("/v1/end_users/{id}")).await).await;
    assert_eq!(profile["properties"], json!({"plan": "pro"}));
    assert_eq!(profile["last_response"]["score"], 9);
    assert_eq!(profile["last_response"]["survey"]["channel"], "mobile");
    let stored = &env.sandbox.state()["accounts"][DEMO]["responses"][0];
    assert_eq!(stored["params"]["priority"], "0");
    assert_eq!(stored["params"]["survey[channel]"], "mobile");
}

#[tokio::test]
async fn created_at_defaults_to_now() {
    let env = Env::with(SandboxConfig {
        clock_start: Some(1_700_000_000),
        ..SandboxConfig::default()
    })
    .await;
    let token = env.token().await;
    let id = env.user_id(&token).await;
    env.sandbox.advance_clock(60);
    env.post_form(
        &token,
        &format!("/v1/end_users/{id}/responses"),
        &[("score", "5")],
    )
    .await;
    let (_, list) = json(env.get(&token, "/v1/responses").await).await;
    assert_eq!(list[0]["created_at"], "2023-11-14 22:14:20 +0000");
}

#[tokio::test]
async fn score_is_required_and_must_be_0_to_10_for_nps() {
    let env = Env::start().await;
    let token = env.token().await;
    let id = env.user_id(&token).await;
    let path = format!("/v1/end_users/{id}/responses");
    for (form, message) in [
        (
            vec![("text", "x")],
            "Validation failed: Score can't be blank",
        ),
        (
            vec![("score", "11")],
            "Validation failed: Score must be between 0 and 10",
        ),
        (
            vec![("score", "-1")],
            "Validation failed: Score must be between 0 and 10",
        ),
        (
            vec![("score", "high")],
            "Validation failed: Score is not a number",
        ),
    ] {
        let (status, body) = json(env.post_form(&token, &path, &form).await).await;
        assert_eq!(status, 422, "{form:?}");
        assert_eq!(body, json!({"error": message}));
    }
    assert_eq!(
        env.post_form(&token, &path, &[("score", "0")])
            .await
            .status(),
        201
    );
    assert_eq!(
        env.post_form(&token, &path, &[("score", "10")])
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn ces_accounts_take_1_to_7() {
    let env = Env::start().await;
    let mut account = AccountConfig::new("NPS-ce500000", "ces-client");
    account.survey_type = SurveyType::Ces;
    env.sandbox.configure(ConfigPatch {
        accounts: Some(vec![account]),
        ..ConfigPatch::default()
    });
    let token = env.token_for("ces-client").await;
    let id = env.user_id(&token).await;
    let path = format!("/v1/end_users/{id}/responses");
    assert_eq!(
        env.post_form(&token, &path, &[("score", "0")])
            .await
            .status(),
        422
    );
    assert_eq!(
        env.post_form(&token, &path, &[("score", "7")])
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn response_for_unknown_end_user_is_404() {
    let env = Env::start().await;
    let token = env.token().await;
    let (status, body) = json(
        env.post_form(&token, "/v1/end_users/4242/responses", &[("score", "5")])
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "error_list");
}

#[tokio::test]
async fn responses_list_get_categories_and_delete() {
    let env = Env::start().await;
    let token = env.token().await;
    let id = env.user_id(&token).await;
    let path = format!("/v1/end_users/{id}/responses");
    for score in ["10", "7", "3"] {
        env.post_form(&token, &path, &[("score", score)]).await;
    }
    let (_, all) = json(env.get(&token, &path).await).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(all[0]["score"], 3, "newest first");
    let (_, promoters) = json(env.get(&token, &format!("{path}/promoters")).await).await;
    assert_eq!(promoters.as_array().unwrap().len(), 1);
    assert_eq!(promoters[0]["score"], 10);
    let (_, detractors) = json(env.get(&token, &format!("{path}/detractors")).await).await;
    assert_eq!(detractors[0]["score"], 3);
    let rid = all[0]["id"].as_u64().unwrap();
    let (status, one) = json(env.get(&token, &format!("{path}/{rid}")).await).await;
    assert_eq!((status, one["id"].as_u64()), (200, Some(rid)));
    let r = env
        .http
        .delete(env.url(&format!("{path}/{rid}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        env.get(&token, &format!("{path}/{rid}")).await.status(),
        404
    );
    let (_, profile) = json(env.get(&token, &format!("/v1/end_users/{id}")).await).await;
    assert_eq!(profile["last_response"]["score"], 7);
}

#[tokio::test]
async fn put_response_is_204_or_423_when_history_is_locked() {
    let env = Env::start().await;
    let token = env.token().await;
    let id = env.user_id(&token).await;
    let (_, resp) = json(
        env.post_form(
            &token,
            &format!("/v1/end_users/{id}/responses"),
            &[("score", "8")],
        )
        .await,
    )
    .await;
    let path = format!("/v1/responses/{}", resp["id"]);
    let r = env
        .put_form(
            &token,
            &path,
            &[
                ("excluded_from_calculations", "true"),
                ("end_user[properties][x]", "1"),
            ],
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.text().await.unwrap(), "");
    let (_, list) = json(env.get(&token, "/v1/responses").await).await;
    assert_eq!(list[0]["excluded_from_calculations"], true);
    assert_eq!(list[0]["end_user"]["properties"]["x"], "1");

    let mut locked = AccountConfig::demo();
    locked.historical_property_edits = false;
    env.sandbox.configure(ConfigPatch {
        accounts: Some(vec![locked]),
        ..ConfigPatch::default()
    });
    let r = env
        .put_form(&token, &path, &[("end_user[properties][x]", "2")])
        .await;
    assert_eq!(r.status(), 423);
    assert_eq!(
        env.put_form(&token, &path, &[("completed", "false")])
            .await
            .status(),
        204
    );
    assert_eq!(
        env.put_form(&token, "/v1/responses/9999", &[("completed", "false")])
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn declines_are_created_listed_updated_and_deleted() {
    let env = Env::start().await;
    let token = env.token().await;
    let id = env.user_id(&token).await;
    let path = format!("/v1/end_users/{id}/declines");
    let r = env.post_form(&token, &path, &[]).await;
    assert_eq!(r.status(), 201, "all fields are optional");
    let (status, decline) = json(
        env.post_form(
            &token,
            &path,
            &[
                ("origin_url", "https://a.example"),
                ("end_user[properties][plan]", "pro"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(decline["origin_url"], "https://a.example");
    assert_eq!(decline["end_user"]["properties"]["plan"], "pro");
    let (_, profile) = json(env.get(&token, &format!("/v1/end_users/{id}")).await).await;
    assert_eq!(profile["properties"]["plan"], "pro");
    let (_, list) = json(env.get(&token, "/api/v1/declines").await).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let did = decline["id"].as_u64().unwrap();
    let (status, _) = json(env.get(&token, &format!("{path}/{did}")).await).await;
    assert_eq!(status, 200);
    let r = env
        .put_form(
            &token,
            &format!("/v1/declines/{did}"),
            &[("end_user[properties][plan]", "max")],
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = env
        .http
        .delete(env.url(&format!("{path}/{did}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, list) = json(env.get(&token, &path).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn decline_for_unknown_end_user_is_404() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env
        .post_form(&token, "/v1/end_users/4242/declines", &[])
        .await;
    assert_eq!(r.status(), 404);
}
