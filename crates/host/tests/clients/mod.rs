//! Shared by the tests that drive the real `inmoment-destination` binary as a separate
//! process (`clients_python.rs`, `clients_node.rs`, `clients_browser.rs`,
//! `crash_ingest.rs`): start it on a free port with a temporary data dir, wait for
//! `/healthz`, SIGKILL it, read its SQLite store read-only, and list what the in-process
//! InMoment sandbox received.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use inmoment_sandbox::{RecordedRequest, Sandbox};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// The write key the server accepts.
pub const WRITE_KEY: &str = "client-test-key";
/// The sandbox's demo account.
pub const TOKEN: &str = "NPS-d3m0d3m0";

/// How long any wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub use inmoment_testkit::TempDir;

/// A port nothing listens on right now (the OS picks it; we release it at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP client that never goes through a proxy: these tests only talk to 127.0.0.1.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The server binary, running `serve` with its configuration in `INMOMENT_*` variables.
/// Its output is copied line by line to `server.log` in the data dir.
pub struct ServerProcess {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `serve` on a free port of 127.0.0.1 with the store in `data_dir` and both
    /// InMoment URLs at `inmoment_url`; returns once it logs that it listens.
    pub async fn start(data_dir: &Path, inmoment_url: &str) -> ServerProcess {
        ServerProcess::start_with(data_dir, inmoment_url, &[]).await
    }

    /// As [`ServerProcess::start`], with more `INMOMENT_*` settings (set last, so they
    /// win), e.g. the shared store of `scale_out.rs`.
    pub async fn start_with(
        data_dir: &Path,
        inmoment_url: &str,
        extra_env: &[(&str, String)],
    ) -> ServerProcess {
        let port = free_port();
        // Appended to, so the log of a killed run and of its restart are both kept.
        let log = data_dir.join("server.log");
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"));
        command.arg("serve");
        // Only what this test sets may configure the server.
        for (name, _) in std::env::vars() {
            if name.starts_with("INMOMENT_") {
                command.env_remove(name);
            }
        }
        let data = data_dir.join("data");
        command
            .env("INMOMENT_LISTEN", format!("127.0.0.1:{port}"))
            .env("INMOMENT_DATA_DIR", &data)
            .env("INMOMENT_ACCOUNT_TOKEN", TOKEN)
            .env("INMOMENT_WRITE_KEYS", WRITE_KEY)
            .env("INMOMENT_ELIGIBILITY_URL", inmoment_url)
            .env("INMOMENT_API_URL", inmoment_url)
            .env("INMOMENT_RETRY_BASE_MS", "20")
            .env("INMOMENT_RETRY_CAP_MS", "200")
            // Fixed so that `crash_ingest.rs` knows how many calls can be in flight (× 4).
            .env("INMOMENT_DELIVERY_CONCURRENCY", "8")
            .env("RUST_LOG", "info")
            .envs(
                extra_env
                    .iter()
                    .map(|(name, value)| (*name, value.as_str())),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let listening = copy_until_listening(child.stderr.take().unwrap(), log.clone());
        let server = ServerProcess {
            child: Some(child),
            port,
            log,
        };
        let started = tokio::time::timeout(PATIENCE, listening).await;
        assert!(
            matches!(started, Ok(Ok(()))),
            "the server did not start listening within {PATIENCE:?}:\n{}",
            server.log()
        );
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the store of a server started with `data_dir` lives.
    pub fn database(data_dir: &Path) -> PathBuf {
        data_dir.join("data").join("inmoment.sqlite3")
    }

    /// SIGTERM, then waits for the exit: the server finishes the calls in flight and
    /// records their results before it exits (within its shutdown deadline).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let exit = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(
            exit.success(),
            "the server exited with {exit}:\n{}",
            self.log()
        );
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        http()
            .get(format!("{}/metrics", self.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// The value of one sample in Prometheus text, 0 when absent.
pub fn metric(metrics: &str, sample: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// A read-only view of a server's SQLite store (the server may be running).
pub struct StoreView(Connection);

impl StoreView {
    pub fn open(data_dir: &Path) -> StoreView {
        let path = ServerProcess::database(data_dir);
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("cannot open {} read-only: {e}", path.display()));
        StoreView(conn)
    }

    /// Every `messageId` the store has accepted (the dedup table).
    pub fn seen(&self) -> HashSet<String> {
        self.strings("SELECT j.value FROM seen_ids, json_each(seen_ids.message_ids) AS j")
    }

    /// Events still in the journal (not fully delivered) per `messageId`.
    pub fn pending_by_message(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in self.column("SELECT message_id FROM journal") {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    /// Events (and replayed calls) waiting for delivery.
    pub fn pending(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM journal")
    }

    pub fn dead_letters(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM dead_letters")
    }

    fn count(&self, sql: &str) -> i64 {
        self.0.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    fn strings(&self, sql: &str) -> HashSet<String> {
        self.column(sql).into_iter().collect()
    }

    fn column(&self, sql: &str) -> Vec<String> {
        let mut statement = self.0.prepare(sql).unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }
}

/// The eligibility checks (the one call each event makes without a Client ID) the
/// sandbox received, in arrival order.
pub fn checks(sandbox: &Sandbox) -> Vec<RecordedRequest> {
    sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == "/eligible.json")
        .collect()
}

/// A query parameter of a recorded request, as text.
pub fn param<'a>(request: &'a RecordedRequest, key: &str) -> Option<&'a str> {
    request.params.get(key).and_then(Value::as_str)
}

/// Copies the server's stderr (where it logs) to `log` on a thread of its own; the answer
/// comes once a line says it listens, or an error if it exits first.
fn copy_until_listening(
    stderr: std::process::ChildStderr,
    log: PathBuf,
) -> tokio::sync::oneshot::Receiver<()> {
    let (listening, answer) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut out = File::options().create(true).append(true).open(log).unwrap();
        let mut listening = Some(listening);
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            let _ = writeln!(out, "{line}");
            if line.contains("Listening.") {
                if let Some(listening) = listening.take() {
                    let _ = listening.send(());
                }
            }
        }
    });
    answer
}

/// Waits until the eligibility checks the sandbox logged satisfy `done`, re-checked as
/// each request is logged (no polling); fails after [`PATIENCE`].
pub async fn wait_for_checks(
    sandbox: &Sandbox,
    what: &str,
    mut done: impl FnMut(&[&RecordedRequest]) -> bool,
) {
    let arrived = sandbox
        .wait_until(PATIENCE, |requests| {
            let checks: Vec<&RecordedRequest> = requests
                .iter()
                .filter(|r| r.path == "/eligible.json")
                .collect();
            done(&checks)
        })
        .await;
    assert!(arrived, "timed out after {PATIENCE:?} waiting for {what}");
}

/// Runs a client driver with `input` on its stdin, off the async runtime, and returns what
/// it printed. The driver reaches 127.0.0.1 directly, never through a proxy.
pub async fn run_driver(mut command: Command, input: String) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        for name in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(name);
        }
        command.env("NO_PROXY", "127.0.0.1,localhost");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// Runs a Node.js driver script in `dir` with `plan` on stdin, and returns the JSON of its
/// last `REPORT <json>` line; the clients log to the console themselves, hence the prefix.
pub async fn run_node_report(dir: &Path, script: &str, plan: &Value) -> Value {
    let mut command = Command::new("node");
    command.arg(dir.join(script)).current_dir(dir);
    let output = run_driver(command, plan.to_string()).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the driver {script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let line = stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("REPORT "))
        .unwrap_or_else(|| panic!("no report from {script}:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap()
}

/// Waits until the sandbox got `n` eligibility checks, then stops the server (which
/// records the results of what it had in flight) and checks that nothing is left pending,
/// that the checks are exactly `n`, all answered 200 with the demo account's token, and
/// that nothing became a dead letter.
pub async fn wait_delivered(
    server: &mut ServerProcess,
    data_dir: &Path,
    sandbox: &Sandbox,
    n: usize,
) {
    wait_for_checks(sandbox, &format!("{n} eligibility checks"), |checks| {
        checks.len() >= n
    })
    .await;
    server.stop().await;
    let store = StoreView::open(data_dir);
    assert_eq!(store.pending(), 0, "every delivery recorded");
    let checks = checks(sandbox);
    assert_eq!(checks.len(), n);
    assert!(checks.iter().all(|c| c.status == 200));
    assert!(checks
        .iter()
        .all(|c| param(c, "account_token") == Some(TOKEN)));
    assert_eq!(store.dead_letters(), 0);
}

/// The `messageId` of every call in a driver's report, failing if any call did not
/// succeed.
pub fn message_ids(report: &Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| {
            assert_eq!(result["ok"], true, "a call failed: {report}");
            result["messageId"].as_str().unwrap().to_string()
        })
        .collect()
}
