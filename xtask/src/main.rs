//! `cargo xtask <command>`: the project's workflows, with nothing but cargo.
//!
//! - `prepare`: installs the published clients the tests drive (see `prepare.rs`) and
//!   starts a throwaway PostgreSQL cluster for them (see `postgres.rs`).
//! - `postgres-stop`: stops that cluster.
//! - `ci`: `prepare`, format check, clippy with `-D warnings`, then every test; each step
//!   prints its name and time, and a failure stops with a one-line hint.
//! - `bench`: measures mapping, the bare-server limit, ingest, end to end and backlog, and
//!   writes `BENCHMARKS.md` (see `bench.rs`).
//! - `bench pg`: ingest and drain with 1, 2 and 3 nodes on the prepared PostgreSQL, into
//!   its own section of `BENCHMARKS.md` (see `bench_pg.rs`).

mod bench;
mod bench_pg;
mod postgres;
mod prepare;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

struct Step {
    name: &'static str,
    args: &'static [&'static str],
    hint: &'static str,
}

const CI: &[Step] = &[
    Step {
        name: "fmt",
        args: &["fmt", "--all", "--check"],
        hint: "run `cargo fmt --all` and commit the result",
    },
    Step {
        name: "clippy",
        args: &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"],
        hint: "fix the clippy findings above (`cargo clippy --workspace --all-targets`)",
    },
    Step {
        name: "test",
        args: &["test", "--workspace", "--all-targets", "--locked"],
        hint: "a test failed: rerun it with `cargo test -p <crate> <name>`; fixture diffs show expected vs actual",
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("prepare") => prepare().err().unwrap_or(ExitCode::SUCCESS),
        Some("ci") => match prepare() {
            Ok(()) => run(CI),
            Err(failed) => failed,
        },
        Some("postgres-stop") => match postgres::stop(&project_root()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("==> postgres-stop FAILED: {message}");
                ExitCode::FAILURE
            }
        },
        Some("bench") if args.get(1).map(String::as_str) == Some("pg") => {
            match bench_pg::run(&cargo(), &project_root()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("==> bench pg FAILED: {message}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("bench") => match bench::run(&cargo(), &project_root()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("==> bench FAILED: {message}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask <prepare|ci|bench|bench pg|postgres-stop>\n  prepare        install the published clients the tests drive, start the tests' PostgreSQL\n  ci             prepare, fmt check, clippy -D warnings, all tests\n  bench          throughput, latency and memory figures into BENCHMARKS.md\n  bench pg       1, 2 and 3 nodes on the prepared PostgreSQL, into its section of BENCHMARKS.md\n  postgres-stop  stop the PostgreSQL cluster prepare started (target/postgres)");
            ExitCode::from(2)
        }
    }
}

fn prepare() -> Result<(), ExitCode> {
    prepare::run(&project_root()).map_err(|message| {
        eprintln!("==> prepare FAILED: {message}");
        ExitCode::FAILURE
    })
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn run(steps: &[Step]) -> ExitCode {
    let cargo = cargo();
    let root = project_root();
    let started = Instant::now();
    for step in steps {
        println!("==> {}: cargo {}", step.name, step.args.join(" "));
        let step_started = Instant::now();
        let status = Command::new(&cargo)
            .args(step.args)
            .current_dir(&root)
            .status();
        let seconds = step_started.elapsed().as_secs_f64();
        match status {
            Ok(s) if s.success() => println!("==> {} ok in {seconds:.1}s", step.name),
            Ok(_) | Err(_) => {
                eprintln!(
                    "==> {} FAILED after {seconds:.1}s: {}",
                    step.name, step.hint
                );
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "==> all steps ok in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
