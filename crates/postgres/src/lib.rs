//! The journal on PostgreSQL, for several `serve` nodes behind one load balancer.
//!
//! Any node accepts any event: ingest appends it in one statement that also records its
//! `messageId` under a unique key, so de-duplication holds across nodes. Delivery is split
//! into a fixed number of partitions (a stable hash of source and user); each partition is
//! delivered by the one node holding its lease (see `leases.rs`), so a user's events go out
//! in order from one place. A node that dies stops renewing; its partitions are claimed by
//! the others within `takeover_within`, and results it might still write are fenced off by
//! the lease check in the same transaction.
//!
//! Journal ids follow commit order (see `schema.rs`), so delivery reads it with a plain
//! cursor and no event committed late is skipped.

mod accept;
mod admin;
mod config;
mod journal;
mod leases;
mod partition;
mod schema;
mod store;
mod tls;

pub use admin::{NodeLag, PartitionOwner, PgAdmin};
pub use config::{PgConfig, PgError};
pub use partition::partition_of;
pub use store::PgStore;
