//! An event's JSON as read for [`Event`](crate::Event): a top-level object's members
//! kept as a plain list in the order sent. Parsing into a `Map` hashed every key only for
//! `Event::from_fields` to take the map apart again at once (about a tenth of ingesting
//! an event). The list reads the same as the map would: a repeated key keeps its last
//! value, at its first place.

use std::fmt;

use serde::de::value::SeqAccessDeserializer;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A parsed event before validation: its members, or whatever other JSON came instead
/// (reported by `Event::from_fields` as not an object).
#[derive(Debug, Clone, PartialEq)]
pub enum EventFields {
    Object(Vec<(String, Value)>),
    Other(Value),
}

impl EventFields {
    /// The value of `key` (its last occurrence, as a parsed map keeps).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            EventFields::Object(members) => last_of(members, key).map(|at| &members[at].1),
            EventFields::Other(_) => None,
        }
    }

    /// Mutable access to the value of `key` (its last occurrence).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            EventFields::Object(members) => last_of(members, key).map(|at| &mut members[at].1),
            EventFields::Other(_) => None,
        }
    }

    /// Sets `key` to `value`: in place of its last occurrence, else added last.
    pub fn set(&mut self, key: &str, value: Value) {
        if let Some(slot) = self.get_mut(key) {
            *slot = value;
        } else if let EventFields::Object(members) = self {
            members.push((key.to_string(), value));
        }
    }

    /// Removes every occurrence of `key`.
    pub fn remove(&mut self, key: &str) {
        if let EventFields::Object(members) = self {
            members.retain(|(name, _)| name != key);
        }
    }
}

/// The members not read by name yet, in the order sent, for reading the rest by name
/// without hashing each key into a map first.
pub(crate) struct Members(pub(crate) Vec<(String, Value)>);

impl Members {
    /// The value of `key` (its last occurrence).
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        last_of(&self.0, key).map(|at| &self.0[at].1)
    }

    /// Removes every occurrence of `key` and returns the last one's value.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        let mut found = None;
        self.0.retain_mut(|(name, value)| {
            let keep = name != key;
            if !keep {
                found = Some(std::mem::take(value));
            }
            keep
        });
        found
    }

    /// What is left, as the map a parse would have given (no allocation when empty).
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0.into_iter().collect()
    }
}

/// Where `key` last occurs among `members` (the occurrence a parsed map keeps).
fn last_of(members: &[(String, Value)], key: &str) -> Option<usize> {
    members.iter().rposition(|(name, _)| name == key)
}

impl<'de> Deserialize<'de> for EventFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = EventFields;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventFields, A::Error> {
        // Room for a typical event's members, so the list is allocated once.
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(10));
        while let Some(member) = map.next_entry::<String, Value>()? {
            members.push(member);
        }
        Ok(EventFields::Object(members))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<EventFields, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(EventFields::Other)
    }

    fn visit_unit<E>(self) -> Result<EventFields, E> {
        Ok(EventFields::Other(Value::Null))
    }

    fn visit_bool<E>(self, v: bool) -> Result<EventFields, E> {
        Ok(EventFields::Other(Value::from(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<EventFields, E> {
        Ok(EventFields::Other(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<EventFields, E> {
        Ok(EventFields::Other(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<EventFields, E> {
        Ok(EventFields::Other(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<EventFields, E> {
        Ok(EventFields::Other(Value::from(v)))
    }

    fn visit_string<E>(self, v: String) -> Result<EventFields, E> {
        Ok(EventFields::Other(Value::from(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The list must read exactly as the parsed map: same values, same order.
    fn as_map(fields: EventFields) -> Value {
        match fields {
            EventFields::Object(members) => Value::Object(members.into_iter().collect()),
            EventFields::Other(value) => value,
        }
    }

    #[test]
    fn reads_as_the_parsed_map_would() {
        for text in [
            r#"{"type":"track","event":"A","type":"page","n":[1,{"b":2}],"event":null}"#,
            r#"{}"#,
            r#"[1,"a",{"b":[null]}]"#,
            r#""text""#,
            "12.5",
            "-3",
            "18446744073709551615",
            "true",
            "null",
        ] {
            let fields: EventFields = serde_json::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(as_map(fields), value, "{text}");
        }
    }

    #[test]
    fn a_repeated_key_reads_and_changes_its_last_value() {
        let mut fields: EventFields =
            serde_json::from_str(r#"{"context":1,"x":true,"context":{"ip":"a"}}"#).unwrap();
        assert_eq!(fields.get("context"), Some(&json!({"ip":"a"})));
        fields.set("context", json!({}));
        fields.set("added", json!(2));
        assert_eq!(
            as_map(fields.clone()),
            json!({"context":{},"x":true,"added":2})
        );
        fields.remove("context");
        assert_eq!(fields.get("context"), None);
        assert_eq!(as_map(fields), json!({"x":true,"added":2}));
    }
}
