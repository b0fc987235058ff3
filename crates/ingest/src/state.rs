//! What every handler needs, built once from the [`Config`] and passed with `with_state`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tower::ServiceExt as _;

use super::auth::WriteKeys;
use super::error::ApiError;
use super::log_budget::LogBudget;
use super::stack::{pipeline, Pipeline};
use super::{respond, ItemResult, Submission};
use crate::metrics::Metrics;
use inmoment_config::Config;
use inmoment_store::accept::Acceptor;

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// Log lines a second about refused requests and rejected events, across all requests.
const LOG_LINES_PER_SECOND: u32 = 20;

/// The shared state of the HTTP app: one `Arc`, since axum clones the state for every
/// request.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

/// What [`AppState`] shares.
pub struct AppParts {
    pub config: Arc<Config>,
    pub keys: Arc<WriteKeys>,
    pub acceptor: Arc<dyn Acceptor>,
    pub metrics: Arc<Metrics>,
    /// Shared by every log line about a refused request or a rejected event.
    pub log_budget: Arc<LogBudget>,
    pipeline: Pipeline,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(config: Arc<Config>, acceptor: Arc<dyn Acceptor>, metrics: Arc<Metrics>) -> Self {
        AppState(Arc::new(AppParts {
            keys: Arc::new(WriteKeys::new(&config)),
            pipeline: pipeline(&config, acceptor.clone()),
            config,
            acceptor,
            metrics,
            log_budget: Arc::new(LogBudget::new(LOG_LINES_PER_SECOND)),
            shutting_down: AtomicBool::new(false),
        }))
    }

    /// Runs one request's events through the stack, then counts and logs the results.
    pub async fn submit(&self, submission: Submission) -> Result<Vec<ItemResult>, ApiError> {
        let source = submission.source.clone();
        match self.pipeline.clone().oneshot(submission).await {
            Ok(results) => {
                respond::record(&self.metrics, &self.log_budget, &source.name, &results);
                Ok(results)
            }
            Err(error) => {
                // Logged once, with the answer, by the app's `measure` layer.
                let error = respond::stack_error(&error);
                self.metrics.handler_error(error.code.as_str());
                Err(error)
            }
        }
    }

    /// From now on `/readyz` answers 503, so load balancers stop sending.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Ready: configured, not shutting down, and the acceptor can take events.
    pub fn ready(&self) -> bool {
        !self.shutting_down.load(Ordering::Relaxed) && self.acceptor.ready()
    }
}
