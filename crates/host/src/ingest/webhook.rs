//! `POST /v1/webhook`, for teams that keep Segment in front: Segment's Webhooks
//! (Classic and Actions) and Destination Functions post the event itself, or a JSON
//! array of events, with the type in the body.
//!
//! With a `webhook_secret`, `X-Signature` must be the hex HMAC-SHA1 of the raw body or,
//! for an array, of the raw bytes of its first element (what Segment's Actions webhook
//! signs). The source comes from Basic auth, `?writeKey=`, or is the only one configured.
//! Segment's `delete` events are answered 200 and counted as skipped.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use serde_json::Value;
use sha1::Sha1;

use super::body::{self, json_error, without_bom, Limit};
use super::error::{ApiError, ErrorCode};
use super::{auth, kind_of, respond, AppState, Clock, Input, Item, Status, Submission};
use crate::accept::Source;
use crate::config::Secret;

/// The axum handler.
pub async fn receive(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(&state, &uri, &headers, body)
        .await
        .unwrap_or_else(respond::refuse)
}

async fn handle(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = Utc::now();
    let config = &state.config;
    let source = webhook_source(state, uri, headers)?;
    let limit = Limit::batch(config.max_batch_bytes);
    let bytes = body::read(body, headers, limit, config.request_timeout).await?;
    if let Some(secret) = &config.webhook_secret {
        verify_signature(secret, headers, &bytes)?;
    }
    let top: &RawValue = serde_json::from_slice(without_bom(&bytes)).map_err(json_error)?;
    let is_array = top.get().starts_with('[');
    let elements: Vec<&RawValue> = if is_array {
        serde_json::from_str(top.get()).map_err(json_error)?
    } else {
        vec![top]
    };
    let event_limit = Limit::event(config.max_event_bytes);
    let items = elements
        .iter()
        .enumerate()
        .map(|(index, raw)| item(index, raw, event_limit))
        .collect();
    let submission = Submission {
        source,
        received_at,
        clock: Clock::Forwarded,
        forced_type: None,
        items,
    };
    let results = state.submit(submission).await?;
    Ok(if is_array {
        respond::batch(results)
    } else {
        respond::single(results)
    })
}

fn webhook_source(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<Source>, ApiError> {
    if let Some(key) = auth::basic_key(headers)? {
        return state.keys.lookup(&key);
    }
    let query = Query::<HashMap<String, String>>::try_from_uri(uri).ok();
    if let Some(key) = query.as_ref().and_then(|q| q.get("writeKey")) {
        return state.keys.lookup(key);
    }
    state.keys.only_source().ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingWriteKey,
            "several sources are configured; choose one with Basic auth (the write key as user name) or `?writeKey=` in the webhook URL",
        )
    })
}

/// One element: size-checked, Segment's `delete` set aside, Segment's own `writeKey`
/// dropped (it is not ours and is never stored).
fn item(index: usize, raw: &RawValue, limit: Limit) -> Item {
    let text = raw.get();
    let mut value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let kind = kind_of(&value, None);
    let input = if text.len() > limit.max_bytes {
        Input::Decided(Status::Rejected(limit.error().at_index(index)))
    } else if kind == "delete" {
        Input::Decided(Status::Skipped("delete_not_supported".into()))
    } else {
        if let Value::Object(fields) = &mut value {
            fields.shift_remove("writeKey");
        }
        Input::Json(value)
    };
    Item { kind, input }
}

fn verify_signature(secret: &Secret, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidSignature, message);
    let signature = headers
        .get("x-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            invalid("missing X-Signature; this server checks webhook signatures (webhook_secret)")
        })?;
    let signature = decode_hex(signature.trim())
        .ok_or_else(|| invalid("X-Signature must be a hex HMAC-SHA1"))?;
    if signs(secret, body, &signature) {
        return Ok(());
    }
    if let Some(first) = first_element(body) {
        if signs(secret, first.as_bytes(), &signature) {
            return Ok(());
        }
    }
    Err(invalid(
        "X-Signature does not match the body; check that Segment and this server share the same webhook_secret",
    ))
}

fn signs(secret: &Secret, data: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes()) else {
        return false;
    };
    mac.update(data);
    mac.verify_slice(signature).is_ok()
}

/// The raw text of an array body's first element.
fn first_element(body: &[u8]) -> Option<&str> {
    let elements: Vec<&RawValue> = serde_json::from_slice(without_bom(body)).ok()?;
    elements.first().map(|raw| raw.get())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_hex_in_either_case() {
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
    }
}
