//! One function per survey field the identify call sets.

use inmoment_core::lookup::{exact_scalar, looks_like_email, loose_get_truthy, loose_scalar};
use inmoment_core::properties::{Converter, Properties};
use inmoment_core::timestamp::unix_seconds;
use inmoment_core::{properties, Scalar, Warning};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// facade's `email()`: the first loose `email` trait when truthy (copied as given), else
/// an email-like userId.
pub fn email(
    traits: &Map<String, Value>,
    user_id: Option<&str>,
) -> Option<Result<Scalar, Warning>> {
    loose_scalar(traits, "email", "traits").or_else(|| {
        user_id
            .filter(|id| looks_like_email(id))
            .map(|id| Ok(Scalar::from(id)))
    })
}

/// facade's `created()`: the first loose `created` trait when truthy, else the first loose
/// `createdAt` when truthy, as unix seconds. An unparseable value is a warning naming the
/// trait, not an error.
pub fn created_at(traits: &Map<String, Value>) -> Option<Result<i64, Warning>> {
    let (key, value) =
        loose_get_truthy(traits, "created").or_else(|| loose_get_truthy(traits, "createdAt"))?;
    Some(unix_seconds(value).map_err(|error| {
        Warning::new(
            format!("traits.{key}"),
            format!("left out of created_at: {error}"),
        )
    }))
}

/// `traits.language` (a plain property read: exact key) when truthy, copied as given.
pub fn language(traits: &Map<String, Value>) -> Option<Result<Scalar, Warning>> {
    exact_scalar(traits, "language", "traits")
}

/// All traits plus `id` = userId as sent (as facade's `traits()` adds it), then the
/// property rules. `id` keeps its place when the traits already have one.
pub fn properties(traits: Cow<'_, Map<String, Value>>, user_id: Option<Scalar>) -> Properties {
    let Some(id) = user_id.map(Scalar::into_value) else {
        return properties::convert_cow(traits);
    };
    let mut out = Converter::with_capacity(traits.len() + 1);
    // Taken by the traits' own `id` (keys are unique, so at most one), else added last.
    let mut id = Some(id);
    match traits {
        Cow::Owned(traits) => {
            for (key, value) in traits {
                let value = match id.take_if(|_| key == "id") {
                    Some(id) => id,
                    None => value,
                };
                out.push(key, value);
            }
        }
        Cow::Borrowed(traits) => {
            for (key, value) in traits {
                match id.take_if(|_| key == "id") {
                    Some(id) => out.push(key.clone(), id),
                    None => out.push_borrowed(key, value),
                }
            }
        }
    }
    if let Some(id) = id {
        out.push("id".to_string(), id);
    }
    out.finish()
}
