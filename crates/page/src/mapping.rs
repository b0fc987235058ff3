//! The page's URL and `page_info`.

use inmoment_core::lookup::{exact_get, non_empty_str};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// `properties.url`, else `context.page.url`.
pub fn url<'a>(
    properties: &'a Map<String, Value>,
    context_page: &'a Map<String, Value>,
) -> Option<&'a str> {
    exact_get(properties, "url")
        .and_then(non_empty_str)
        .or_else(|| exact_get(context_page, "url").and_then(non_empty_str))
}

/// The page's properties, then `context.page` fields the properties lack, then the
/// top-level `category` and `name` unless empty (facade's `Page.properties()` adds only
/// truthy ones, category first). The name never touches `email` (the public docs' table
/// maps it there; that is a documentation error).
pub fn page_info(
    properties: Cow<'_, Map<String, Value>>,
    context_page: &Map<String, Value>,
    name: Option<Cow<'_, str>>,
    category: Option<Cow<'_, str>>,
) -> Map<String, Value> {
    let mut info = properties.into_owned();
    for (key, value) in context_page {
        if !info.contains_key(key) {
            info.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in [("category", category), ("name", name)] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            info.insert(key.to_string(), Value::String(value.into_owned()));
        }
    }
    info
}
