//! An event back as JSON, so it can be stored and mapped later (the journal keeps events,
//! not calls). Reading the JSON with [`Event::from_value`] gives the same event again:
//! absent and empty fields are left out, everything else is written as it was read.

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
