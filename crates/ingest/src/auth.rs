//! Write keys, as Segment takes them: HTTP Basic with the key as user name (empty
//! password, colon optional) or a `writeKey` in the body. Each key names a [`Source`].
//! Keys are compared and never logged; logs and metrics name the source instead.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use inmoment_core::EventFields;
use serde_json::Value;

use super::error::{ApiError, ErrorCode};
use inmoment_config::Config;
use inmoment_store::accept::Source;

/// Every configured write key and its source.
#[derive(Debug)]
pub struct WriteKeys {
    by_key: HashMap<String, Arc<Source>>,
    sources: Vec<Arc<Source>>,
}

impl WriteKeys {
    pub fn new(config: &Config) -> WriteKeys {
        let mut by_key = HashMap::new();
        let mut sources = Vec::new();
        for source_config in &config.sources {
            let source = Arc::new(source_config.source.clone());
            for key in &source_config.write_keys {
                by_key.insert(key.expose().to_string(), source.clone());
            }
            sources.push(source);
        }
        WriteKeys { by_key, sources }
    }

    /// The source of a write key; 401 when the key is not configured.
    pub fn lookup(&self, key: &str) -> Result<Arc<Source>, ApiError> {
        self.by_key.get(key).cloned().ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidWriteKey,
                "the write key is not configured on this server; check the key the client sends",
            )
        })
    }

    /// The only source, when exactly one is configured (the webhook's default).
    pub fn only_source(&self) -> Option<Arc<Source>> {
        match self.sources.as_slice() {
            [only] => Some(only.clone()),
            _ => None,
        }
    }
}

/// The write key of an `Authorization: Basic` header (user name; the colon and empty
/// password may be missing). `None` without a Basic header (e.g. OAuth `Bearer`, whose
/// write key is in the body).
pub fn basic_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::new(
            ErrorCode::InvalidWriteKey,
            "malformed Authorization header; expected `Basic base64(<write key>:)`",
        )
    };
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let Some((scheme, encoded)) = text.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let encoded = encoded.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded.trim_end_matches('=')))
        .map_err(|_| malformed())?;
    let credentials = String::from_utf8(decoded).map_err(|_| malformed())?;
    let user = match credentials.split_once(':') {
        Some((user, _password)) => user,
        None => credentials.as_str(),
    };
    Ok((!user.is_empty()).then(|| user.to_string()))
}

/// The `writeKey` string of a JSON object, when present and non-empty.
pub fn body_key(value: &EventFields) -> Option<&str> {
    value
        .get("writeKey")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
}

/// The request's write key: the Basic header's, else the body's. Both present but
/// different is refused rather than guessed.
pub fn request_key(header: Option<String>, body: Option<&str>) -> Result<String, ApiError> {
    match (header, body) {
        (Some(header), Some(body)) if header != body => Err(ApiError::new(
            ErrorCode::WriteKeyMismatch,
            "the body's writeKey differs from the Authorization header's write key",
        )
        .at_path("writeKey")),
        (Some(key), _) => Ok(key),
        (None, Some(body)) => Ok(body.to_string()),
        (None, None) => Err(ApiError::new(
            ErrorCode::MissingWriteKey,
            "no write key; send it as the Basic auth user name (`Authorization: Basic base64(<write key>:)`) or as `writeKey` in the body",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_with_and_without_colon() {
        let with = format!("Basic {}", STANDARD.encode("key-1:"));
        let without = format!("basic {}", STANDARD.encode("key-1"));
        assert_eq!(
            basic_key(&headers(&with)).unwrap().as_deref(),
            Some("key-1")
        );
        assert_eq!(
            basic_key(&headers(&without)).unwrap().as_deref(),
            Some("key-1")
        );
    }

    #[test]
    fn bearer_is_not_a_write_key() {
        assert_eq!(basic_key(&headers("Bearer abc")).unwrap(), None);
    }

    #[test]
    fn garbage_basic_is_refused() {
        let err = basic_key(&headers("Basic !!!")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidWriteKey);
    }
}
