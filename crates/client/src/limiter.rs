//! Slows down before InMoment says 429: once `X-Rate-Limit-Remaining` reaches the floor,
//! requests wait for `X-Rate-Limit-Reset`. One limiter per account, shared by clones.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::headers;

#[derive(Debug, Clone)]
pub(crate) struct Limiter {
    until: Arc<Mutex<Option<Instant>>>,
    floor: u64,
    max_hold: Duration,
}

impl Limiter {
    pub(crate) fn new(floor: u64, max_hold: Duration) -> Limiter {
        Limiter {
            until: Arc::new(Mutex::new(None)),
            floor,
            max_hold,
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Instant>> {
        // A panic elsewhere cannot leave an `Option<Instant>` half-written.
        self.until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The instant new requests may go again, when that is still ahead.
    pub(crate) fn held_until(&self) -> Option<Instant> {
        let now = Instant::now();
        self.slot().filter(|until| *until > now)
    }

    /// Waits out any hold (a hold may be extended while waiting).
    pub(crate) async fn wait(&self) {
        while let Some(until) = self.held_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Reads the rate-limit headers of an answer.
    pub(crate) fn observe(&self, headers: &HeaderMap, now: SystemTime) {
        let Some(remaining) = headers::rate_limit_remaining(headers) else {
            return;
        };
        if remaining > self.floor {
            return;
        }
        if let Some(delay) = headers::rate_limit_reset(headers, now) {
            tracing::debug!(
                remaining,
                hold_ms = delay.as_millis() as u64,
                "Holding InMoment requests until the rate-limit window resets."
            );
            self.hold_for(delay);
        }
    }

    /// Holds every request for `delay` (capped), never shortening an existing hold.
    pub(crate) fn hold_for(&self, delay: Duration) {
        let delay = delay.min(self.max_hold);
        if delay.is_zero() {
            return;
        }
        let until = Instant::now() + delay;
        let mut slot = self.slot();
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::time::UNIX_EPOCH;

    fn answer(remaining: &str, reset_in: u64, now: SystemTime) -> HeaderMap {
        let reset = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + reset_in;
        let mut map = HeaderMap::new();
        map.insert(
            "X-Rate-Limit-Remaining",
            HeaderValue::from_str(remaining).unwrap(),
        );
        map.insert(
            "X-Rate-Limit-Reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        map
    }

    fn whole_second() -> SystemTime {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[tokio::test(start_paused = true)]
    async fn holds_when_the_window_is_used_up_until_the_reset() {
        let limiter = Limiter::new(0, Duration::from_secs(120));
        let now = whole_second();
        limiter.observe(&answer("3", 5, now), now);
        assert!(limiter.held_until().is_none());
        let shared = limiter.clone();
        limiter.observe(&answer("0", 5, now), now);
        let start = Instant::now();
        shared.wait().await;
        assert!(start.elapsed() >= Duration::from_secs(5));
        assert!(limiter.held_until().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_floor_holds_early_and_the_hold_is_capped() {
        let limiter = Limiter::new(2, Duration::from_secs(10));
        let now = whole_second();
        limiter.observe(&answer("2", 500, now), now);
        let until = limiter.held_until().unwrap();
        assert_eq!(until - Instant::now(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_hold_never_shortens_a_longer_one() {
        let limiter = Limiter::new(0, Duration::from_secs(120));
        limiter.hold_for(Duration::from_secs(30));
        limiter.hold_for(Duration::from_secs(1));
        assert_eq!(
            limiter.held_until().unwrap() - Instant::now(),
            Duration::from_secs(30)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_max_hold_turns_the_limiter_off() {
        let limiter = Limiter::new(0, Duration::ZERO);
        let now = whole_second();
        limiter.observe(&answer("0", 30, now), now);
        limiter.hold_for(Duration::from_secs(30));
        assert!(limiter.held_until().is_none());
    }
}
