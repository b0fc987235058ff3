//! The batch envelope of `/v1/batch`, `/v1/import` and `/v1/b`:
//! `{"batch":[…], "context"?, "integrations"?, "writeKey"?, "sentAt"?}`.
//!
//! Each item keeps its own raw JSON text so the 32 KB event limit is measured on what the
//! client sent. The batch-level `context` and `integrations` are merged into each item
//! (the item's keys win), and an item's own `writeKey` must match the request's.

use std::fmt;

use inmoment_core::EventFields;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// Parses the envelope in one pass over the body (the items are only scanned, not
/// parsed); a broken or misshapen envelope fails the whole request (400).
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, ApiError> {
    let fields: Fields<'_> = serde_json::from_slice(without_bom(body)).map_err(|e| {
        let mut error = json_error(e);
        if error.code == ErrorCode::InvalidBody {
            error.message = "a batch must be a JSON object with a `batch` array".into();
        }
        error
    })?;
    let items = match fields.batch {
        None => {
            return Err(invalid(
                "batch",
                "missing; a batch request needs a `batch` array",
            ))
        }
        Some(Items::Array(items)) => items,
        Some(Items::Other) => return Err(invalid("batch", "expected an array of events")),
    };
    let field = |raw: Option<&RawValue>| -> Result<Option<Value>, ApiError> {
        match raw {
            None => Ok(None),
            Some(raw) => {
                let value: Value = serde_json::from_str(raw.get()).map_err(json_error)?;
                Ok((!value.is_null()).then_some(value))
            }
        }
    };
    Ok(Envelope {
        write_key: string_field(field(fields.write_key)?, "writeKey")?,
        sent_at: string_field(field(fields.sent_at)?, "sentAt")?,
        context: object_field(field(fields.context)?, "context")?,
        integrations: object_field(field(fields.integrations)?, "integrations")?,
        items,
    })
}

/// The envelope's fields as raw text; a repeated key keeps its last value.
#[derive(Default)]
struct Fields<'a> {
    batch: Option<Items<'a>>,
    write_key: Option<&'a RawValue>,
    sent_at: Option<&'a RawValue>,
    context: Option<&'a RawValue>,
    integrations: Option<&'a RawValue>,
}

/// The `batch` field: an array's items, or anything else (reported by `parse`).
enum Items<'a> {
    Array(Vec<&'a RawValue>),
    Other,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a `batch` array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "batch" => fields.batch = Some(map.next_value()?),
                "writeKey" => fields.write_key = Some(map.next_value()?),
                "sentAt" => fields.sent_at = Some(map.next_value()?),
                "context" => fields.context = Some(map.next_value()?),
                "integrations" => fields.integrations = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

impl<'de> Deserialize<'de> for Items<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemsVisitor)
    }
}

/// Takes any JSON value: an array gives its items' raw text, the rest is skipped.
struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Items::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Items::Other)
    }

    fn visit_unit<E>(self) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Items<'de>, E> {
        Ok(Items::Other)
    }
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
                let kind = serde_json::from_str(text)
                    .map_or("unknown", |fields: EventFields| kind_of(&fields, None));
                let error = limit.error().at_index(index);
                items.push(Item {
                    kind,
                    input: Input::Decided(Status::Rejected(error)),
                });
                continue;
            }
            let mut value: EventFields =
                serde_json::from_str(text).unwrap_or(EventFields::Other(Value::Null));
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
            value.remove("writeKey");
            merge_into(&mut value, "context", self.context.as_ref());
            merge_into(&mut value, "integrations", self.integrations.as_ref());
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
fn merge_into(fields: &mut EventFields, key: &str, batch: Option<&Map<String, Value>>) {
    let Some(batch) = batch else {
        return;
    };
    match fields.get_mut(key) {
        None | Some(Value::Null) => fields.set(key, Value::Object(batch.clone())),
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
        assert_eq!(
            value.get("context"),
            Some(&json!({"ip":"1.1.1.1","locale":"en-US"}))
        );
        assert_eq!(value.get("integrations"), Some(&json!({"All":false})));
    }

    #[test]
    fn batch_must_be_an_array() {
        for body in [
            r#"{"batch":{"a":[1,{"b":2}]}}"#,
            r#"{"batch":null}"#,
            r#"{"batch":"x"}"#,
            r#"{"batch":1.5}"#,
            r#"{"batch":true}"#,
        ] {
            let err = parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidBody, "{body}");
            assert_eq!(err.path.as_deref(), Some("batch"), "{body}");
            assert_eq!(err.message, "expected an array of events", "{body}");
        }
        let err = parse(br#"{"context":{}}"#).unwrap_err();
        assert!(err.message.starts_with("missing"), "{}", err.message);
    }

    #[test]
    fn envelope_must_be_an_object() {
        for body in [&br#"[{"batch":[]}]"#[..], br#""batch""#, b"null"] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidBody);
            assert_eq!(
                err.message,
                "a batch must be a JSON object with a `batch` array"
            );
        }
        let err = parse(br#"{"batch":[{"type":"track"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidJson);
    }

    #[test]
    fn reads_each_field_once_and_skips_unknown_ones() {
        let body = br#"{"other":{"batch":"not this"},"batch":[{"n":1}, {"n":[2]}],
            "writeKey":"old","wr\u0069teKey":"k","sentAt":null,"extra":[1,2]}"#;
        let envelope = parse(body).unwrap();
        assert_eq!(envelope.len(), 2);
        assert_eq!(envelope.items[1].get(), r#"{"n":[2]}"#);
        assert_eq!(envelope.write_key.as_deref(), Some("k"));
        assert_eq!(envelope.sent_at, None);
        let err = parse(br#"{"batch":[],"context":[1]}"#).unwrap_err();
        assert_eq!(err.path.as_deref(), Some("context"));
    }
}
