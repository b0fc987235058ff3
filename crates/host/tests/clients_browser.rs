#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Segment's analytics.js (`@segment/analytics-next`, unmodified) in headless Chromium,
//! on a page of another origin than the real server binary (another port of 127.0.0.1):
//! it identifies, tracks and pages, with the default delivery (one POST per event) and
//! with batching (one `/v1/b` POST, sent with keepalive when the page is hidden). Each test
//! checks that the browser logged nothing (no CORS error), that each event was sent
//! once and accepted, what the store kept and what the InMoment sandbox received. The
//! first also sees analytics.js's usage counters (`/v1/m`) answered 200.
//!
//! Nothing reaches the internet: analytics.js gets its settings from the page instead of
//! Segment's CDN, Chromium resolves no host but 127.0.0.1, and the driver aborts (and
//! reports) any request elsewhere.
//!
//! Needs Chromium at `/usr/bin/chromium` (`apt-get install chromium`; `.ci/run` installs
//! it) and the packages pinned by `clients/browser/package-lock.json`, installed by
//! `cargo xtask prepare` (part of `cargo xtask ci`); `clients/browser/drive.js` drives them.

mod clients;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use inmoment_sandbox::{RecordedRequest, Sandbox, SandboxConfig};
use serde_json::{json, Value};

use clients::{
    checks, param, run_node_report, wait_for_checks, ServerProcess, StoreView, TempDir, TOKEN,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const ANALYTICS_NEXT: &str = "1.84.3";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/browser")
}

/// Runs `drive.js` for one delivery strategy; returns its report. A missing browser or
/// missing packages fail the test (never skip it) and say how to install them.
async fn drive(server: &ServerProcess, delivery: &str) -> Value {
    assert!(
        Path::new(CHROMIUM).exists(),
        "Chromium is not installed at {CHROMIUM}: run `apt-get install chromium` (Debian), \
         or `.ci/run`, which installs it"
    );
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/@segment/analytics-next").exists()
            && dir.join("node_modules/puppeteer-core").exists(),
        "analytics-next and puppeteer-core are not installed in {}: run `cargo xtask prepare`",
        dir.display()
    );
    let plan = json!({"ingest": server.base_url(), "write_key": clients::WRITE_KEY,
                      "chromium": CHROMIUM, "delivery": delivery});
    let report = run_node_report(&dir, "drive.js", &plan).await;
    assert_eq!(
        report["version"], ANALYTICS_NEXT,
        "wrong analytics-next installed"
    );
    for list in ["outside", "console", "failed"] {
        assert_eq!(report[list], json!([]), "{list}: {report:#}");
    }
    report
}

/// The `messageId` of the identify, the track and the page, in that order, after checking
/// that analytics.js sent each exactly once, in POSTs to `paths`, all answered 200.
fn sent_once(report: &Value, paths: &[&str]) -> Vec<String> {
    let posts = report["posts"].as_array().unwrap();
    let sent: Vec<&str> = posts.iter().map(|p| p["path"].as_str().unwrap()).collect();
    let mut sorted = sent.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, paths, "{report:#}");
    assert!(posts.iter().all(|p| p["status"] == 200), "{report:#}");
    let mut times_sent: HashMap<&str, usize> = HashMap::new();
    for id in posts
        .iter()
        .flat_map(|p| p["messageIds"].as_array().unwrap())
    {
        *times_sent.entry(id.as_str().unwrap()).or_default() += 1;
    }
    let results = report["results"].as_array().unwrap();
    let methods: Vec<&str> = results
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["identify", "track", "page"]);
    let ids: Vec<String> = results
        .iter()
        .map(|r| {
            assert_eq!(r["delivered"], true, "{report:#}");
            r["messageId"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(times_sent.len(), ids.len(), "{report:#}");
    assert!(ids.iter().all(|id| times_sent.get(id.as_str()) == Some(&1)));
    ids
}

/// The three events are stored, then exactly their three checks reach the sandbox with
/// what each carries; the page's check has the page's URL.
async fn assert_stored_and_delivered(
    server: &mut ServerProcess,
    dir: &Path,
    sandbox: &Sandbox,
    ids: &[String],
    url: &str,
) {
    let seen = StoreView::open(dir).seen();
    assert!(ids.iter().all(|id| seen.contains(id)), "not all stored");
    wait_for_checks(sandbox, "3 eligibility checks", |checks| checks.len() >= 3).await;
    // Stopped, the server has recorded the results of everything it had in flight.
    server.stop().await;
    let store = StoreView::open(dir);
    assert_eq!(store.pending(), 0, "every delivery recorded");
    let checks = checks(sandbox);
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(checks.iter().all(|c| c.status == 200
        && param(c, "account_token") == Some(TOKEN)
        && param(c, "external_id") == Some("u-web")
        && param(c, "email") == Some("ada@example.com")));
    assert_eq!(store.dead_letters(), 0);
    let find = |what: &str, pick: &dyn Fn(&RecordedRequest) -> bool| {
        let found: Vec<&RecordedRequest> = checks.iter().filter(|c| pick(c)).collect();
        assert_eq!(found.len(), 1, "one check for the {what}: {checks:?}");
        found[0]
    };
    let identify = find("identify", &|c| {
        param(c, "event_name").is_none() && param(c, "url").is_none()
    });
    assert_eq!(param(identify, "properties[plan]"), Some("pro"));
    find("track", &|c| param(c, "event_name") == Some("Plan Chosen"));
    find("page", &|c| param(c, "url") == Some(url));
}

/// The usage counters analytics.js posted (to `/v1/m`): all answered 200, one
/// `analytics_js.invoke` per call in all.
fn usage_counters(report: &Value) -> usize {
    let metrics = report["metrics"].as_array().unwrap();
    assert!(metrics.iter().all(|m| m["status"] == 200), "{report:#}");
    metrics
        .iter()
        .map(|m| m["invokes"].as_u64().unwrap())
        .sum::<u64>() as usize
}

async fn run(label: &str, delivery: &str, paths: &[&str], counted: usize) {
    let dir = TempDir::new(label);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut server = ServerProcess::start(dir.path(), &sandbox.base_url()).await;
    let report = drive(&server, delivery).await;
    let ids = sent_once(&report, paths);
    assert_eq!(usage_counters(&report), counted, "{report:#}");
    let url = report["page_url"].as_str().unwrap();
    assert!(url.ends_with("/pricing?plan=pro"), "{url}");
    assert_stored_and_delivered(&mut server, dir.path(), &sandbox, &ids, url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_next_in_chromium_one_post_per_event() {
    run(
        "browser-standard",
        "standard",
        &["/v1/i", "/v1/p", "/v1/t"],
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_next_in_chromium_batching_flushed_when_the_page_is_hidden() {
    // Its counters go every 30 s: not within this test.
    run("browser-batching", "batching", &["/v1/b"], 0).await;
}
