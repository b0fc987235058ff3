//! The batch envelope of `/v1/batch`, `/v1/import` and `/v1/b`:
//! `{"batch":[…], "context"?, "integrations"?, "writeKey"?, "sentAt"?}`.
//!
//! Each item keeps its own raw JSON text so the 32 KB event limit is measured on what the
//! client sent. The batch-level `context` and `integrations` are merged into each item
//! (the item's keys win), and an item's own `writeKey` must match the request's.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::auth;
use super::body::{json_error, without_bom, Limit};
use super::error::{ApiError, ErrorCode};
use super::{kind_of, Input, Item, Status};

/// A parsed batch envelope; the items are still raw JSON text.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub write_key: Option<String>,
    pub sent_at: Option<String>,
    context: Option<Map<String, Value>>,
    integrations: Option<Map<String, Value>>,
    items: Vec<&'a RawValue>,
}

/// Parses the envelope; a broken or misshapen envelope fails the whole request (400).
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, ApiError> {
    let fields: HashMap<String, &RawValue> =
        serde_json::from_slice(without_bom(body)).map_err(|e| {
            let mut error = json_error(e);
            if error.code == ErrorCode::InvalidBody {
                error.message = "a batch must be a JSON object with a `batch` array".into();
            }
            error
        })?;
    let field = |name: &str| -> Result<Option<Value>, ApiError> {
        match fields.get(name) {
            None => Ok(None),
            Some(raw) => {
                let value: Value = serde_json::from_str(raw.get()).map_err(json_error)?;
                Ok((!value.is_null()).then_some(value))
            }
        }
    };
    let items: Vec<&RawValue> = match fields.get("batch") {
        None => {
            return Err(invalid(
                "batch",
                "missing; a batch request needs a `batch` array",
            ))
        }
        Some(raw) => serde_json::from_str(raw.get())
            .map_err(|_| invalid("batch", "expected an array of events"))?,
    };
    Ok(Envelope {
        write_key: string_field(field("writeKey")?, "writeKey")?,
        sent_at: string_field(field("sentAt")?, "sentAt")?,
        context: object_field(field("context")?, "context")?,
        integrations: object_field(field("integrations")?, "integrations")?,
        items,
    })
}

fn invalid(path: &str, message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, message).at_path(path)
}

fn string_field(value: Option<Value>, path: &str) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok((!s.is_empty()).then_some(s)),
        Some(_) => Err(invalid(path, "expected a string")),
    }
}

fn object_field(value: Option<Value>, path: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(invalid(path, "expected an object")),
    }
}

impl Envelope<'_> {
    /// How many events the batch holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, each checked for size and write key and merged with the batch-level
    /// `context` and `integrations`. `request_key` is the write key the request used.
    pub fn into_items(self, request_key: &str, limit: Limit) -> Vec<Item> {
        let mut items = Vec::with_capacity(self.items.len());
        for (index, raw) in self.items.iter().enumerate() {
            let text = raw.get();
            if text.len() > limit.max_bytes {
                let kind =
                    serde_json::from_str(text).map_or("unknown", |v: Value| kind_of(&v, None));
                let error = limit.error().at_index(index);
                items.push(Item {
                    kind,
                    input: Input::Decided(Status::Rejected(error)),
                });
                continue;
            }
            let mut value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            let kind = kind_of(&value, None);
            if let Some(key) = auth::body_key(&value) {
                if key != request_key {
                    let error = ApiError::new(
                        ErrorCode::WriteKeyMismatch,
                        "this event's writeKey differs from the request's write key",
                    )
                    .at_index(index)
                    .at_path("writeKey");
                    items.push(Item {
                        kind,
                        input: Input::Decided(Status::Rejected(error)),
                    });
                    continue;
                }
            }
            if let Value::Object(fields) = &mut value {
                fields.shift_remove("writeKey");
                merge_into(fields, "context", self.context.as_ref());
                merge_into(fields, "integrations", self.integrations.as_ref());
            }
            items.push(Item {
                kind,
                input: Input::Json(value),
            });
        }
        items
    }
}

/// Adds the batch-level object's keys that the item's object lacks. An item whose field is
/// not an object is left alone for validation to report.
fn merge_into(fields: &mut Map<String, Value>, key: &str, batch: Option<&Map<String, Value>>) {
    let Some(batch) = batch else {
        return;
    };
    match fields.get_mut(key) {
        None | Some(Value::Null) => {
            fields.insert(key.to_string(), Value::Object(batch.clone()));
        }
        Some(Value::Object(own)) => {
            for (name, value) in batch {
                if !own.contains_key(name) {
                    own.insert(name.clone(), value.clone());
                }
            }
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_batch_context_under_item_keys() {
        let body = br#"{"batch":[{"type":"track","context":{"ip":"1.1.1.1"}}],
            "context":{"ip":"9.9.9.9","locale":"en-US"},"integrations":{"All":false}}"#;
        let items = parse(body).unwrap().into_items("k", Limit::event(1000));
        let Input::Json(value) = &items[0].input else {
            panic!("decided: {:?}", items[0].input)
        };
        assert_eq!(value["context"], json!({"ip":"1.1.1.1","locale":"en-US"}));
        assert_eq!(value["integrations"], json!({"All":false}));
    }

    #[test]
    fn batch_must_be_an_array() {
        let err = parse(br#"{"batch":{}}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidBody);
        assert_eq!(err.path.as_deref(), Some("batch"));
    }
}
