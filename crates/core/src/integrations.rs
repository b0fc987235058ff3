//! The per-event destination switch (`integrations`), as Segment clients send it.

use serde_json::{Map, Value};

use crate::lookup::loose_get;

/// The names a Segment source may use for us in `integrations`.
pub const OUR_NAMES: [&str; 3] = ["InMoment", "Wootric", "InMoment (formerly Wootric)"];

/// False when the event switched this destination off: `"InMoment": false` (or `Wootric`),
/// or `"All": false` without naming us. Only the JSON boolean `false` switches off, as in
/// analytics.js (facade's `enabled()`): the string `"false"`, `null` or an options object
/// for us leave us on.
pub fn destination_enabled(integrations: &Map<String, Value>) -> bool {
    // Most events have no `integrations`: nothing to look up.
    if integrations.is_empty() {
        return true;
    }
    for name in OUR_NAMES {
        if let Some(value) = integrations.get(name) {
            return enabled(value);
        }
    }
    // facade reads `all` as a loose key (`All`, `all`) and only a boolean there counts.
    loose_get(integrations, "all").is_none_or(|(_, value)| enabled(value))
}

/// The options object the event gave us (`integrations.InMoment.eventType`, …), with the
/// name it was given under, if any.
pub fn our_options(
    integrations: &Map<String, Value>,
) -> Option<(&'static str, &Map<String, Value>)> {
    if integrations.is_empty() {
        return None;
    }
    OUR_NAMES.iter().find_map(|name| {
        integrations
            .get(*name)
            .and_then(Value::as_object)
            .map(|options| (*name, options))
    })
}

fn enabled(value: &Value) -> bool {
    *value != Value::Bool(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn on(value: Value) -> bool {
        destination_enabled(value.as_object().unwrap())
    }

    #[test]
    fn default_is_on() {
        assert!(on(json!({})));
        assert!(on(json!({"All": true, "Salesforce": false})));
    }

    #[test]
    fn our_names_switch_us_off() {
        assert!(!on(json!({"InMoment": false})));
        assert!(!on(json!({"Wootric": false})));
        assert!(!on(json!({"All": true, "InMoment": false})));
    }

    #[test]
    fn all_false_switches_us_off_unless_we_are_named() {
        assert!(!on(json!({"All": false})));
        assert!(on(json!({"All": false, "InMoment": true})));
        assert!(on(
            json!({"All": false, "Wootric": {"eventType": "create response"}})
        ));
    }

    #[test]
    fn only_the_boolean_false_switches_off() {
        assert!(on(json!({"All": "false"})));
        assert!(on(json!({"InMoment": "false"})));
        assert!(on(json!({"Wootric": 0})));
        assert!(on(json!({"All": null})));
        assert!(on(json!({"All": false, "InMoment": "false"})));
        assert!(on(json!({"All": false, "InMoment": null})));
        assert!(!on(json!({"all": false})));
    }

    #[test]
    fn options_object_is_found_under_either_name() {
        let integrations = json!({"Wootric": {"eventType": "create decline"}});
        let (name, options) = our_options(integrations.as_object().unwrap()).unwrap();
        assert_eq!(name, "Wootric");
        assert_eq!(options["eventType"], "create decline");
    }
}
