//! Segment-spec events, parsed leniently the way real clients send them.
//!
//! JSON `null` means absent, empty ids mean absent, numeric ids become strings, and
//! unknown fields are kept in `extra` so nothing is dropped silently.

use serde_json::{Map, Value};
use std::fmt;

use crate::error::MappingError;
use crate::event_fields::{EventFields, Members};
use crate::scalar::Scalar;

/// The Segment call types; only some have a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Identify,
        EventType::Track,
        EventType::Page,
        EventType::Screen,
        EventType::Group,
        EventType::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Identify => "identify",
            EventType::Track => "track",
            EventType::Page => "page",
            EventType::Screen => "screen",
            EventType::Group => "group",
            EventType::Alias => "alias",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `context`: the fields the mapping reads are typed, the rest stays in `extra`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub traits: Map<String, Value>,
    pub page: Map<String, Value>,
    pub ip: Option<String>,
    pub locale: Option<String>,
    pub user_agent: Option<String>,
    pub extra: Map<String, Value>,
}

/// What differs between call types.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Identify {
        traits: Map<String, Value>,
    },
    Track {
        event: String,
        properties: Map<String, Value>,
    },
    Page {
        name: Option<String>,
        category: Option<String>,
        properties: Map<String, Value>,
    },
    Screen {
        name: Option<String>,
        category: Option<String>,
        properties: Map<String, Value>,
    },
    Group {
        /// As sent (a number stays a number), as the browser integration copies it.
        group_id: Scalar,
        /// `traits`, else `properties` when `traits` is absent or null (as facade reads a
        /// group's traits).
        traits: Map<String, Value>,
    },
    Alias {
        previous_id: String,
    },
}

impl Payload {
    /// Moves the fields out, leaving the same kind of payload with empty fields.
    pub fn take(&mut self) -> Payload {
        use std::mem::take;
        match self {
            Payload::Identify { traits } => Payload::Identify {
                traits: take(traits),
            },
            Payload::Track { event, properties } => Payload::Track {
                event: take(event),
                properties: take(properties),
            },
            Payload::Page {
                name,
                category,
                properties,
            } => Payload::Page {
                name: name.take(),
                category: category.take(),
                properties: take(properties),
            },
            Payload::Screen {
                name,
                category,
                properties,
            } => Payload::Screen {
                name: name.take(),
                category: category.take(),
                properties: take(properties),
            },
            Payload::Group { group_id, traits } => Payload::Group {
                group_id: std::mem::replace(group_id, Scalar::from("")),
                traits: take(traits),
            },
            Payload::Alias { previous_id } => Payload::Alias {
                previous_id: take(previous_id),
            },
        }
    }
}

/// One Segment event with its common fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub message_id: Option<String>,
    /// The userId trimmed and as text: the key of the user's state.
    pub user_id: Option<String>,
    /// The userId exactly as sent, when that differs from `user_id` (white space around
    /// it, or a number): the browser integration uses it unconverted.
    pub user_id_as_sent: Option<Value>,
    pub anonymous_id: Option<String>,
    pub timestamp: Option<String>,
    pub sent_at: Option<String>,
    pub context: Context,
    pub integrations: Map<String, Value>,
    pub payload: Payload,
    /// Unknown top-level fields, kept in their original order.
    pub extra: Map<String, Value>,
}

impl Event {
    /// Parses one event from JSON text; the error path is empty for a syntax error.
    pub fn from_json(text: &str) -> Result<Event, MappingError> {
        let fields: EventFields = serde_json::from_str(text)
            .map_err(|e| MappingError::new("", format!("not valid JSON: {e}")))?;
        Event::from_fields(fields, None)
    }

    /// Builds an event from parsed JSON. `forced_type` is the type given by an endpoint
    /// path (`/v1/track`), which wins over the body's `type`.
    pub fn from_value(value: Value, forced_type: Option<EventType>) -> Result<Event, MappingError> {
        match value {
            Value::Object(fields) => Event::from_members(fields, forced_type),
            other => Err(not_an_object(&other)),
        }
    }

    /// [`Event::from_value`] for JSON parsed as [`EventFields`] (the same event).
    pub fn from_fields(
        fields: EventFields,
        forced_type: Option<EventType>,
    ) -> Result<Event, MappingError> {
        match fields {
            EventFields::Object(members) => Event::from_members(members, forced_type),
            EventFields::Other(other) => Err(not_an_object(&other)),
        }
    }

    /// The members of the event's object in the order sent; a repeated key keeps its last
    /// value (at its first place), as in a parsed map.
    fn from_members(
        fields: impl IntoIterator<Item = (String, Value)>,
        forced_type: Option<EventType>,
    ) -> Result<Event, MappingError> {
        let (common, mut rest) = take_named(
            fields,
            [
                "type",
                "messageId",
                "userId",
                "anonymousId",
                "timestamp",
                "sentAt",
                "context",
                "integrations",
            ],
        );
        let [event_type, message_id, user_id, anonymous_id, timestamp, sent_at, context, integrations] =
            common;
        let event_type = match forced_type {
            Some(t) => t,
            None => read_type(event_type)?,
        };
        let message_id = read_id(message_id, "messageId")?;
        let user_id_as_sent = as_sent_if_changed(user_id.as_ref());
        let user_id = read_id(user_id, "userId")?;
        let anonymous_id = read_id(anonymous_id, "anonymousId")?;
        let timestamp = read_string(timestamp, "timestamp")?;
        let sent_at = read_string(sent_at, "sentAt")?;
        let context = read_context(context)?;
        let integrations = read_object(integrations, "integrations")?;
        let payload = read_payload(event_type, &mut rest)?;

        if user_id.is_none() && anonymous_id.is_none() {
            return Err(MappingError::new(
                "userId",
                "every event needs a userId or an anonymousId (both are missing or empty)",
            ));
        }
        if matches!(payload, Payload::Alias { .. }) && user_id.is_none() {
            return Err(MappingError::new("userId", "an alias needs a userId"));
        }

        Ok(Event {
            message_id,
            user_id,
            user_id_as_sent,
            anonymous_id,
            timestamp,
            sent_at,
            context,
            integrations,
            payload,
            extra: rest.into_map(),
        })
    }

    pub fn event_type(&self) -> EventType {
        match self.payload {
            Payload::Identify { .. } => EventType::Identify,
            Payload::Track { .. } => EventType::Track,
            Payload::Page { .. } => EventType::Page,
            Payload::Screen { .. } => EventType::Screen,
            Payload::Group { .. } => EventType::Group,
            Payload::Alias { .. } => EventType::Alias,
        }
    }

    /// The userId as the browser integration sees it: as sent (not trimmed; a number
    /// stays a number).
    pub fn user_id_value(&self) -> Option<Scalar> {
        let id = self.user_id.as_deref()?;
        Some(match &self.user_id_as_sent {
            Some(sent) => Scalar::new(sent).unwrap_or_else(|| Scalar::from(id)),
            None => Scalar::from(id),
        })
    }

    /// The userId text as sent, for the email test; `None` for a number or no userId.
    pub fn user_id_text(&self) -> Option<&str> {
        match &self.user_id_as_sent {
            Some(sent) => sent.as_str(),
            None => self.user_id.as_deref(),
        }
    }

    /// `segment_user_id` as the integration sets it: the userId as sent, else anonymousId.
    pub fn segment_user_id(&self) -> Scalar {
        self.user_id_value()
            .unwrap_or_else(|| Scalar::from(self.anonymous_id.as_deref().unwrap_or_default()))
    }

    /// The key a user's state is kept under: userId, else anonymousId.
    pub fn user_key(&self) -> &str {
        self.user_id
            .as_deref()
            .or(self.anonymous_id.as_deref())
            .unwrap_or_default()
    }
}

/// Takes the values of `names` out of `fields` in one pass, matched by name (removing
/// each by key hashed it and shifted the rest, a tenth of ingest's work per event); a
/// repeated name keeps its last value. The other fields keep their order.
fn take_named<const N: usize>(
    fields: impl IntoIterator<Item = (String, Value)>,
    names: [&str; N],
) -> ([Option<Value>; N], Members) {
    let mut taken = [const { None }; N];
    let mut rest = Vec::new();
    for (key, value) in fields {
        match names.iter().position(|name| *name == key) {
            Some(at) => taken[at] = Some(value),
            None => rest.push((key, value)),
        }
    }
    (taken, Members(rest))
}

fn read_type(value: Option<Value>) -> Result<EventType, MappingError> {
    match value {
        Some(Value::String(name)) => EventType::parse(&name).ok_or_else(|| {
            MappingError::new(
                "type",
                format!(
                    "unknown event type `{name}`; expected identify, track, page, screen, group or alias"
                ),
            )
        }),
        None | Some(Value::Null) => Err(MappingError::new(
            "type",
            "missing; expected identify, track, page, screen, group or alias",
        )),
        Some(other) => Err(MappingError::new(
            "type",
            format!("expected a string, found {}", kind(&other)),
        )),
    }
}

fn read_context(value: Option<Value>) -> Result<Context, MappingError> {
    let fields = match value {
        None | Some(Value::Null) => return Ok(Context::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(MappingError::new(
                "context",
                format!("expected an object, found {}", kind(&other)),
            ))
        }
    };
    let ([traits, page, ip, locale, user_agent], extra) =
        take_named(fields, ["traits", "page", "ip", "locale", "userAgent"]);
    Ok(Context {
        traits: read_object(traits, "context.traits")?,
        page: read_object(page, "context.page")?,
        ip: read_string(ip, "context.ip")?,
        locale: read_string(locale, "context.locale")?,
        user_agent: read_string(user_agent, "context.userAgent")?,
        extra: extra.into_map(),
    })
}

fn read_payload(event_type: EventType, fields: &mut Members) -> Result<Payload, MappingError> {
    Ok(match event_type {
        EventType::Identify => Payload::Identify {
            traits: take_object(fields, "traits")?,
        },
        EventType::Track => {
            let event = take_string(fields, "event")?.filter(|e| !e.trim().is_empty());
            let Some(event) = event else {
                return Err(MappingError::new(
                    "event",
                    "a track needs a non-empty event name",
                ));
            };
            Payload::Track {
                event,
                properties: take_object(fields, "properties")?,
            }
        }
        EventType::Page => Payload::Page {
            name: take_string(fields, "name")?,
            category: take_string(fields, "category")?,
            properties: take_object(fields, "properties")?,
        },
        EventType::Screen => Payload::Screen {
            name: take_string(fields, "name")?,
            category: take_string(fields, "category")?,
            properties: take_object(fields, "properties")?,
        },
        EventType::Group => {
            let sent = fields.get("groupId").cloned();
            let Some(group_id) = take_id(fields, "groupId")? else {
                return Err(MappingError::new("groupId", "a group needs a groupId"));
            };
            let traits = match fields.get("traits") {
                None | Some(Value::Null) => take_object(fields, "properties")?,
                Some(_) => take_object(fields, "traits")?,
            };
            Payload::Group {
                group_id: sent
                    .as_ref()
                    .and_then(Scalar::new)
                    .unwrap_or_else(|| Scalar::from(group_id)),
                traits,
            }
        }
        EventType::Alias => {
            let Some(previous_id) = take_id(fields, "previousId")? else {
                return Err(MappingError::new(
                    "previousId",
                    "an alias needs a previousId",
                ));
            };
            Payload::Alias { previous_id }
        }
    })
}

/// The userId as sent when [`take_id`] will change it: a string with white space around
/// it (not only white space: that counts as absent), or a number.
fn as_sent_if_changed(value: Option<&Value>) -> Option<Value> {
    match value? {
        Value::String(s) if s.trim().len() != s.len() && !s.trim().is_empty() => {
            Some(Value::String(s.clone()))
        }
        number @ Value::Number(_) => Some(number.clone()),
        _ => None,
    }
}

/// An identifier: strings are trimmed (empty means absent), numbers become strings.
fn take_id(fields: &mut Members, key: &str) -> Result<Option<String>, MappingError> {
    read_id(fields.take(key), key)
}

fn read_id(value: Option<Value>, key: &str) -> Result<Option<String>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                Ok(None)
            } else if trimmed.len() == s.len() {
                Ok(Some(s))
            } else {
                Ok(Some(trimmed.to_string()))
            }
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(MappingError::new(
            key,
            format!("expected a string, found {}", kind(&other)),
        )),
    }
}

fn take_string(fields: &mut Members, key: &str) -> Result<Option<String>, MappingError> {
    read_string(fields.take(key), key)
}

fn read_string(value: Option<Value>, path: &str) -> Result<Option<String>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(MappingError::new(
            path,
            format!("expected a string, found {}", kind(&other)),
        )),
    }
}

fn take_object(fields: &mut Members, key: &str) -> Result<Map<String, Value>, MappingError> {
    read_object(fields.take(key), key)
}

fn read_object(value: Option<Value>, path: &str) -> Result<Map<String, Value>, MappingError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(MappingError::new(
            path,
            format!("expected an object, found {}", kind(&other)),
        )),
    }
}

/// A JSON type name for error messages.
fn not_an_object(value: &Value) -> MappingError {
    MappingError::new("", format!("expected a JSON object, found {}", kind(value)))
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Event, MappingError> {
        Event::from_value(value, None)
    }

    #[test]
    fn null_and_empty_ids_count_as_absent() {
        let event =
            parse(json!({"type":"track","event":"E","userId":"","anonymousId":"a-1","name":null}))
                .unwrap();
        assert_eq!(event.user_id, None);
        assert_eq!(event.anonymous_id.as_deref(), Some("a-1"));
        assert_eq!(event.user_key(), "a-1");
    }

    #[test]
    fn numeric_ids_become_strings() {
        let event = parse(json!({"type":"identify","userId":42})).unwrap();
        assert_eq!(event.user_id.as_deref(), Some("42"));
    }

    #[test]
    fn the_user_id_as_sent_is_kept_beside_the_key() {
        let event = parse(json!({"type":"identify","userId":42})).unwrap();
        assert_eq!(event.user_id_value().unwrap().as_value(), &json!(42));
        assert_eq!(event.user_id_text(), None);
        let event = parse(json!({"type":"identify","userId":" ann@example.com "})).unwrap();
        assert_eq!(event.user_key(), "ann@example.com");
        assert_eq!(event.user_id_text(), Some(" ann@example.com "));
        assert_eq!(event.segment_user_id().as_str(), Some(" ann@example.com "));
        let event = parse(json!({"type":"identify","userId":"u-1"})).unwrap();
        assert_eq!(event.user_id_as_sent, None);
        let event = parse(json!({"type":"identify","userId":"  ","anonymousId":"a-1"})).unwrap();
        assert_eq!(event.segment_user_id().as_str(), Some("a-1"));
    }

    #[test]
    fn unknown_fields_are_kept_in_order() {
        let event =
            parse(json!({"type":"page","userId":"u","_metadata":{"x":1},"channel":"server"}))
                .unwrap();
        let keys: Vec<&str> = event.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, ["_metadata", "channel"]);
    }

    #[test]
    fn fields_read_by_name_leave_the_rest_in_order() {
        let event = parse(json!({
            "z_first": 1, "type": "track", "messageId": "m", "a_second": 2, "event": "E",
            "userId": "u", "properties": {"p": 1}, "context": {"library": {}, "ip": "1.2.3.4", "os": {}},
            "m_third": 3, "integrations": {"All": true}
        }))
        .unwrap();
        let keys: Vec<&str> = event.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, ["z_first", "a_second", "m_third"]);
        let keys: Vec<&str> = event.context.extra.keys().map(String::as_str).collect();
        assert_eq!(keys, ["library", "os"]);
        assert_eq!(event.context.ip.as_deref(), Some("1.2.3.4"));
        assert_eq!(event.integrations.len(), 1);
        assert_eq!(event.message_id.as_deref(), Some("m"));
    }

    #[test]
    fn errors_are_reported_in_a_fixed_order_whatever_the_key_order() {
        let err = parse(
            json!({"traits": 1, "context": 2, "messageId": [], "type": "identify", "userId": "u"}),
        )
        .unwrap_err();
        assert_eq!(err.path, "messageId");
        let err = parse(json!({"traits": 1, "context": 2, "type": "identify", "userId": "u"}))
            .unwrap_err();
        assert_eq!(err.path, "context");
        let err = parse(
            json!({"context": {"locale": 5, "traits": 1}, "type": "identify", "userId": "u"}),
        )
        .unwrap_err();
        assert_eq!(err.path, "context.traits");
    }

    #[test]
    fn unknown_context_fields_are_kept() {
        let event = parse(
            json!({"type":"page","userId":"u","context":{"ip":"1.2.3.4","library":{"name":"x"}}}),
        )
        .unwrap();
        assert_eq!(event.context.ip.as_deref(), Some("1.2.3.4"));
        assert!(event.context.extra.contains_key("library"));
    }

    #[test]
    fn missing_identity_names_user_id() {
        let err = parse(json!({"type":"identify","traits":{}})).unwrap_err();
        assert_eq!(err.path, "userId");
    }

    #[test]
    fn traits_as_string_names_the_path() {
        let err = parse(json!({"type":"identify","userId":"u","traits":"x"})).unwrap_err();
        assert_eq!(err.path, "traits");
        assert!(err.message.contains("found a string"), "{}", err.message);
    }

    #[test]
    fn context_traits_of_wrong_type_names_the_nested_path() {
        let err = parse(json!({"type":"track","event":"E","userId":"u","context":{"traits":[1]}}))
            .unwrap_err();
        assert_eq!(err.path, "context.traits");
    }

    #[test]
    fn track_needs_an_event_name() {
        assert_eq!(
            parse(json!({"type":"track","userId":"u"}))
                .unwrap_err()
                .path,
            "event"
        );
        assert_eq!(
            parse(json!({"type":"track","userId":"u","event":"  "}))
                .unwrap_err()
                .path,
            "event"
        );
    }

    #[test]
    fn path_type_wins_over_body_type() {
        let event = Event::from_value(
            json!({"type":"identify","userId":"u","event":"E"}),
            Some(EventType::Track),
        )
        .unwrap();
        assert_eq!(event.event_type(), EventType::Track);
    }

    #[test]
    fn unknown_type_is_an_error_on_type() {
        let err = parse(json!({"type":"delete","userId":"u"})).unwrap_err();
        assert_eq!(err.path, "type");
    }

    #[test]
    fn not_json_is_an_error_with_empty_path() {
        let err = Event::from_json("{nope").unwrap_err();
        assert_eq!(err.path, "");
        assert!(err.message.starts_with("not valid JSON"));
    }

    #[test]
    fn alias_needs_previous_id() {
        let err = parse(json!({"type":"alias","userId":"u"})).unwrap_err();
        assert_eq!(err.path, "previousId");
    }

    /// Read from the members as sent (repeats kept) or from a parsed map, an event is the
    /// same, errors included.
    #[test]
    fn members_read_as_the_parsed_map() {
        for text in [
            r#"{"type":"track","event":"A","event":null,"userId":"u"}"#,
            r#"{"type":"track","event":null,"event":"B","x":1,"userId":"u","x":[2]}"#,
            r#"{"type":"page","userId":"u","type":"identify","traits":{"a":1},"traits":{"b":2}}"#,
            r#"{"type":"group","userId":"u","groupId":7,"traits":null,"properties":{"p":1}}"#,
            r#"{"type":"alias","userId":"u","previousId":" p ","previousId":"q"}"#,
            r#"{"type":"identify","userId":"u","context":{"ip":"a","z":1,"ip":"b","z":2}}"#,
            r#"{"type":"screen","anonymousId":"a","name":3}"#,
            r#"[1]"#,
        ] {
            let from_map = Event::from_value(serde_json::from_str(text).unwrap(), None);
            assert_eq!(Event::from_json(text), from_map, "{text}");
        }
    }
}
