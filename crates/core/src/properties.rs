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
use std::borrow::Cow;

use crate::timestamp::strict_iso_seconds;

/// Keys the integration omits from properties (they have their own survey fields).
pub const REMOVED_KEYS: [&str; 3] = ["created", "createdAt", "email"];

/// Applies the `_date` rule and the removals; nested values are copied unchanged.
pub fn convert(source: &Map<String, Value>) -> Map<String, Value> {
    convert_entries(source.iter().map(|(k, v)| (k.as_str(), v)), source.len())
}

/// [`convert`] of a borrowed map, or [`convert_owned`] of an owned one.
pub fn convert_cow(source: Cow<'_, Map<String, Value>>) -> Map<String, Value> {
    match source {
        Cow::Borrowed(map) => convert(map),
        Cow::Owned(map) => convert_owned(map),
    }
}

/// [`convert`] over borrowed entries, so callers can substitute a value (identify's `id`)
/// without copying the whole map first.
///
/// The removed keys are skipped rather than inserted and removed afterwards: a renamed key
/// ends in `_date` and so is never one of them, which makes the two orders equivalent.
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
                out.insert(date_key(key), Value::from(seconds));
            }
            None if REMOVED_KEYS.contains(&key) => {}
            None => {
                out.insert(key.to_string(), value.clone());
            }
        }
    }
    out
}

/// [`convert`] in place, for a map the caller owns: unchanged entries stay where they are,
/// so neither their keys nor their values are copied or hashed again.
pub fn convert_owned(mut map: Map<String, Value>) -> Map<String, Value> {
    // Keys to rename, with their index in the output; they are taken out and put back.
    let mut renames: Vec<(usize, String, i64)> = Vec::new();
    let mut index = 0;
    map.retain(|key, value| {
        let date = match value {
            Value::String(text) => strict_iso_seconds(text),
            _ => None,
        };
        let keep = match date {
            Some(seconds) if key.ends_with("_date") => {
                *value = Value::from(seconds);
                true
            }
            Some(seconds) => {
                renames.push((index, date_key(key), seconds));
                index += 1;
                return false;
            }
            None => !REMOVED_KEYS.contains(&key.as_str()),
        };
        if keep {
            index += 1;
        }
        keep
    });
    if renames.is_empty() {
        return map;
    }
    // A renamed key ends in `_date`, so only a kept key ending so can be the same one:
    // comparing those few is cheaper than hashing every renamed key.
    let collides = map
        .keys()
        .filter(|key| key.ends_with("_date"))
        .any(|key| renames.iter().any(|(_, renamed, _)| renamed == key));
    if !collides {
        // In ascending order every earlier entry is in place, so each index is exact.
        for (index, key, seconds) in renames {
            map.shift_insert(index, key, Value::from(seconds));
        }
        return map;
    }
    rebuild(map, renames)
}

/// The rare case of a renamed key that is also a key of its own (`at` and `at_date`):
/// inserting every entry in order, as the browser integration does, keeps the first
/// position and the last value.
fn rebuild(kept: Map<String, Value>, renames: Vec<(usize, String, i64)>) -> Map<String, Value> {
    let mut out = Map::with_capacity(kept.len() + renames.len());
    let mut renames = renames.into_iter().peekable();
    let mut position = 0;
    for (key, value) in kept {
        while let Some((_, renamed, seconds)) = renames.next_if(|r| r.0 == position) {
            out.insert(renamed, Value::from(seconds));
            position += 1;
        }
        out.insert(key, value);
        position += 1;
    }
    for (_, renamed, seconds) in renames {
        out.insert(renamed, Value::from(seconds));
    }
    out
}

/// `<key>_date`, allocated once at its final size.
fn date_key(key: &str) -> String {
    let mut renamed = String::with_capacity(key.len() + 5);
    renamed.push_str(key);
    renamed.push_str("_date");
    renamed
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

    /// The rules as the browser integration states them: insert every entry in order
    /// (renamed), then remove the exact keys.
    fn reference(source: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in source {
            let date = value.as_str().and_then(strict_iso_seconds);
            match date {
                Some(seconds) if key.ends_with("_date") => out.insert(key.clone(), seconds.into()),
                Some(seconds) => out.insert(format!("{key}_date"), seconds.into()),
                None => out.insert(key.clone(), value.clone()),
            };
        }
        for key in REMOVED_KEYS {
            out.shift_remove(key);
        }
        out
    }

    #[test]
    fn in_place_conversion_matches_the_rules_in_order() {
        let cases = [
            json!({"email": "a@b.co", "a": "2015-01-01", "n": 1, "b_date": "2016-01-01", "c": "2017-01-01"}),
            json!({"at": "2015-01-01", "at_date": 5}),
            json!({"at_date": 5, "at": "2015-01-01"}),
            json!({"x": 1, "at": "2015-01-01", "created": 2, "at_date": "2016-01-01", "b": "2018-01-01", "b_date": 3}),
            json!({"createdAt": "2015-01-01", "createdAt_date": 1, "email": "2015-01-01"}),
            json!({"a": "2015-01-01", "b": "2016-01-01"}),
            json!({}),
        ];
        for case in cases {
            let source = case.as_object().unwrap();
            let expected = reference(source);
            for actual in [convert(source), convert_owned(source.clone())] {
                assert_eq!(
                    actual.iter().collect::<Vec<_>>(),
                    expected.iter().collect::<Vec<_>>(),
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn non_dates_and_nested_values_are_copied_unchanged() {
        let input = json!({"n": 1, "loose": "20150101", "nested": {"at": "2015-01-01"}, "list": ["2015-01-01"], "t": true});
        assert_eq!(run(input.clone()), input);
    }
}
