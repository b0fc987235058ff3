//! The host links exactly the handler crates its Cargo.toml names, and each registers.
//! Nothing here lists the handlers: the expected set comes from the Cargo.toml (read by
//! the same code as build.rs) and the registry, so adding a handler needs no edit here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use inmoment_host::handler_deps;
use inmoment_host::linked::{registry, LINKED_HANDLER_CRATES};

/// What the binary links is what build.rs's logic reads from Cargo.toml today (a stale
/// build would differ), and there is at least one handler to link.
#[test]
fn every_handler_dependency_in_cargo_toml_is_linked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let marked: BTreeSet<String> = handler_deps::find(dir, &mut Vec::new())
        .unwrap()
        .into_iter()
        .map(|h| h.package)
        .collect();
    let linked: BTreeSet<String> = LINKED_HANDLER_CRATES
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(linked, marked);
    assert!(!linked.is_empty(), "the host links no handler crate");
}

/// Each linked crate registered, and nothing registered that Cargo.toml does not name as
/// a handler (a registration from an unmarked crate would escape the start-up check).
#[test]
fn the_registry_holds_exactly_the_linked_crates() {
    let registry = registry().expect("registry builds");
    let registered: BTreeSet<&str> = registry.iter().map(|r| r.crate_name).collect();
    let linked: BTreeSet<&str> = LINKED_HANDLER_CRATES.iter().copied().collect();
    assert_eq!(registered, linked);
    assert!(registry.iter().all(|r| !r.crate_version.is_empty()));
}

#[test]
fn handlers_command_lists_type_crate_and_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .arg("handlers")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["EVENT", "CRATE", "VERSION"])
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let expected: Vec<Vec<&str>> = registry()
        .unwrap()
        .iter()
        .map(|r| vec![r.event_type.as_str(), r.crate_name, r.crate_version])
        .collect();
    assert_eq!(rows, expected);
    assert!(!rows.is_empty());
}
