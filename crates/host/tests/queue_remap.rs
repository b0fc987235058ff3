//! `inmoment-destination queue remap` on a real data directory: events delivered to the
//! sandbox, a settings fix, the remap (through the built binary), and delivery again.
//! Also the `delivered` table it reads: pruning and the migration that added it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inmoment_core::Event;
use inmoment_delivery::{Attempts, InMomentDeliver};
use inmoment_host::config::{Config, ConfigFlags};
use inmoment_host::linked::registry;
use inmoment_host::service;
use inmoment_sandbox::{AccountConfig, Sandbox, SandboxConfig};
use inmoment_store::accept::{Acceptor, Source};
use inmoment_store::{Settlement, Store, StoreConfig};
use inmoment_testkit::TempDir;
use serde_json::{json, Value};

mod engine_support;

const GOOD: &str = "NPS-d3m0d3m0";
const OTHER: &str = "NPS-b2b2b2b2";
const WRONG: &str = "NPS-wr0ngt0k";

async fn sandbox() -> Sandbox {
    let config = SandboxConfig {
        accounts: vec![
            AccountConfig::demo(),
            AccountConfig::new(OTHER, "other-client"),
        ],
        ..SandboxConfig::default()
    };
    Sandbox::start(config).await.unwrap()
}

/// A configuration file with sources `web` and `app` (their tokens) against the sandbox.
fn config_file(dir: &Path, name: &str, sandbox: &Sandbox, web: &str, app: &str) -> String {
    let url = sandbox.base_url();
    let text = format!(
        "eligibility_url = \"{url}\"\napi_url = \"{url}\"\nretry_base_ms = 1\nretry_cap_ms = 5\n\
         [[sources]]\nname = \"web\"\nwrite_key = \"wk-web\"\naccount_token = \"{web}\"\n\
         [[sources]]\nname = \"app\"\nwrite_key = \"wk-app\"\naccount_token = \"{app}\"\n"
    );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn load(path: &str) -> Config {
    Config::load_for_send(Some(Path::new(path)), &|_| None, &ConfigFlags::default()).unwrap()
}

fn source(config: &Config, name: &str) -> Source {
    config.source(name).unwrap().source.clone()
}

fn track(id: &str, user: &str, name: &str) -> Event {
    Event::from_value(
        json!({"type":"track","messageId":id,"userId":user,"event":name}),
        None,
    )
    .unwrap()
}

/// Runs delivery with `config` (mapping and sending as `serve` would) until the journal
/// is empty and `done` holds, or 10 s pass.
async fn deliver(store: &Arc<Store>, dir: &Path, config: &Config, done: impl Fn() -> bool) {
    let deliver = Arc::new(InMomentDeliver::from_config(config, Attempts::Once).unwrap());
    let mut delivery = service::delivery_config(config);
    delivery.rescan_every = Duration::from_millis(20);
    let running = engine_support::spawn(store.clone(), deliver, delivery);
    let started = Instant::now();
    while !(count(dir, "SELECT COUNT(*) FROM journal") == 0 && done()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "delivery did not finish"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    running.stop().await;
}

fn count(dir: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("inmoment.sqlite3")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

/// The eligibility checks the sandbox answered for a known account, as (account token,
/// event name).
fn checks(sandbox: &Sandbox) -> Vec<(String, String)> {
    sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == "/eligible.json" && r.status == 200 && r.account.is_some())
        .map(|r| {
            let param = |name: &str| {
                r.params
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (param("account_token"), param("event_name"))
        })
        .collect()
}

/// `queue remap` through the binary: exit code, stdout JSON lines, stderr.
fn remap(dir: &Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .args(["queue", "remap", "--data-dir"])
        .arg(dir)
        .args(args)
        .env_remove("INMOMENT_ACCOUNT_TOKEN")
        .env_remove("INMOMENT_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (
        output.status.code().unwrap(),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_fix_is_previewed_then_exactly_the_changed_events_are_delivered_again() {
    let dir = TempDir::new("queue-remap");
    let sandbox = sandbox().await;
    let before = config_file(dir.path(), "before.toml", &sandbox, GOOD, GOOD);
    let after = config_file(dir.path(), "after.toml", &sandbox, GOOD, OTHER);
    let config = load(&before);
    let data = dir.path().join("data");
    let store = Arc::new(Store::open(StoreConfig::new(&data), registry().unwrap()).unwrap());
    store
        .accept(
            &source(&config, "web"),
            vec![track("w1", "ann", "W1"), track("w2", "bob", "W2")],
        )
        .await
        .unwrap();
    store
        .accept(
            &source(&config, "app"),
            vec![track("a1", "ann", "A1"), track("a2", "cid", "A2")],
        )
        .await
        .unwrap();
    deliver(&store, &data, &config, || checks(&sandbox).len() == 4).await;
    assert_eq!(count(&data, "SELECT COUNT(*) FROM delivered"), 4);

    // The preview names the two events of `app` with the old and the new call, and
    // changes nothing.
    let (code, lines, err) = remap(&data, &["--since", "1h", "--dry-run", "--config", &after]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 events, 2 would change"), "{err}");
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a1", "a2"]);
    let change = &lines[0]["changes"][0];
    assert_eq!(change["old"]["request"]["query"]["account_token"], GOOD);
    assert_eq!(change["new"]["request"]["query"]["account_token"], OTHER);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM journal"), 0);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM delivered"), 4);

    // Nothing changes under the configuration they were delivered with, nor in `web`.
    let (code, lines, err) = remap(&data, &["--since", "1h", "--dry-run", "--config", &before]);
    assert_eq!((code, lines.len()), (0, 0), "{err}");
    assert!(err.contains("4 events, 0 would change"), "{err}");
    let (_, lines, err) = remap(
        &data,
        &[
            "--since",
            "1h",
            "--source",
            "web",
            "--dry-run",
            "--config",
            &after,
        ],
    );
    assert!(
        lines.is_empty() && err.contains("2 events, 0 would change"),
        "{err}"
    );
    let (code, _, err) = remap(
        &data,
        &["--since", "2099-01-01T00:00:00Z", "--config", &after],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 events, 0 changed"), "{err}");
    let (code, _, err) = remap(&data, &["--since", "yesterday", "--config", &after]);
    assert_eq!(code, 2);
    assert!(err.contains("--since `yesterday`"), "{err}");

    // The remap queues the two again; `serve` restarted with the fix delivers exactly them.
    let (code, _, err) = remap(&data, &["--since", "1h", "--config", &after]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 events, 2 changed, 2 queued again"), "{err}");
    assert_eq!(
        count(&data, "SELECT COUNT(*) FROM journal WHERE remapped = 1"),
        2
    );
    let fixed = load(&after);
    deliver(&store, &data, &fixed, || checks(&sandbox).len() >= 6).await;
    let checks = checks(&sandbox);
    assert_eq!(checks.len(), 6, "{checks:?}");
    let mut again = checks[4..].to_vec();
    again.sort();
    assert_eq!(
        again,
        [
            (OTHER.to_string(), "A1".to_string()),
            (OTHER.to_string(), "A2".to_string())
        ]
    );
    // The new deliveries replace the old records: nothing is left to change.
    let (_, lines, err) = remap(&data, &["--since", "1h", "--dry-run", "--config", &after]);
    assert!(
        lines.is_empty() && err.contains("4 events, 0 would change"),
        "{err}"
    );
    drop(store);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_remapped_after_a_token_fix_is_delivered() {
    let dir = TempDir::new("queue-remap-dead");
    let sandbox = sandbox().await;
    let wrong = config_file(dir.path(), "wrong.toml", &sandbox, GOOD, WRONG);
    let fixed = config_file(dir.path(), "fixed.toml", &sandbox, GOOD, GOOD);
    let config = load(&wrong);
    let data = dir.path().join("data");
    let store = Arc::new(Store::open(StoreConfig::new(&data), registry().unwrap()).unwrap());
    store
        .accept(&source(&config, "app"), vec![track("d1", "ann", "D1")])
        .await
        .unwrap();
    deliver(&store, &data, &config, || {
        count(&data, "SELECT COUNT(*) FROM dead_letters") == 1
    })
    .await;
    assert!(checks(&sandbox).is_empty(), "the wrong token was refused");
    assert_eq!(sandbox.count("eligible"), 1, "{:?}", sandbox.requests());
    let id = count(&data, "SELECT id FROM dead_letters").to_string();

    let (code, lines, err) = remap(&data, &["--dead", "--all", "--dry-run", "--config", &fixed]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 events, 1 would change"), "{err}");
    assert_eq!(lines[0]["dead_letter"].to_string(), id);
    assert_eq!(
        lines[0]["changes"][0]["old"]["request"]["query"]["account_token"],
        WRONG
    );
    assert_eq!(
        lines[0]["changes"][0]["new"]["request"]["query"]["account_token"],
        GOOD
    );
    assert_eq!(count(&data, "SELECT COUNT(*) FROM dead_letters"), 1);

    // Unchanged under the wrong configuration: left as it is.
    let (_, lines, err) = remap(&data, &["--dead", &id, "--config", &wrong]);
    assert!(
        lines.is_empty() && err.contains("1 events, 0 changed, 0 queued"),
        "{err}"
    );
    let (code, _, err) = remap(&data, &["--dead", "999", "--config", &fixed]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no dead letter with id 999"), "{err}");
    let (code, _, err) = remap(&data, &["--dead", "--config", &fixed]);
    assert_eq!(code, 2, "{err}");

    let (code, _, err) = remap(&data, &["--dead", &id, "--config", &fixed]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 events, 1 changed, 1 queued again"), "{err}");
    assert_eq!(count(&data, "SELECT COUNT(*) FROM dead_letters"), 0);
    deliver(&store, &data, &load(&fixed), || {
        !checks(&sandbox).is_empty()
    })
    .await;
    assert_eq!(checks(&sandbox), [(GOOD.to_string(), "D1".to_string())]);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM delivered"), 1);
    drop(store);
    sandbox.shutdown().await;
}

/// Polls (a few ms at a time, up to 5 s) until `sql` counts `expected`.
async fn wait_count(dir: &Path, sql: &str, expected: i64) {
    let started = Instant::now();
    loop {
        let now = count(dir, sql);
        if now == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{sql}: {now}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn pruning_removes_delivered_events_older_than_keep_delivered_a_chunk_at_a_time() {
    let dir = TempDir::new("queue-remap-prune");
    drop(Store::open(StoreConfig::new(dir.path()), registry().unwrap()).unwrap());
    let now = chrono::Utc::now().timestamp_millis();
    let conn = rusqlite::Connection::open(dir.path().join("inmoment.sqlite3")).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for (n, at) in (0..2500)
        .map(|n| (n, now - 2 * 3_600_000))
        .chain([(2500, now)])
    {
        conn.execute(
            "INSERT INTO delivered (source, user_key, message_id, accepted_at_ms, delivered_at_ms, event, calls)
             VALUES ('web', 'u:ann', ?1, ?2, ?2, '{}', '[]')",
            rusqlite::params![format!("m{n}"), at],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);

    let (store, web) = store_with_web_source(dir.path(), Duration::from_secs(3600));
    // The first commit runs housekeeping: one chunk of 2,000 goes.
    store
        .accept(&web, vec![track("n1", "ann", "E")])
        .await
        .unwrap();
    wait_count(dir.path(), "SELECT COUNT(*) FROM delivered", 501).await;
    // A full chunk leaves a backlog: the next commit prunes the rest, not the young one.
    store
        .accept(&web, vec![track("n2", "ann", "E")])
        .await
        .unwrap();
    wait_count(dir.path(), "SELECT COUNT(*) FROM delivered", 1).await;
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM delivered WHERE message_id = 'm2500'"
        ),
        1
    );
}

#[tokio::test]
async fn a_version_4_store_is_migrated_keeping_its_data_and_then_keeps_delivered_events() {
    let dir = TempDir::new("queue-remap-migrate");
    let conn = rusqlite::Connection::open(dir.path().join("inmoment.sqlite3")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, user_key TEXT NOT NULL,
            message_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
            accepted_at_ms INTEGER NOT NULL, done_calls INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL DEFAULT 0,
            last_error TEXT);
         CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY, source TEXT NOT NULL, user_key TEXT NOT NULL,
            message_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
            accepted_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL,
            died_at_ms INTEGER NOT NULL, status INTEGER, reason TEXT NOT NULL, event TEXT);
         CREATE TABLE user_state (source TEXT NOT NULL, user_key TEXT NOT NULL,
            state TEXT NOT NULL, PRIMARY KEY (source, user_key)) WITHOUT ROWID;
         CREATE TABLE seen (seq INTEGER PRIMARY KEY, source TEXT NOT NULL,
            message_id TEXT NOT NULL, seen_at_ms INTEGER NOT NULL);
         CREATE TABLE counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
         INSERT INTO counts VALUES ('pending', 1);
         PRAGMA user_version = 4;",
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let body = r#"{"type":"track","messageId":"old-1","userId":"ann","event":"E"}"#;
    conn.execute(
        "INSERT INTO journal (source, user_key, message_id, kind, body, accepted_at_ms, done_calls)
         VALUES ('web', 'u:ann', 'old-1', 'event', ?1, ?2, 0)",
        rusqlite::params![body, now],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO dead_letters VALUES (7, 'web', 'u:bob', 'old-0', 'eligibility_check', '{}', ?1, 3, ?1, 400, 'bad', ?2)",
        rusqlite::params![now, body],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO seen (source, message_id, seen_at_ms) VALUES ('web', 'old-1', ?1)",
        [now],
    )
    .unwrap();
    drop(conn);

    let store = Store::open(StoreConfig::new(dir.path()), registry().unwrap()).unwrap();
    assert_eq!(count(dir.path(), "PRAGMA user_version"), 6);
    assert_eq!(store.pending(), 1, "the pending event is kept");
    let rows = store.reader().unwrap().scan_after(0, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].message_id.as_str(), rows[0].body.as_str()),
        ("old-1", body)
    );
    let dead = store.reader().unwrap().dead_letters(10).unwrap();
    assert_eq!(
        (dead.len(), dead[0].id, dead[0].reason.as_str()),
        (1, 7, "bad")
    );
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM seen_ids, json_each(seen_ids.message_ids)"
        ),
        1
    );
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM delivered"), 0);

    // The migrated row finishes through two calls: both are kept with the event.
    let call = |n: i64| json!({"call": "eligibility_check", "n": n}).to_string();
    store
        .settle(vec![Settlement::Progress {
            id: rows[0].id,
            done_calls: 1,
            dead: None,
            delivered: Some(call(1)),
        }])
        .await
        .unwrap();
    store
        .settle(vec![Settlement::Finished {
            id: rows[0].id,
            state: None,
            dead: None,
            delivered: Some(call(2)),
        }])
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("inmoment.sqlite3")).unwrap();
    let (event, calls): (String, String) = conn
        .query_row("SELECT event, calls FROM delivered", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(event, body);
    let calls: Value = serde_json::from_str(&calls).unwrap();
    assert_eq!(
        calls,
        json!([{"call": "eligibility_check", "n": 1}, {"call": "eligibility_check", "n": 2}])
    );
    assert_eq!(store.pending(), 0);
}

#[tokio::test]
async fn a_remap_larger_than_a_page_queues_every_changed_event_in_acceptance_order() {
    let dir = TempDir::new("queue-remap-pages");
    let data = dir.path().join("data");
    drop(Store::open(StoreConfig::new(&data), registry().unwrap()).unwrap());
    let now = chrono::Utc::now().timestamp_millis();
    let conn = rusqlite::Connection::open(data.join("inmoment.sqlite3")).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    // Delivered when the event made no call (say its name was mapped to nothing): every
    // one makes an eligibility check now. Ids out of insertion order, as delivery leaves them.
    for n in (0..1201).rev() {
        let event = json!({"type":"track","messageId":format!("m{n}"),"userId":format!("u{}", n % 7),"event":"E"});
        conn.execute(
            "INSERT INTO delivered (id, source, user_key, message_id, accepted_at_ms, delivered_at_ms, event, calls)
             VALUES (?1, 'default', ?2, ?3, ?4, ?4, ?5, '[]')",
            rusqlite::params![n + 1, format!("u{}", n % 7), format!("m{n}"), now, event.to_string()],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("account_token = \"{GOOD}\"\n")).unwrap();
    let config = config.display().to_string();

    let (code, lines, err) = remap(&data, &["--since", "1h", "--dry-run", "--config", &config]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1201 events, 1201 would change"), "{err}");
    assert_eq!(lines.len(), 1201);
    assert_eq!(lines[0]["changes"][0]["old"], Value::Null);
    assert_eq!(lines[0]["changes"][0]["new"]["call"], "eligibility_check");
    let (code, _, err) = remap(&data, &["--since", "1h", "--config", &config]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1201 changed, 1201 queued again"), "{err}");
    let order: Vec<String> = conn
        .prepare("SELECT message_id FROM journal WHERE remapped = 1 ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<String> = (0..1201).map(|n| format!("m{n}")).collect();
    assert_eq!(order, expected);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM delivered"), 0);
    assert_eq!(
        count(&data, "SELECT value FROM counts WHERE name = 'pending'"),
        1201
    );
}

#[tokio::test]
async fn an_event_with_two_dead_calls_goes_back_once() {
    let dir = TempDir::new("queue-remap-twice");
    let data = dir.path().join("data");
    drop(Store::open(StoreConfig::new(&data), registry().unwrap()).unwrap());
    let now = chrono::Utc::now().timestamp_millis();
    let event = r#"{"type":"track","messageId":"t1","userId":"ann","event":"E"}"#;
    let conn = rusqlite::Connection::open(data.join("inmoment.sqlite3")).unwrap();
    for (id, call) in [(1, "upsert_end_user"), (2, "eligibility_check")] {
        conn.execute(
            "INSERT INTO dead_letters (id, source, user_key, message_id, kind, body, accepted_at_ms, attempts, died_at_ms, status, reason, event)
             VALUES (?1, 'default', 'ann', 't1', ?2, ?3, ?4, 1, ?4, 401, 'check the Account Token', ?5)",
            rusqlite::params![id, call, json!({"call": call, "messageId": "t1"}).to_string(), now, event],
        )
        .unwrap();
    }
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("account_token = \"{GOOD}\"\n")).unwrap();
    let config = config.display().to_string();
    let (code, lines, err) = remap(&data, &["--dead", "--all", "--config", &config]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines.len(), 2);
    assert!(err.contains("2 events, 2 changed, 1 queued again"), "{err}");
    assert_eq!(
        count(
            &data,
            "SELECT COUNT(*) FROM journal WHERE message_id = 't1'"
        ),
        1
    );
    assert_eq!(count(&data, "SELECT COUNT(*) FROM dead_letters"), 0);
    assert_eq!(
        count(&data, "SELECT value FROM counts WHERE name = 'pending'"),
        1
    );
}

#[tokio::test]
async fn keep_delivered_zero_keeps_no_delivered_event() {
    let dir = TempDir::new("queue-remap-keep-none");
    let (store, web) = store_with_web_source(dir.path(), Duration::ZERO);
    store
        .accept(&web, vec![track("k1", "ann", "E")])
        .await
        .unwrap();
    let rows = store.reader().unwrap().scan_after(0, 10).unwrap();
    assert_eq!(rows.len(), 1);
    store
        .settle(vec![Settlement::Finished {
            id: rows[0].id,
            state: None,
            dead: None,
            delivered: Some(json!({"call": "eligibility_check"}).to_string()),
        }])
        .await
        .unwrap();
    assert_eq!(store.pending(), 0);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM journal"), 0);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM delivered"), 0);
}

/// A store in `dir` keeping delivered events `keep_delivered`, and a source `web` with
/// the good token.
fn store_with_web_source(dir: &Path, keep_delivered: Duration) -> (Store, Source) {
    let mut config = StoreConfig::new(dir);
    config.keep_delivered = keep_delivered;
    let store = Store::open(config, registry().unwrap()).unwrap();
    let path = dir.join("c.toml");
    std::fs::write(&path, format!("account_token = \"{GOOD}\"\n")).unwrap();
    let config = load(&path.display().to_string());
    let web = Source {
        name: "web".into(),
        settings: config.sources[0].source.settings.clone(),
    };
    (store, web)
}
