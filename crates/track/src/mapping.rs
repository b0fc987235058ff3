//! One function per survey field the track call sets.

use inmoment_core::lookup::{looks_like_email, loose_get, non_empty_str};
use inmoment_core::Event;
use serde_json::{Map, Value};

/// `context.traits.email`, else `properties.email`, else an email-like userId.
pub fn email<'a>(event: &'a Event, properties: &'a Map<String, Value>) -> Option<&'a str> {
    let from =
        |map: &'a Map<String, Value>| loose_get(map, "email").and_then(|(_, v)| non_empty_str(v));
    from(&event.context.traits)
        .or_else(|| from(properties))
        .or_else(|| event.user_id.as_deref().filter(|id| looks_like_email(id)))
}

/// `properties.language` (exact key) when it is a non-empty string.
pub fn language(properties: &Map<String, Value>) -> Option<&str> {
    properties.get("language").and_then(non_empty_str)
}
