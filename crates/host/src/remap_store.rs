//! Where `queue remap` reads delivered events and dead letters and queues events again:
//! the embedded store's file, or the shared PostgreSQL journal of several nodes.

use std::path::Path;

use inmoment_core::UserState;
use inmoment_postgres::PgAdmin;
use inmoment_store::{Admin, DeadEvent, DeliveredEvent, Requeue, Selection};

use crate::queue_cmd::{database, QueueError};

/// What remapping needs of a store (see `inmoment_store::Admin` for each).
pub trait RemapStore {
    fn delivered_page(
        &self,
        after_id: i64,
        since_ms: i64,
        until_ms: i64,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveredEvent>, QueueError>;
    fn dead_letter_ids(&self, selection: &Selection) -> Result<Vec<i64>, QueueError>;
    fn dead_events(&self, selection: &Selection) -> Result<(Vec<DeadEvent>, Vec<i64>), QueueError>;
    fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, QueueError>;
    fn requeue(&mut self, events: &[Requeue]) -> Result<usize, QueueError>;
}

/// Opens the store `queue remap` works on: the shared one at `url` when given, else the
/// embedded one in `data_dir`.
pub fn open(data_dir: &Path, url: Option<&str>) -> Result<Box<dyn RemapStore>, QueueError> {
    match url {
        Some(url) => Ok(Box::new(SharedRemap::connect(url)?)),
        None => Ok(Box::new(Admin::open(&database(data_dir)?)?)),
    }
}

impl RemapStore for Admin {
    fn delivered_page(
        &self,
        after_id: i64,
        since_ms: i64,
        until_ms: i64,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveredEvent>, QueueError> {
        Ok(Admin::delivered_page(
            self, after_id, since_ms, until_ms, source, limit,
        )?)
    }
    fn dead_letter_ids(&self, selection: &Selection) -> Result<Vec<i64>, QueueError> {
        Ok(Admin::dead_letter_ids(self, selection)?)
    }
    fn dead_events(&self, selection: &Selection) -> Result<(Vec<DeadEvent>, Vec<i64>), QueueError> {
        Ok(Admin::dead_events(self, selection)?)
    }
    fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, QueueError> {
        Ok(Admin::user_state(self, source, user_key)?)
    }
    fn requeue(&mut self, events: &[Requeue]) -> Result<usize, QueueError> {
        Ok(Admin::requeue(self, events)?)
    }
}

/// The shared journal, through a runtime of its own (the queue commands are synchronous).
pub struct SharedRemap {
    admin: PgAdmin,
    runtime: tokio::runtime::Runtime,
}

impl SharedRemap {
    pub fn connect(url: &str) -> Result<SharedRemap, QueueError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let admin = runtime
            .block_on(PgAdmin::connect(url))
            .map_err(|e| QueueError::Shared(e.to_string()))?;
        Ok(SharedRemap { admin, runtime })
    }
}

impl RemapStore for SharedRemap {
    fn delivered_page(
        &self,
        after_id: i64,
        since_ms: i64,
        until_ms: i64,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeliveredEvent>, QueueError> {
        self.runtime
            .block_on(
                self.admin
                    .delivered_page(after_id, since_ms, until_ms, source, limit),
            )
            .map_err(QueueError::Shared)
    }
    fn dead_letter_ids(&self, selection: &Selection) -> Result<Vec<i64>, QueueError> {
        self.runtime
            .block_on(self.admin.dead_letter_ids(selection))
            .map_err(QueueError::Shared)
    }
    fn dead_events(&self, selection: &Selection) -> Result<(Vec<DeadEvent>, Vec<i64>), QueueError> {
        self.runtime
            .block_on(self.admin.dead_events(selection))
            .map_err(QueueError::Shared)
    }
    fn user_state(&self, source: &str, user_key: &str) -> Result<UserState, QueueError> {
        self.runtime
            .block_on(self.admin.user_state(source, user_key))
            .map_err(QueueError::Shared)
    }
    fn requeue(&mut self, events: &[Requeue]) -> Result<usize, QueueError> {
        self.runtime
            .block_on(self.admin.requeue(events))
            .map_err(QueueError::Shared)
    }
}
