//! Reading traits and properties as analytics.js does (obj-case inside facade), and small
//! value tests shared by the handlers.
//!
//! obj-case finds a key "loosely": letters and digits compared ignoring case, every other
//! character ignored, so `Email`, `E-mail`, `e_mail` and `EMAIL` all count as `email`.
//! It takes the first such key in the object's order and stops there, whatever its
//! value; the integration then ignores a falsy value (`null`, `false`, `0`, `""`).

use serde_json::{Map, Value};

use crate::error::Warning;
use crate::event::kind;
use crate::scalar::Scalar;

/// obj-case's `find`: the first key of `map`, in the object's order, that matches
/// `wanted` loosely, with its value (even when that value is null or falsy).
pub fn loose_get<'a>(map: &'a Map<String, Value>, wanted: &str) -> Option<(&'a str, &'a Value)> {
    if map.is_empty() {
        return None;
    }
    // `wanted` in the compared form once, rather than again for every key (this runs for
    // every trait of every event); a name too long for the buffer is compared as it is.
    let mut buffer = [0u8; 32];
    let mut length = 0;
    for byte in normal(wanted) {
        let Some(slot) = buffer.get_mut(length) else {
            return map
                .iter()
                .find(|(key, _)| loose_eq(key, wanted))
                .map(|(key, value)| (key.as_str(), value));
        };
        *slot = byte;
        length += 1;
    }
    let wanted = &buffer[..length];
    map.iter()
        .find(|(key, _)| normal_eq(key, wanted))
        .map(|(key, value)| (key.as_str(), value))
}

/// [`loose_get`] when the value found is truthy; a falsy one counts as absent.
pub fn loose_get_truthy<'a>(
    map: &'a Map<String, Value>,
    wanted: &str,
) -> Option<(&'a str, &'a Value)> {
    loose_get(map, wanted).filter(|(_, value)| truthy(value))
}

/// The first loose `wanted` key of `map` when its value is truthy, copied as given (a
/// number or `true` too). An array or object there is a warning naming `<prefix>.<key>`:
/// the integration would copy it, but it is no email or language code.
pub fn loose_scalar(
    map: &Map<String, Value>,
    wanted: &str,
    prefix: &str,
) -> Option<Result<Scalar, Warning>> {
    let (key, value) = loose_get_truthy(map, wanted)?;
    Some(scalar_at(value, prefix, key))
}

/// The value of exactly `key`, as `map.get(key)` finds it. A trait or property map has
/// few keys, and comparing them in order costs less than hashing `key` (as much as
/// comparing it with a dozen others); a large map is still searched by hash.
pub fn exact_get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    const SCAN_UP_TO: usize = 32;
    if map.len() > SCAN_UP_TO {
        return map.get(key);
    }
    map.iter().find(|(k, _)| *k == key).map(|(_, value)| value)
}

/// [`loose_scalar`] for a plain property read (`traits.language`): the exact key only.
pub fn exact_scalar(
    map: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Option<Result<Scalar, Warning>> {
    let value = exact_get(map, key).filter(|value| truthy(value))?;
    Some(scalar_at(value, prefix, key))
}

fn scalar_at(value: &Value, prefix: &str, key: &str) -> Result<Scalar, Warning> {
    Scalar::new(value).ok_or_else(|| {
        Warning::new(
            format!("{prefix}.{key}"),
            format!(
                "expected a string, number or boolean, found {}; left out",
                kind(value)
            ),
        )
    })
}

/// obj-case's key comparison: ASCII letters and digits compared ignoring case, all other
/// characters dropped except `.` (a path separator there, so a key with a dot never
/// matches a plain name). Without allocating: it runs for every trait of every event.
pub fn loose_eq(key: &str, wanted: &str) -> bool {
    normal(key).eq(normal(wanted))
}

/// [`loose_eq`] with `wanted` already in the compared form. Most keys differ in their first
/// character that counts, and this returns there.
fn normal_eq(key: &str, wanted: &[u8]) -> bool {
    let mut rest = wanted.iter();
    for byte in key.bytes() {
        let byte = NORMAL[usize::from(byte)];
        if byte != 0 && rest.next() != Some(&byte) {
            return false;
        }
    }
    rest.next().is_none()
}

/// The bytes of `s` that obj-case compares, in the form it compares them.
fn normal(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes()
        .map(|byte| NORMAL[usize::from(byte)])
        .filter(|&byte| byte != 0)
}

/// Each byte as obj-case compares it: letters lower-cased, digits and `.` as they are, and
/// 0 for a byte it drops. One table read per byte instead of a chain of range tests.
const NORMAL: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        if b.is_ascii_alphanumeric() || b == b'.' {
            table[byte] = b.to_ascii_lowercase();
        }
        byte += 1;
    }
    table
};

/// JavaScript truthiness: `null`, `false`, `0` and `""` are falsy; everything else,
/// including `" "`, `"0"`, `[]` and `{}`, is truthy.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A non-empty (after trimming) string value, or `None`.
pub fn non_empty_str(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.as_str()),
        _ => None,
    }
}

/// facade's `isEmail`, the regular expression `/.+\@.+\..+/` (unanchored): somewhere on
/// one line, text, `@`, text, `.`, text.
pub fn looks_like_email(text: &str) -> bool {
    // Most user ids have no `@` at all: one byte search answers for them.
    if !text.as_bytes().contains(&b'@') {
        return false;
    }
    text.split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .any(line_looks_like_email)
}

fn line_looks_like_email(line: &str) -> bool {
    // The earliest `@` after the first character leaves the most room for the rest.
    let Some(at) = line
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '@')
        .map(|(i, _)| i)
    else {
        return false;
    };
    let rest = &line[at + 1..];
    rest.char_indices()
        .skip(1)
        .any(|(i, c)| c == '.' && i + 1 < rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn loose_match_ignores_case_and_every_non_alphanumeric_character() {
        let m = map(json!({"E-Mail": "a@b.co", "Created_At": 1, "lan guage!": "de"}));
        assert_eq!(loose_get(&m, "email").unwrap().0, "E-Mail");
        assert_eq!(loose_get(&m, "createdAt").unwrap().0, "Created_At");
        assert_eq!(loose_get(&m, "language").unwrap().0, "lan guage!");
        assert!(loose_get(&m, "created").is_none());
        assert!(loose_eq("émail", "mail"));
        assert!(!loose_eq("e.mail", "email"));
    }

    #[test]
    fn the_first_loose_key_wins_even_over_an_exact_one() {
        let m = map(json!({"Email": "first@b.co", "email": "exact@b.co"}));
        assert_eq!(loose_get(&m, "email").unwrap().1, "first@b.co");
    }

    #[test]
    fn a_falsy_first_match_stops_the_search() {
        let m = map(json!({"EMAIL": "", "email": "later@b.co"}));
        assert_eq!(loose_get(&m, "email").unwrap().1, "");
        assert_eq!(loose_get_truthy(&m, "email"), None);
    }

    #[test]
    fn scalars_are_copied_as_given_and_falsy_ones_skipped() {
        let m = map(json!({"Email": 42, "language": true, "lang": {"code": "de"}}));
        assert_eq!(
            loose_scalar(&m, "email", "traits").unwrap().unwrap(),
            Scalar::new(&json!(42)).unwrap()
        );
        assert_eq!(
            exact_scalar(&m, "language", "traits").unwrap().unwrap(),
            Scalar::new(&json!(true)).unwrap()
        );
        assert_eq!(
            exact_scalar(&m, "lang", "traits")
                .unwrap()
                .unwrap_err()
                .path,
            "traits.lang"
        );
        let falsy = map(json!({"email": 0, "language": false}));
        assert!(loose_scalar(&falsy, "email", "traits").is_none());
        assert!(exact_scalar(&falsy, "language", "traits").is_none());
        assert!(exact_scalar(&map(json!({"Language": "de"})), "language", "traits").is_none());
    }

    #[test]
    fn javascript_truthiness() {
        for falsy in [json!(null), json!(false), json!(0), json!(0.0), json!("")] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for truthy_value in [
            json!(" "),
            json!("0"),
            json!(1),
            json!(true),
            json!([]),
            json!({}),
        ] {
            assert!(truthy(&truthy_value), "{truthy_value}");
        }
    }

    #[test]
    fn email_like_ids_follow_the_regular_expression() {
        assert!(looks_like_email("ken@example.net"));
        assert!(looks_like_email(" ken@example.net "));
        assert!(looks_like_email("@a@example.net"));
        assert!(looks_like_email("see ken@example.net today"));
        assert!(!looks_like_email("user-1001"));
        assert!(!looks_like_email("@example.net"));
        assert!(!looks_like_email("ken@example"));
        assert!(!looks_like_email("ken@.net"));
        assert!(!looks_like_email("ken@example."));
        assert!(!looks_like_email("ken\n@example.net"));
    }

    #[test]
    fn blank_strings_are_not_values() {
        assert_eq!(non_empty_str(&json!(" ")), None);
        assert_eq!(non_empty_str(&json!(5)), None);
        assert_eq!(non_empty_str(&json!("x")), Some("x"));
    }

    #[test]
    fn the_quick_checks_find_what_the_full_comparison_finds() {
        // Longer than the buffer a name is prepared in.
        const LONG: &str = "a-very-long-trait-name-with-more-than-32-characters";
        let keys = [
            "",
            ".",
            "-",
            "_email",
            " email",
            "Email",
            "EMAIL!",
            "e-mail",
            "e.mail",
            ".email",
            "émail",
            "mail",
            "emai",
            "email1",
            "1email",
            "E",
            "Created_At",
            "createdAt",
        ];
        let names = [
            "email",
            "createdAt",
            "created",
            "e-mail",
            ".email",
            "1email",
            "-",
            "",
            LONG,
        ];
        // obj-case's comparison as first written here, byte by byte.
        let reference = |key: &str, wanted: &str| {
            let keep = |s: &str| -> Vec<u8> {
                s.bytes()
                    .filter(|b| b.is_ascii_alphanumeric() || *b == b'.')
                    .map(|b| b.to_ascii_lowercase())
                    .collect()
            };
            keep(key) == keep(wanted)
        };
        for name in names {
            for key in keys
                .into_iter()
                .chain([LONG, "AVeryLongTraitNameWithMoreThan32Characters"])
            {
                let mut map = Map::new();
                map.insert("other".into(), json!(0));
                map.insert(key.into(), json!(1));
                let full = reference(key, name);
                assert_eq!(loose_eq(key, name), full, "{name:?} and {key:?}");
                let found = loose_get(&map, name).map(|(k, _)| k);
                let expected = if full { Some(key) } else { None };
                // `other` matches no name but "other"; it only has to be skipped.
                assert_eq!(found, expected, "{name:?} in {key:?}");
            }
        }
    }

    #[test]
    fn exact_reads_find_the_same_value_in_small_and_large_maps() {
        let mut map = Map::new();
        for i in 0..40 {
            map.insert(format!("k{i}"), json!(i));
            let wanted = format!("k{}", i / 2);
            assert_eq!(exact_get(&map, &wanted), map.get(&wanted), "{i}");
            assert_eq!(exact_get(&map, "K0"), None);
        }
    }
}
