//! The eligibility check: the request InMoment's beacon makes on `wootric('run')`,
//! made from the server (`GET <eligibility host>/eligible.json`, no OAuth).

use serde_json::Value;

use crate::call::{Host, HttpRequest, InMomentCall, Method, Params};
use crate::properties::Properties;
use crate::scalar::Scalar;
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

/// Builds the check from the user's state after the event was applied. `message_id` is
/// taken by value so a handler that owns it passes it on without a copy.
pub fn eligibility_check(
    message_id: impl Into<String>,
    settings: &Settings,
    state: &UserState,
    trigger: Trigger<'_>,
) -> InMomentCall {
    let (count, text_bytes) = query_size(state, trigger);
    let mut query = Params::with_capacity(count, text_bytes);
    // `push_parts` (inlined) writes the constant keys in place, without a copy call each.
    query.push_parts(&["account_token"], settings.account_token.as_str());
    if let Some(email) = &state.email {
        query.push_parts(&["email"], &email.text());
    }
    if let Some(created_at) = state.created_at {
        query.push_int(&["end_user_created_at"], created_at);
    }
    if let Some(id) = &state.segment_user_id {
        query.push_parts(&["external_id"], &id.text());
    }
    if let Some(language) = &state.language {
        query.push_parts(&["language[code]"], &language.text());
    }
    match trigger {
        Trigger::Identify => push_properties(&mut query, &state.properties),
        Trigger::Track => {
            if let Some(name) = &state.event_name {
                query.push_parts(&["event_name"], name);
            }
            push_properties(&mut query, &state.properties);
        }
        Trigger::Page { url } => {
            if let Some(url) = url {
                query.push_parts(&["url"], url);
            }
        }
    }
    let mut key = String::new();
    for (name, value) in state.kept_fields() {
        key.clear();
        key.push_str(name);
        push_bracketed(&mut query, &mut key, value);
    }
    InMomentCall::EligibilityCheck {
        message_id: message_id.into(),
        request: HttpRequest {
            method: Method::Get,
            host: Host::Eligibility,
            path: PATH.into(),
            query,
            form: Params::new(),
        },
    }
}

/// A generous estimate of the query's parameter count and text length, so its buffers are
/// allocated once instead of growing (and being copied) parameter by parameter.
fn query_size(state: &UserState, trigger: Trigger<'_>) -> (usize, usize) {
    let len = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    let scalar_len = |value: &Option<Scalar>| {
        value
            .as_ref()
            .map_or(0, |v| v.as_str().map_or(24, str::len))
    };
    let mut size = 128
        + scalar_len(&state.email)
        + scalar_len(&state.segment_user_id)
        + scalar_len(&state.language)
        + len(&state.event_name);
    let mut count = 8;
    match trigger {
        Trigger::Identify | Trigger::Track => {
            count += state.properties.len();
            for (key, value) in &state.properties {
                size += key.len()
                    + 12
                    + match value {
                        Value::String(s) => s.len(),
                        _ => 20,
                    };
            }
        }
        Trigger::Page { url } => size += url.map_or(0, str::len),
    }
    count += state.kept.len() * 4;
    size += state.kept.len() * 128;
    (count, size)
}

fn push_properties(query: &mut Params, properties: &Properties) {
    // One key buffer for all nested values, instead of a new String per level.
    let mut nested_key = String::new();
    for (key, value) in properties {
        let parts = ["properties[", key.as_str(), "]"];
        match value {
            // The common flat cases, written without building the key first.
            Value::Null => {}
            Value::String(s) => query.push_parts(&parts, s),
            Value::Bool(b) => query.push_parts(&parts, if *b { "true" } else { "false" }),
            // Integers (the common case) with the key's parts written in place.
            Value::Number(n) => match n.as_i64() {
                Some(i) => query.push_int(&parts, i),
                None => push_number(query, &parts, n),
            },
            nested => {
                nested_key.clear();
                // Room for a few levels of nesting, so the buffer is allocated once.
                nested_key.reserve(key.len() + 64);
                nested_key.extend(parts);
                push_bracketed(query, &mut nested_key, nested);
            }
        }
    }
}

/// Integers without the formatting machinery; other numbers as JSON writes them.
fn push_number(query: &mut Params, key_parts: &[&str], n: &serde_json::Number) {
    match n.as_i64() {
        Some(i) => query.push_int(key_parts, i),
        None => query.push_with(key_parts, |out| {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }),
    }
}

/// Rails-style bracket encoding: nested objects as `a[b]`, arrays as `a[]`, nulls left out.
/// `key` is a scratch buffer holding the key so far; it is back to that key on return.
pub fn push_bracketed(query: &mut Params, key: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s) => query.push(&*key, s.as_str()),
        Value::Bool(b) => query.push(&*key, if *b { "true" } else { "false" }),
        Value::Number(n) => push_number(query, &[key.as_str()], n),
        Value::Object(map) => {
            let len = key.len();
            for (sub, v) in map {
                key.push('[');
                key.push_str(sub);
                key.push(']');
                push_bracketed(query, key, v);
                key.truncate(len);
            }
        }
        Value::Array(items) => {
            let len = key.len();
            key.push_str("[]");
            for item in items {
                push_bracketed(query, key, item);
            }
            key.truncate(len);
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
            &mut "properties[company]".to_string(),
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
