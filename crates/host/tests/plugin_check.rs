//! The plugin promise, end to end: a copy of the workspace gets a new handler crate
//! registered with `register_handler!` and one dependency line in the host, once in path
//! style and once in `workspace = true` style; the built binary's `handlers` lists it. A
//! handler written as an optional dependency fails the build, saying what to write.
//!
//! Slow: it builds the host. Each style has its own copy (kept, and only changed files are
//! rewritten) under the target dir, and the copies share one target dir, so dependencies
//! are built once and later runs rebuild only what changed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use inmoment_core::EventType;

/// What is copied from the workspace root: enough to build the host, never `target`.
const COPIED: [&str; 5] = ["Cargo.toml", "Cargo.lock", "crates", "xtask", "tests"];
const SKIPPED_DIRS: [&str; 3] = ["target", "node_modules", ".git"];

#[test]
fn a_new_handler_crate_needs_one_dependency_line_in_either_style() {
    let registry = inmoment_host::linked::registry().unwrap();
    let Some(free) = EventType::ALL
        .into_iter()
        .find(|t| registry.get(*t).is_none())
    else {
        eprintln!("every event type has a handler: no type left for a throwaway one");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let check = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-check");
    let target = check.join("target");

    // Path style: `inmoment-ping = { path = "../ping" }`.
    let ping = Plugin::new("ping", free);
    let copy = check.join("path-style");
    let line = r#"inmoment-ping = { path = "../ping" }"#;
    ping.prepare(&root, &copy, line, None);
    let rows = handlers(&build(&copy, &target), &copy);
    assert!(rows.contains(&ping.row()), "{rows:?}");

    // Workspace style: `inmoment-pong.workspace = true` plus the root entry.
    let pong = Plugin::new("pong", free);
    let copy = check.join("workspace-style");
    let entry = r#"inmoment-pong = { path = "crates/pong" }"#;
    pong.prepare(&root, &copy, "inmoment-pong.workspace = true", Some(entry));
    let rows = handlers(&build(&copy, &target), &copy);
    assert!(rows.contains(&pong.row()), "{rows:?}");

    // A form build.rs cannot link is refused at build time with what to write instead.
    let pang = Plugin::new("pang", free);
    let copy = check.join("refused");
    let line = r#"inmoment-pang = { path = "../pang", optional = true }"#;
    pang.prepare(&root, &copy, line, None);
    let output = cargo_build(&copy, &target);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("handler `inmoment-pang` is an optional dependency")
            && stderr.contains("remove `optional = true`"),
        "{stderr}"
    );
}

/// A throwaway handler crate `inmoment-<name>` for one event type.
struct Plugin {
    name: &'static str,
    event_type: EventType,
}

impl Plugin {
    fn new(name: &'static str, event_type: EventType) -> Plugin {
        Plugin { name, event_type }
    }

    /// The row `handlers` prints for it.
    fn row(&self) -> Vec<String> {
        let crate_name = format!("inmoment-{}", self.name);
        vec![self.event_type.as_str().into(), crate_name, "0.0.1".into()]
    }

    /// Brings `copy` up to date with the workspace plus this crate, `dependency` as the
    /// first line of the host's `[dependencies]` and `workspace_entry` (if any) as the first
    /// of the root's `[workspace.dependencies]`.
    fn prepare(&self, root: &Path, copy: &Path, dependency: &str, workspace_entry: Option<&str>) {
        let mut files = BTreeMap::new();
        let host = PathBuf::from("crates/host/Cargo.toml");
        let host_text = fs::read_to_string(root.join(&host)).unwrap();
        files.insert(
            host,
            insert_after(&host_text, "[dependencies]\n", dependency),
        );
        if let Some(entry) = workspace_entry {
            let text = fs::read_to_string(root.join("Cargo.toml")).unwrap();
            let text = insert_after(&text, "[workspace.dependencies]\n", entry);
            files.insert(PathBuf::from("Cargo.toml"), text);
        }
        let dir = PathBuf::from("crates").join(self.name);
        files.insert(dir.join("Cargo.toml"), self.manifest());
        files.insert(dir.join("src/lib.rs"), self.source());
        sync(root, copy, &files);
    }

    fn manifest(&self) -> String {
        format!(
            "[package]\nname = \"inmoment-{}\"\nversion = \"0.0.1\"\nedition = \"2021\"\npublish = false\n\n\
             [package.metadata.inmoment]\nhandler = true\n\n\
             [dependencies]\ninmoment-core.workspace = true\n",
            self.name
        )
    }

    fn source(&self) -> String {
        format!(
            r#"//! A throwaway handler written by crates/host/tests/plugin_check.rs.

use std::borrow::Cow;

use inmoment_core::{{Event, EventHandler, EventType, HandlerOutput, MappingError, Settings, UserState}};

pub struct Handler;

inmoment_core::register_handler!(EventType::{:?}, Handler);

impl EventHandler for Handler {{
    fn handle(&self, _: Cow<'_, Event>, state: UserState, _: &Settings) -> Result<HandlerOutput, MappingError> {{
        Ok(HandlerOutput {{ state, ..HandlerOutput::default() }})
    }}
}}
"#,
            self.event_type
        )
    }
}

fn insert_after(text: &str, header: &str, line: &str) -> String {
    let at = text.find(header).expect("the section header") + header.len();
    format!("{}{line}\n{}", &text[..at], &text[at..])
}

/// Makes `copy` hold the workspace's files (with `files` replacing or adding some),
/// rewriting only what differs so the build stays incremental, and removing the rest.
fn sync(root: &Path, copy: &Path, files: &BTreeMap<PathBuf, String>) {
    let mut wanted: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    for entry in COPIED {
        list(root, Path::new(entry), &mut |rel| {
            wanted.insert(rel.to_path_buf(), fs::read(root.join(rel)).unwrap());
        });
    }
    for (rel, text) in files {
        wanted.insert(rel.clone(), text.clone().into_bytes());
    }
    for (rel, bytes) in &wanted {
        let path = copy.join(rel);
        if fs::read(&path).ok().as_ref() != Some(bytes) {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, bytes).unwrap();
        }
    }
    let mut stale = BTreeSet::new();
    for entry in COPIED {
        if copy.join(entry).exists() {
            list(copy, Path::new(entry), &mut |rel| {
                if !wanted.contains_key(rel) {
                    stale.insert(rel.to_path_buf());
                }
            });
        }
    }
    for rel in stale {
        fs::remove_file(copy.join(rel)).unwrap();
    }
}

/// Calls `each` with every file under `root/rel`, relative to `root`.
fn list(root: &Path, rel: &Path, each: &mut dyn FnMut(&Path)) {
    let path = root.join(rel);
    if path.is_file() {
        each(rel);
        return;
    }
    for entry in fs::read_dir(&path).unwrap() {
        let name = entry.unwrap().file_name();
        if SKIPPED_DIRS.iter().any(|s| name == *s) {
            continue;
        }
        list(root, &rel.join(name), each);
    }
}

/// `cargo build -p inmoment-host` in the copy. Offline, but not `--locked`: the new crate
/// is a new workspace member, so Cargo.lock gains it.
fn cargo_build(copy: &Path, target: &Path) -> Output {
    let started = Instant::now();
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args(["build", "-p", "inmoment-host", "--offline"])
        .current_dir(copy)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_BUILD_TARGET_DIR")
        // No debug info: the binary only lists its handlers (about a quarter off a cold build).
        .env("CARGO_PROFILE_DEV_DEBUG", "0");
    // What cargo set for this test (CARGO_MANIFEST_DIR, CARGO_PKG_*, …) would reach the
    // build scripts of the copy and make some (ring's) rerun every time.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_tests = ["CARGO_PKG_", "CARGO_BIN_", "CARGO_MANIFEST_"]
            .iter()
            .any(|p| name.starts_with(p))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_ref());
        if set_for_tests {
            command.env_remove(name.as_ref());
        }
    }
    let output = command.output().unwrap();
    eprintln!(
        "plugin_check: built {} in {:.1}s",
        copy.display(),
        started.elapsed().as_secs_f64()
    );
    output
}

fn build(copy: &Path, target: &Path) -> PathBuf {
    let output = cargo_build(copy, target);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = format!("inmoment-destination{}", std::env::consts::EXE_SUFFIX);
    target.join("debug").join(name)
}

/// The rows of `handlers` (event type, crate, version), header left out.
fn handlers(binary: &Path, copy: &Path) -> Vec<Vec<String>> {
    let output = Command::new(binary)
        .arg("handlers")
        .current_dir(copy)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}
