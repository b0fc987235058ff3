//! Loose key lookup and small value tests shared by the handlers.
//!
//! Segment's libraries read traits "ignoring case and `_`/`-`", so `Email`, `e_mail` and
//! `EMAIL` all count as `email`; the handlers must agree with that.

use serde_json::{Map, Value};

/// The key of `map` equal to `wanted`, else the first key equal to it ignoring ASCII case,
/// `_` and `-`. One pass without hashing: the maps are small, and a miss scans them anyway.
pub fn loose_get<'a>(map: &'a Map<String, Value>, wanted: &str) -> Option<(&'a str, &'a Value)> {
    let mut loose = None;
    for (key, value) in map {
        if key == wanted {
            return Some((key.as_str(), value));
        }
        if loose.is_none() && loose_eq(key, wanted) {
            loose = Some((key.as_str(), value));
        }
    }
    loose
}

/// Compares two keys ignoring ASCII case, `_` and `-` (without allocating: it runs for
/// every trait of every event).
pub fn loose_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let skip = |s: &[u8], mut i: usize| {
        while i < s.len() && (s[i] == b'_' || s[i] == b'-') {
            i += 1;
        }
        i
    };
    let (mut i, mut j) = (0, 0);
    loop {
        i = skip(a, i);
        j = skip(b, j);
        match (a.get(i), b.get(j)) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {
                i += 1;
                j += 1;
            }
            _ => return false,
        }
    }
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
