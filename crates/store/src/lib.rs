//! The journal of accepted events, in its own crate so the pipeline shows in the tree:
//! ingest hands events to an [`accept::Acceptor`], delivery reads and settles them through
//! the [`Journal`] interface, and [`Store`] implements both on embedded SQLite.
//!
//! The embedded durable store (SQLite, WAL, synchronous commits) behind `serve`.
//!
//! One writer thread owns the write connection and commits many requests in one
//! transaction (group commit), so durability costs one fsync per group, not per event.
//! The store is a journal of events: a 200 means the event is de-duplicated and on disk;
//! delivery maps it later, with its user's state, under the configuration of that time.

pub mod accept;
mod acceptor;
mod admin;
mod append;
mod dedup;
mod journal;
mod reader;
mod schema;
mod writer;

pub use acceptor::Store;
pub use admin::{Admin, DeadEvent, DeliveredEvent, RemapFrom, Replayed, Requeue, Selection};
pub use journal::{Journal, JournalError};
pub use reader::{DeadLetter, PendingRow, Reader, SourceStats};
pub use writer::{DeadCall, Settlement, StateUpdate, StoreConfig, StoreError};
