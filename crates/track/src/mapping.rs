//! One function per survey field the track call sets.

use inmoment_core::lookup::{exact_scalar, looks_like_email, loose_scalar};
use inmoment_core::{Event, Scalar, Warning};
use serde_json::{Map, Value};

/// facade's `Track.email()`: the first loose `email` of `context.traits` when truthy, else
/// of `properties`, else an email-like userId; copied as given.
pub fn email(event: &Event, properties: &Map<String, Value>) -> Option<Result<Scalar, Warning>> {
    loose_scalar(&event.context.traits, "email", "context.traits")
        .or_else(|| loose_scalar(properties, "email", "properties"))
        .or_else(|| {
            event
                .user_id_text()
                .filter(|id| looks_like_email(id))
                .map(|id| Ok(Scalar::from(id)))
        })
}

/// `properties.language` (a plain property read: exact key) when truthy, copied as given.
pub fn language(properties: &Map<String, Value>) -> Option<Result<Scalar, Warning>> {
    exact_scalar(properties, "language", "properties")
}
