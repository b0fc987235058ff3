//! One function per survey field the identify call sets.

use inmoment_core::lookup::{looks_like_email, loose_get, non_empty_str};
use inmoment_core::timestamp::unix_seconds;
use inmoment_core::{properties, Warning};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// `traits.email` (loose key), else an email-like userId; blank values never count.
pub fn email<'a>(traits: &'a Map<String, Value>, user_id: Option<&'a str>) -> Option<&'a str> {
    loose_get(traits, "email")
        .and_then(|(_, value)| non_empty_str(value))
        .or_else(|| user_id.filter(|id| looks_like_email(id)))
}

/// `traits.created`, else `traits.createdAt` (loose keys), as unix seconds. An
/// unparseable value is a warning naming the trait, not an error.
pub fn created_at(traits: &Map<String, Value>) -> Option<Result<i64, Warning>> {
    let (key, value) = ["created", "createdAt"]
        .into_iter()
        .filter_map(|wanted| loose_get(traits, wanted))
        .find(|(_, value)| is_present(value))?;
    Some(unix_seconds(value).map_err(|error| {
        Warning::new(
            format!("traits.{key}"),
            format!("left out of created_at: {error}"),
        )
    }))
}

/// `traits.language` (exact key) when it is a non-empty string.
pub fn language(traits: &Map<String, Value>) -> Option<&str> {
    traits.get("language").and_then(non_empty_str)
}

/// All traits plus `id` = userId (as the browser integration's traits include it), then
/// the property rules. `id` keeps its place when the traits already have one.
pub fn properties(
    traits: Cow<'_, Map<String, Value>>,
    user_id: Option<&str>,
) -> Map<String, Value> {
    let Some(id) = user_id.map(Value::from) else {
        return properties::convert_cow(traits);
    };
    match traits {
        Cow::Owned(mut traits) => {
            match traits.get_mut("id") {
                Some(value) => *value = id,
                None => {
                    traits.insert("id".to_string(), id);
                }
            }
            properties::convert_owned(traits)
        }
        Cow::Borrowed(traits) => {
            let has_id = traits.contains_key("id");
            let entries = traits
                .iter()
                .map(|(k, v)| {
                    if k == "id" {
                        (k.as_str(), &id)
                    } else {
                        (k.as_str(), v)
                    }
                })
                .chain((!has_id).then_some(("id", &id)));
            properties::convert_entries(entries, traits.len() + 1)
        }
    }
}

fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}
