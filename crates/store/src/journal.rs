//! What delivery needs of a store, as an interface: the embedded SQLite [`super::Store`] is
//! its first implementation, and a shared database can be the next (several nodes, one
//! journal). Nothing here names SQLite.

use std::collections::HashMap;

use async_trait::async_trait;
use inmoment_core::{Registry, UserState};

use super::reader::PendingRow;
use super::writer::Settlement;

/// Why the journal could not answer; delivery tries again shortly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("the store could not be read: {0}")]
    Read(String),
    #[error("the store could not record delivery results: {0}")]
    Write(String),
}

/// The journal of accepted events, as delivery sees it.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// The handlers events are checked and mapped with.
    fn registry(&self) -> &Registry;

    /// Rows waiting for delivery (events and replayed calls), as last committed.
    fn pending(&self) -> u64;

    /// Resolves after a commit that appended rows, so delivery need not poll.
    async fn new_work(&self);

    /// Rows with an id above `cursor`, oldest first, at most `limit`.
    async fn scan_after(&self, cursor: i64, limit: usize) -> Result<Vec<PendingRow>, JournalError>;

    /// A user's oldest row with an id in `from..=upto`.
    async fn next_of_user(
        &self,
        source: &str,
        user_key: &str,
        from: i64,
        upto: i64,
    ) -> Result<Option<PendingRow>, JournalError>;

    /// A user's state as their last finished event left it (the default for a new user).
    async fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, JournalError>;

    /// Several users' states at once, for a store where each read is a round trip (a
    /// shared database); `None`: read them one at a time with [`Journal::user_state`].
    async fn user_states(
        &self,
        _users: &[(String, String)],
    ) -> Result<Option<HashMap<(String, String), UserState>>, JournalError> {
        Ok(None)
    }

    /// Records delivery results; returns once they are durable.
    async fn settle(&self, updates: Vec<Settlement>) -> Result<(), JournalError>;

    /// Dead letters kept, for the metrics.
    async fn dead_letter_count(&self) -> Result<u64, JournalError>;

    /// Whether this process may start delivering the user's rows now. A journal shared by
    /// several nodes hands each user to one node at a time; the embedded store has one.
    fn owns(&self, _source: &str, _user_key: &str) -> bool {
        true
    }

    /// True once after this process was handed rows it did not own (another node's users
    /// taken over): they may lie behind the scan, which must start again.
    fn take_rescan(&self) -> bool {
        false
    }
}
