//! Configuration of `serve` (and of `send` and `map`, which use its account settings):
//! one typed [`Config`], read once at start-up and passed down.
//!
//! Every key can come from the TOML file (`--config`), an environment variable
//! (`INMOMENT_<KEY>`) or a flag (`--<key>`); a flag wins over the environment, which wins
//! over the file, and a key nobody sets takes its default. A bad value stops start-up
//! before anything listens, with a message that names the key and where the value came
//! from. Secrets (`client_secret`, `webhook_secret`, write keys) are [`Secret`]s: their
//! `Debug` and the `--print-config` output never show them.
//!
//! # Adding a key
//!
//! Add one entry to the `keys!` table in keys.rs: its help sentence, kind, default,
//! example value and where `--print-config` reads it. That gives it the variable, the
//! flag, the help, the example line and the printed line. Then read it in
//! validation.rs (`self.number(&key::new_key)?`) into a field of [`Config`], and add a row
//! to the README's Settings table. The tests in tests.rs fail until each of these is done.
//!
//! Modules: keys.rs (the table), layering.rs (file < environment < flags), validation.rs
//! (text to typed values), sources.rs (`[[sources]]`), redaction.rs (`--print-config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod duration;
mod error;
mod keys;
mod layering;
mod redaction;
mod sources;
mod survey;
mod validation;

#[cfg(test)]
mod tests;

pub use duration::{format_duration, parse_duration, DURATION_HINT};
pub use error::ConfigError;
pub use keys::{
    env_name, flag_name, is_key, key, AccountFlags, ConfigFlags, Key, Kind, Show, EXAMPLE, KEYS,
};
pub use redaction::Secret;
pub use sources::{Source, SourceConfig, DEFAULT_SOURCE_NAME};

/// Which web pages' origins may send events from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any origin (`*`).
    Any,
    /// Exactly these origins, lowercase, without a trailing `/`.
    List(Vec<String>),
}

/// How logs are written: `text` for people, `json` for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// How stored calls are sent to InMoment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Calls in flight at once (`delivery_concurrency`).
    pub concurrency: usize,
    /// First retry delay (`retry_base_ms`).
    pub retry_base: Duration,
    /// Longest delay between two attempts (`retry_cap_ms`).
    pub retry_cap: Duration,
    /// Give up (dead-letter) after retrying this long (`retry_max_secs`).
    pub retry_max: Duration,
    /// At most this many InMoment calls per minute (`rate_limit_per_minute`).
    pub rate_limit_per_minute: Option<u32>,
}

/// The whole configuration of `serve`, validated. Each field names its key; defaults and
/// meanings are in the key table (keys.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `listen`.
    pub listen: SocketAddr,
    /// `data_dir`: where the durable store lives.
    pub data_dir: PathBuf,
    /// Every source, at least one; write keys are unique across them.
    pub sources: Vec<SourceConfig>,
    /// `webhook_secret`: when set, `/v1/webhook` requires a valid `X-Signature`.
    pub webhook_secret: Option<Secret>,
    /// `cors_allowed_origins`: any by default, as write keys are public in web pages
    /// anyway, so the origin protects nothing.
    pub cors_allowed_origins: AllowedOrigins,
    /// `max_event_bytes`, decoded (Segment's 32 KB by default).
    pub max_event_bytes: usize,
    /// `max_batch_bytes`, decoded: the `analytics` crate fills 524,288 bytes of events
    /// plus the envelope.
    pub max_batch_bytes: usize,
    /// `max_batch_items`: above Segment's Actions webhook batches of at most 4000; more
    /// is refused with 413.
    pub max_batch_items: usize,
    /// `dedup_window_secs`: a repeated `messageId` within it is not stored twice.
    pub dedup_window: Duration,
    /// `dedup_max_ids`: `messageId`s remembered, ~20 bytes each.
    pub dedup_max_ids: usize,
    /// `keep_delivered`: how long a delivered event is kept for `queue remap`.
    pub keep_delivered: Duration,
    /// `store`: a shared PostgreSQL journal; none, the embedded store in `data_dir`.
    pub store: Option<Secret>,
    /// `partitions`: delivery's partitions on a shared store.
    pub partitions: u32,
    /// `takeover_within`: a stopped node's partitions are taken over within this.
    pub takeover_within: Duration,
    /// `node_id`: this node's name in a shared store's leases.
    pub node_id: Option<String>,
    /// `max_pending_calls`: above it ingest answers 503.
    pub max_pending_calls: u64,
    /// `store_max_bytes`: above it ingest answers 503.
    pub store_max_bytes: Option<u64>,
    /// `max_concurrent_requests`: requests handed to the store at once; more are shed.
    pub max_concurrent_requests: usize,
    /// `request_timeout_ms`: longest wait for a body or for the store.
    pub request_timeout: Duration,
    /// `max_connections`: further ones wait in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// `header_read_timeout_ms`: a connection must deliver a whole request head within
    /// this from when it opens or its previous answer was sent, so a slow client cannot
    /// hold a connection and an idle kept-alive one is closed after it.
    pub header_read_timeout: Duration,
    /// `shutdown_deadline_ms`: how long shutdown waits for in-flight requests.
    pub shutdown_deadline: Duration,
    /// `log_format`.
    pub log_format: LogFormat,
    /// `eligibility_url`: override of the InMoment eligibility base URL.
    pub eligibility_url: Option<String>,
    /// `api_url`: override of the InMoment API base URL.
    pub api_url: Option<String>,
    pub delivery: DeliveryConfig,
}
