//! The tower stack each request's events go through, assembled in one place.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::layer::layer_fn;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Service, ServiceBuilder};
use tracing::instrument::Instrumented;
use tracing::Instrument as _;

use super::check::Check;
use super::dispatch::Dispatch;
use super::{ItemResult, Submission};
use inmoment_config::Config;
use inmoment_store::accept::Acceptor;

/// The assembled stack: a request's events in, one result per event out.
pub type Pipeline = BoxCloneSyncService<Submission, Vec<ItemResult>, BoxError>;

/// Builds the stack. The order, outside in, and why:
///
/// 1. **span**: first, so every log line below (rejections, shedding, store errors)
///    carries the source name and, for one event, its `messageId` and type;
/// 2. **payload check**: validates and enriches events before they cost a store slot or
///    time budget; a bad event is rejected alone, cheaply;
/// 3. **timeout**: bounds how long a client waits for the store (`request_timeout_ms`);
///    it sits outside the limit because shedding never waits;
/// 4. **load shedding + concurrency limit**: at most `max_concurrent_requests` requests
///    in the store at once; one more is answered 503 with `Retry-After` at once instead of
///    queueing, since a queue would only turn into timeouts;
/// 5. **dispatch**: hands the events to the [`Acceptor`] (which finds each handler
///    through the registry and stores the calls).
pub fn pipeline(config: &Config, acceptor: Arc<dyn Acceptor>) -> Pipeline {
    let service = ServiceBuilder::new()
        .layer(layer_fn(Traced::new))
        .layer(layer_fn(Check::new))
        .timeout(config.request_timeout)
        .load_shed()
        .concurrency_limit(config.max_concurrent_requests)
        .service(Dispatch::new(acceptor));
    BoxCloneSyncService::new(service)
}

/// Runs the rest of the stack inside a span naming the source (never the write key).
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S> Traced<S> {
    pub fn new(inner: S) -> Traced<S> {
        Traced { inner }
    }
}

impl<S: Service<Submission>> Service<Submission> for Traced<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, submission: Submission) -> Self::Future {
        let span = tracing::info_span!(
            "events",
            source = %submission.source.name,
            events = submission.items.len(),
            message_id = tracing::field::Empty,
            event_type = tracing::field::Empty,
        );
        let future = {
            let _entered = span.enter();
            self.inner.call(submission)
        };
        future.instrument(span)
    }
}
