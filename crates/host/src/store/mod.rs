//! The embedded durable store (SQLite, WAL, synchronous commits) behind `serve`.
//!
//! One writer thread owns the write connection and commits many requests in one
//! transaction (group commit), so durability costs one fsync per group, not per event.
//! Accepting an event, de-duplicating it, mapping it with the user's state and storing its
//! InMoment calls happen in that one transaction: a 200 means all of it is on disk.

mod acceptor;
mod admin;
mod dedup;
mod reader;
mod schema;
mod writer;

pub use acceptor::Store;
pub use admin::{Admin, Replayed, Selection};
pub use reader::{DeadLetter, PendingRow, Reader, SourceStats, StoredCall};
pub use writer::{Settlement, StoreConfig, StoreError};
