//! Helpers for the tests against the sandbox (a fake InMoment on 127.0.0.1).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use inmoment_client::{ClientConfig, InMomentClient, RetryConfig, StackConfig};
use inmoment_core::{
    AccountToken, ClientId, EndUserRef, Host, HttpRequest, InMomentCall, Method, Params,
};
use inmoment_sandbox::{RecordedRequest, Sandbox, SandboxConfig};
use serde_json::Value;

/// The sandbox's default demo account.
pub const DEMO_TOKEN: &str = "NPS-d3m0d3m0";
pub const DEMO_CLIENT_ID: &str = "demo-client-id";

pub async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

/// Millisecond-scale retries and no jitter, so tests are quick and exact.
pub fn fast_stack() -> StackConfig {
    StackConfig {
        rate_limit_per_minute: None,
        concurrency: 4,
        attempt_timeout: Duration::from_secs(5),
        retry: RetryConfig {
            max_attempts: 4,
            max_elapsed: Duration::from_secs(5),
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            full_jitter: false,
        },
    }
}

/// The demo account, with both roles pointed at the sandbox.
pub fn config(sandbox: &Sandbox) -> ClientConfig {
    let mut config = ClientConfig::for_token(&AccountToken::parse(DEMO_TOKEN).unwrap())
        .with_client(ClientId::parse(DEMO_CLIENT_ID).unwrap(), None)
        .with_base_urls(sandbox.base_url(), sandbox.base_url());
    config.stack = fast_stack();
    config
}

pub fn client(sandbox: &Sandbox) -> InMomentClient {
    InMomentClient::new(config(sandbox)).unwrap()
}

pub fn params(pairs: &[(&str, &str)]) -> Params {
    let mut p = Params::new();
    for (k, v) in pairs {
        p.push(*k, *v);
    }
    p
}

pub fn end_user(external_id: Option<&str>, email: Option<&str>) -> EndUserRef {
    EndUserRef {
        external_id: external_id.map(Into::into),
        email: email.map(Into::into),
    }
}

pub fn eligibility(query: &[(&str, &str)]) -> InMomentCall {
    InMomentCall::EligibilityCheck {
        message_id: "m-elig".into(),
        request: HttpRequest {
            method: Method::Get,
            host: Host::Eligibility,
            path: "/eligible.json".into(),
            query: params(query),
            form: Params::new(),
        },
    }
}

pub fn demo_eligibility() -> InMomentCall {
    eligibility(&[("account_token", DEMO_TOKEN), ("email", "ken@example.com")])
}

pub fn upsert(who: EndUserRef, fields: &[(&str, &str)]) -> InMomentCall {
    InMomentCall::UpsertEndUser {
        message_id: "m-upsert".into(),
        end_user: who,
        fields: params(fields),
    }
}

pub fn response(who: EndUserRef, fields: &[(&str, &str)]) -> InMomentCall {
    InMomentCall::CreateResponse {
        message_id: "m-response".into(),
        end_user: who,
        fields: params(fields),
    }
}

pub fn decline(who: EndUserRef, fields: &[(&str, &str)]) -> InMomentCall {
    InMomentCall::CreateDecline {
        message_id: "m-decline".into(),
        end_user: who,
        fields: params(fields),
    }
}

/// `(route, status)` of every logged request, in order.
pub fn routes(requests: &[RecordedRequest]) -> Vec<(String, u16)> {
    requests
        .iter()
        .map(|r| (r.route.clone(), r.status))
        .collect()
}

pub fn route_list(pairs: &[(&str, u16)]) -> Vec<(String, u16)> {
    pairs.iter().map(|(r, s)| (r.to_string(), *s)).collect()
}

/// The recorded parameters as ordered `(key, value)` pairs.
pub fn recorded_params(request: &RecordedRequest) -> Vec<(String, String)> {
    request
        .params
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect()
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn header<'a>(request: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    request.headers.get(name).map(String::as_str)
}

/// The demo account's records in the sandbox.
pub fn demo_state(sandbox: &Sandbox, what: &str) -> Vec<Value> {
    sandbox.state()["accounts"][DEMO_TOKEN][what]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
