//! Loose key lookup and small value tests shared by the handlers.
//!
//! Segment's libraries read traits "ignoring case and `_`/`-`", so `Email`, `e_mail` and
//! `EMAIL` all count as `email`; the handlers must agree with that.

use serde_json::{Map, Value};

/// The first key of `map` equal to `wanted` ignoring ASCII case, `_` and `-`.
pub fn loose_get<'a>(map: &'a Map<String, Value>, wanted: &str) -> Option<(&'a str, &'a Value)> {
    if let Some((key, value)) = map.get_key_value(wanted) {
        return Some((key.as_str(), value));
    }
    map.iter()
        .find(|(key, _)| loose_eq(key, wanted))
        .map(|(key, value)| (key.as_str(), value))
}

/// Compares two keys ignoring ASCII case, `_` and `-` (without allocating: it runs for
/// every trait of every event).
pub fn loose_eq(a: &str, b: &str) -> bool {
    fn significant(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes()
            .filter(|c| *c != b'_' && *c != b'-')
            .map(|c| c.to_ascii_lowercase())
    }
    significant(a).eq(significant(b))
}

/// A non-empty (after trimming) string value, or `None`.
pub fn non_empty_str(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    }
}

/// Segment's test for "this user id is an email address": text, `@`, text, `.`, text.
pub fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain
            .char_indices()
            .any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loose_match_ignores_case_underscores_and_dashes() {
        let map = json!({"E-Mail": "a@b.co", "Created_At": 1})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(loose_get(&map, "email").unwrap().0, "E-Mail");
        assert_eq!(loose_get(&map, "createdAt").unwrap().0, "Created_At");
        assert!(loose_get(&map, "created").is_none());
    }

    #[test]
    fn exact_key_wins_over_a_loose_one() {
        let map = json!({"Email": "first@b.co", "email": "exact@b.co"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(loose_get(&map, "email").unwrap().1, "exact@b.co");
    }

    #[test]
    fn email_like_ids() {
        assert!(looks_like_email("ken@example.net"));
        assert!(!looks_like_email("user-1001"));
        assert!(!looks_like_email("@example.net"));
        assert!(!looks_like_email("ken@example"));
        assert!(!looks_like_email("ken@.net"));
        assert!(!looks_like_email("ken@example."));
    }

    #[test]
    fn blank_strings_are_not_values() {
        assert_eq!(non_empty_str(&json!(" ")), None);
        assert_eq!(non_empty_str(&json!(5)), None);
        assert_eq!(non_empty_str(&json!("x")), Some("x"));
    }
}
