//! `inmoment-destination send` through the built binary, against the InMoment sandbox on
//! 127.0.0.1 over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Output, Stdio};

use inmoment_sandbox::{Fault, RecordedRequest, Sandbox, SandboxConfig};
use inmoment_testkit::TempDir;
use serde_json::{json, Value};

const TOKEN: &str = "NPS-d3m0d3m0";
const CLIENT_ID: &str = "demo-client-id";

/// A sandbox serving on its own runtime while the test thread waits for the binary.
struct Fake {
    sandbox: Sandbox,
    _runtime: tokio::runtime::Runtime,
}

impl Fake {
    fn start() -> Fake {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sandbox = runtime
            .block_on(Sandbox::start(SandboxConfig::default()))
            .unwrap();
        Fake {
            sandbox,
            _runtime: runtime,
        }
    }

    /// The environment `send` needs to reach this sandbox, with millisecond backoffs.
    fn env(&self) -> Vec<(&'static str, String)> {
        let url = self.sandbox.base_url();
        vec![
            ("INMOMENT_ACCOUNT_TOKEN", TOKEN.to_string()),
            ("INMOMENT_CLIENT_ID", CLIENT_ID.to_string()),
            ("INMOMENT_ELIGIBILITY_URL", url.clone()),
            ("INMOMENT_API_URL", url),
            ("INMOMENT_RETRY_BASE_MS", "1".to_string()),
            ("INMOMENT_RETRY_CAP_MS", "5".to_string()),
        ]
    }
}

/// Runs `send` with `args`, the given variables and `stdin`; no other INMOMENT_* or
/// proxy variable of the test's environment leaks in.
fn send(args: &[&str], env: &[(&str, String)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inmoment-destination"));
    command.arg("send").args(args);
    for (name, _) in std::env::vars() {
        let lower = name.to_ascii_lowercase();
        if name.starts_with("INMOMENT_") || lower.ends_with("_proxy") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A run refused at start-up exits without reading stdin: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn summary(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn text(request: &RecordedRequest, key: &str) -> String {
    request
        .params
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn ndjson(events: &[Value]) -> String {
    events.iter().map(|e| e.to_string() + "\n").collect()
}

/// Identify then track of two interleaved users: the exact requests InMoment receives,
/// the track's check carrying what the identify said, each user's calls in order.
#[test]
fn identify_then_track_reach_inmoment_in_the_exact_wire_form() {
    let fake = Fake::start();
    let dir = TempDir::new("send-wire");
    let file = dir.write(
        "events.ndjson",
        ndjson(&[
            json!({"type":"identify","messageId":"m1","userId":"ann","traits":{"email":"ann@example.com","createdAt":"2025-03-01T10:00:00Z","plan":"pro"}}),
            json!({"type":"identify","userId":"bob","traits":{"email":"bob@example.com"}}),
            json!({"type":"track","messageId":"m3","userId":"ann","event":"Invoice Paid","properties":{"amount_amount":49}}),
            json!({"type":"track","userId":"bob","event":"Invoice Paid"}),
        ]),
    );
    let output = send(&[file.to_str().unwrap(), "--summary-json"], &fake.env(), "");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = summary(&output);
    assert_eq!(summary["events"], 4);
    assert_eq!(summary["delivered"], 4);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["eligible"], 4);
    assert_eq!(summary["calls_delivered"], 6, "2 upserts and 4 checks");

    let requests = fake.sandbox.requests();
    let of = |user: &str| -> Vec<&RecordedRequest> {
        requests
            .iter()
            .filter(|r| {
                r.route != "oauth.token"
                    && (text(r, "external_id") == user || r.path.ends_with(&format!("/{user}")))
            })
            .collect()
    };
    let ann = of("ann");
    let lines: Vec<String> = ann
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /api/v1/end_users/ann 404",
            "POST /api/v1/end_users 201",
            "GET /eligible.json 200",
            "GET /eligible.json 200",
        ],
        "ann's calls in the order of her events"
    );
    let create = ann[1];
    assert_eq!(text(create, "email"), "ann@example.com");
    assert_eq!(text(create, "external_created_at"), "1740823200");
    assert_eq!(text(create, "properties[plan]"), "pro");
    assert!(create.headers["authorization"].starts_with("Bearer "));
    let (identify, track) = (ann[2], ann[3]);
    assert_eq!(text(identify, "account_token"), TOKEN);
    assert_eq!(text(identify, "properties[plan]"), "pro");
    assert_eq!(identify.params.get("event_name"), None);
    for key in ["account_token", "email", "end_user_created_at"] {
        assert_eq!(
            text(track, key),
            text(identify, key),
            "the track's check carries the identify's {key}"
        );
    }
    assert_eq!(text(track, "email"), "ann@example.com");
    assert_eq!(text(track, "event_name"), "Invoice Paid");
    assert_eq!(text(track, "properties[amount_amount]"), "49");
    assert_eq!(track.params.get("properties[plan]"), None);

    let bob = of("bob");
    assert_eq!(bob.len(), 4, "{bob:?}");
    assert_eq!(text(bob[3], "email"), "bob@example.com");
    assert_eq!(text(bob[3], "event_name"), "Invoice Paid");
}

/// The file of the big test: `USERS` users with `PER_USER` events each, interleaved
/// round by round. Each user's first event is an identify, every tenth user's last one a
/// survey response; every event carries its line number as `seq`.
const USERS: usize = 500;
const PER_USER: usize = 20;

fn big_file() -> Vec<String> {
    let mut lines = Vec::with_capacity(USERS * PER_USER);
    for round in 0..PER_USER {
        for user in 0..USERS {
            let seq = lines.len() + 1;
            let id = format!("user-{user:04}");
            let event = if round == 0 {
                json!({"type":"identify","userId":id,"traits":{"email":format!("{id}@example.com"),"seq":seq}})
            } else if round == PER_USER - 1 && user % 10 == 0 {
                json!({"type":"track","userId":id,"event":"Survey Response Submitted","properties":{"score":9,"seq":seq}})
            } else {
                json!({"type":"track","userId":id,"event":format!("Step {round}"),"properties":{"seq":seq}})
            };
            lines.push(event.to_string());
        }
    }
    lines
}

/// 10 000 events while the sandbox fails some requests: passing 500s and 503s and a
/// dropped connection are retried and delivered; one permanent 400 fails exactly one
/// event. Every event is accounted for, in the summary, in `--failed` and in what the
/// sandbox received, and each user's events reached it in order.
#[test]
fn ten_thousand_events_with_faults_are_all_accounted_for() {
    let fake = Fake::start();
    let sandbox = &fake.sandbox;
    sandbox.add_fault(Fault::status("eligible", 500).after(1000));
    sandbox.add_fault(Fault::status("eligible", 503).times(Some(2)).after(4000));
    sandbox.add_fault(Fault::drop_connection("eligible").after(7000));
    sandbox.add_fault(Fault::status("end_users.create", 500).after(100));
    sandbox.add_fault(Fault::status("GET /api/v1/end_users/user-0042", 400));
    let dir = TempDir::new("send-big");
    let lines = big_file();
    assert_eq!(lines.len(), 10_000);
    let file = dir.write("events.ndjson", &(lines.join("\n") + "\n"));
    let failed = dir.join("failed.ndjson");
    let mut env = fake.env();
    env.push(("INMOMENT_DELIVERY_CONCURRENCY", "16".to_string()));
    let output = send(
        &[
            file.to_str().unwrap(),
            "--failed",
            failed.to_str().unwrap(),
            "--summary-json",
        ],
        &env,
        "",
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = summary(&output);
    let count = |key: &str| summary[key].as_u64().unwrap();
    assert_eq!(count("events"), 10_000);
    assert_eq!(count("delivered") + count("failed"), 10_000, "{summary}");
    assert_eq!(count("failed"), 1, "{summary}");
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{summary}");
    assert_eq!(failures[0]["count"], 1);
    assert!(
        failures[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("upsert_end_user: InMoment refused the call with HTTP 400"),
        "{summary}"
    );
    let identify_42 = &lines[42];
    assert_eq!(failures[0]["first_line"], 43);
    assert_eq!(
        std::fs::read_to_string(&failed).unwrap(),
        format!("{identify_42}\n"),
        "--failed holds exactly the failed event's line"
    );

    let requests = sandbox.requests();
    assert!(
        sandbox.state_handle().faults().is_empty(),
        "every fault hit"
    );
    let checks: Vec<&RecordedRequest> = requests.iter().filter(|r| r.route == "eligible").collect();
    let (ok, faulted): (Vec<&RecordedRequest>, Vec<&RecordedRequest>) =
        checks.iter().partition(|r| r.faults.is_empty());
    assert_eq!(faulted.len(), 4, "one 500, two 503s, one drop");
    assert!(ok.iter().all(|r| r.status == 200));
    assert_eq!(sandbox.count("eligible"), checks.len() as u64);
    assert_eq!(
        ok.len() as u64,
        count("eligible") + count("not_eligible"),
        "every check answered was counted once"
    );
    let created = requests
        .iter()
        .filter(|r| r.route == "end_users.create" && r.status == 201)
        .count();
    let responses = requests
        .iter()
        .filter(|r| r.route == "responses.create" && r.status == 201)
        .count();
    assert_eq!(created, USERS - 1, "every user but user-0042 was created");
    assert_eq!(responses, USERS / 10);
    assert_eq!(
        count("calls_delivered"),
        (ok.len() + created + responses) as u64
    );

    // Each event's check reached InMoment once, except the failed identify's, and each
    // user's checks arrived in the order of the user's lines.
    let mut per_user: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &ok {
        let seq: u64 = text(r, "properties[seq]").parse().unwrap();
        per_user
            .entry(text(r, "external_id"))
            .or_default()
            .push(seq);
    }
    let mut seen = BTreeSet::new();
    for (user, seqs) in &per_user {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{user}'s events out of order: {seqs:?}"
        );
        seen.extend(seqs.iter().copied());
    }
    assert_eq!(per_user.len(), USERS);
    let expected: BTreeSet<u64> = (1..=10_000).filter(|seq| *seq != 43).collect();
    assert_eq!(seen, expected);
}

/// Lines that are not events are reported with their line numbers and kept in
/// `--failed`; a file of good events exits 0.
#[test]
fn bad_lines_are_reported_and_kept_for_a_re_run() {
    let fake = Fake::start();
    let dir = TempDir::new("send-bad");
    let good_identify =
        json!({"type":"identify","userId":"ann","traits":{"email":"ann@example.com"}}).to_string();
    let good_track = json!({"type":"track","userId":"ann","event":"Paid"}).to_string();
    let bad = [
        "{not json".to_string(),
        json!({"userId":"ann","event":"Paid"}).to_string(),
        json!({"type":"track","userId":"ann"}).to_string(),
    ];
    let input = [
        good_identify.as_str(),
        &bad[0],
        "",
        &bad[1],
        &bad[2],
        &good_track,
    ]
    .join("\n");
    let file = dir.write("events.ndjson", &input);
    let failed = dir.join("failed.ndjson");
    let args = [file.to_str().unwrap(), "--failed", failed.to_str().unwrap()];

    let output = send(&args, &fake.env(), "");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("5 events in "),
        "the blank line is not an event: {stdout}"
    );
    assert!(
        stdout.contains("2 delivered, 0 skipped, 3 failed"),
        "{stdout}"
    );
    for expected in [
        "not valid JSON",
        "(first at line 2)",
        "type: missing",
        "(first at line 4)",
        "event: ",
        "(first at line 5)",
        failed.to_str().unwrap(),
    ] {
        assert!(stdout.contains(expected), "{expected} in:\n{stdout}");
    }
    let mut kept: Vec<String> = std::fs::read_to_string(&failed)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    kept.sort();
    let mut bad = bad.to_vec();
    bad.sort();
    assert_eq!(kept, bad);

    let good = format!("{good_identify}\n{good_track}\n");
    let output = send(&["-", "--summary-json"], &fake.env(), &good);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary(&output)["delivered"], 2);
}

/// Settings that cannot work stop `send` before it sends anything, naming the key.
#[test]
fn bad_settings_exit_2_naming_the_key() {
    let dir = TempDir::new("send-settings");
    let file = dir.write(
        "events.ndjson",
        ndjson(&[json!({"type":"track","userId":"ann","event":"Paid"})]),
    );
    let file = file.to_str().unwrap();
    let refused = |args: &[&str], env: &[(&str, String)], expected: &str| {
        let output = send(args, env, "");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{expected} in: {stderr}");
        assert!(output.stdout.is_empty(), "nothing was sent");
    };
    let token = [("INMOMENT_ACCOUNT_TOKEN", TOKEN.to_string())];
    refused(
        &[file],
        &[],
        "account_token (INMOMENT_ACCOUNT_TOKEN): missing",
    );
    refused(
        &[file],
        &[("INMOMENT_ACCOUNT_TOKEN", "4aeb53c1".to_string())],
        "account_token (INMOMENT_ACCOUNT_TOKEN)",
    );
    refused(
        &[file],
        &[
            token[0].clone(),
            ("INMOMENT_DELIVERY_CONCURRENCY", "lots".to_string()),
        ],
        "delivery_concurrency (INMOMENT_DELIVERY_CONCURRENCY): expected a whole number",
    );
    refused(
        &[file, "--eligibility-url", "ftp://x"],
        &token,
        "eligibility_url (INMOMENT_ELIGIBILITY_URL)",
    );
    refused(
        &[file, "--source", "eu"],
        &token,
        "source: no source is named `eu`; configured: default",
    );
    let missing = dir.join("missing.ndjson");
    let output = send(&[missing.to_str().unwrap()], &token, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}

#[test]
fn send_surveys_an_eligible_user_once_per_run_and_a_dry_run_sends_nothing() {
    let fake = Fake::start();
    let events = ndjson(&[
        json!({"type":"identify","userId":"ann","traits":{"email":"ann@example.com"}}),
        json!({"type":"track","userId":"ann","event":"Invoice Paid"}),
        json!({"type":"track","userId":"ann","event":"Invoice Paid"}),
        json!({"type":"track","userId":"cy","event":"Invoice Paid"}),
        json!({"type":"track","userId":"ann","event":"Signed Up"}),
    ]);
    let mut env = fake.env();
    env.push(("INMOMENT_SURVEY_CHANNEL", "email".into()));
    env.push(("INMOMENT_SURVEY_EVENTS", "Invoice Paid".into()));

    let dry = send(&["--dry-run"], &env, &events);
    assert!(dry.status.success(), "{dry:?}");
    assert!(
        fake.sandbox.requests().is_empty(),
        "a dry run reached InMoment"
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&dry.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shown: Vec<(u64, String)> = lines
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["email_survey"].to_string()))
        .collect();
    assert_eq!(shown.len(), 4, "{lines:?}");
    assert!(shown[0].1.contains("if_eligible") && shown[0].1.contains("ann@example.com"));
    assert_eq!(shown[2], (4, r#"{"none":"no email"}"#.to_string()));
    assert_eq!(
        shown[3],
        (5, r#"{"none":"event not selected"}"#.to_string())
    );
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert!(stderr.contains("1 users would be surveyed"), "{stderr}");

    let output = send(&["--summary-json"], &env, &events);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(summary(&output)["email_surveys"], 1);
    let surveys = fake.sandbox.state()["accounts"][TOKEN]["email_surveys"].clone();
    assert_eq!(surveys.as_array().map(Vec::len), Some(1), "{surveys}");
    assert_eq!(surveys[0]["email"], "ann@example.com");
}
