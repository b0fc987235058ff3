//! `prepare`: installs what the client tests drive, so that `cargo xtask ci` passes on a
//! fresh clone. Each part is skipped when it is already in place, so a second run costs
//! a few process starts.
//!
//! - the published Python client `segment-analytics-python`, one virtualenv per version
//!   under `target/pyclients/<version>` (`crates/host/tests/clients_python.rs`);
//! - the published Node.js clients pinned by `crates/host/tests/clients/node/package-lock.json`
//!   (`crates/host/tests/clients_node.rs`);
//! - analytics.js and puppeteer-core pinned by
//!   `crates/host/tests/clients/browser/package-lock.json` (`crates/host/tests/clients_browser.rs`;
//!   Chromium itself is a Debian package, which `.ci/run` installs);
//! - a throwaway PostgreSQL cluster under `target/postgres` (`postgres.rs`).

use std::fs;
use std::path::Path;
use std::process::Command;

/// The `segment-analytics-python` versions the Python client tests drive.
const PYTHON_CLIENT_VERSIONS: &[&str] = &["2.3.4", "2.4.0"];
/// The directories where `npm ci` installs what their lock file pins.
const NODE_DIRS: &[&str] = &[
    "crates/host/tests/clients/node",
    "crates/host/tests/clients/browser",
];
/// Written after `npm ci`: the lock file it installed, to know when to install again.
const NODE_STAMP: &str = "node_modules/.installed-lock.json";

pub fn run(root: &Path) -> Result<(), String> {
    for version in PYTHON_CLIENT_VERSIONS {
        python_client(root, version)?;
    }
    for dir in NODE_DIRS {
        npm_ci(&root.join(dir))?;
    }
    crate::postgres::run(root)
}

fn python_client(root: &Path, version: &str) -> Result<(), String> {
    let venv = root.join("target/pyclients").join(version);
    let python = venv.join("bin/python");
    let check = format!(
        "import importlib.metadata as m, sys; sys.exit(m.version('segment-analytics-python') != '{version}')"
    );
    let installed = Command::new(&python)
        .args(["-c", &check])
        .output()
        .is_ok_and(|output| output.status.success());
    if installed {
        return Ok(());
    }
    println!(
        "==> prepare: segment-analytics-python {version} into {}",
        venv.display()
    );
    let _ = fs::remove_dir_all(&venv);
    let venv_text = venv.display().to_string();
    command("python3", &["-m", "venv", &venv_text], root)?;
    let pip = venv.join("bin/pip").display().to_string();
    let requirement = format!("segment-analytics-python=={version}");
    command(&pip, &["install", "--quiet", &requirement], root)
}

fn npm_ci(dir: &Path) -> Result<(), String> {
    let lock = fs::read(dir.join("package-lock.json"))
        .map_err(|e| format!("cannot read {}/package-lock.json: {e}", dir.display()))?;
    if fs::read(dir.join(NODE_STAMP)).is_ok_and(|stamp| stamp == lock) {
        return Ok(());
    }
    println!("==> prepare: npm ci in {}", dir.display());
    command(
        "npm",
        &["ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        dir,
    )?;
    fs::write(dir.join(NODE_STAMP), &lock)
        .map_err(|e| format!("cannot write {}/{NODE_STAMP}: {e}", dir.display()))
}

fn command(program: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run `{program}` (is it installed?): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}
