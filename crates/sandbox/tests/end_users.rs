//! End-user routes and parameter parsing over real HTTP.

#[cfg(test)]
mod common;

use common::{json, keys_of, Env};
use inmoment_sandbox::{PropertiesUpdate, SandboxConfig};
use serde_json::json;

const NOT_FOUND: &str = r#"{"type":"error_list","errors":[{"status":"record_not_found","message":"The record could not be found","field":null}]}"#;

#[tokio::test]
async fn query_and_form_body_parameters_are_merged_with_bracket_keys() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env
        .http
        .post(env.url("/v1/end_users?properties%5Bplan%5D=pro&email=q@x.io"))
        .bearer_auth(&token)
        .form(&[("properties[seats]", "3"), ("external_id", "ext-1")])
        .send()
        .await
        .unwrap();
    let (status, user) = json(r).await;
    assert_eq!(status, 201);
    assert_eq!(user["email"], "q@x.io");
    assert_eq!(user["external_id"], "ext-1");
    assert_eq!(user["properties"], json!({"plan": "pro", "seats": "3"}));
    let logged = env.sandbox.requests().pop().unwrap();
    assert_eq!(logged.params["properties[plan]"], "pro");
    assert_eq!(logged.params["properties[seats]"], "3");
}

#[tokio::test]
async fn multipart_body_parameters_are_merged() {
    let env = Env::start().await;
    let token = env.token().await;
    let form = reqwest::multipart::Form::new()
        .text("email", "m@x.io")
        .text("properties[plan]", "team");
    let r = env
        .http
        .post(env.url("/v1/end_users?properties%5Bregion%5D=eu"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, user) = json(r).await;
    assert_eq!(status, 201);
    assert_eq!(user["properties"], json!({"region": "eu", "plan": "team"}));
}

#[tokio::test]
async fn bodiless_post_without_content_type_reads_the_query() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env
        .http
        .post(env.url("/api/v1/end_users?email=mobile@x.io&external_created_at=1700000000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let logged_type = env
        .sandbox
        .requests()
        .pop()
        .unwrap()
        .headers
        .get("content-type")
        .cloned();
    let (status, user) = json(r).await;
    assert_eq!(status, 201);
    assert_eq!(logged_type, None);
    assert_eq!(user["email"], "mobile@x.io");
    assert_eq!(user["external_created_at"], 1_700_000_000);
}

#[tokio::test]
async fn json_body_is_accepted() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env
        .http
        .post(env.url("/v1/end_users"))
        .bearer_auth(&token)
        .json(&json!({"email": "j@x.io", "properties": {"plan": "pro"}}))
        .send()
        .await
        .unwrap();
    let (status, user) = json(r).await;
    assert_eq!(status, 201);
    assert_eq!(user["properties"]["plan"], "pro");
}

#[tokio::test]
async fn created_end_user_has_the_documented_shape() {
    let env = Env::start().await;
    let token = env.token().await;
    let user = env
        .create_user(
            &token,
            &[("email", "s@x.io"), ("last_surveyed", "1700000000")],
        )
        .await;
    let keys = keys_of(&user);
    assert_eq!(
        keys,
        [
            "id",
            "created_at",
            "updated_at",
            "email",
            "last_surveyed",
            "external_created_at",
            "last_seen_at",
            "properties",
            "phone_number",
            "external_id",
            "last_response",
            "settings"
        ]
    );
    assert_eq!(user["last_surveyed"], "2023-11-14 22:13:20 +0000");
    assert!(user["id"].is_u64());
}

#[tokio::test]
async fn ids_increment() {
    let env = Env::start().await;
    let token = env.token().await;
    let a = env.create_user(&token, &[("email", "a@x.io")]).await;
    let b = env.create_user(&token, &[("email", "b@x.io")]).await;
    assert_eq!(b["id"].as_u64().unwrap(), a["id"].as_u64().unwrap() + 1);
}

#[tokio::test]
async fn lookups_by_id_email_external_id_and_phone() {
    let env = Env::start().await;
    let token = env.token().await;
    let user = env
        .create_user(
            &token,
            &[
                ("email", "a.b@c.com"),
                ("external_id", "crm/42"),
                ("phone_number", "+15551234"),
            ],
        )
        .await;
    let id = user["id"].as_u64().unwrap();
    for path in [
        format!("/v1/end_users/{id}"),
        "/v1/end_users/a.b@c.com?lookup_by_email=true".to_owned(),
        "/api/v1/end_users/a.b%40c.com?lookup_by_email=true".to_owned(),
        "/v1/end_users/crm%2F42?lookup_by_external_id=true".to_owned(),
        "/v1/end_users/phone_number/+15551234".to_owned(),
        "/v1/end_users/phone_number/%2B15551234".to_owned(),
    ] {
        let (status, found) = json(env.get(&token, &path).await).await;
        assert_eq!((status, found["id"].as_u64()), (200, Some(id)), "{path}");
    }
}

#[tokio::test]
async fn unknown_end_user_gives_the_exact_error_list_body() {
    let env = Env::start().await;
    let token = env.token().await;
    for path in [
        "/v1/end_users/999",
        "/v1/end_users/nobody@x.io?lookup_by_email=true",
        "/v1/end_users/nobody?lookup_by_external_id=true",
        "/v1/end_users/phone_number/+1999",
        "/v1/end_users/nobody@x.io",
    ] {
        let r = env.get(&token, path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.text().await.unwrap(), NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn email_filter_returns_empty_array_or_one_user() {
    let env = Env::start().await;
    let token = env.token().await;
    let (status, none) = json(env.get(&token, "/v1/end_users?email=x@x.io").await).await;
    assert_eq!((status, none), (200, json!([])));
    env.create_user(&token, &[("email", "x@x.io")]).await;
    env.create_user(&token, &[("email", "y@x.io")]).await;
    let (_, one) = json(env.get(&token, "/v1/end_users?email=x@x.io").await).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["email"], "x@x.io");
}

#[tokio::test]
async fn list_pages_are_clamped_and_filtered_by_created() {
    let env = Env::start().await;
    let token = env.token().await;
    for i in 0..3 {
        env.create_user(&token, &[("email", &format!("u{i}@x.io"))])
            .await;
    }
    let (_, page) = json(env.get(&token, "/v1/end_users?per_page=2&page=2").await).await;
    assert_eq!(page, json!([page[0].clone()]));
    assert_eq!(page[0]["email"], "u2@x.io");
    let (_, desc) = json(
        env.get(&token, "/v1/end_users?sort_order=desc&per_page=1")
            .await,
    )
    .await;
    assert_eq!(desc[0]["email"], "u2@x.io");
    let future = env.sandbox.state()["now"].as_i64().unwrap() + 10;
    let (_, none) = json(
        env.get(&token, &format!("/v1/end_users?created[gt]={future}"))
            .await,
    )
    .await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn duplicate_email_is_422_with_rails_message() {
    let env = Env::start().await;
    let token = env.token().await;
    env.create_user(&token, &[("email", "dup@x.io")]).await;
    let (status, body) = json(
        env.post_form(&token, "/v1/end_users", &[("email", "dup@x.io")])
            .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"error": "Validation failed: Email has already been taken"})
    );
}

#[tokio::test]
async fn create_without_email_or_phone_is_422() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env
        .post_form(&token, "/v1/end_users", &[("external_id", "e")])
        .await;
    assert_eq!(r.status(), 422);
    let phone_only = env
        .post_form(&token, "/v1/end_users", &[("phone_number", "+1")])
        .await;
    assert_eq!(phone_only.status(), 201);
}

#[tokio::test]
async fn put_merges_properties_by_default() {
    let env = Env::start().await;
    let token = env.token().await;
    let user = env
        .create_user(
            &token,
            &[
                ("email", "p@x.io"),
                ("properties[a]", "1"),
                ("properties[b]", "2"),
            ],
        )
        .await;
    let r = env
        .put_form(
            &token,
            &format!("/v1/end_users/{}", user["id"]),
            &[("properties[b]", "3")],
        )
        .await;
    let (status, updated) = json(r).await;
    assert_eq!(status, 200);
    assert_eq!(updated["properties"], json!({"a": "1", "b": "3"}));
    assert_eq!(updated["email"], "p@x.io");
}

#[tokio::test]
async fn put_replaces_properties_when_configured() {
    let config = SandboxConfig {
        properties_update: PropertiesUpdate::Replace,
        ..SandboxConfig::default()
    };
    let env = Env::with(config).await;
    let token = env.token().await;
    let user = env
        .create_user(&token, &[("email", "p@x.io"), ("properties[a]", "1")])
        .await;
    let path = format!("/v1/end_users/{}", user["id"]);
    let (_, updated) = json(env.put_form(&token, &path, &[("properties[b]", "3")]).await).await;
    assert_eq!(updated["properties"], json!({"b": "3"}));
    let (_, untouched) = json(env.put_form(&token, &path, &[("external_id", "e")]).await).await;
    assert_eq!(untouched["properties"], json!({"b": "3"}));
}

#[tokio::test]
async fn put_with_query_only_and_no_body_updates() {
    let env = Env::start().await;
    let token = env.token().await;
    let user = env.create_user(&token, &[("email", "q@x.io")]).await;
    let r = env
        .http
        .put(env.url(&format!(
            "/api/v1/end_users/{}?properties%5Bk%5D=v",
            user["id"]
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, updated) = json(r).await;
    assert_eq!(status, 200);
    assert_eq!(updated["properties"], json!({"k": "v"}));
}

#[tokio::test]
async fn put_to_a_taken_email_is_422_and_unknown_id_404() {
    let env = Env::start().await;
    let token = env.token().await;
    env.create_user(&token, &[("email", "one@x.io")]).await;
    let two = env.create_user(&token, &[("email", "two@x.io")]).await;
    let path = format!("/v1/end_users/{}", two["id"]);
    assert_eq!(
        env.put_form(&token, &path, &[("email", "ONE@x.io")])
            .await
            .status(),
        422
    );
    assert_eq!(
        env.put_form(&token, "/v1/end_users/9999", &[("email", "z@x.io")])
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn delete_by_id_or_email_returns_the_object() {
    let env = Env::start().await;
    let token = env.token().await;
    let a = env.create_user(&token, &[("email", "a@x.io")]).await;
    env.create_user(&token, &[("email", "b@x.io")]).await;
    let r = env
        .http
        .delete(env.url(&format!("/v1/end_users/{}", a["id"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = json(r).await;
    assert_eq!((status, body["email"].as_str()), (200, Some("a@x.io")));
    let r = env
        .http
        .delete(env.url("/v1/end_users/b%40x.io"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, list) = json(env.get(&token, "/v1/end_users").await).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn export_and_settings() {
    let env = Env::start().await;
    let token = env.token().await;
    let user = env.create_user(&token, &[("email", "s@x.io")]).await;
    let id = user["id"].as_u64().unwrap();
    let export = env.get(&token, &format!("/v1/end_users/{id}/export")).await;
    assert_eq!(export.status(), 202);
    let r = env
        .put_form(
            &token,
            &format!("/v1/end_users/{id}/settings"),
            &[("email_nps", "false")],
        )
        .await;
    let (status, settings) = json(r).await;
    assert_eq!(
        (status, settings["email_nps"].as_bool()),
        (200, Some(false))
    );
}

#[tokio::test]
async fn unknown_route_is_404() {
    let env = Env::start().await;
    let token = env.token().await;
    let r = env.get(&token, "/v1/nothing").await;
    assert_eq!(r.status(), 404);
    assert_eq!(env.sandbox.count("unknown"), 1);
}
