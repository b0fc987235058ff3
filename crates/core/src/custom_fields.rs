//! InMoment's custom-field rules for end-user properties on the REST API: values are
//! strings, integers or unix-seconds dates (`*_date` keys); keys may not contain `$`, `.` or
//! NUL; no nested objects or arrays. Survey `properties` may hold anything, so they are
//! flattened here before they reach `properties[<key>]` of an end-user upsert.

use serde_json::Value;

use crate::call::Params;
use crate::timestamp::parse_str;

/// Appends `<prefix>[<key>]` parameters for every property, flattened:
/// nested objects become `parent_child` keys, arrays a comma-separated string, booleans
/// `true`/`false`, integral floats integers, nulls are left out, and a `*_date` string is
/// converted to unix seconds when it is a date.
pub fn push_flattened<'a>(
    params: &mut Params,
    prefix: &str,
    properties: impl IntoIterator<Item = (&'a String, &'a Value)>,
) {
    for (key, value) in properties {
        push_value(params, prefix, &clean_key(key), value);
    }
}

/// Appends one more property, flattened as [`push_flattened`] does.
pub fn push_flattened_one(params: &mut Params, prefix: &str, key: &str, value: &Value) {
    push_value(params, prefix, &clean_key(key), value);
}

fn push_value(params: &mut Params, prefix: &str, key: &str, value: &Value) {
    let text = match value {
        Value::Null => return,
        Value::Object(map) => {
            for (sub, v) in map {
                push_value(params, prefix, &format!("{key}_{}", clean_key(sub)), v);
            }
            return;
        }
        Value::Array(items) => items
            .iter()
            .filter_map(scalar_text)
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) if key.ends_with("_date") => match parse_str(s) {
            Ok(seconds) => seconds.to_string(),
            Err(_) => s.clone(),
        },
        other => match scalar_text(other) {
            Some(text) => text,
            None => return,
        },
    };
    params.push_parts(&[prefix, "[", key, "]"], &text);
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{f:.0}"),
            _ => n.to_string(),
        }),
        Value::Null | Value::Object(_) | Value::Array(_) => None,
    }
}

/// Replaces the characters InMoment refuses in keys (`$`, `.`, NUL) with `_`.
fn clean_key(key: &str) -> String {
    key.replace(['$', '.', '\0'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(value: Value) -> Vec<(String, String)> {
        let mut params = Params::new();
        push_flattened(&mut params, "properties", value.as_object().unwrap());
        params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scalars_become_strings_and_integers() {
        assert_eq!(
            flat(
                json!({"plan": "pro", "seats": 12, "ratio": 0.5, "whole": 3.0, "vip": true, "gone": null})
            ),
            pairs(&[
                ("properties[plan]", "pro"),
                ("properties[seats]", "12"),
                ("properties[ratio]", "0.5"),
                ("properties[whole]", "3"),
                ("properties[vip]", "true")
            ])
        );
    }

    #[test]
    fn nested_objects_and_arrays_are_flattened() {
        assert_eq!(
            flat(
                json!({"company": {"name": "Acme", "hq": {"city": "Madrid"}}, "tags": ["a", 2, {"x": 1}]})
            ),
            pairs(&[
                ("properties[company_name]", "Acme"),
                ("properties[company_hq_city]", "Madrid"),
                ("properties[tags]", "a, 2")
            ])
        );
    }

    #[test]
    fn date_keys_are_unix_seconds_and_bad_key_characters_are_replaced() {
        assert_eq!(
            flat(
                json!({"renewal_date": "20240416", "seen_date": 1713225600, "odd_date": "someday", "a.b$c": "x"})
            ),
            pairs(&[
                ("properties[renewal_date]", "1713225600"),
                ("properties[seen_date]", "1713225600"),
                ("properties[odd_date]", "someday"),
                ("properties[a_b_c]", "x")
            ])
        );
    }
}
