//! Where the HTTP ingest hands events over: an [`Acceptor`] answers only after the events
//! are durably stored (or refuses with a retryable error), so a 200 never loses an event.

use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::{Event, MappingError, SkipReason};

/// One configured source (defined with the configuration).
pub use inmoment_config::Source;

/// What became of one event of an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored durably; delivery maps it when it is the user's turn.
    Stored,
    /// Needs no InMoment call whatever the user's state (no handler for its type, or
    /// InMoment switched off in its `integrations`): answered, not stored.
    Skipped(SkipReason),
    /// Its `messageId` was already accepted from this source within the de-duplication
    /// window: answered as success, not stored twice.
    Duplicate,
    /// The event cannot be mapped (e.g. a response score out of range); nothing was kept.
    Rejected(MappingError),
}

/// Why nothing of a request was kept; the client should retry later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The store is full, unwritable, over its pending limit or shutting down.
    #[error("{reason}")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
}

/// Durable acceptance of already-validated events, in order. Either every event gets an
/// outcome and the stored ones are committed before this returns, or nothing is kept.
#[async_trait]
pub trait Acceptor: Send + Sync + 'static {
    async fn accept(
        &self,
        source: &Source,
        events: Vec<Event>,
    ) -> Result<Vec<EventOutcome>, AcceptError>;

    /// True when the acceptor can take events now (for `/readyz`).
    fn ready(&self) -> bool {
        true
    }
}
