//! build.rs's dependency reading (`inmoment_host::handler_deps`, the very file build.rs
//! includes) over every form a dependency can take, in a throwaway workspace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::fs;

use inmoment_host::handler_deps::{find, DepError, HandlerDep};
use inmoment_testkit::TempDir;

/// A workspace with a handler `crates/a`, a handler `crates/b` whose library is `bee`, a
/// plain crate `crates/plain`, and `crates/host` with the given dependency tables.
fn workspace(root_deps: &str, host_tables: &str) -> TempDir {
    let dir = TempDir::new("handler-deps");
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        &format!(
            "[workspace]\nmembers = [\"crates/*\"]\n\n[workspace.dependencies]\n{root_deps}\n"
        ),
    );
    let handler = "[package.metadata.inmoment]\nhandler = true\n";
    write(
        "crates/a/Cargo.toml",
        &format!("[package]\nname = \"inmoment-a\"\n\n{handler}"),
    );
    write(
        "crates/b/Cargo.toml",
        &format!("[package]\nname = \"inmoment-b\"\n\n{handler}\n[lib]\nname = \"bee\"\n"),
    );
    write(
        "crates/plain/Cargo.toml",
        "[package]\nname = \"inmoment-plain\"\n",
    );
    write(
        "crates/host/Cargo.toml",
        &format!("[package]\nname = \"host\"\n\n{host_tables}\n"),
    );
    dir
}

fn handlers(root_deps: &str, host_tables: &str) -> Result<Vec<HandlerDep>, DepError> {
    let dir = workspace(root_deps, host_tables);
    find(&dir.path().join("crates/host"), &mut Vec::new())
}

fn dep(extern_name: &str, package: &str) -> HandlerDep {
    HandlerDep {
        extern_name: extern_name.into(),
        package: package.into(),
    }
}

#[test]
fn every_path_and_workspace_form_is_linked() {
    let a = || vec![dep("inmoment_a", "inmoment-a")];
    let in_root = r#"inmoment-a = { path = "crates/a" }"#;
    let forms = [
        ("", "[dependencies]\ninmoment-a = { path = \"../a\" }"),
        (
            "",
            "[dependencies]\ninmoment-a = { path = \"../a\", version = \"0.1\" }",
        ),
        ("", "[dependencies.inmoment-a]\npath = \"../a\""),
        (in_root, "[dependencies]\ninmoment-a.workspace = true"),
        (
            in_root,
            "[dependencies]\ninmoment-a = { workspace = true, features = [] }",
        ),
        (in_root, "[dependencies.inmoment-a]\nworkspace = true"),
    ];
    for (root, host) in forms {
        assert_eq!(handlers(root, host).unwrap(), a(), "{host}");
    }
}

#[test]
fn renamed_handlers_are_used_by_their_key_and_listed_by_package() {
    let renamed = handlers(
        "",
        "[dependencies]\nping = { path = \"../a\", package = \"inmoment-a\" }",
    );
    assert_eq!(renamed.unwrap(), [dep("ping", "inmoment-a")]);
    let renamed_in_root = handlers(
        r#"my-ping = { path = "crates/a", package = "inmoment-a" }"#,
        "[dependencies]\nmy-ping.workspace = true",
    );
    assert_eq!(renamed_in_root.unwrap(), [dep("my_ping", "inmoment-a")]);
}

#[test]
fn a_library_name_is_the_crate_name_unless_renamed() {
    let own = handlers("", "[dependencies]\ninmoment-b = { path = \"../b\" }");
    assert_eq!(own.unwrap(), [dep("bee", "inmoment-b")]);
    let renamed = handlers(
        "",
        "[dependencies]\nb2 = { path = \"../b\", package = \"inmoment-b\" }",
    );
    assert_eq!(renamed.unwrap(), [dep("b2", "inmoment-b")]);
}

#[test]
fn other_dependencies_are_not_handlers() {
    let found = handlers(
        r#"serde = "1"
inmoment-plain = { path = "crates/plain" }"#,
        r#"[dependencies]
serde.workspace = true
base64 = "0.22"
tokio = { version = "1", features = ["rt"] }
other = { git = "https://example.com/other" }
inmoment-plain.workspace = true
plain2 = { path = "../plain", package = "inmoment-plain" }"#,
    );
    assert_eq!(found.unwrap(), []);
}

#[test]
fn several_handlers_are_sorted() {
    let found = handlers(
        r#"inmoment-a = { path = "crates/a" }"#,
        "[dependencies]\ninmoment-b = { path = \"../b\" }\ninmoment-a.workspace = true",
    );
    assert_eq!(
        found.unwrap(),
        [dep("bee", "inmoment-b"), dep("inmoment_a", "inmoment-a")]
    );
}

#[test]
fn forms_that_could_hide_a_handler_are_refused_saying_what_to_write() {
    let not_a_path = [
        ("", "[dependencies]\ninmoment-a = \"0.1\""),
        ("", "[dependencies]\ninmoment-a = { version = \"0.1\" }"),
        (
            "",
            "[dependencies]\ninmoment-a = { git = \"https://example.com/a\" }",
        ),
        (
            "inmoment-a = \"0.1\"",
            "[dependencies]\ninmoment-a.workspace = true",
        ),
        (
            "",
            "[dependencies]\nping = { version = \"0.1\", package = \"inmoment-a\" }",
        ),
    ];
    for (root, host) in not_a_path {
        let err = handlers(root, host).unwrap_err();
        assert!(matches!(err, DepError::NotAPath { .. }), "{host}: {err:?}");
        let message = err.to_string();
        assert!(
            message.contains("= { path = \"../<dir>\" }") && message.contains(".workspace = true"),
            "{message}"
        );
    }

    let missing = handlers("", "[dependencies]\ninmoment-a.workspace = true").unwrap_err();
    assert!(
        matches!(&missing, DepError::NotInWorkspace { key, .. } if key == "inmoment-a"),
        "{missing:?}"
    );
    assert!(missing
        .to_string()
        .contains("add `inmoment-a = { path = \"crates/<dir>\" }` there"));

    let optional = handlers(
        "",
        "[dependencies]\ninmoment-a = { path = \"../a\", optional = true }",
    )
    .unwrap_err();
    assert!(
        matches!(optional, DepError::Optional { .. }),
        "{optional:?}"
    );

    let target = handlers(
        "",
        "[target.'cfg(unix)'.dependencies]\ninmoment-a = { path = \"../a\" }",
    )
    .unwrap_err();
    assert!(
        matches!(&target, DepError::TargetSpecific { target, .. } if target == "cfg(unix)"),
        "{target:?}"
    );
    assert!(target.to_string().contains("move it to [dependencies]"));
}

#[test]
fn every_manifest_read_is_reported_for_rerun_if_changed() {
    let dir = workspace(
        r#"inmoment-a = { path = "crates/a" }"#,
        "[dependencies]\ninmoment-a.workspace = true",
    );
    let mut manifests = Vec::new();
    find(&dir.path().join("crates/host"), &mut manifests).unwrap();
    let root = dir.path();
    for expected in ["crates/host", "", "crates/a"] {
        let path = root.join(expected).join("Cargo.toml");
        assert!(manifests.contains(&path), "{path:?} in {manifests:?}");
    }
    // Even a refusal reports what it read, so fixing the root reruns build.rs.
    let bad = workspace("", "[dependencies]\ninmoment-a.workspace = true");
    let mut manifests = Vec::new();
    assert!(find(&bad.path().join("crates/host"), &mut manifests).is_err());
    assert!(manifests.contains(&bad.path().join("Cargo.toml")));
}

#[test]
fn the_generated_code_uses_each_crate_and_lists_its_package() {
    let code = inmoment_host::handler_deps::generated_code(&[dep("ping", "inmoment-a")]);
    assert!(code.contains("use ping as _;"), "{code}");
    assert!(
        code.contains("LINKED_HANDLER_CRATES: &[&str] = &[\"inmoment-a\", ];"),
        "{code}"
    );
}
