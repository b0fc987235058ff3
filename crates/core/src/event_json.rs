//! An event back as JSON, so it can be stored and mapped later (the journal keeps events,
//! not calls). Reading the JSON with [`Event::from_value`] gives the same event again:
//! absent and empty fields are left out, everything else is written as it was read.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::event::{Context, Event, Payload};

impl Event {
    /// The event as a JSON object (see the module docs).
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), self.event_type().as_str().into());
        put_text(&mut out, "messageId", self.message_id.as_deref());
        match (&self.user_id_as_sent, &self.user_id) {
            (Some(sent), _) => {
                out.insert("userId".into(), sent.clone());
            }
            (None, id) => put_text(&mut out, "userId", id.as_deref()),
        }
        put_text(&mut out, "anonymousId", self.anonymous_id.as_deref());
        put_text(&mut out, "timestamp", self.timestamp.as_deref());
        put_text(&mut out, "sentAt", self.sent_at.as_deref());
        if let Some(context) = context_value(&self.context) {
            out.insert("context".into(), context);
        }
        put_map(&mut out, "integrations", &self.integrations);
        payload_fields(&mut out, &self.payload);
        for (key, value) in &self.extra {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(out)
    }
}

impl Event {
    /// The same JSON as [`Event::to_value`], written straight to text: ingest stores every
    /// event this way, and building the value first would copy each of its maps.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Stored(self)).unwrap_or_else(|_| self.to_value().to_string())
    }
}

/// An event written as [`Event::to_value`] builds it.
struct Stored<'a>(&'a Event);

/// A context written as `context_value` builds it.
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

fn put_text(out: &mut Map<String, Value>, key: &str, text: Option<&str>) {
    if let Some(text) = text {
        out.insert(key.into(), text.into());
    }
}

fn put_map(out: &mut Map<String, Value>, key: &str, map: &Map<String, Value>) {
    if !map.is_empty() {
        out.insert(key.into(), Value::Object(map.clone()));
    }
}

fn context_value(context: &Context) -> Option<Value> {
    let mut out = Map::new();
    put_map(&mut out, "traits", &context.traits);
    put_map(&mut out, "page", &context.page);
    put_text(&mut out, "ip", context.ip.as_deref());
    put_text(&mut out, "locale", context.locale.as_deref());
    put_text(&mut out, "userAgent", context.user_agent.as_deref());
    for (key, value) in &context.extra {
        out.entry(key.clone()).or_insert_with(|| value.clone());
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn payload_fields(out: &mut Map<String, Value>, payload: &Payload) {
    match payload {
        Payload::Identify { traits } => put_map(out, "traits", traits),
        Payload::Track { event, properties } => {
            out.insert("event".into(), event.as_str().into());
            put_map(out, "properties", properties);
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
            put_text(out, "name", name.as_deref());
            put_text(out, "category", category.as_deref());
            put_map(out, "properties", properties);
        }
        Payload::Group { group_id, traits } => {
            out.insert("groupId".into(), group_id.as_value().clone());
            // Always written: an absent `traits` would make the reader fall back to
            // `properties`, which this event no longer has.
            out.insert("traits".into(), Value::Object(traits.clone()));
        }
        Payload::Alias { previous_id } => {
            out.insert("previousId".into(), previous_id.as_str().into());
        }
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
