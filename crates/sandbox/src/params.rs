//! Rails-style request parameters: the query string merged with a
//! form-urlencoded, multipart or JSON body, keyed by raw bracket keys such as
//! `end_user[properties][plan]`.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::{header, request::Parts, Request};
use serde_json::{Map, Value};

/// Largest body the sandbox reads.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// Why a request's parameters could not be read (answered with 400).
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The body could not be read or was too large.
    #[error("could not read the request body: {0}")]
    Body(String),
    /// A multipart body was malformed.
    #[error("malformed multipart body: {0}")]
    Multipart(String),
    /// A JSON body was malformed or not an object.
    #[error("malformed JSON body: {0}")]
    Json(String),
}

/// Ordered `(key, value)` pairs; later pairs win on lookup, as body
/// parameters override query parameters in Rails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from an `a=1&b[c]=2` string (query or form body).
    pub fn from_urlencoded(input: &[u8]) -> Self {
        let mut params = Self::default();
        params.add_urlencoded(input);
        params
    }

    /// Appends the pairs of an urlencoded string.
    pub fn add_urlencoded(&mut self, input: &[u8]) {
        self.pairs.extend(
            form_urlencoded::parse(input)
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned())),
        );
    }

    /// Appends one pair.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((key.into(), value.into()));
    }

    /// Appends a JSON object, flattened to bracket keys
    /// (`{"a":{"b":1},"c":[2]}` → `a[b]=1`, `c[]=2`).
    pub fn add_json(&mut self, value: &Value) -> Result<(), ParamsError> {
        let Value::Object(map) = value else {
            return Err(ParamsError::Json("the body is not a JSON object".into()));
        };
        for (k, v) in map {
            self.flatten(k.clone(), v);
        }
        Ok(())
    }

    fn flatten(&mut self, key: String, value: &Value) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    self.flatten(format!("{key}[{k}]"), v);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.flatten(format!("{key}[]"), v);
                }
            }
            Value::String(s) => self.push(key, s.as_str()),
            Value::Null => self.push(key, ""),
            other => self.push(key, other.to_string()),
        }
    }

    /// The last value sent for exactly this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value sent for exactly this key, in order (for `emails[]`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The last non-empty value for this key (empty strings mean "absent").
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Whether `key` is `"true"` (Rails-ish: also `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// Direct children of a nested key: for `path = ["end_user", "properties"]`
    /// the pairs `end_user[properties][k]=v` give `(k, v)`, in order, last wins.
    pub fn children(&self, path: &[&str]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.pairs {
            let parts = key_path(k);
            if parts.len() == path.len() + 1 && parts[..path.len()] == *path {
                let child = parts[path.len()];
                if child.is_empty() {
                    continue;
                }
                match out.iter_mut().find(|(c, _)| c == child) {
                    Some(slot) => slot.1.clone_from(v),
                    None => out.push((child.to_owned(), v.clone())),
                }
            }
        }
        out
    }

    /// Whether any key starts with this bracket path (e.g. `end_user[properties]`).
    pub fn has_nested(&self, path: &[&str]) -> bool {
        self.pairs
            .iter()
            .any(|(k, _)| key_path(k).starts_with(path) && key_path(k).len() > path.len())
    }

    /// Every pair, in arrival order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Flat JSON object with the raw keys; a key sent several times becomes
    /// an array of its values.
    pub fn to_flat_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in &self.pairs {
            match out.get_mut(k) {
                None => {
                    out.insert(k.clone(), Value::String(v.clone()));
                }
                Some(Value::Array(items)) => items.push(Value::String(v.clone())),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, Value::String(v.clone())]);
                }
            }
        }
        out
    }
}

/// Splits a bracket key: `a[b][c]` → `["a","b","c"]`, `emails[]` →
/// `["emails",""]`; a key that is not well formed stays whole.
pub fn key_path(key: &str) -> Vec<&str> {
    let Some(open) = key.find('[') else {
        return vec![key];
    };
    let mut parts = vec![&key[..open]];
    let mut rest = &key[open..];
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return vec![key];
        };
        let Some(close) = inner.find(']') else {
            return vec![key];
        };
        parts.push(&inner[..close]);
        rest = &inner[close + 1..];
    }
    parts
}

/// Reads the query string and the body of a request into [`Params`]. A body
/// without a recognised Content-Type is ignored, as Rails does.
pub async fn read(parts: &Parts, body: Body) -> Result<Params, ParamsError> {
    let mut params = Params::from_urlencoded(parts.uri.query().unwrap_or("").as_bytes());
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| ParamsError::Body(e.to_string()))?;
    if bytes.is_empty() {
        return Ok(params);
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => params.add_urlencoded(&bytes),
        "multipart/form-data" => add_multipart(&mut params, content_type, bytes).await?,
        e if e == "application/json" || e.ends_with("+json") => {
            let value: Value =
                serde_json::from_slice(&bytes).map_err(|e| ParamsError::Json(e.to_string()))?;
            params.add_json(&value)?;
        }
        _ => {}
    }
    Ok(params)
}

async fn add_multipart(
    params: &mut Params,
    content_type: &str,
    bytes: bytes::Bytes,
) -> Result<(), ParamsError> {
    let request = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .map_err(|e| ParamsError::Multipart(e.to_string()))?;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ParamsError::Multipart(e.body_text()))?;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ParamsError::Multipart(e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let value = field
            .text()
            .await
            .map_err(|e| ParamsError::Multipart(e.body_text()))?;
        if !name.is_empty() {
            params.push(name, value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_path_splits_brackets() {
        assert_eq!(key_path("plain"), vec!["plain"]);
        assert_eq!(key_path("properties[plan]"), vec!["properties", "plan"]);
        assert_eq!(
            key_path("end_user[properties][plan]"),
            vec!["end_user", "properties", "plan"]
        );
        assert_eq!(key_path("emails[]"), vec!["emails", ""]);
        assert_eq!(key_path("created[gt]"), vec!["created", "gt"]);
    }

    #[test]
    fn malformed_bracket_keys_stay_whole() {
        assert_eq!(key_path("a[b"), vec!["a[b"]);
        assert_eq!(key_path("a[b]c"), vec!["a[b]c"]);
    }

    #[test]
    fn urlencoded_decodes_percent_and_plus() {
        let p = Params::from_urlencoded(b"email=a%40b.com&text=hello+world&phone=%2B1555");
        assert_eq!(p.get("email"), Some("a@b.com"));
        assert_eq!(p.get("text"), Some("hello world"));
        assert_eq!(p.get("phone"), Some("+1555"));
    }

    #[test]
    fn later_pairs_win_like_body_over_query() {
        let mut p = Params::from_urlencoded(b"score=1");
        p.add_urlencoded(b"score=9");
        assert_eq!(p.get("score"), Some("9"));
    }

    #[test]
    fn children_of_nested_keys() {
        let p = Params::from_urlencoded(
            b"end_user%5Bproperties%5D%5Bplan%5D=pro&end_user[properties][seats]=3&properties[x]=1&end_user[properties][plan]=max",
        );
        assert_eq!(
            p.children(&["end_user", "properties"]),
            vec![
                ("plan".to_owned(), "max".to_owned()),
                ("seats".to_owned(), "3".to_owned())
            ]
        );
        assert_eq!(
            p.children(&["properties"]),
            vec![("x".to_owned(), "1".to_owned())]
        );
        assert!(p.has_nested(&["end_user", "properties"]));
        assert!(!p.has_nested(&["survey"]));
    }

    #[test]
    fn repeated_keys_become_arrays_in_flat_json() {
        let p = Params::from_urlencoded(b"emails[]=a&emails[]=b&x=1");
        assert_eq!(
            Value::Object(p.to_flat_json()),
            json!({"emails[]": ["a", "b"], "x": "1"})
        );
    }

    #[test]
    fn json_body_flattens_to_bracket_keys() {
        let mut p = Params::default();
        p.add_json(&json!({"score": 7, "end_user": {"properties": {"plan": "pro"}}, "emails": ["a"], "ok": true}))
            .unwrap();
        assert_eq!(p.get("score"), Some("7"));
        assert_eq!(p.get("end_user[properties][plan]"), Some("pro"));
        assert_eq!(p.get("emails[]"), Some("a"));
        assert_eq!(p.get("ok"), Some("true"));
        assert!(p.add_json(&json!([1])).is_err());
    }

    #[test]
    fn flags_and_empty_values() {
        let p = Params::from_urlencoded(b"a=true&b=false&c=");
        assert!(p.flag("a"));
        assert!(!p.flag("b"));
        assert_eq!(p.non_empty("c"), None);
        assert_eq!(p.get("c"), Some(""));
    }
}
