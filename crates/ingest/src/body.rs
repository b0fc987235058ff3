//! Reading a request body: content type, size limits on the decoded bytes, gzip (with a
//! cap on the decoded size, so a small gzip bomb cannot fill memory) and JSON parsing
//! that reports where the JSON breaks.

use std::io::Read as _;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::error::{ApiError, ErrorCode};

/// The size limit of one kind of request, named after its configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub code: ErrorCode,
    pub key: &'static str,
    pub max_bytes: usize,
}

impl Limit {
    /// One event: single-event endpoints and each item of a batch.
    pub fn event(max_bytes: usize) -> Limit {
        Limit {
            code: ErrorCode::EventTooLarge,
            key: "max_event_bytes",
            max_bytes,
        }
    }

    /// A whole batch (or webhook) request.
    pub fn batch(max_bytes: usize) -> Limit {
        Limit {
            code: ErrorCode::BatchTooLarge,
            key: "max_batch_bytes",
            max_bytes,
        }
    }

    pub fn error(&self) -> ApiError {
        ApiError::too_large(self.code, self.key, self.max_bytes)
    }
}

/// Reads the body within `limit` (decoded) and `timeout`, decompressing gzip.
pub async fn read(
    body: Body,
    headers: &HeaderMap,
    limit: Limit,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let foreign = foreign_content_type(headers);
    let gzip = is_gzip(headers)?;
    if let Some(length) = content_length(headers) {
        if !gzip && length > limit.max_bytes as u64 {
            return Err(limit.error());
        }
    }
    let limited = Limited::new(body, limit.max_bytes);
    let raw = match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => {
            return Err(ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the body did not arrive within {} ms (request_timeout_ms)",
                    timeout.as_millis()
                ),
            ))
        }
        Ok(Err(error)) if error.is::<LengthLimitError>() => return Err(limit.error()),
        Ok(Err(error)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("could not read the body: {error}"),
            ))
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let decoded = if gzip { gunzip(&raw, limit)? } else { raw };
    if let Some(content_type) = foreign {
        check_json_despite_label(&decoded, &content_type)?;
    }
    Ok(decoded)
}

/// The content type when it does not say JSON: JSON, plain text (analytics.js avoids a
/// CORS preflight with it) and no content type say JSON.
fn foreign_content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let mime = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json_like = mime.is_empty()
        || mime == "application/json"
        || mime == "text/plain"
        || mime.ends_with("+json");
    (!json_like).then_some(text)
}

/// A body labelled otherwise is still taken when it is JSON, as Segment's API takes it:
/// RudderStack's Node SDK sends gzip JSON labelled `application/x-www-form-urlencoded`.
fn check_json_despite_label(bytes: &[u8], content_type: &str) -> Result<(), ApiError> {
    match serde_json::from_slice::<serde::de::IgnoredAny>(without_bom(bytes)) {
        Ok(_) => Ok(()),
        Err(_) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "content type `{}` is not supported and the body is not JSON; send JSON",
                content_type.escape_default()
            ),
        )),
    }
}

fn is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let text = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(ApiError::new(
            ErrorCode::UnsupportedEncoding,
            format!("content encoding `{text}` is not supported; send gzip or no encoding"),
        )),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Decompresses at most `limit.max_bytes + 1` bytes: one more means too large.
fn gunzip(raw: &[u8], limit: Limit) -> Result<Bytes, ApiError> {
    let mut decoded = Vec::new();
    let cap = limit.max_bytes as u64 + 1;
    MultiGzDecoder::new(raw)
        .take(cap)
        .read_to_end(&mut decoded)
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidGzip,
                format!("the gzip body does not decompress: {e}"),
            )
        })?;
    if decoded.len() > limit.max_bytes {
        return Err(limit.error());
    }
    Ok(Bytes::from(decoded))
}

/// The body without a UTF-8 byte order mark, which some tools prepend.
pub fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Parses JSON, reporting the parser's line and column when it is not JSON.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(without_bom(bytes)).map_err(json_error)
}

/// A syntax error gives 400 `invalid_json` with line and column; a well-formed body of
/// the wrong shape gives `invalid_body`.
pub fn json_error(error: serde_json::Error) -> ApiError {
    let code = match error.classify() {
        Category::Data => ErrorCode::InvalidBody,
        Category::Syntax | Category::Eof | Category::Io => ErrorCode::InvalidJson,
    };
    let message = match code {
        ErrorCode::InvalidJson => format!("invalid JSON: {error}"),
        _ => format!("unexpected JSON shape: {error}"),
    };
    ApiError::new(code, message).at_position(error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let err = gunzip(&bomb, Limit::batch(1000)).unwrap_err();
        assert_eq!(err.code, ErrorCode::BatchTooLarge);
        assert_eq!(err.limit(), Some("max_batch_bytes"));
    }

    #[test]
    fn gzip_within_the_limit_decodes() {
        let data = gunzip(&gzip(b"{\"a\":1}"), Limit::event(1024)).unwrap();
        assert_eq!(&data[..], b"{\"a\":1}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse_json::<serde_json::Value>(b"{\n  \"a\": nope}").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidJson);
        assert_eq!(err.position(), Some((2, 9)));
        assert!(err.message.contains("line 2 column 9"), "{}", err.message);
    }
}
