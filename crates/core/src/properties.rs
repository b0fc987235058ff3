//! The property conversion rules InMoment's browser integration applies to traits and
//! event properties before they become survey `properties`.
//!
//! 1. Each top-level strict ISO-8601 date string becomes unix seconds under `<key>_date`
//!    (unless the key already ends in `_date`).
//! 2. Then the exact keys `created`, `createdAt` and `email` are removed.
//!
//! The order matters and is the integration's: an ISO `createdAt` is renamed to
//! `createdAt_date` in step 1 and so survives step 2; a numeric `createdAt` is removed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

use crate::timestamp::strict_iso_seconds;

/// Keys the integration omits from properties (they have their own survey fields).
pub const REMOVED_KEYS: [&str; 3] = ["created", "createdAt", "email"];

/// Converted properties: keys in order, each once, serialized as a JSON object (as a
/// `serde_json::Map` would be). A plain list because mapping builds one for every identify
/// and track while its readers only go through it in order: a map would hash every key,
/// and shift its entries and their indices for every renamed one.
#[derive(Clone, Default, PartialEq)]
pub struct Properties {
    entries: Vec<(String, Value)>,
}

impl Properties {
    pub fn new() -> Properties {
        Properties::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> PropertiesIter<'_> {
        self.entries.iter().map(|(key, value)| (key, value))
    }

    /// The value of exactly `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.iter().find(|(k, _)| *k == key).map(|(_, value)| value)
    }

    /// As `Map::insert`: a key already present keeps its place and takes the new value.
    /// It searches the keys in order, which suits adding a few.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }
}

/// The iterator of [`Properties::iter`]: `(key, value)` as a map's iterator gives them.
pub type PropertiesIter<'a> = std::iter::Map<
    std::slice::Iter<'a, (String, Value)>,
    fn(&(String, Value)) -> (&String, &Value),
>;

impl<'a> IntoIterator for &'a Properties {
    type Item = (&'a String, &'a Value);
    type IntoIter = PropertiesIter<'a>;

    fn into_iter(self) -> PropertiesIter<'a> {
        self.iter()
    }
}

impl From<Map<String, Value>> for Properties {
    /// The map's entries in its order, without a copy of any key or value.
    fn from(map: Map<String, Value>) -> Properties {
        Properties {
            entries: map.into_iter().collect(),
        }
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Properties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Properties {
    /// Through a map, so a repeated key counts once (first place, last value) as before.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Properties::from)
    }
}

/// Applies the `_date` rule and the removals; nested values are copied unchanged.
pub fn convert(source: &Map<String, Value>) -> Properties {
    let mut out = Converter::with_capacity(source.len());
    for (key, value) in source {
        out.push_borrowed(key, value);
    }
    out.finish()
}

/// [`convert`] of a map the caller gives away: kept keys and values are moved, not copied.
pub fn convert_owned(source: Map<String, Value>) -> Properties {
    let mut out = Converter::with_capacity(source.len());
    for (key, value) in source {
        out.push(key, value);
    }
    out.finish()
}

/// [`convert`] of a borrowed map, or [`convert_owned`] of an owned one.
pub fn convert_cow(source: Cow<'_, Map<String, Value>>) -> Properties {
    match source {
        Cow::Borrowed(map) => convert(map),
        Cow::Owned(map) => convert_owned(map),
    }
}

/// Converts entries one at a time in the source's order, so callers can substitute a
/// value (identify's `id`) or add an entry without building a map first.
///
/// The removed keys are skipped rather than inserted and removed afterwards: a renamed key
/// ends in `_date` and so is never one of them, which makes the two orders equivalent.
pub struct Converter {
    entries: Vec<(String, Value)>,
    /// Where renamed keys went, to find the rare one that is also a key of its own.
    renamed: Vec<usize>,
}

impl Converter {
    pub fn with_capacity(capacity: usize) -> Converter {
        Converter {
            entries: Vec::with_capacity(capacity),
            renamed: Vec::new(),
        }
    }

    /// One entry, given away.
    pub fn push(&mut self, mut key: String, value: Value) {
        match date_seconds(&value) {
            Some(seconds) if key.ends_with("_date") => {
                self.entries.push((key, Value::from(seconds)));
            }
            Some(seconds) => {
                // Exactly the suffix: the allocator can often grow the key in place.
                key.reserve_exact(5);
                key.push_str("_date");
                self.renamed.push(self.entries.len());
                self.entries.push((key, Value::from(seconds)));
            }
            None if REMOVED_KEYS.contains(&key.as_str()) => {}
            None => self.entries.push((key, value)),
        }
    }

    /// One entry, copied only as far as it is kept.
    pub fn push_borrowed(&mut self, key: &str, value: &Value) {
        match date_seconds(value) {
            Some(seconds) if key.ends_with("_date") => {
                self.entries.push((key.to_string(), Value::from(seconds)));
            }
            Some(seconds) => {
                self.renamed.push(self.entries.len());
                self.entries.push((date_key(key), Value::from(seconds)));
            }
            None if REMOVED_KEYS.contains(&key) => {}
            None => self.entries.push((key.to_string(), value.clone())),
        }
    }

    pub fn finish(self) -> Properties {
        if !self.collides() {
            return Properties {
                entries: self.entries,
            };
        }
        // The rare case of a renamed key that is also a key of its own (`at` and
        // `at_date`): inserting every entry in order, as the browser integration does,
        // keeps the first position and the last value.
        let map: Map<String, Value> = self.entries.into_iter().collect();
        Properties::from(map)
    }

    /// A renamed key ends in `_date`, so only a key ending so can be the same one:
    /// comparing those few is cheaper than hashing every key.
    fn collides(&self) -> bool {
        if self.renamed.is_empty() {
            return false;
        }
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, (key, _))| key.ends_with("_date"))
            .any(|(index, (key, _))| {
                self.renamed.iter().any(|&other| {
                    other != index
                        && self
                            .entries
                            .get(other)
                            .is_some_and(|(renamed, _)| renamed == key)
                })
            })
    }
}

/// The unix seconds of a strict ISO date string.
fn date_seconds(value: &Value) -> Option<i64> {
    match value {
        Value::String(text) => strict_iso_seconds(text),
        _ => None,
    }
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
        serde_json::to_value(convert(value.as_object().unwrap())).unwrap()
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
    fn owned_and_borrowed_conversions_match_the_rules_in_order() {
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
    fn properties_read_and_write_as_a_map_does() {
        let text = r#"{"b":1,"a":{"x":[1]},"b":2}"#;
        let properties: Properties = serde_json::from_str(text).unwrap();
        let map: Map<String, Value> = serde_json::from_str(text).unwrap();
        assert_eq!(
            properties.iter().collect::<Vec<_>>(),
            map.iter().collect::<Vec<_>>()
        );
        assert_eq!(
            serde_json::to_string(&properties).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(format!("{properties:?}"), format!("{map:?}"));
        let mut properties = properties;
        assert_eq!(properties.insert("b".into(), json!(3)), Some(json!(2)));
        assert_eq!(properties.insert("c".into(), json!(4)), None);
        assert_eq!(
            serde_json::to_string(&properties).unwrap(),
            r#"{"b":3,"a":{"x":[1]},"c":4}"#
        );
        assert_eq!(properties.get("c"), Some(&json!(4)));
    }

    #[test]
    fn non_dates_and_nested_values_are_copied_unchanged() {
        let input = json!({"n": 1, "loose": "20150101", "nested": {"at": "2015-01-01"}, "list": ["2015-01-01"], "t": true});
        assert_eq!(run(input.clone()), input);
    }
}
