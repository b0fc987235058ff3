//! When to try a call again: a `tower::retry::Policy` with exponential backoff, full
//! jitter and a cap, honouring the delay InMoment asks for (429, 503).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use inmoment_core::InMomentCall;
use tokio::time::{Instant, Sleep};
use tower::retry::Policy;

use crate::config::RetryConfig;
use crate::error::DeliveryError;
use crate::outcome::Delivered;

/// A small random source for jitter (splitmix64), shared by clones so concurrent retries
/// draw different delays.
#[derive(Debug, Clone)]
struct Jitter(Arc<AtomicU64>);

impl Jitter {
    fn new() -> Jitter {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_f491_4f6c_dd1d);
        Jitter(Arc::new(AtomicU64::new(seed)))
    }

    /// Uniform in [0, 1).
    fn next(&self) -> f64 {
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The retry policy of [`crate::delivery_stack`]. tower clones it for each call, so the
/// attempt count and the time of the first failure are per call.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    config: RetryConfig,
    jitter: Jitter,
    attempts: u32,
    first_failure: Option<Instant>,
}

impl DeliveryPolicy {
    pub fn new(config: RetryConfig) -> DeliveryPolicy {
        DeliveryPolicy {
            config,
            jitter: Jitter::new(),
            attempts: 0,
            first_failure: None,
        }
    }

    /// The backoff after `failures` failures: `initial * 2^(failures-1)`, capped, then
    /// (with full jitter) a random share of it.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let exact = self
            .config
            .initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.config.max_backoff);
        if self.config.full_jitter {
            exact.mul_f64(self.jitter.next())
        } else {
            exact
        }
    }
}

impl Policy<InMomentCall, Delivered, DeliveryError> for DeliveryPolicy {
    type Future = Sleep;

    fn retry(
        &mut self,
        call: &mut InMomentCall,
        result: &mut Result<Delivered, DeliveryError>,
    ) -> Option<Sleep> {
        self.attempts += 1;
        let error = match result {
            Ok(delivered) => {
                delivered.attempts = self.attempts;
                return None;
            }
            Err(error) if error.is_retryable() => error,
            Err(_) => return None,
        };
        let now = Instant::now();
        let elapsed = now - *self.first_failure.get_or_insert(now);
        let delay = match error.retry_after() {
            Some(asked) => asked.max(self.config.initial_backoff),
            None => self.backoff(self.attempts),
        };
        let out_of_attempts = self.attempts >= self.config.max_attempts.max(1);
        if out_of_attempts || elapsed + delay > self.config.max_elapsed {
            tracing::warn!(
                kind = call.kind(),
                message_id = call.message_id(),
                attempts = self.attempts,
                %error,
                "Giving up delivery for now."
            );
            return None;
        }
        tracing::warn!(
            kind = call.kind(),
            message_id = call.message_id(),
            attempt = self.attempts,
            delay_ms = delay.as_millis() as u64,
            %error,
            "Retrying delivery."
        );
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, call: &InMomentCall) -> Option<InMomentCall> {
        Some(call.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(full_jitter: bool) -> RetryConfig {
        RetryConfig {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(600),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            full_jitter,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = DeliveryPolicy::new(config(false));
        let delays: Vec<u128> = (1..=7).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_capped_backoff() {
        let policy = DeliveryPolicy::new(config(true));
        let mut distinct = std::collections::HashSet::new();
        for n in 1..200 {
            let delay = policy.backoff(n % 8 + 1);
            assert!(delay <= Duration::from_millis(1000), "{delay:?}");
            distinct.insert(delay);
        }
        assert!(distinct.len() > 100, "jitter should vary");
    }
}
