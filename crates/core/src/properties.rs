//! The property conversion rules InMoment's browser integration applies to traits and
//! event properties before they become survey `properties`.
//!
//! 1. Each top-level strict ISO-8601 date string becomes unix seconds under `<key>_date`
//!    (unless the key already ends in `_date`).
//! 2. Then the exact keys `created`, `createdAt` and `email` are removed.
//!
//! The order matters and is the integration's: an ISO `createdAt` is renamed to
//! `createdAt_date` in step 1 and so survives step 2; a numeric `createdAt` is removed.

use serde_json::{Map, Value};

use crate::timestamp::strict_iso_seconds;

/// Keys the integration omits from properties (they have their own survey fields).
pub const REMOVED_KEYS: [&str; 3] = ["created", "createdAt", "email"];

/// Applies the `_date` rule and the removals; nested values are copied unchanged.
pub fn convert(source: &Map<String, Value>) -> Map<String, Value> {
    convert_entries(source.iter().map(|(k, v)| (k.as_str(), v)), source.len())
}

/// [`convert`] over borrowed entries, so callers can substitute a value (identify's `id`)
/// without copying the whole map first.
pub fn convert_entries<'a>(
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
    capacity: usize,
) -> Map<String, Value> {
    let mut out = Map::with_capacity(capacity);
    for (key, value) in entries {
        let date = match value {
            Value::String(text) => strict_iso_seconds(text),
            _ => None,
        };
        match date {
            Some(seconds) if key.ends_with("_date") => {
                out.insert(key.to_string(), Value::from(seconds));
            }
            Some(seconds) => {
                out.insert(format!("{key}_date"), Value::from(seconds));
            }
            None => {
                out.insert(key.to_string(), value.clone());
            }
        }
    }
    for key in REMOVED_KEYS {
        out.shift_remove(key);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(value: Value) -> Value {
        Value::Object(convert(value.as_object().unwrap()))
    }

    #[test]
    fn iso_dates_get_a_date_suffix_and_seconds() {
        assert_eq!(
            run(json!({"trialEndsAt": "2024-04-16"})),
            json!({"trialEndsAt_date": 1713225600})
        );
    }

    #[test]
    fn no_double_suffix() {
        assert_eq!(
            run(json!({"renewal_date": "2024-04-16"})),
            json!({"renewal_date": 1713225600})
        );
    }

    #[test]
    fn removals_apply_to_exact_keys_after_renaming() {
        assert_eq!(
            run(
                json!({"created": 1, "createdAt": "2015-01-01", "email": "a@b.co", "Email": "kept"})
            ),
            json!({"createdAt_date": 1420070400, "Email": "kept"})
        );
    }

    #[test]
    fn non_dates_and_nested_values_are_copied_unchanged() {
        let input = json!({"n": 1, "loose": "20150101", "nested": {"at": "2015-01-01"}, "list": ["2015-01-01"], "t": true});
        assert_eq!(run(input.clone()), input);
    }
}
