//! The tower stack calls go through, composed in one place.

use std::time::Duration;

use inmoment_core::InMomentCall;
use tower::buffer::Buffer;
use tower::limit::RateLimit;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

use crate::config::StackConfig;
use crate::error::DeliveryError;
use crate::outcome::Delivered;
use crate::retry::DeliveryPolicy;

/// The composed stack: a cloneable service whose clones share every limit.
pub type DeliveryStack = BoxCloneService<InMomentCall, Delivered, DeliveryError>;

/// Wraps `inner` (normally an [`crate::InMomentClient`]). Outside in:
///
/// 1. **Rate limit** (optional, `rate_limit_per_minute`): a fixed ceiling on new calls.
///    tower's `RateLimit` keeps its window per instance, so it sits behind a `Buffer`
///    and every clone shares one window.
/// 2. **Concurrency limit**: calls in flight. It is outside retry, so a call keeps its
///    slot while it backs off and retries cannot flood InMoment.
/// 3. **Retry** ([`DeliveryPolicy`]): backoff with jitter, InMoment's retry-after, max
///    attempts and elapsed time. It retries our own `Clone` [`InMomentCall`], never a
///    built HTTP request, so every attempt is rebuilt (with a fresh token).
/// 4. **Timeout per attempt** (`attempt_timeout`): inside retry, so a slow attempt is
///    cut and retried rather than ending the call.
/// 5. **The client**, whose `poll_ready` also waits out InMoment's own rate-limit window
///    before each attempt.
///
/// With `rate_limit_per_minute` set, call this inside a tokio runtime: the shared window
/// runs in a spawned task.
pub fn delivery_stack<S>(inner: S, config: &StackConfig) -> DeliveryStack
where
    S: Service<InMomentCall, Response = Delivered, Error = DeliveryError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let concurrency = config.concurrency.max(1);
    let retried = ServiceBuilder::new()
        .concurrency_limit(concurrency)
        .retry(DeliveryPolicy::new(config.retry.clone()))
        .map_err(attempt_error(config.attempt_timeout))
        .timeout(config.attempt_timeout)
        .service(inner);
    match config.rate_limit_per_minute.filter(|n| *n > 0) {
        None => BoxCloneService::new(retried),
        Some(per_minute) => {
            let limited = RateLimit::new(
                retried,
                tower::limit::rate::Rate::new(u64::from(per_minute), Duration::from_secs(60)),
            );
            let shared = Buffer::new(limited, concurrency);
            BoxCloneService::new(shared.map_err(stack_error))
        }
    }
}

/// The timeout layer boxes errors; give the retry policy our own type back.
fn attempt_error(timeout: Duration) -> impl Fn(BoxError) -> DeliveryError + Clone {
    move |error| {
        if error.is::<tower::timeout::error::Elapsed>() {
            DeliveryError::Retryable {
                status: None,
                reason: format!(
                    "no answer from InMoment within {} ms (stack.attempt_timeout); raise it if InMoment is just slow",
                    timeout.as_millis()
                ),
                retry_after: None,
            }
        } else {
            stack_error(error)
        }
    }
}

fn stack_error(error: BoxError) -> DeliveryError {
    match error.downcast::<DeliveryError>() {
        Ok(error) => *error,
        Err(other) => DeliveryError::Retryable {
            status: None,
            reason: format!("the delivery stack failed: {other}"),
            retry_after: None,
        },
    }
}
