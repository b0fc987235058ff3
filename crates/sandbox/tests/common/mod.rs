//! Helpers shared by the HTTP tests: start a sandbox, get a token, call it.
#![allow(dead_code)]

use inmoment_sandbox::{Sandbox, SandboxConfig};
use reqwest::{Client, Response};
use serde_json::Value;

/// Demo account token of the default config.
pub const DEMO: &str = "NPS-d3m0d3m0";

/// A started sandbox plus a client that talks to it.
pub struct Env {
    pub sandbox: Sandbox,
    pub http: Client,
}

impl Env {
    pub async fn start() -> Self {
        Self::with(SandboxConfig::default()).await
    }

    pub async fn with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::start(config).await.unwrap();
        Self {
            sandbox,
            http: Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.sandbox.base_url(), path)
    }

    /// A client-credentials token for the demo account.
    pub async fn token(&self) -> String {
        self.token_for("demo-client-id").await
    }

    pub async fn token_for(&self, client_id: &str) -> String {
        let body: Value = self
            .http
            .post(self.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(&self, token: &str, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn put_form(&self, token: &str, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .put(self.url(path))
            .bearer_auth(token)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// `POST /oauth/token{query}` with a form; status and JSON body.
    pub async fn token_call(&self, query: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/oauth/token{query}")))
            .form(form)
            .send()
            .await
            .unwrap();
        json(r).await
    }

    /// `GET /eligible.json?{query}` as the mobile SDK does; asserts 200.
    pub async fn eligible(&self, query: &str) -> Value {
        let r = self
            .http
            .get(self.url(&format!("/eligible.json?{query}")))
            .header("user-agent", "Wootric-Mobile-SDK")
            .send()
            .await
            .unwrap();
        let (status, body) = json(r).await;
        assert_eq!(status, 200);
        body
    }

    /// Creates `r@x.io` (property plan=free) and returns its id.
    pub async fn user_id(&self, token: &str) -> u64 {
        let u = self
            .create_user(token, &[("email", "r@x.io"), ("properties[plan]", "free")])
            .await;
        u["id"].as_u64().unwrap()
    }

    /// Creates an end user and returns its JSON.
    pub async fn create_user(&self, token: &str, form: &[(&str, &str)]) -> Value {
        let r = self.post_form(token, "/v1/end_users", form).await;
        assert!(r.status().is_success(), "{}", r.status());
        r.json().await.unwrap()
    }
}

/// A response header as text.
pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Status and JSON body of a response.
pub async fn json(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The keys of a JSON object, in order (the sandbox's bodies keep InMoment's key order).
pub fn keys_of(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}
