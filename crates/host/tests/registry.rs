//! The host links exactly the handler crates its Cargo.toml marks, and each registers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::BTreeSet;
use std::process::Command;

use inmoment_core::EventType;
use inmoment_host::linked::{registry, LINKED_HANDLER_CRATES};

#[test]
fn the_registry_holds_exactly_identify_track_and_page() {
    let registry = registry().expect("registry builds");
    let registered: Vec<(EventType, &str)> = registry
        .iter()
        .map(|r| (r.event_type, r.crate_name))
        .collect();
    assert_eq!(
        registered,
        [
            (EventType::Identify, "inmoment-identify"),
            (EventType::Track, "inmoment-track"),
            (EventType::Page, "inmoment-page"),
        ]
    );
}

/// Reads Cargo.toml independently of build.rs: every path dependency marked as a handler
/// must be linked, so one dependency line is all a new handler needs.
#[test]
fn every_handler_dependency_in_cargo_toml_is_linked() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let mut marked = BTreeSet::new();
    for (name, spec) in manifest["dependencies"].as_table().unwrap() {
        let Some(path) = spec.get("path").and_then(|p| p.as_str()) else {
            continue;
        };
        let dep: toml::Table = std::fs::read_to_string(dir.join(path).join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let is_handler = dep["package"]
            .get("metadata")
            .and_then(|m| m.get("inmoment"))
            .and_then(|i| i.get("handler"))
            .and_then(|h| h.as_bool())
            == Some(true);
        if is_handler {
            marked.insert(name.clone());
        }
    }
    let linked: BTreeSet<String> = LINKED_HANDLER_CRATES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(linked, marked);
    assert_eq!(marked.len(), 3);
}

#[test]
fn handlers_command_lists_type_crate_and_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .arg("handlers")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        rows,
        [
            vec!["identify", "inmoment-identify", version],
            vec!["track", "inmoment-track", version],
            vec!["page", "inmoment-page", version],
        ]
    );
}
