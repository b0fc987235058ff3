//! The innermost service of the stack: hands the checked events of one request to the
//! [`Acceptor`] in one call (so they are stored together or not at all) and puts each
//! outcome back at its batch index.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{BoxError, Service};

use super::check::Checked;
use super::error::{ApiError, ErrorCode};
use super::{ItemResult, Status};
use inmoment_store::accept::{Acceptor, EventOutcome};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Calls the acceptor.
#[derive(Clone)]
pub struct Dispatch {
    acceptor: Arc<dyn Acceptor>,
}

impl Dispatch {
    pub fn new(acceptor: Arc<dyn Acceptor>) -> Dispatch {
        Dispatch { acceptor }
    }
}

impl Service<Checked> for Dispatch {
    type Response = Vec<ItemResult>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Vec<ItemResult>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, checked: Checked) -> Self::Future {
        let acceptor = self.acceptor.clone();
        Box::pin(async move {
            let mut results = Vec::with_capacity(checked.slots.len());
            let mut events = Vec::new();
            let mut waiting = Vec::new();
            for slot in checked.slots {
                let status = match slot.event {
                    Ok(event) => {
                        waiting.push(results.len());
                        events.push(event);
                        Status::Accepted
                    }
                    Err(status) => status,
                };
                results.push(ItemResult {
                    kind: slot.kind,
                    message_id: slot.message_id,
                    status,
                });
            }
            if events.is_empty() {
                return Ok(results);
            }
            let count = events.len();
            let outcomes = acceptor.accept(&checked.source, events).await?;
            if outcomes.len() != count {
                return Err(format!(
                    "the acceptor answered {} outcomes for {count} events",
                    outcomes.len()
                )
                .into());
            }
            for (position, outcome) in waiting.into_iter().zip(outcomes) {
                if let Some(result) = results.get_mut(position) {
                    result.status = status_of(outcome, position);
                }
            }
            Ok(results)
        })
    }
}

fn status_of(outcome: EventOutcome, index: usize) -> Status {
    match outcome {
        EventOutcome::Stored => Status::Accepted,
        EventOutcome::Skipped(reason) => Status::Skipped(reason.as_str().to_string()),
        EventOutcome::Duplicate => Status::Duplicate,
        EventOutcome::Rejected(error) => Status::Rejected(
            ApiError::new(ErrorCode::MappingFailed, error.message)
                .at_index(index)
                .at_path(error.path),
        ),
    }
}
