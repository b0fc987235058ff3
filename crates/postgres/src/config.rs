//! Settings of the PostgreSQL journal, and why it could not start.

use std::time::Duration;

/// How the shared journal is reached and shared.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database` (libpq's URL form).
    pub url: String,
    /// This node's name in the lease table; unique per process.
    pub node_id: String,
    /// Partitions delivery is split into; fixed when the schema is created (the stored
    /// number wins over a different setting, with a warning).
    pub partitions: u32,
    /// A dead node's partitions are taken over within this (lease time plus one heartbeat).
    pub takeover_within: Duration,
    /// Connections to PostgreSQL.
    pub pool_size: usize,
    /// A repeated `messageId` from one source within this window is not stored again.
    pub dedup_window: Duration,
    /// Delivered events are kept this long for `queue remap` (zero: not kept).
    pub keep_delivered: Duration,
    /// Above this many events waiting for delivery, ingest answers 503.
    pub max_pending: u64,
    /// Delivery looks for events accepted by other nodes this often when idle.
    pub poll_every: Duration,
}

impl PgConfig {
    pub fn new(url: impl Into<String>) -> PgConfig {
        PgConfig {
            url: url.into(),
            node_id: default_node_id(),
            partitions: 64,
            takeover_within: Duration::from_secs(15),
            pool_size: 16,
            dedup_window: Duration::from_secs(24 * 3600),
            keep_delivered: Duration::from_secs(24 * 3600),
            max_pending: 1_000_000,
            poll_every: Duration::from_millis(100),
        }
    }

    /// How long a lease lasts: four fifths of the takeover bound, the rest is the
    /// heartbeat in which a live node notices and claims it.
    pub fn lease_ttl(&self) -> Duration {
        self.takeover_within * 4 / 5
    }

    /// How often leases are renewed and free partitions claimed.
    pub fn heartbeat(&self) -> Duration {
        self.takeover_within / 5
    }

    /// The longest one delivery may run: a third of the lease, so a call started while
    /// the lease was valid ends before any other node may take the user over.
    pub fn attempt_deadline(&self) -> Duration {
        self.lease_ttl() / 3
    }
}

/// `host-pid-nanos`: unique per process, readable in `queue stats`.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    let nanos = chrono::Utc::now().timestamp_subsec_nanos();
    format!("{host}-{}-{nanos:x}", std::process::id())
}

/// Why the PostgreSQL journal could not start; each says what to check.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("store `{url}`: not a PostgreSQL URL ({reason}); expected postgres://user:password@host:5432/database")]
    Url { url: String, reason: String },
    #[error("store `{url}`: cannot connect ({reason}); is PostgreSQL running and the URL right?")]
    Connect { url: String, reason: String },
    #[error("store `{url}`: cannot create or migrate the schema: {reason}")]
    Schema { url: String, reason: String },
    #[error("store `{url}`: TLS (sslmode=require): {reason}")]
    Tls { url: String, reason: String },
    #[error("takeover_within {within_ms} ms is too short: leases need at least 500 ms")]
    Takeover { within_ms: u128 },
}

impl PgError {
    /// The URL with any password replaced, for messages.
    pub(crate) fn redact(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let Some((credentials, host)) = rest.split_once('@') else {
            return url.to_string();
        };
        match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        }
    }
}
