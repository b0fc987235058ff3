//! Links every handler crate the host depends on.
//!
//! Rust drops a dependency that no code names, and with it the handler's registration.
//! This script reads our Cargo.toml (and the root `[workspace.dependencies]` for
//! `x.workspace = true`), finds each dependency whose own Cargo.toml says
//! `[package.metadata.inmoment] handler = true`, and generates `use <crate> as _;` for it
//! plus the list the registry checks at start-up. So adding a handler is one dependency
//! line, nothing else. The logic is `src/handler_deps.rs`, shared with the tests; a form
//! it cannot link fails the build with what to write instead.

use std::env;
use std::fs;
use std::path::PathBuf;

#[path = "src/handler_deps.rs"]
mod handler_deps;

fn main() {
    if let Err(message) = run() {
        // Fails the build, showing the message.
        println!("cargo::error={message}");
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    println!(
        "cargo::rerun-if-changed={}",
        manifest_dir.join("Cargo.toml").display()
    );
    let mut manifests = Vec::new();
    let found = handler_deps::find(&manifest_dir, &mut manifests);
    for path in &manifests {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let handlers = found.map_err(|e| format!("crates/host/build.rs: {e}"))?;
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    fs::write(
        out.join("linked_handlers.rs"),
        handler_deps::generated_code(&handlers),
    )
    .map_err(|e| e.to_string())
}
