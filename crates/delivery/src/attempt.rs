//! What one delivery attempt can come to, independent of how it was sent.

use std::time::Duration;

use async_trait::async_trait;
use inmoment_core::InMomentCall;

/// The result of sending one call once (after any in-process retries of the sender).
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// InMoment answered success; `eligible` is the eligibility server's answer.
    Delivered { status: u16, eligible: Option<bool> },
    /// Worth trying again later (connection errors, timeouts, 408, 429, 5xx but 501).
    Retry {
        status: Option<u16>,
        reason: String,
        /// InMoment asked for this pause (`Retry-After`, `X-Rate-Limit-Reset`).
        retry_after: Option<Duration>,
    },
    /// Will not succeed as it is (other 4xx): park it with the reason.
    Permanent { status: Option<u16>, reason: String },
}

/// Sends one call for one source (each source may be its own InMoment account).
#[async_trait]
pub trait Deliver: Send + Sync + 'static {
    async fn deliver(&self, source: &str, call: &InMomentCall) -> Attempt;
}

/// Hears about every settled attempt, for metrics and logs.
pub trait DeliveryObserver: Send + Sync + 'static {
    /// `outcome` is `delivered`, `retry` or `dead`; `age` is accepted → now.
    fn settled(&self, kind: &str, outcome: &str, status: Option<u16>, age: Duration);
    /// The eligibility server's answer to a delivered check.
    fn eligibility(&self, _eligible: bool) {}
    /// An event that made no call, with why (e.g. `duplicate_page`), decided at delivery.
    fn skipped(&self, _event_type: &str, _reason: &str) {}
    /// Events waiting in the store after a settlement.
    fn queue_depth(&self, pending: u64);
    /// Calls parked as dead letters (refreshed after each dead letter and periodically).
    fn dead_letters(&self, _count: u64) {}
    /// An eligibility answer of a source that surveys by email was decided: `sent` (the
    /// survey is queued) or why not (`not_eligible`, `no_email`, `surveyed_recently`,
    /// `event_not_selected`).
    fn email_survey(&self, _decision: &str) {}
}

/// For tests and tools that need no metrics.
pub struct NoObserver;

impl DeliveryObserver for NoObserver {
    fn settled(&self, _: &str, _: &str, _: Option<u16>, _: Duration) {}
    fn queue_depth(&self, _: u64) {}
}
