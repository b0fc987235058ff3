//! The page's URL and `page_info`.

use inmoment_core::lookup::non_empty_str;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// `properties.url`, else `context.page.url`.
pub fn url<'a>(
    properties: &'a Map<String, Value>,
    context_page: &'a Map<String, Value>,
) -> Option<&'a str> {
    properties
        .get("url")
        .and_then(non_empty_str)
        .or_else(|| context_page.get("url").and_then(non_empty_str))
}

/// The page's properties, then `context.page` fields the properties lack, then the
/// top-level `name` and `category` when given. The name never touches `email` (the public
/// docs' table maps it there; that is a documentation error).
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
    if let Some(name) = name {
        info.insert("name".to_string(), Value::String(name.into_owned()));
    }
    if let Some(category) = category {
        info.insert("category".to_string(), Value::String(category.into_owned()));
    }
    info
}
