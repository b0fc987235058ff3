#![allow(clippy::unwrap_used, clippy::expect_used)]
//! SIGKILL of the server binary in the middle of ingest, while it also delivers to the
//! InMoment sandbox. A 200 promises the events are on disk: after a restart on the same
//! data dir every event answered 200 must be in the store once, and a client re-sending
//! after the crash must not create a second copy of anything already stored.

mod clients;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use inmoment_sandbox::{Sandbox, SandboxConfig};
use serde_json::{json, Value};
use tokio::sync::Notify;

use clients::{checks, param, ServerProcess, StoreView, TempDir, PATIENCE, WRITE_KEY};

const EVENTS: usize = 3000;
const PER_REQUEST: usize = 5;
const REQUESTS: usize = EVENTS / PER_REQUEST;
/// Requests in flight at once, so several are cut off by the kill.
const SENDERS: usize = 16;
/// The kill comes once this many events were answered 200.
const KILL_AFTER: usize = EVENTS / 3;
/// `delivery_concurrency` of the server under test.
const CONCURRENCY: usize = 8;
/// Calls the delivery engine has in flight at most (`delivery_concurrency` × 4): only
/// these can reach InMoment without their success being recorded before the kill.
const MAX_IN_FLIGHT: usize = CONCURRENCY * 4;

async fn start_server(dir: &std::path::Path, inmoment_url: &str) -> ServerProcess {
    let concurrency = ("INMOMENT_DELIVERY_CONCURRENCY", CONCURRENCY.to_string());
    ServerProcess::start_with(dir, inmoment_url, &[concurrency]).await
}

fn message_id(event: usize) -> String {
    format!("crash-{event}")
}

/// Unique per event, so the sandbox's eligibility checks tell which event they carry.
fn event_name(event: usize) -> String {
    format!("E-{event}")
}

fn events_of(request: usize) -> std::ops::Range<usize> {
    request * PER_REQUEST..(request + 1) * PER_REQUEST
}

fn batch_body(request: usize) -> Vec<u8> {
    let batch: Vec<Value> = events_of(request)
        .map(|i| {
            json!({"type": "track", "messageId": message_id(i),
                   "userId": format!("u-{}", i % 50), "event": event_name(i)})
        })
        .collect();
    serde_json::to_vec(&json!({ "batch": batch })).unwrap()
}

/// The per-event statuses of a 200, or `None` when the request got no full 200 answer.
async fn send(client: &reqwest::Client, url: &str, request: usize) -> Option<Vec<String>> {
    let reply = client
        .post(url)
        .basic_auth(WRITE_KEY, Some(""))
        .header("Content-Type", "application/json")
        .body(batch_body(request))
        .send()
        .await
        .ok()?;
    if reply.status() != 200 {
        return None;
    }
    let body: Value = serde_json::from_slice(&reply.bytes().await.ok()?).ok()?;
    let statuses = body["results"]
        .as_array()?
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default().to_string())
        .collect();
    Some(statuses)
}

/// Sends every request from [`SENDERS`] concurrent tasks and kills the server once
/// [`KILL_AFTER`] events were answered; returns each request's answer.
async fn send_and_kill(server: &mut ServerProcess) -> Vec<Option<Vec<String>>> {
    let url = format!("{}/v1/batch", server.base_url());
    let client = clients::http();
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(Notify::new());
    let outcomes = Arc::new(Mutex::new(vec![None; REQUESTS]));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (url, client, next, answered, kill, outcomes) = (
            url.clone(),
            client.clone(),
            next.clone(),
            answered.clone(),
            kill.clone(),
            outcomes.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let request = next.fetch_add(1, Ordering::Relaxed);
                if request >= REQUESTS {
                    return;
                }
                let outcome = send(&client, &url, request).await;
                if outcome.is_some() {
                    let before = answered.fetch_add(PER_REQUEST, Ordering::Relaxed);
                    if before < KILL_AFTER && before + PER_REQUEST >= KILL_AFTER {
                        kill.notify_one();
                    }
                }
                outcomes.lock().unwrap()[request] = outcome;
            }
        }));
    }
    tokio::time::timeout(PATIENCE, kill.notified())
        .await
        .unwrap_or_else(|_| panic!("{KILL_AFTER} events were never answered:\n{}", server.log()));
    server.sigkill();
    for sender in senders {
        sender.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    outcomes
}

/// Successful eligibility checks per event name.
fn deliveries(sandbox: &Sandbox) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for check in checks(sandbox).iter().filter(|c| c.status == 200) {
        let name = param(check, "event_name").unwrap_or_default().to_string();
        *counts.entry(name).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_answered_200_survive_a_sigkill_once_and_resending_duplicates_nothing() {
    let dir = TempDir::new("crash");
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut server = start_server(dir.path(), &sandbox.base_url()).await;
    let outcomes = send_and_kill(&mut server).await;

    // Right after the kill, before anything could repair the store.
    let (seen, calls) = {
        let store = StoreView::open(dir.path());
        assert_eq!(store.dead_letters(), 0);
        (store.seen(), store.pending_by_message())
    };
    let delivered_before = deliveries(&sandbox);
    let answered: HashSet<String> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, outcome)| outcome.is_some())
        .flat_map(|(request, _)| events_of(request).map(message_id))
        .collect();
    for (request, outcome) in outcomes.iter().enumerate() {
        if let Some(statuses) = outcome {
            assert_eq!(
                statuses,
                &vec!["accepted"; PER_REQUEST],
                "request {request}"
            );
        }
    }
    let lost: Vec<&String> = answered.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(lost.is_empty(), "answered 200 but not stored: {lost:?}");
    let all: HashSet<String> = (0..EVENTS).map(message_id).collect();
    assert!(seen.is_subset(&all), "the store has ids nobody sent");
    for id in &seen {
        let pending = calls.get(id).copied().unwrap_or(0);
        assert!(pending <= 1, "{id} is stored {pending} times");
        let name = event_name(id["crash-".len()..].parse().unwrap());
        assert!(
            pending == 1 || delivered_before.get(&name).copied().unwrap_or(0) == 1,
            "{id} is neither pending nor delivered"
        );
    }

    // The client re-sends what got no answer, then (to prove dedup) everything else too.
    let mut server = start_server(dir.path(), &sandbox.base_url()).await;
    let url = format!("{}/v1/batch", server.base_url());
    let client = clients::http();
    let (unanswered, answered_requests): (Vec<usize>, Vec<usize>) =
        (0..REQUESTS).partition(|r| outcomes[*r].is_none());
    let mut accepted_on_resend = HashSet::new();
    for request in unanswered.iter().chain(&answered_requests).copied() {
        let statuses = send(&client, &url, request)
            .await
            .unwrap_or_else(|| panic!("request {request} failed after the restart"));
        for (event, status) in events_of(request).zip(statuses) {
            let id = message_id(event);
            let expected = if seen.contains(&id) {
                "duplicate"
            } else {
                "accepted"
            };
            assert_eq!(status, expected, "{id} re-sent after the restart");
            if status == "accepted" {
                accepted_on_resend.insert(id);
            }
        }
    }

    // Every event reached InMoment (some twice, see below); stopped, the server has
    // recorded the results of everything it had in flight.
    let mut names = HashSet::new();
    let mut counted = 0;
    clients::wait_for_checks(&sandbox, "every event delivered", |checks| {
        for check in &checks[counted.min(checks.len())..] {
            if check.status == 200 {
                names.insert(param(check, "event_name").unwrap_or_default().to_string());
            }
        }
        counted = checks.len();
        names.len() == EVENTS
    })
    .await;
    server.stop().await;
    let store = StoreView::open(dir.path());
    assert_eq!(store.pending(), 0, "every call delivered");
    assert_eq!(store.dead_letters(), 0);
    assert_eq!(store.seen(), all, "every event stored after the re-send");
    let delivered = deliveries(&sandbox);
    let mut redelivered = 0;
    for event in 0..EVENTS {
        let id = message_id(event);
        let times = delivered.get(&event_name(event)).copied().unwrap_or(0);
        // A second delivery is allowed only for a call that was still pending at the
        // kill: InMoment may have answered it just before the process died.
        let allowed = 1 + calls.get(&id).copied().unwrap_or(0);
        assert!(
            (1..=allowed).contains(&times),
            "{id} delivered {times} times (at most {allowed} allowed)"
        );
        redelivered += times - 1;
    }
    assert!(
        redelivered <= MAX_IN_FLIGHT,
        "{redelivered} calls delivered twice; at most {MAX_IN_FLIGHT} can be in flight"
    );

    let stored_unanswered = seen.difference(&answered).count();
    println!(
        "crash figures: sent {EVENTS} events in {REQUESTS} requests; answered 200 before the kill: {}; \
         stored at the kill: {} ({stored_unanswered} of them unanswered); lost: 0; \
         pending calls at the kill: {}; delivered before the kill: {}; \
         re-sent {} events, accepted again {} (all unstored), duplicates stored: 0; \
         delivered twice because the kill cut off their settlement: {redelivered}",
        answered.len(),
        seen.len(),
        calls.values().sum::<usize>(),
        delivered_before.values().sum::<usize>(),
        EVENTS,
        accepted_on_resend.len(),
    );
    server.sigkill();
}
