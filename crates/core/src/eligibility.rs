//! The eligibility check: the request InMoment's beacon makes on `wootric('run')`,
//! made from the server (`GET <eligibility host>/eligible.json`, no OAuth).

use serde_json::{Map, Value};

use crate::call::{Host, HttpRequest, InMomentCall, Method, Params};
use crate::settings::Settings;
use crate::state::UserState;

pub const PATH: &str = "/eligible.json";

/// What made the check, which decides the event-specific parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger<'a> {
    /// The user's traits go as `properties[...]`.
    Identify,
    /// `event_name` for Targeted Sampling, and the event's properties.
    Track,
    /// The page URL for URL-targeted sampling; no event name or event properties, so a
    /// page view never re-fires the previous track's targeting.
    Page { url: Option<&'a str> },
}

/// Builds the check from the user's state after the event was applied.
pub fn eligibility_check(
    message_id: &str,
    settings: &Settings,
    state: &UserState,
    trigger: Trigger<'_>,
) -> InMomentCall {
    let mut query = Params::new();
    query.push("account_token", settings.account_token.as_str());
    if let Some(email) = &state.email {
        query.push("email", email.as_str());
    }
    if let Some(created_at) = state.created_at {
        query.push_with(&["end_user_created_at"], |out| {
            use std::fmt::Write;
            let _ = write!(out, "{created_at}");
        });
    }
    if let Some(id) = &state.segment_user_id {
        query.push("external_id", id.as_str());
    }
    if let Some(language) = &state.language {
        query.push("language[code]", language.as_str());
    }
    match trigger {
        Trigger::Identify => push_properties(&mut query, &state.properties),
        Trigger::Track => {
            if let Some(name) = &state.event_name {
                query.push("event_name", name.as_str());
            }
            push_properties(&mut query, &state.properties);
        }
        Trigger::Page { url } => {
            if let Some(url) = url {
                query.push("url", url);
            }
        }
    }
    InMomentCall::EligibilityCheck {
        message_id: message_id.to_string(),
        request: HttpRequest {
            method: Method::Get,
            host: Host::Eligibility,
            path: PATH.to_string(),
            query,
            form: Params::new(),
        },
    }
}

fn push_properties(query: &mut Params, properties: &Map<String, Value>) {
    for (key, value) in properties {
        let parts = ["properties[", key.as_str(), "]"];
        match value {
            // The common flat cases, written without building the key first.
            Value::Null => {}
            Value::String(s) => query.push_parts(&parts, s),
            Value::Bool(b) => query.push_parts(&parts, if *b { "true" } else { "false" }),
            Value::Number(n) => query.push_with(&parts, |out| {
                use std::fmt::Write;
                let _ = write!(out, "{n}");
            }),
            nested => push_bracketed(query, format!("properties[{key}]"), nested),
        }
    }
}

/// Rails-style bracket encoding: nested objects as `a[b]`, arrays as `a[]`, nulls left out.
pub fn push_bracketed(query: &mut Params, key: String, value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s) => query.push(key, s.as_str()),
        Value::Bool(b) => query.push(key, if *b { "true" } else { "false" }),
        Value::Number(n) => query.push(key, n.to_string()),
        Value::Object(map) => {
            for (sub, v) in map {
                push_bracketed(query, format!("{key}[{sub}]"), v);
            }
        }
        Value::Array(items) => {
            for item in items {
                push_bracketed(query, format!("{key}[]"), item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_use_bracket_keys() {
        let mut query = Params::new();
        push_bracketed(
            &mut query,
            "properties[company]".into(),
            &json!({"name": "Acme", "tags": ["a", 2], "none": null, "ok": true}),
        );
        assert_eq!(
            query.iter().collect::<Vec<_>>(),
            [
                ("properties[company][name]", "Acme"),
                ("properties[company][tags][]", "a"),
                ("properties[company][tags][]", "2"),
                ("properties[company][ok]", "true"),
            ]
        );
    }
}
