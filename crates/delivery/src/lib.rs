//! Delivery in its own crate, so the pipeline shows in the tree: it reads the journal
//! only through [`inmoment_store::Journal`] and reports through [`DeliveryObserver`], so
//! it depends on neither the HTTP ingest nor the binary that wires them together.
//!
//! Delivery: takes stored calls to InMoment, one at a time per user (in the order their
//! events were accepted), users in parallel, and settles each result in the store.
//!
//! A call leaves the store only after InMoment answered success; a failure is retried on a
//! schedule kept in the store (so a restart resumes it) or parked as a dead letter with
//! its reason. Nothing accepted is dropped.

mod attempt;
mod backoff;
mod engine;
mod inmoment;
mod prepare;
mod survey_batch;

pub use attempt::{Attempt, Deliver, DeliveryObserver, NoObserver};
pub use backoff::{Backoff, Jitter};
pub use engine::{DeliveryConfig, Engine};
pub use inmoment::{Attempts, InMomentDeliver};
pub use prepare::{map_stored, Mapped, Mapping};
pub use survey_batch::{SurveyBatcher, SURVEY_BATCH_WINDOW};
