//! The sandbox clock: real time (or a frozen start) plus an offset that tests
//! move forward, so token expiry and rate-limit windows need no sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, FixedOffset, Offset, Utc};

/// Unix-seconds clock shared by every part of the sandbox.
#[derive(Debug)]
pub struct Clock {
    frozen_at: Option<i64>,
    offset: AtomicI64,
}

impl Clock {
    /// A clock frozen at `frozen_at`, or following real time when `None`.
    pub fn new(frozen_at: Option<i64>) -> Self {
        Self {
            frozen_at,
            offset: AtomicI64::new(0),
        }
    }

    /// Current sandbox time in unix seconds.
    pub fn now(&self) -> i64 {
        let base = self.frozen_at.unwrap_or_else(real_now);
        base + self.offset.load(Ordering::SeqCst)
    }

    /// Moves the clock by `secs` (negative moves it back).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Renders unix seconds the way InMoment's read responses do:
/// `2018-01-02 23:03:41 -0800` (`%Y-%m-%d %H:%M:%S %z`).
pub fn render(secs: i64, utc_offset_minutes: i32) -> String {
    let offset =
        FixedOffset::east_opt(utc_offset_minutes.saturating_mul(60)).unwrap_or_else(|| Utc.fix());
    match DateTime::from_timestamp(secs, 0) {
        Some(t) => t
            .with_timezone(&offset)
            .format("%Y-%m-%d %H:%M:%S %z")
            .to_string(),
        None => secs.to_string(),
    }
}
