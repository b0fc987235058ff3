//! `map_event_owned` (which moves the event's maps) must give exactly what `map_event`
//! (which copies them) gives, on every fixture.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use inmoment_core::{map_event, map_event_owned, Event, Registry, Settings, UserState};
use serde_json::{json, Value};

#[test]
fn owned_events_map_like_borrowed_ones() {
    use inmoment_track as _;
    let registry = Registry::from_inventory(&[]).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".input.json") {
            continue;
        }
        let input: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let settings: Settings = serde_json::from_value(
            input
                .get("settings")
                .cloned()
                .unwrap_or(json!({"account_token": "NPS-4aeb53c1"})),
        )
        .unwrap();
        let state: UserState = input
            .get("state")
            .map(|s| serde_json::from_value(s.clone()).unwrap())
            .unwrap_or_default();
        let Some(Ok(event)) = input
            .get("event")
            .map(|v| Event::from_value(v.clone(), None))
        else {
            continue;
        };
        let borrowed = map_event(&registry, &event, state.clone(), &settings);
        let owned = map_event_owned(&registry, event, state, &settings);
        // Debug text too: map equality ignores order, the output's order matters.
        assert_eq!(
            format!("{owned:?}"),
            format!("{borrowed:?}"),
            "{}",
            path.display()
        );
        assert_eq!(owned, borrowed, "{}", path.display());
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} fixtures compared");
}
