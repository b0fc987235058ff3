//! `POST /v1/webhook`, for teams that keep Segment in front: Segment's Webhooks
//! (Classic and Actions) and Destination Functions post the event itself, or a JSON
//! array of events, with the type in the body.
//!
//! Every request authenticates, with one of:
//! - a write key: Basic auth, `?writeKey=`, or `writeKey` in the body (every element of
//!   an array carrying the same key); the key also names the source;
//! - with a `webhook_secret`, an `X-Signature` that is the hex HMAC-SHA1 of the exact body
//!   bytes; the source is then the only one configured.
//!
//! A signature over anything less than the whole body (Segment's Actions webhook signs
//! only the first element of a batch) does not authenticate the rest of it: such batches
//! need the write key too. Segment's `delete` events are answered 200 and counted as
//! skipped.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use chrono::Utc;
use hmac::{Hmac, Mac};
use inmoment_core::EventFields;
use serde_json::value::RawValue;
use serde_json::Value;
use sha1::Sha1;

use super::body::{self, json_error, without_bom, Limit};
use super::error::{ApiError, ErrorCode};
use super::{auth, kind_of, respond, AppState, Clock, Input, Item, Status, Submission};
use inmoment_config::Secret;
use inmoment_store::accept::Source;

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
    let limit = Limit::batch(config.max_batch_bytes);
    let bytes = body::read(body, headers, limit, config.request_timeout).await?;
    let credential = credential(state, uri, headers, &bytes)?;
    let top: &RawValue =
        serde_json::from_slice(without_bom(&bytes)).map_err(|error| match credential {
            Some(_) => json_error(error),
            None => no_credential(),
        })?;
    let is_array = top.get().starts_with('[');
    let elements: Vec<&RawValue> = if is_array {
        serde_json::from_str(top.get()).map_err(json_error)?
    } else {
        vec![top]
    };
    if elements.len() > config.max_batch_items {
        return Err(ApiError::too_many_items(
            elements.len(),
            config.max_batch_items,
        ));
    }
    let values: Vec<EventFields> = elements
        .iter()
        .map(|raw| serde_json::from_str(raw.get()).unwrap_or(EventFields::Other(Value::Null)))
        .collect();
    let source = match credential {
        Some(source) => source,
        None => body_source(state, &values)?,
    };
    let event_limit = Limit::event(config.max_event_bytes);
    let items = elements
        .iter()
        .zip(values)
        .enumerate()
        .map(|(index, (raw, value))| item(index, raw.get().len(), value, event_limit))
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

/// The source named by a header or query credential: a write key (Basic auth or
/// `?writeKey=`), else a valid signature of the whole body. `None` when the request
/// carries neither, so the body's `writeKey` must authenticate it.
fn credential(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Arc<Source>>, ApiError> {
    if let Some(key) = auth::basic_key(headers)? {
        return state.keys.lookup(&key).map(Some);
    }
    let query = Query::<HashMap<String, String>>::try_from_uri(uri).ok();
    if let Some(key) = query.as_ref().and_then(|q| q.get("writeKey")) {
        return state.keys.lookup(key).map(Some);
    }
    let Some(signature) = headers.get("x-signature") else {
        return Ok(None);
    };
    let Some(secret) = &state.config.webhook_secret else {
        return Err(ApiError::new(
            ErrorCode::InvalidSignature,
            "X-Signature cannot be checked: this server has no webhook_secret; authenticate with the write key (Basic auth or `?writeKey=`)",
        ));
    };
    verify_signature(secret, signature, body)?;
    state.keys.only_source().map(Some).ok_or_else(|| {
        ApiError::new(
            ErrorCode::MissingWriteKey,
            "several sources are configured; choose one with Basic auth (the write key as user name) or `?writeKey=` in the webhook URL",
        )
    })
}

/// The source named by the body's `writeKey`: the object's, or the one key that every
/// element of an array carries.
fn body_source(state: &AppState, values: &[EventFields]) -> Result<Arc<Source>, ApiError> {
    let mut keys = values.iter().map(auth::body_key);
    let first = keys.next().flatten().ok_or_else(no_credential)?;
    if keys.any(|key| key != Some(first)) {
        return Err(ApiError::new(
            ErrorCode::WriteKeyMismatch,
            "the elements of the array carry different or missing `writeKey`s; send one write key with Basic auth or `?writeKey=`",
        ));
    }
    state.keys.lookup(first)
}

fn no_credential() -> ApiError {
    ApiError::new(
        ErrorCode::MissingWriteKey,
        "the webhook needs a write key (Basic auth, `?writeKey=` in the URL, or `writeKey` in the body) or, with a webhook_secret, an X-Signature of the whole body",
    )
}

/// One element: size-checked, Segment's `delete` set aside, Segment's own `writeKey`
/// dropped (it is not ours and is never stored).
fn item(index: usize, raw_len: usize, mut value: EventFields, limit: Limit) -> Item {
    let kind = kind_of(&value, None);
    let input = if raw_len > limit.max_bytes {
        Input::Decided(Status::Rejected(limit.error().at_index(index)))
    } else if kind == "delete" {
        Input::Decided(Status::Skipped("delete_not_supported".into()))
    } else {
        value.remove("writeKey");
        Input::Json(value)
    };
    Item { kind, input }
}

/// The signature must be the HMAC of the exact body bytes: nothing less (a part of the
/// body would let anything be appended) and nothing re-serialised.
fn verify_signature(secret: &Secret, signature: &HeaderValue, body: &[u8]) -> Result<(), ApiError> {
    let invalid = |message: &str| ApiError::new(ErrorCode::InvalidSignature, message);
    let signature = signature
        .to_str()
        .ok()
        .and_then(|text| decode_hex(text.trim()))
        .ok_or_else(|| invalid("X-Signature must be a hex HMAC-SHA1"))?;
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.expose().as_bytes()) else {
        return Err(invalid("the webhook_secret cannot key an HMAC"));
    };
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| {
        invalid("X-Signature does not match the body; check that Segment and this server share the same webhook_secret (a signature of a batch's first element alone does not count: send the write key too)")
    })
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
