//! A survey field kept as the event gave it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// A string, number or boolean copied unconverted, as the browser integration copies
/// `email`, `language` and the user id into `wootricSettings`; InMoment's requests carry
/// it as text ([`Scalar::text`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scalar(Value);

impl Scalar {
    /// The value when it is a string, number or boolean; `None` for null, arrays and
    /// objects.
    pub fn new(value: &Value) -> Option<Scalar> {
        match value {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(Scalar(value.clone())),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// [`Scalar::new`] of a value the caller gives away, so a string is not copied.
    pub fn from_value(value: Value) -> Option<Scalar> {
        match value {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(Scalar(value)),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }

    pub fn into_value(self) -> Value {
        self.0
    }

    /// The string, when it is one.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_str()
    }

    /// The text InMoment's requests carry: a string as it is, `true`/`false`, integers
    /// (also integral floats) in plain digits, other numbers as JSON writes them.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.0 {
            Value::String(s) => Cow::Borrowed(s),
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Value::Number(n) => Cow::Owned(match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{f:.0}"),
                _ => n.to_string(),
            }),
            other => Cow::Owned(other.to_string()),
        }
    }
}

impl From<&str> for Scalar {
    fn from(text: &str) -> Scalar {
        Scalar(Value::String(text.to_string()))
    }
}

impl From<String> for Scalar {
    fn from(text: String) -> Scalar {
        Scalar(Value::String(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_strings_numbers_and_booleans() {
        assert!(Scalar::new(&json!("a")).is_some());
        assert!(Scalar::new(&json!(1)).is_some());
        assert!(Scalar::new(&json!(true)).is_some());
        assert!(Scalar::new(&json!(null)).is_none());
        assert!(Scalar::new(&json!([1])).is_none());
        assert!(Scalar::new(&json!({})).is_none());
    }

    #[test]
    fn wire_text() {
        let text = |v: Value| Scalar::new(&v).map(|s| s.text().into_owned());
        assert_eq!(text(json!(" a@b.co ")).as_deref(), Some(" a@b.co "));
        assert_eq!(text(json!(42)).as_deref(), Some("42"));
        assert_eq!(text(json!(-7)).as_deref(), Some("-7"));
        assert_eq!(text(json!(2.0)).as_deref(), Some("2"));
        assert_eq!(text(json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(text(json!(true)).as_deref(), Some("true"));
    }

    #[test]
    fn serializes_as_the_value_itself() {
        let scalar = Scalar::new(&json!(42)).unwrap();
        assert_eq!(serde_json::to_string(&scalar).unwrap(), "42");
        let back: Scalar = serde_json::from_str("\"x\"").unwrap();
        assert_eq!(back.as_str(), Some("x"));
    }
}
