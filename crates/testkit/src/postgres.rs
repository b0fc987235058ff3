//! The tests' PostgreSQL: the throwaway cluster `cargo xtask prepare` starts under
//! `target/postgres`, or another server named by `INMOMENT_TEST_POSTGRES`. Each test takes
//! its own database, so tests run in parallel without seeing each other's rows; the
//! databases are not dropped (the cluster is throwaway).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Names a server for the tests instead of the one `cargo xtask prepare` starts.
pub const ENV_VAR: &str = "INMOMENT_TEST_POSTGRES";
/// PostgreSQL truncates longer identifiers, which could make two names equal.
const MAX_NAME: usize = 63;

/// The URL of the tests' server: `INMOMENT_TEST_POSTGRES` if set, else the one
/// `cargo xtask prepare` wrote to `target/postgres/url`.
pub fn postgres_url() -> String {
    if let Some(url) = std::env::var(ENV_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return url.trim().to_string();
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/postgres/url");
    match std::fs::read_to_string(&file) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => panic!(
            "no PostgreSQL for the tests: run `cargo xtask prepare` (it starts a throwaway \
             cluster) or set {ENV_VAR}"
        ),
    }
}

/// The test CA that signed the certificate of the cluster `cargo xtask prepare` starts
/// (TLS is on there), for tests of `sslmode=require`.
pub fn postgres_ca_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/postgres/tls/ca.crt")
}

/// Creates a new, empty database on the tests' server and returns its URL. The name is
/// `prefix` (lowercased, other characters than [a-z0-9_] as `_`) then the process id, a
/// counter and the time, so that it is unique across parallel tests and test processes.
pub fn fresh_database(prefix: &str) -> String {
    let url = postgres_url();
    let name = unique_name(prefix);
    let output = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run psql (install the PostgreSQL client, e.g. apt-get install postgresql-client): {e}")
        });
    assert!(
        output.status.success(),
        "CREATE DATABASE {name} on {url} failed: {}\nis the server up? `cargo xtask prepare` \
         starts it again",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    with_database(&url, &name)
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let suffix = format!("_{}_{n}_{nanos}", std::process::id());
    let mut name: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // An unquoted identifier cannot start with a digit.
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        name.insert(0, 't');
    }
    name.truncate(MAX_NAME.saturating_sub(suffix.len()));
    name + &suffix
}

/// `url` with its path (the database) replaced by `name`; a query string is kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |at| authority_start + at);
    format!("{}/{name}{query}", &base[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::{fresh_database, unique_name, with_database};
    use std::process::Command;

    #[test]
    fn names_are_plain_identifiers() {
        let name = unique_name("Store-Test 9");
        assert!(name.starts_with("store_test_9_"), "{name}");
        assert!(name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        assert!(unique_name("9x").starts_with("t9x_"));
        assert!(unique_name(&"a".repeat(100)).len() <= 63);
        assert_ne!(unique_name("a"), unique_name("a"));
    }

    #[test]
    fn database_replaces_the_path() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "db"),
            "postgres://u@127.0.0.1:5432/db"
        );
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432", "db"),
            "postgres://u@127.0.0.1:5432/db"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/x?sslmode=disable", "db"),
            "postgresql://u:p@h/db?sslmode=disable"
        );
    }

    /// Needs the server: fails when none runs (`cargo xtask prepare` starts it).
    #[test]
    fn fresh_databases_are_distinct_and_answer() {
        let a = fresh_database("testkit");
        let b = fresh_database("testkit");
        assert_ne!(a, b);
        for url in [&a, &b] {
            let output = Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    url,
                    "-c",
                    "select 1",
                ])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "psql {url}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
