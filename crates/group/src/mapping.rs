//! `group_info` as facade's `group.traits()` builds it.

use inmoment_core::Scalar;
use serde_json::{Map, Value};

/// The survey settings field the group's traits are kept under.
pub const GROUP_INFO: &str = "group_info";

/// The traits plus `id` = the groupId as sent. A trait named `id` keeps its place and takes
/// the groupId's value; a groupId of number 0 (falsy in JavaScript) adds no `id`.
pub fn group_info(mut traits: Map<String, Value>, group_id: Scalar) -> Value {
    let id = group_id.into_value();
    let falsy = id.as_f64() == Some(0.0);
    if !falsy {
        traits.insert("id".to_string(), id);
    }
    Value::Object(traits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn traits(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_group_id_replaces_an_id_trait_in_its_place() {
        let info = group_info(
            traits(json!({"id": "trait-id", "name": "Acme"})),
            Scalar::from("g-1"),
        );
        assert_eq!(info.to_string(), r#"{"id":"g-1","name":"Acme"}"#);
    }

    #[test]
    fn a_zero_group_id_adds_no_id_as_in_javascript() {
        let zero = Scalar::new(&json!(0)).unwrap();
        assert_eq!(group_info(traits(json!({"n": 1})), zero), json!({"n": 1}));
        let number = Scalar::new(&json!(42)).unwrap();
        assert_eq!(group_info(Map::new(), number), json!({"id": 42}));
    }
}
