//! `inmoment-destination queue` on a real data directory, through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::process::Command;

use inmoment_core::{map_event, AccountToken, Event, Settings, UserState};
use inmoment_host::linked::registry;
use inmoment_store::accept::{Acceptor, Source};
use inmoment_store::{DeadCall, Settlement, Store, StoreConfig};
use inmoment_testkit::TempDir;
use serde_json::{json, Value};

fn queue(dir: &std::path::Path, args: &[&str]) -> (i32, Vec<Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .arg("queue")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        output.status.code().unwrap(),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn stats_list_replay_and_purge() {
    let temp = TempDir::new("queue-cli");
    let dir = temp.path().to_path_buf();
    let store = Store::open(StoreConfig::new(&dir), registry().unwrap()).unwrap();
    let source = Source {
        name: "web".into(),
        settings: Settings::new(AccountToken::parse("NPS-4aeb53c1").unwrap()),
    };
    let events = ["m1", "m2", "m3"].map(|id| {
        Event::from_value(
            json!({"type":"track","messageId":id,"userId":"ann","event":"E"}),
            None,
        )
        .unwrap()
    });
    store.accept(&source, events.to_vec()).await.unwrap();
    let first = store
        .reader()
        .unwrap()
        .head_of("web", "ann")
        .unwrap()
        .unwrap();
    let output = map_event(
        &registry().unwrap(),
        &events[0],
        UserState::default(),
        &source.settings,
    )
    .unwrap();
    let dead_call = |attempts, status, reason: &str| DeadCall {
        kind: "eligibility_check".into(),
        call: serde_json::to_string(&output.calls[0]).unwrap(),
        attempts,
        status: Some(status),
        reason: reason.into(),
    };
    store
        .settle(vec![Settlement::Finished {
            id: first.id,
            state: None,
            dead: Some(dead_call(1, 401, "check the Account Token")),
            delivered: None,
        }])
        .await
        .unwrap();
    store
        .settle(vec![Settlement::Retry {
            id: first.id + 1,
            attempts: 2,
            next_attempt_ms: 0,
            error: "HTTP 503".into(),
        }])
        .await
        .unwrap();

    let (code, stats, _) = queue(&dir, &["stats"]);
    assert_eq!(code, 0);
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (
            stats[0]["source"].as_str(),
            stats[0]["pending"].as_i64(),
            stats[0]["in_retry"].as_i64(),
            stats[0]["dead"].as_i64()
        ),
        (Some("web"), Some(2), Some(1), Some(1))
    );

    let (_, dead, _) = queue(&dir, &["dead", "list"]);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["messageId"], "m1");
    assert_eq!(dead[0]["status"], 401);
    assert_eq!(dead[0]["reason"], "check the Account Token");
    assert_eq!(dead[0]["call"]["call"], "eligibility_check");
    assert_eq!(
        dead[0]["event"]["messageId"], "m1",
        "the event it came from"
    );
    let dead_id = dead[0]["id"].as_i64().unwrap();

    let (code, _, err) = queue(&dir, &["dead", "replay"]);
    assert_eq!(code, 2);
    assert!(err.contains("--all"), "{err}");
    let (code, _, err) = queue(&dir, &["dead", "replay", &dead_id.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 dead letter(s) back to pending"));
    let reader = store.reader().unwrap();
    let rows = reader.scan_after(0, 10).unwrap();
    let replayed = rows.last().unwrap();
    assert_eq!(
        (replayed.kind.as_str(), replayed.message_id.as_str()),
        ("call", "m1"),
        "the dead call goes back as it is, after what the user has pending"
    );

    store
        .settle(vec![Settlement::Finished {
            id: replayed.id,
            state: None,
            dead: Some(dead_call(2, 400, "bad")),
            delivered: None,
        }])
        .await
        .unwrap();
    let (_, _, err) = queue(&dir, &["dead", "purge", "--older-than", "1h"]);
    assert!(err.contains("0 dead letter(s) deleted"), "{err}");
    let (code, _, err) = queue(&dir, &["dead", "purge", "--older-than", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("--older-than `soon`"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (_, _, err) = queue(&dir, &["dead", "purge", "--older-than", "0s"]);
    assert!(err.contains("1 dead letter(s) deleted"), "{err}");
    drop(store);
}

#[tokio::test]
async fn an_empty_queue_says_so_and_an_unknown_dead_letter_is_exit_1() {
    let temp = TempDir::new("queue-empty");
    let dir = temp.path().to_path_buf();
    let store = Store::open(StoreConfig::new(&dir), registry().unwrap()).unwrap();
    let (code, lines, err) = queue(&dir, &["stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(lines.is_empty(), "no JSON line for an empty queue");
    assert!(err.contains("the queue is empty"), "{err}");

    let (code, _, err) = queue(&dir, &["dead", "replay", "999"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no dead letter with id 999"), "{err}");
    drop(store);
}

#[test]
fn a_missing_store_is_named_with_the_way_to_find_the_demo_one() {
    let temp = TempDir::new("queue-none");
    let cwd = temp.path().to_path_buf();
    std::fs::create_dir_all(cwd.join("demo-data")).unwrap();
    std::fs::write(cwd.join("demo-data/inmoment.sqlite3"), "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .args(["queue", "stats"])
        .env_remove("INMOMENT_DATA_DIR")
        .current_dir(&cwd)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("data_dir `./data`: no store there"), "{err}");
    assert!(err.contains("--data-dir ./demo-data"), "{err}");
}

#[test]
fn help_names_the_options_and_the_variables() {
    let help = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let serve = help(&["serve"]);
    for variable in [
        "INMOMENT_LISTEN",
        "INMOMENT_WEBHOOK_SECRET",
        "INMOMENT_MAX_BATCH_ITEMS",
        "INMOMENT_HEADER_READ_TIMEOUT_MS",
    ] {
        assert!(serve.contains(&format!("[env: {variable}]")), "{serve}");
    }
    assert!(help(&["queue", "dead", "list"]).contains("at most this many"));
    assert!(help(&["queue", "dead", "purge"]).contains("died longer ago"));
}
