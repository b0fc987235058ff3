//! SIGKILL between an eligible answer and the email survey call: the decision was
//! committed with the answer, so after the restart the survey goes out exactly once and
//! the eligibility check is not asked again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

mod clients;

use std::time::Duration;

use clients::{http, ServerProcess, TempDir, WRITE_KEY};
use inmoment_sandbox::{Fault, RecordedRequest, Sandbox, SandboxConfig};
use serde_json::json;

fn survey_calls(requests: &[RecordedRequest]) -> usize {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/email_survey"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_decided_before_a_sigkill_is_sent_once_after_the_restart() {
    let dir = TempDir::new("crash-survey");
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let url = sandbox.base_url();
    let env = [
        ("INMOMENT_CLIENT_ID", "demo-client-id".to_string()),
        ("INMOMENT_SURVEY_CHANNEL", "email".to_string()),
        ("INMOMENT_SURVEY_IMMEDIATELY", "true".to_string()),
    ];
    // InMoment refuses the survey call until the fault is cleared: the survey waits in
    // the store, decided, when the process dies.
    sandbox.add_fault(Fault::status("email_survey.create", 503).times(None));
    let mut server = ServerProcess::start_with(dir.path(), &url, &env).await;
    let batch = json!({"batch": [
        {"type": "identify", "userId": "ann", "messageId": "i-ann", "traits": {"email": "ann@example.com"}},
        {"type": "track", "userId": "ann", "messageId": "t-ann", "event": "Invoice Paid"},
    ]});
    let answer = http()
        .post(format!("{}/v1/batch", server.base_url()))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    let tried = sandbox
        .wait_until(Duration::from_secs(10), |requests| {
            survey_calls(requests) >= 1
        })
        .await;
    assert!(tried, "the survey was never tried:\n{}", server.log());
    server.sigkill();

    sandbox.reset(); // the fault and the log go; accounts stay
    let mut server = ServerProcess::start_with(dir.path(), &url, &env).await;
    let sent = sandbox
        .wait_until(Duration::from_secs(10), |requests| {
            survey_calls(requests) >= 1
        })
        .await;
    assert!(
        sent,
        "the survey was not sent after the restart:\n{}",
        server.log()
    );
    server.stop().await;
    let requests = sandbox.requests();
    assert_eq!(survey_calls(&requests), 1, "sent more than once");
    let checks = requests
        .iter()
        .filter(|r| r.path == "/eligible.json")
        .count();
    assert_eq!(
        checks, 0,
        "the eligibility answer was asked again after the restart"
    );
    let surveys = sandbox.state()["accounts"]["NPS-d3m0d3m0"]["email_surveys"].clone();
    assert_eq!(surveys.as_array().map(Vec::len), Some(1), "{surveys}");
    assert_eq!(surveys[0]["email"], "ann@example.com");
}
