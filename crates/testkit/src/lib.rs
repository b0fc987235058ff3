//! Runs handler fixtures: `<case>.input.json` beside `<case>.expected.json`.
//!
//! An input file is `{"event": {...}}` (or `{"event_text": "..."}` for text that is not
//! JSON), optionally with `"settings"` (default: token `NPS-4aeb53c1`) and `"state"` (the
//! user's state before the event). The expected file is the exact `map` output line for
//! the event, or `{"error": {"path": ..., "message": ...}}`.
//!
//! The registry is built from inventory, so a fixture also proves that the handler crate
//! registers itself. Each fixture is also mapped by value (`map_event_owned`, which moves
//! the event's maps instead of copying them): its output must be exactly the same; and
//! checked by its handler's ingest check, which must answer as mapping with an empty state. `BLESS_FIXTURES=1` writes missing expected files for review; it never
//! overwrites an existing one.
//!
//! Also: [`TempDir`], and a fresh database per test on the throwaway PostgreSQL cluster
//! `cargo xtask prepare` starts ([`fresh_database`]).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: a panic is a test failure

pub mod postgres;
mod temp;

pub use postgres::{fresh_database, postgres_ca_file, postgres_url};
pub use temp::TempDir;

use std::fs;
use std::path::Path;

use inmoment_core::handler::check_by_mapping;
use inmoment_core::{
    map_event, map_event_owned, Event, MappedEvent, MappingError, Registry, Settings, UserState,
};
use serde_json::{json, Value};

/// Runs every fixture in `dir`; panics listing every mismatch.
pub fn run_fixture_dir(dir: &Path) -> usize {
    let registry = Registry::from_inventory(&[]).expect("registry");
    let mut cases: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".input.json"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures in {}", dir.display());
    let mut failures = Vec::new();
    for input_path in &cases {
        let name = input_path.to_string_lossy().replace(".input.json", "");
        let expected_path = Path::new(&format!("{name}.expected.json")).to_path_buf();
        let input: Value = read_json(input_path);
        if let Some(difference) = owned_difference(&registry, &input) {
            failures.push(format!("{name}\n  {difference}"));
        }
        if let Some(difference) = check_difference(&registry, &input) {
            failures.push(format!("{name}\n  {difference}"));
        }
        if let Some(difference) = stored_difference(&input) {
            failures.push(format!("{name}\n  {difference}"));
        }
        let actual = run_case(&registry, &input);
        if !expected_path.exists() && std::env::var_os("BLESS_FIXTURES").is_some() {
            let text = serde_json::to_string_pretty(&actual).expect("json") + "\n";
            fs::write(&expected_path, text).expect("write expected");
            continue;
        }
        let expected = read_json(&expected_path);
        if actual != expected {
            failures.push(format!(
                "{name}\n  expected: {}\n  actual:   {}",
                serde_json::to_string(&expected).expect("json"),
                serde_json::to_string(&actual).expect("json")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

/// Maps one fixture input to the value its expected file must equal.
pub fn run_case(registry: &Registry, input: &Value) -> Value {
    let (settings, state, event) = parse_case(input);
    let result = event.and_then(|event| {
        let output = map_event(registry, &event, state, &settings)?;
        Ok(serde_json::to_value(MappedEvent::new(&event, &settings, &output)).expect("json"))
    });
    match result {
        Ok(value) => value,
        Err(error) => json!({"error": error}),
    }
}

/// How the by-value mapping of a fixture differs from the borrowed one, if it does.
fn owned_difference(registry: &Registry, input: &Value) -> Option<String> {
    let (settings, state, Ok(event)) = parse_case(input) else {
        return None;
    };
    let borrowed = map_event(registry, &event, state.clone(), &settings);
    let owned = map_event_owned(registry, event, state, &settings);
    // Debug text too: map equality ignores order, and the output's order matters.
    let (owned, borrowed) = (format!("{owned:?}"), format!("{borrowed:?}"));
    (owned != borrowed).then(|| format!("by value: {owned}\n  borrowed: {borrowed}"))
}

/// How the handler's own ingest check answers otherwise than mapping the event with an
/// empty state (the check's definition), if it does.
fn check_difference(registry: &Registry, input: &Value) -> Option<String> {
    let (settings, _, Ok(event)) = parse_case(input) else {
        return None;
    };
    let handler = registry.get(event.event_type())?.handler;
    let own = format!("{:?}", handler.check(&event, &settings));
    let by_mapping = format!("{:?}", check_by_mapping(handler, &event, &settings));
    (own != by_mapping).then(|| format!("check: {own}\n  by mapping: {by_mapping}"))
}

/// How the event differs after a trip through the journal's JSON (`Event::to_value`), if
/// it does: a stored event must map exactly as the one that was accepted.
fn stored_difference(input: &Value) -> Option<String> {
    let (_, _, Ok(event)) = parse_case(input) else {
        return None;
    };
    let stored = event.to_value();
    let (written, built) = (event.to_json(), stored.to_string());
    if written != built {
        return Some(format!("written as {written}\n  built as {built}"));
    }
    match Event::from_value(stored.clone(), None) {
        Ok(again) if again == event => None,
        Ok(again) => Some(format!("stored as {stored}\n  reads back as {again:?}")),
        Err(error) => Some(format!("stored as {stored}\n  does not read back: {error}")),
    }
}

/// A fixture input's settings, state before the event, and the event.
fn parse_case(input: &Value) -> (Settings, UserState, Result<Event, MappingError>) {
    let settings: Settings = match input.get("settings") {
        Some(s) => serde_json::from_value(s.clone()).expect("fixture settings"),
        None => serde_json::from_value(json!({"account_token": "NPS-4aeb53c1"})).expect("settings"),
    };
    let state: UserState = match input.get("state") {
        Some(s) => serde_json::from_value(s.clone()).expect("fixture state"),
        None => UserState::default(),
    };
    let event = match (input.get("event"), input.get("event_text")) {
        (Some(value), _) => Event::from_value(value.clone(), None),
        (None, Some(Value::String(text))) => Event::from_json(text),
        _ => panic!("fixture input needs `event` or `event_text`"),
    };
    (settings, state, event)
}

fn read_json(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}
