//! `inmoment-destination map` over real files, through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::io::Write;
use std::process::{Command, Output, Stdio};

use inmoment_core::{map_event, Event, MappedEvent, UserState};
use inmoment_host::config::{Config, ConfigFlags};
use serde_json::{json, Value};

fn map(input: &str, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .arg("map")
        .args(args)
        .env_remove("INMOMENT_ACCOUNT_TOKEN")
        .env_remove("INMOMENT_CLIENT_ID")
        .env_remove("INMOMENT_CONFIG")
        .env_remove("INMOMENT_RESPONSE_EVENT")
        .env_remove("INMOMENT_DECLINE_EVENT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The binary may exit before reading (bad settings): a broken pipe is fine here.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const TOKEN: [&str; 2] = ["--account-token", "NPS-4aeb53c1"];

/// The bundled example file maps to exactly the reviewed expected output.
#[test]
fn bundled_examples_map_to_the_expected_output() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let input = std::fs::read_to_string(format!("{root}/examples/events.ndjson")).unwrap();
    let expected = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/examples.expected.ndjson"
    ))
    .unwrap();
    let output = map(&input, &TOKEN);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected: Vec<Value> = expected
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines(&output), expected);
}

#[test]
fn identify_state_carries_into_track_and_page_of_the_same_user_only() {
    let input = [
        json!({"type":"identify","messageId":"1","userId":"a","traits":{"email":"a@example.com","createdAt":"2015-01-01","language":"fr"}}),
        json!({"type":"track","messageId":"2","userId":"a","event":"Paid","properties":{"amount_amount":5}}),
        json!({"type":"track","messageId":"3","userId":"b","event":"Paid"}),
        json!({"type":"page","messageId":"4","userId":"a","properties":{"url":"https://x.example.com/"}}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    let out = lines(&map(&input, &TOKEN));
    let query = |i: usize| out[i]["calls"][0]["request"]["query"].clone();
    assert_eq!(
        query(1),
        json!({"account_token":"NPS-4aeb53c1","email":"a@example.com","end_user_created_at":"1420070400","external_id":"a","language[code]":"fr","event_name":"Paid","properties[amount_amount]":"5"})
    );
    assert_eq!(
        query(2),
        json!({"account_token":"NPS-4aeb53c1","external_id":"b","event_name":"Paid"})
    );
    assert_eq!(
        query(3),
        json!({"account_token":"NPS-4aeb53c1","email":"a@example.com","end_user_created_at":"1420070400","external_id":"a","language[code]":"fr","url":"https://x.example.com/"})
    );
}

#[test]
fn a_repeated_page_of_one_user_is_dropped_but_not_another_users() {
    let page = |id: &str, user: &str| {
        json!({"type":"page","messageId":id,"userId":user,"properties":{"url":"https://x.example.com/p"}}).to_string()
    };
    let input = [page("1", "a"), page("2", "a"), page("3", "b")].join("\n");
    let out = lines(&map(&input, &TOKEN));
    let calls: Vec<usize> = out
        .iter()
        .map(|l| l["calls"].as_array().unwrap().len())
        .collect();
    assert_eq!(calls, [1, 0, 1]);
    assert_eq!(out[1]["skipped"], "duplicate_page");
}

#[test]
fn bad_lines_are_reported_by_number_and_the_run_continues_with_exit_1() {
    let input = "{\"type\":\"track\",\"userId\":\"u\"}\nnot json\n\n{\"type\":\"identify\",\"userId\":\"u\",\"traits\":\"x\"}\n{\"type\":\"identify\",\"userId\":\"u\"}\n";
    let output = map(input, &TOKEN);
    assert_eq!(output.status.code(), Some(1));
    let out = lines(&output);
    assert_eq!(out.len(), 4);
    assert_eq!(
        out[0],
        json!({"line":1,"error":{"path":"event","message":"a track needs a non-empty event name"}})
    );
    assert_eq!(out[1]["line"], 2);
    assert_eq!(out[1]["error"]["path"], "");
    assert_eq!(
        out[2],
        json!({"line":4,"error":{"path":"traits","message":"expected an object, found a string"}})
    );
    assert_eq!(out[3]["messageId"], "line-5");
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 event(s) mapped, 3 failed"));
}

#[test]
fn bad_or_missing_account_token_stops_before_reading_with_exit_2() {
    let bad = map("{}", &["--account-token", "NPS-x"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains(
        "account_token (INMOMENT_ACCOUNT_TOKEN): `NPS-x` is not an InMoment Account Token"
    ));
    assert!(bad.stdout.is_empty());
    let missing = map("{}", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr)
        .contains("account_token (INMOMENT_ACCOUNT_TOKEN): missing"));
}

#[test]
fn account_token_can_come_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"))
        .args(["map", "-"])
        .env("INMOMENT_ACCOUNT_TOKEN", "NPS-EU-4aeb53c1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A source's non-default `response_event` changes the preview exactly as `serve` maps with
/// it: `map --config --source` gives what serve's loader and mapping give in-process.
#[test]
fn a_source_s_settings_from_the_config_change_the_preview_as_serve_would() {
    let dir = inmoment_testkit::TempDir::new("map-config");
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        r#"
account_token = "NPS-4aeb53c1"
write_keys = ["wk-default"]

[[sources]]
name = "shop"
write_key = "wk-shop"
client_id = "shop-client"
response_event = "NPS Answered"
"#,
    )
    .unwrap();
    let event = json!({"type":"track","messageId":"m-1","userId":"u-1","event":"NPS Answered",
        "properties":{"score":9},"context":{"traits":{"email":"a@example.com"}}});
    let config = path.to_str().unwrap();
    let kinds = |out: &Value| -> Vec<String> {
        out["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["call"].as_str().unwrap().to_string())
            .collect()
    };

    let shop = map(
        &event.to_string(),
        &["--config", config, "--source", "shop"],
    );
    assert!(
        shop.status.success(),
        "{}",
        String::from_utf8_lossy(&shop.stderr)
    );
    let shop = lines(&shop).remove(0);
    assert!(
        kinds(&shop).contains(&"create_response".to_string()),
        "{shop}"
    );

    let default = lines(&map(&event.to_string(), &["--config", config])).remove(0);
    assert!(
        !kinds(&default).contains(&"create_response".to_string()),
        "{default}"
    );

    let serve_config = Config::load(Some(&path), &|_| None, &ConfigFlags::default()).unwrap();
    let settings = &serve_config.source("shop").unwrap().source.settings;
    let registry = inmoment_host::linked::registry().unwrap();
    let parsed = Event::from_json(&event.to_string()).unwrap();
    let output = map_event(&registry, &parsed, UserState::default(), settings).unwrap();
    let serve = serde_json::to_value(MappedEvent::new(&parsed, settings, &output)).unwrap();
    assert_eq!(shop, serve);

    let unknown = map("{}", &["--config", config, "--source", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr)
        .contains("no source is named `nope`; configured: default, shop"));
}

#[test]
fn with_email_surveys_map_shows_the_survey_an_eligible_answer_would_send_or_why_none() {
    let input = concat!(
        r#"{"type":"identify","userId":"ann","traits":{"email":"ann@example.com"}}"#,
        "\n",
        r#"{"type":"track","userId":"ann","event":"Invoice Paid","properties":{"plan":"pro"}}"#,
        "\n",
        r#"{"type":"track","userId":"cy","event":"Invoice Paid"}"#,
        "\n",
        r#"{"type":"track","userId":"ann","event":"Signed Up"}"#,
        "\n",
    );
    let mut args = TOKEN.to_vec();
    args.extend([
        "--survey-channel",
        "email",
        "--survey-events",
        "Invoice Paid",
        "--survey-delay-days",
        "2",
    ]);
    let output = map(input, &args);
    assert!(output.status.success(), "{output:?}");
    let seen = lines(&output);
    assert_eq!(
        seen[0].get("email_survey"),
        None,
        "an identify leads to no survey"
    );
    assert_eq!(
        seen[1]["email_survey"],
        json!({"if_eligible": {
            "call": "email_survey",
            "messageId": "line-2",
            "emails": ["ann@example.com"],
            "external_ids": ["ann"],
            "fields": {"delay": "2", "end_user[properties][plan]": "pro"}
        }})
    );
    assert_eq!(seen[2]["email_survey"], json!({"none": "no email"}));
    assert_eq!(
        seen[3]["email_survey"],
        json!({"none": "event not selected"})
    );
    // Off by default: no field at all.
    let plain = lines(&map(input, &TOKEN));
    assert!(plain.iter().all(|line| line.get("email_survey").is_none()));
}
