//! The eligibility role: `/eligible.json` rules and `/registered_events.json`.

#[cfg(test)]
mod common;

use common::{json, Env, DEMO};
use inmoment_sandbox::{AccountConfig, EligibilityRules, SandboxConfig};
use serde_json::json;

fn config(rules: EligibilityRules) -> SandboxConfig {
    let mut account = AccountConfig::new("NPS-ru1e5000", "rules-client");
    account.eligibility = rules;
    let mut config = SandboxConfig::default();
    config.accounts.push(account);
    config
}

#[tokio::test]
async fn default_account_is_eligible_with_details_and_settings() {
    let env = Env::start().await;
    let body = env
        .eligible(&format!("account_token={DEMO}&email=a@x.io"))
        .await;
    assert_eq!(body["eligible"], true);
    assert!(body["details"]["code"].is_string());
    assert!(body["details"]["why"].is_string());
    assert_eq!(body["settings"]["account_token"], DEMO);
    assert_eq!(body["settings"]["client_id"], "demo-client-id");
    assert_eq!(body["settings"]["survey_type"], "NPS");
}

#[tokio::test]
async fn settings_carry_the_end_user_id_when_known() {
    let env = Env::start().await;
    let token = env.token().await;
    let user = env.create_user(&token, &[("email", "k@x.io")]).await;
    let body = env
        .eligible(&format!("account_token={DEMO}&email=k@x.io"))
        .await;
    assert_eq!(body["settings"]["end_user_id"], user["id"]);
}

#[tokio::test]
async fn unknown_account_is_not_eligible_with_an_error() {
    let env = Env::start().await;
    let body = env
        .eligible("account_token=NPS-unkn0wn0&email=a@x.io")
        .await;
    assert_eq!(body["eligible"], false);
    assert!(body["error"].is_string());
    assert!(body["details"].is_object());
    assert!(body["settings"].get("client_id").is_none());
}

#[tokio::test]
async fn unregistered_event_is_not_eligible() {
    let env = Env::with(config(EligibilityRules {
        registered_events: Some(vec!["purchase".into()]),
        sampling_rate: 1.0,
        eligible_users: None,
    }))
    .await;
    let yes = env
        .eligible("account_token=NPS-ru1e5000&email=a@x.io&event_name=purchase")
        .await;
    assert_eq!(yes["eligible"], true);
    let no = env
        .eligible("account_token=NPS-ru1e5000&email=a@x.io&event_name=signup")
        .await;
    assert_eq!(no["eligible"], false);
    assert_eq!(no["details"]["code"], "event_not_registered");
    assert!(no["settings"].get("client_id").is_none());
}

#[tokio::test]
async fn registered_events_json_returns_the_configured_list() {
    let env = Env::with(config(EligibilityRules {
        registered_events: Some(vec!["purchase".into(), "Signed Up".into()]),
        sampling_rate: 1.0,
        eligible_users: None,
    }))
    .await;
    let get = |token: &str| {
        env.http
            .get(env.url(&format!("/registered_events.json?account_token={token}")))
            .send()
    };
    let (status, body) = json(get("NPS-ru1e5000").await.unwrap()).await;
    assert_eq!((status, body), (200, json!(["purchase", "Signed Up"])));
    let (_, none) = json(get(DEMO).await.unwrap()).await;
    assert_eq!(none, json!([]));
    let (status, _) = json(get("NPS-unkn0wn0").await.unwrap()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn sampling_is_deterministic_per_end_user() {
    let env = Env::with(config(EligibilityRules {
        registered_events: None,
        sampling_rate: 0.5,
        eligible_users: None,
    }))
    .await;
    let mut first = Vec::new();
    for i in 0..20 {
        let body = env
            .eligible(&format!("account_token=NPS-ru1e5000&email=u{i}@x.io"))
            .await;
        first.push(body["eligible"].as_bool().unwrap());
    }
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
    for (i, expected) in first.iter().enumerate() {
        let body = env
            .eligible(&format!("account_token=NPS-ru1e5000&email=u{i}@x.io"))
            .await;
        assert_eq!(body["eligible"].as_bool(), Some(*expected), "user {i}");
    }
}

#[tokio::test]
async fn sampling_rate_zero_excludes_everyone_unless_survey_immediately() {
    let env = Env::with(config(EligibilityRules {
        registered_events: Some(vec![]),
        sampling_rate: 0.0,
        eligible_users: None,
    }))
    .await;
    let no = env
        .eligible("account_token=NPS-ru1e5000&email=a@x.io")
        .await;
    assert_eq!(no["eligible"], false);
    assert_eq!(no["details"]["code"], "sampled_out");
    let forced = env
        .eligible("account_token=NPS-ru1e5000&email=a@x.io&survey_immediately=true&event_name=any")
        .await;
    assert_eq!(forced["eligible"], true);
    assert_eq!(forced["settings"]["client_id"], "rules-client");
}

#[tokio::test]
async fn mobile_and_web_parameter_names_are_recorded() {
    let env = Env::start().await;
    env.eligible(
        &format!(
            "account_token={DEMO}&email=a@x.io&end_user_created_at=1&language%5Bcode%5D=fr&properties%5Bplan%5D=pro&created_at=2&language=de&url=https%3A%2F%2Fx.io%2F"
        ),
    )
    .await;
    let logged = env.sandbox.requests().pop().unwrap();
    assert_eq!(logged.route, "eligible");
    assert_eq!(logged.account.as_deref(), Some(DEMO));
    assert_eq!(logged.headers["user-agent"], "Wootric-Mobile-SDK");
    for (k, v) in [
        ("end_user_created_at", "1"),
        ("language[code]", "fr"),
        ("properties[plan]", "pro"),
        ("created_at", "2"),
        ("language", "de"),
        ("url", "https://x.io/"),
    ] {
        assert_eq!(logged.params[k], v, "{k}");
    }
}

#[tokio::test]
async fn eligible_users_decide_who_is_eligible_by_email_or_external_id() {
    let env = Env::with(config(EligibilityRules {
        eligible_users: Some(vec!["Yes@X.io".into(), "ext-7".into()]),
        ..EligibilityRules::default()
    }))
    .await;
    let base = "account_token=NPS-ru1e5000";
    let by_email = env.eligible(&format!("{base}&email=yes@x.io")).await;
    assert_eq!(by_email["eligible"], true);
    assert_eq!(by_email["details"]["code"], "sampled_in");
    let by_ext = env
        .eligible(&format!("{base}&email=Unknown&external_id=ext-7"))
        .await;
    assert_eq!(by_ext["eligible"], true);
    let other = env.eligible(&format!("{base}&email=no@x.io")).await;
    assert_eq!(other["eligible"], false);
    assert_eq!(other["details"]["code"], "user_not_eligible");
    assert!(other["settings"].get("client_id").is_none());
    let nobody = env.eligible(base).await;
    assert_eq!(nobody["eligible"], false);
    let forced = env
        .eligible(&format!("{base}&email=no@x.io&survey_immediately=true"))
        .await;
    assert_eq!(forced["eligible"], true);
}

#[tokio::test]
async fn listed_user_still_needs_a_registered_event() {
    let env = Env::with(config(EligibilityRules {
        registered_events: Some(vec!["purchase".into()]),
        eligible_users: Some(vec!["yes@x.io".into()]),
        sampling_rate: 1.0,
    }))
    .await;
    let base = "account_token=NPS-ru1e5000&email=yes@x.io";
    let yes = env.eligible(&format!("{base}&event_name=purchase")).await;
    assert_eq!(yes["eligible"], true);
    let no = env.eligible(&format!("{base}&event_name=signup")).await;
    assert_eq!(no["eligible"], false);
    assert_eq!(no["details"]["code"], "event_not_registered");
}

#[tokio::test]
async fn eligible_users_can_be_set_at_run_time_over_http() {
    let env = Env::start().await;
    let patch = json!({"accounts": [{
        "account_token": DEMO,
        "client_id": "demo-client-id",
        "eligibility": {"eligible_users": ["ext-1"]}
    }]});
    let r = env
        .http
        .post(env.url("/_sandbox/config"))
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let yes = env
        .eligible(&format!("account_token={DEMO}&external_id=ext-1"))
        .await;
    assert_eq!(yes["eligible"], true);
    let no = env
        .eligible(&format!("account_token={DEMO}&external_id=ext-2"))
        .await;
    assert_eq!(no["eligible"], false);
}
