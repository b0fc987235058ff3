//! The delivery stack and its retry policy against an in-process fake service, with paused
//! tokio time: exact attempt counts, backoff bounds, retry-after, per-attempt timeouts and
//! the shared limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use inmoment_client::{
    delivery_stack, Delivered, DeliveryError, DeliveryPolicy, RetryConfig, StackConfig,
};
use inmoment_core::{EndUserRef, InMomentCall, Params};
use tokio::time::Instant;
use tower::{service_fn, Service, ServiceExt};

fn call() -> InMomentCall {
    InMomentCall::UpsertEndUser {
        message_id: "m-1".into(),
        end_user: EndUserRef {
            external_id: Some("u1".into()),
            email: None,
        },
        fields: Params::new(),
    }
}

fn delivered() -> Delivered {
    Delivered {
        kind: "upsert_end_user",
        status: 200,
        eligibility: None,
        end_user_id: Some(1),
        attempts: 1,
    }
}

fn server_error() -> DeliveryError {
    DeliveryError::Retryable {
        status: Some(503),
        reason: "InMoment had a server error (HTTP 503)".into(),
        retry_after: None,
    }
}

fn config(full_jitter: bool) -> StackConfig {
    StackConfig {
        rate_limit_per_minute: None,
        concurrency: 4,
        attempt_timeout: Duration::from_secs(30),
        retry: RetryConfig {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(600),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            full_jitter,
        },
    }
}

/// A fake InMoment: answers call number `n` (from 0) with `script(n)` after `delay(n)`,
/// and records when each call started.
#[derive(Clone)]
struct Fake {
    starts: Arc<Mutex<Vec<Instant>>>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            starts: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn service(
        &self,
        script: impl Fn(usize) -> Result<Delivered, DeliveryError> + Clone + Send + Sync + 'static,
        delay: impl Fn(usize) -> Duration + Clone + Send + Sync + 'static,
    ) -> impl Service<
        InMomentCall,
        Response = Delivered,
        Error = DeliveryError,
        Future = impl Send + 'static,
    > + Clone
           + Send
           + 'static {
        let starts = self.starts.clone();
        service_fn(move |_call: InMomentCall| {
            let n = {
                let mut starts = starts.lock().unwrap();
                starts.push(Instant::now());
                starts.len() - 1
            };
            let (script, delay) = (script.clone(), delay.clone());
            async move {
                tokio::time::sleep(delay(n)).await;
                script(n)
            }
        })
    }

    fn calls(&self) -> usize {
        self.starts.lock().unwrap().len()
    }

    /// Time between consecutive call starts.
    fn gaps(&self) -> Vec<Duration> {
        let starts = self.starts.lock().unwrap();
        starts.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

fn no_delay(_: usize) -> Duration {
    Duration::ZERO
}

#[tokio::test(start_paused = true)]
async fn two_server_errors_then_success_take_three_attempts() {
    let fake = Fake::new();
    let inner = fake.service(
        |n| {
            if n < 2 {
                Err(server_error())
            } else {
                Ok(delivered())
            }
        },
        no_delay,
    );
    let out = delivery_stack(inner, &config(false))
        .oneshot(call())
        .await
        .unwrap();
    assert_eq!(out.attempts, 3);
    assert_eq!(fake.calls(), 3);
    // Without jitter: 100 ms, then 200 ms.
    assert_eq!(
        fake.gaps(),
        vec![Duration::from_millis(100), Duration::from_millis(200)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_tried_once() {
    let fake = Fake::new();
    let inner = fake.service(
        |_| {
            Err(DeliveryError::Permanent {
                status: 400,
                body: "{}".into(),
                reason: "bad".into(),
            })
        },
        no_delay,
    );
    let err = delivery_stack(inner, &config(false))
        .oneshot(call())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_attempts_and_hand_back_the_last_error() {
    let fake = Fake::new();
    let inner = fake.service(|_| Err(server_error()), no_delay);
    let err = delivery_stack(inner, &config(true))
        .oneshot(call())
        .await
        .unwrap_err();
    assert_eq!(err, server_error());
    assert_eq!(fake.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_never_exceed_the_cap() {
    let fake = Fake::new();
    let mut cfg = config(true);
    cfg.retry.max_attempts = 12;
    let inner = fake.service(|_| Err(server_error()), no_delay);
    delivery_stack(inner, &cfg)
        .oneshot(call())
        .await
        .unwrap_err();
    assert_eq!(fake.calls(), 12);
    for gap in fake.gaps() {
        assert!(gap <= Duration::from_millis(400), "{gap:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_at_least_its_retry_after() {
    let fake = Fake::new();
    let inner = fake.service(
        |n| {
            if n == 0 {
                Err(DeliveryError::Retryable {
                    status: Some(429),
                    reason: "rate limit".into(),
                    retry_after: Some(Duration::from_secs(5)),
                })
            } else {
                Ok(delivered())
            }
        },
        no_delay,
    );
    let out = delivery_stack(inner, &config(true))
        .oneshot(call())
        .await
        .unwrap();
    assert_eq!(out.attempts, 2);
    // Far above the 400 ms backoff cap: the retry-after wins.
    assert!(
        fake.gaps()[0] >= Duration::from_secs(5),
        "{:?}",
        fake.gaps()
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_max_elapsed_is_handed_back_for_later() {
    let fake = Fake::new();
    let wait = Duration::from_secs(3600);
    let inner = fake.service(
        move |_| {
            Err(DeliveryError::Retryable {
                status: Some(429),
                reason: "rate limit".into(),
                retry_after: Some(wait),
            })
        },
        no_delay,
    );
    let err = delivery_stack(inner, &config(false))
        .oneshot(call())
        .await
        .unwrap_err();
    assert_eq!(fake.calls(), 1);
    assert_eq!(err.retry_after(), Some(wait));
}

#[tokio::test(start_paused = true)]
async fn no_attempt_starts_after_max_elapsed() {
    let fake = Fake::new();
    let mut cfg = config(false);
    cfg.retry.max_attempts = 100;
    cfg.retry.initial_backoff = Duration::from_secs(1);
    cfg.retry.max_backoff = Duration::from_secs(1);
    cfg.retry.max_elapsed = Duration::from_millis(2500);
    let inner = fake.service(|_| Err(server_error()), no_delay);
    delivery_stack(inner, &cfg)
        .oneshot(call())
        .await
        .unwrap_err();
    // Failures at 0 s, 1 s and 2 s; a third wait would end at 3 s > 2.5 s.
    assert_eq!(fake.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_cut_by_the_timeout_and_retried() {
    let fake = Fake::new();
    let mut cfg = config(false);
    cfg.attempt_timeout = Duration::from_secs(1);
    let inner = fake.service(
        |_| Ok(delivered()),
        |n| {
            if n == 0 {
                Duration::from_secs(60)
            } else {
                Duration::ZERO
            }
        },
    );
    let started = Instant::now();
    let out = delivery_stack(inner, &cfg).oneshot(call()).await.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(fake.calls(), 2);
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn the_policy_counts_attempts_into_the_outcome() {
    let fake = Fake::new();
    let inner = fake.service(
        |n| {
            if n < 1 {
                Err(server_error())
            } else {
                Ok(delivered())
            }
        },
        no_delay,
    );
    let policy = DeliveryPolicy::new(config(false).retry);
    let out = tower::retry::Retry::new(policy, inner)
        .oneshot(call())
        .await
        .unwrap();
    assert_eq!(out.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_is_shared_by_clones() {
    let fake = Fake::new();
    let mut cfg = config(false);
    cfg.rate_limit_per_minute = Some(2);
    let inner = fake.service(|_| Ok(delivered()), no_delay);
    let stack = delivery_stack(inner, &cfg);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let stack = stack.clone();
        tasks.push(tokio::spawn(async move { stack.oneshot(call()).await }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let gaps = fake.gaps();
    let total: Duration = gaps.iter().sum();
    assert!(total >= Duration::from_secs(60), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn the_concurrency_limit_is_shared_by_clones() {
    let fake = Fake::new();
    let mut cfg = config(false);
    cfg.concurrency = 1;
    let inner = fake.service(|_| Ok(delivered()), |_| Duration::from_secs(1));
    let stack = delivery_stack(inner, &cfg);
    let (a, b) = tokio::join!(stack.clone().oneshot(call()), stack.oneshot(call()));
    a.unwrap();
    b.unwrap();
    assert!(
        fake.gaps()[0] >= Duration::from_secs(1),
        "{:?}",
        fake.gaps()
    );
}
