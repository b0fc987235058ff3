//! Email surveys after eligible answers (`survey_channel = "email"`), delivered by the
//! real client to the sandbox, on both backends: eligible → exactly one survey; not
//! eligible, no email, an event not selected, or surveyed within the interval → none, each
//! counted with its reason; and a survey decided before a stop is sent once after it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a test failure

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::{Event, InMomentCall};
use inmoment_delivery::{
    Attempt, Attempts, Deliver, DeliveryObserver, Engine, InMomentDeliver, SurveyBatcher,
    SURVEY_BATCH_WINDOW,
};
use inmoment_host::config::{Config, ConfigFlags};
use inmoment_host::service;
use inmoment_sandbox::{AccountConfig, Sandbox, SandboxConfig};
use inmoment_store::accept::Source;
use inmoment_testkit::TempDir;
use journal_support::{Backend, TestJournal};
use serde_json::{json, Value};

mod engine_support;
#[macro_use]
mod journal_support;

/// Counts each survey decision the engine reports.
#[derive(Default)]
struct Decisions(Mutex<HashMap<String, usize>>);

impl DeliveryObserver for Decisions {
    fn settled(&self, _: &str, _: &str, _: Option<u16>, _: Duration) {}
    fn queue_depth(&self, _: u64) {}
    fn email_survey(&self, decision: &str) {
        *self.0.lock().unwrap().entry(decision.into()).or_default() += 1;
    }
}

impl Decisions {
    fn get(&self) -> HashMap<String, usize> {
        self.0.lock().unwrap().clone()
    }
}

/// The sandbox, where only ann (by email) is eligible.
async fn sandbox() -> Sandbox {
    let mut account = AccountConfig::demo();
    account.eligibility.eligible_users = Some(vec!["ann@example.com".into()]);
    Sandbox::start(SandboxConfig {
        accounts: vec![account],
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// Source `web` of the demo account, surveying after "Invoice Paid" at once.
fn config(dir: &Path, sandbox: &Sandbox) -> Config {
    let url = sandbox.base_url();
    let text = format!(
        "eligibility_url = \"{url}\"\napi_url = \"{url}\"\nretry_base_ms = 1\nretry_cap_ms = 5\n\
         [[sources]]\nname = \"web\"\nwrite_key = \"wk-web\"\naccount_token = \"NPS-d3m0d3m0\"\n\
         client_id = \"demo-client-id\"\nsurvey_channel = \"email\"\n\
         survey_events = \"Invoice Paid\"\nsurvey_immediately = \"true\"\n\
         survey_subject = \"How did we do?\"\n"
    );
    let path = dir.join("surveys.toml");
    std::fs::write(&path, text).unwrap();
    Config::load_for_send(Some(&path), &|_| None, &ConfigFlags::default()).unwrap()
}

fn event(value: Value) -> Event {
    Event::from_value(value, None).unwrap()
}

fn identify(id: &str, user: &str, email: &str) -> Event {
    event(
        json!({"type":"identify","messageId":id,"userId":user,"traits":{"email":email,"plan":"pro"}}),
    )
}

fn track(id: &str, user: &str, name: &str) -> Event {
    event(json!({"type":"track","messageId":id,"userId":user,"event":name}))
}

/// Runs delivery as `serve` would (mapping with `config`, sending with `deliver`) until
/// the journal is empty.
async fn deliver<D: Deliver>(
    journal: &TestJournal,
    config: &Config,
    deliver: Arc<D>,
    decisions: Arc<Decisions>,
) {
    let mut delivery = service::delivery_config(config);
    delivery.rescan_every = Duration::from_millis(20);
    let engine = Engine::new(journal.journal(), deliver, decisions, delivery);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(engine.run(async move {
        let _ = stopped.await;
    }));
    let emptied = async {
        while journal.pending_rows().await > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(engine_support::PATIENCE, emptied)
        .await
        .expect("delivery did not empty the journal");
    let _ = stop.send(());
    task.await.unwrap();
}

fn surveys(sandbox: &Sandbox) -> Vec<Value> {
    sandbox.state()["accounts"]["NPS-d3m0d3m0"]["email_surveys"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn web(config: &Config) -> Source {
    config.source("web").unwrap().source.clone()
}

both_backends! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_an_eligible_user_with_an_email_is_surveyed_and_only_once(backend: Backend) {
        let dir = TempDir::new("email-survey");
        let sandbox = sandbox().await;
        let config = config(dir.path(), &sandbox);
        let journal = backend.open("email_survey").await;
        let events = vec![
            identify("i-ann", "ann", "ann@example.com"),
            track("t-ann-1", "ann", "Invoice Paid"),
            identify("i-bob", "bob", "bob@example.com"),
            track("t-bob", "bob", "Invoice Paid"),
            track("t-ann-2", "ann", "Invoice Paid"),
            track("t-ann-3", "ann", "Signed Up"),
            track("t-cy", "cy", "Invoice Paid"),
        ];
        journal.accept(&web(&config), events).await.unwrap();
        let decisions = Arc::new(Decisions::default());
        let sender = Arc::new(InMomentDeliver::from_config(&config, Attempts::Once).unwrap());
        deliver(&journal, &config, sender, decisions.clone()).await;

        let sent = surveys(&sandbox);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["email"], "ann@example.com");
        assert_eq!(sent[0]["external_id"], "ann");
        assert_eq!(sent[0]["subject"], "How did we do?");
        let expected: HashMap<String, usize> = [
            ("sent", 1),
            ("not_eligible", 1),
            ("surveyed_recently", 1),
            ("event_not_selected", 1),
            ("no_email", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(decisions.get(), expected);
        let state = journal.user_state("web", "ann").await;
        assert!(state.last_email_survey_at.is_some(), "the survey time is not in ann's state");
        journal.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_survey_decided_before_a_stop_is_sent_once_after_the_restart(backend: Backend) {
        let dir = TempDir::new("email-survey-restart");
        let sandbox = sandbox().await;
        let config = config(dir.path(), &sandbox);
        let mut journal = backend.open("email_survey_restart").await;
        journal
            .accept(
                &web(&config),
                vec![
                    identify("i-ann", "ann", "ann@example.com"),
                    track("t-ann-1", "ann", "Invoice Paid"),
                ],
            )
            .await
            .unwrap();
        // The first run gets the eligible answer but never reaches InMoment with the
        // survey (as if killed right after committing the answer).
        let real = Arc::new(InMomentDeliver::from_config(&config, Attempts::Once).unwrap());
        let cut = Arc::new(NoSurveys {
            real: real.clone(),
            refused: Mutex::new(0),
        });
        let decisions = Arc::new(Decisions::default());
        let mut delivery = service::delivery_config(&config);
        delivery.rescan_every = Duration::from_millis(20);
        let engine = Engine::new(journal.journal(), cut.clone(), decisions.clone(), delivery);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(engine.run(async move {
            let _ = stopped.await;
        }));
        let decided = async {
            while !decisions.get().contains_key("sent") || *cut.refused.lock().unwrap() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(engine_support::PATIENCE, decided)
            .await
            .expect("no survey was decided");
        let _ = stop.send(());
        task.await.unwrap();
        assert!(surveys(&sandbox).is_empty(), "the survey reached InMoment before the stop");

        journal.reopen().await;
        let again = Arc::new(Decisions::default());
        deliver(&journal, &config, real, again.clone()).await;
        assert_eq!(surveys(&sandbox).len(), 1, "{:?}", surveys(&sandbox));
        assert!(again.get().is_empty(), "the answer was decided again: {:?}", again.get());
        journal.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eligible_users_with_the_same_survey_fields_share_one_call() {
    let dir = TempDir::new("email-survey-batch");
    let mut account = AccountConfig::demo();
    account.eligibility.eligible_users = None; // everyone is eligible
    let sandbox = Sandbox::start(SandboxConfig {
        accounts: vec![account],
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let config = config(dir.path(), &sandbox);
    let journal = Backend::Sqlite.open("email_survey_batch").await;
    let mut events = Vec::new();
    for user in ["ann", "bob", "cy"] {
        events.push(identify(
            &format!("i-{user}"),
            user,
            &format!("{user}@example.com"),
        ));
    }
    for user in ["ann", "bob", "cy"] {
        events.push(track(&format!("t-{user}"), user, "Invoice Paid"));
    }
    journal.accept(&web(&config), events).await.unwrap();
    let real = InMomentDeliver::from_config(&config, Attempts::Once).unwrap();
    // A wider window than serve's, so a busy test machine cannot split the batch.
    let window = SURVEY_BATCH_WINDOW * 5;
    let batched = Arc::new(SurveyBatcher::new(Arc::new(real), window));
    deliver(&journal, &config, batched, Arc::new(Decisions::default())).await;
    assert_eq!(surveys(&sandbox).len(), 3, "{:?}", surveys(&sandbox));
    let calls = sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/email_survey"))
        .count();
    assert_eq!(
        calls, 1,
        "three surveys with the same fields should share one call"
    );
    journal.close().await;
}

/// Delivers everything but email surveys, which fail as if the process died first.
struct NoSurveys {
    real: Arc<InMomentDeliver>,
    refused: Mutex<usize>,
}

#[async_trait]
impl Deliver for NoSurveys {
    async fn deliver(&self, source: &str, call: &InMomentCall) -> Attempt {
        if call.kind() != "email_survey" {
            return self.real.deliver(source, call).await;
        }
        *self.refused.lock().unwrap() += 1;
        Attempt::Retry {
            status: None,
            reason: "the process died".into(),
            retry_after: None,
        }
    }
}
