//! An event back as JSON, so it can be stored and mapped later (the journal keeps events,
//! not calls). Reading the JSON with [`Event::from_value`] gives the same event again:
//! absent and empty fields are left out, everything else is written as it was read.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::event::{Context, Event, Payload};

impl Event {
    /// The event as a JSON object (see the module docs).
    pub fn to_value(&self) -> Value {
        // Writing a map of strings and values cannot fail.
        serde_json::to_value(Stored(self)).unwrap_or_default()
    }
}

impl Event {
    /// The same JSON as [`Event::to_value`], written straight to text: ingest stores every
    /// event this way, and building the value first would copy each of its maps.
    pub fn to_json(&self) -> String {
        // Writing a map of strings and values cannot fail.
        serde_json::to_string(&Stored(self)).unwrap_or_default()
    }
}

/// An event as the journal keeps it (see the module docs).
struct Stored<'a>(&'a Event);

/// The event's context, left out by the caller when it has nothing.
struct StoredContext<'a>(&'a Context);

/// Map entries being written, with their keys, so an `extra` entry cannot repeat one.
struct Entries<M> {
    map: M,
    keys: Vec<&'static str>,
}

impl<M: SerializeMap> Entries<M> {
    fn new(map: M) -> Self {
        Entries {
            map,
            keys: Vec::with_capacity(16),
        }
    }

    fn put<V: Serialize + ?Sized>(&mut self, key: &'static str, value: &V) -> Result<(), M::Error> {
        self.keys.push(key);
        self.map.serialize_entry(key, value)
    }

    fn text(&mut self, key: &'static str, text: Option<&str>) -> Result<(), M::Error> {
        match text {
            Some(text) => self.put(key, text),
            None => Ok(()),
        }
    }

    fn object(&mut self, key: &'static str, map: &Map<String, Value>) -> Result<(), M::Error> {
        if map.is_empty() {
            return Ok(());
        }
        self.put(key, map)
    }

    /// The extra entries whose keys were not written, then the end of the map.
    fn end_with(mut self, extra: &Map<String, Value>) -> Result<M::Ok, M::Error> {
        for (key, value) in extra {
            if !self.keys.contains(&key.as_str()) {
                self.map.serialize_entry(key, value)?;
            }
        }
        self.map.end()
    }
}

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        let mut out = Entries::new(serializer.serialize_map(None)?);
        out.put("type", event.event_type().as_str())?;
        out.text("messageId", event.message_id.as_deref())?;
        match &event.user_id_as_sent {
            Some(sent) => out.put("userId", sent)?,
            None => out.text("userId", event.user_id.as_deref())?,
        }
        out.text("anonymousId", event.anonymous_id.as_deref())?;
        out.text("timestamp", event.timestamp.as_deref())?;
        out.text("sentAt", event.sent_at.as_deref())?;
        let context = &event.context;
        let has_context = !(context.traits.is_empty()
            && context.page.is_empty()
            && context.ip.is_none()
            && context.locale.is_none()
            && context.user_agent.is_none()
            && context.extra.is_empty());
        if has_context {
            out.put("context", &StoredContext(context))?;
        }
        out.object("integrations", &event.integrations)?;
        match &event.payload {
            Payload::Identify { traits } => out.object("traits", traits)?,
            Payload::Track { event, properties } => {
                out.put("event", event.as_str())?;
                out.object("properties", properties)?;
            }
            Payload::Page {
                name,
                category,
                properties,
            }
            | Payload::Screen {
                name,
                category,
                properties,
            } => {
                out.text("name", name.as_deref())?;
                out.text("category", category.as_deref())?;
                out.object("properties", properties)?;
            }
            Payload::Group { group_id, traits } => {
                out.put("groupId", group_id.as_value())?;
                out.put("traits", traits)?;
            }
            Payload::Alias { previous_id } => out.put("previousId", previous_id.as_str())?,
        }
        out.end_with(&event.extra)
    }
}

impl Serialize for StoredContext<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let context = self.0;
        let mut out = Entries::new(serializer.serialize_map(None)?);
        out.object("traits", &context.traits)?;
        out.object("page", &context.page)?;
        out.text("ip", context.ip.as_deref())?;
        out.text("locale", context.locale.as_deref())?;
        out.text("userAgent", context.user_agent.as_deref())?;
        out.end_with(&context.extra)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(value: Value) {
        let event = Event::from_value(value.clone(), None).unwrap();
        let again = Event::from_value(event.to_value(), None).unwrap();
        assert_eq!(again, event, "{value}");
        assert_eq!(event.to_json(), event.to_value().to_string(), "{value}");
    }

    #[test]
    fn extra_fields_never_repeat_a_written_key_and_fill_an_unwritten_one() {
        let mut event = Event::from_value(
            json!({"type":"track","userId":"u","event":"E","context":{"ip":"1.2.3.4"}}),
            None,
        )
        .unwrap();
        event.extra.insert("event".into(), json!("other"));
        event
            .extra
            .insert("sentAt".into(), json!("2024-01-01T00:00:00Z"));
        event.context.extra.insert("ip".into(), json!("9.9.9.9"));
        event.context.extra.insert("locale".into(), json!("es"));
        assert_eq!(event.to_json(), event.to_value().to_string());
        assert_eq!(
            event.to_json(),
            r#"{"type":"track","userId":"u","context":{"ip":"1.2.3.4","locale":"es"},"event":"E","sentAt":"2024-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn every_kind_of_event_reads_back_the_same() {
        round_trip(
            json!({"type":"identify","messageId":" m-1 ","userId":"  u-1 ","traits":{"email":"a@b.co","n":{"x":1}},"context":{"ip":"1.2.3.4","page":{"url":"https://x"},"library":{"name":"l"}},"integrations":{"All":false,"InMoment":true},"timestamp":"2024-01-01T00:00:00Z","sentAt":"2024-01-01T00:00:01Z","receivedAt":"2024-01-01T00:00:02Z","_metadata":{"a":1}}),
        );
        round_trip(json!({"type":"track","userId":1001,"event":"Paid","properties":{"amount":49}}));
        round_trip(
            json!({"type":"page","anonymousId":"a","name":"","category":"Docs","properties":{"url":"https://x/a"}}),
        );
        round_trip(json!({"type":"screen","anonymousId":"a","name":"Home"}));
        round_trip(
            json!({"type":"group","userId":"u","groupId":9001,"properties":{"name":"Acme"}}),
        );
        round_trip(
            json!({"type":"group","userId":"u","groupId":"g","traits":{},"properties":{"x":1}}),
        );
        round_trip(json!({"type":"alias","userId":"u","previousId":"old"}));
    }
}
