//! Exponential backoff with full jitter and a cap, for the retry schedule kept in the store.

use std::time::Duration;

/// `delay(n)` is uniform in `[0, min(cap, base · 2^(n-1))]`; after `max_elapsed` since
/// acceptance a call stops being retried and becomes a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_elapsed: Duration,
}

impl Backoff {
    /// The pause before attempt `attempts + 1`, given `random` in `[0, 1)`.
    pub fn delay(&self, attempts: u32, random: f64) -> Duration {
        let exponent = attempts.saturating_sub(1).min(32);
        let ceiling = self
            .base
            .saturating_mul(1u32 << exponent.min(31))
            .min(self.cap);
        ceiling.mul_f64(random.clamp(0.0, 1.0))
    }
}

/// A small xorshift generator: jitter needs spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    pub fn from_clock() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Jitter::new(nanos)
    }

    /// The next number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(300),
        max_elapsed: Duration::from_secs(86400),
    };

    #[test]
    fn ceiling_doubles_then_caps() {
        let almost_one = 0.999_999;
        let ceilings: Vec<u64> = (1..=11).map(|n| B.delay(n, almost_one).as_secs()).collect();
        assert_eq!(ceilings, [0, 1, 3, 7, 15, 31, 63, 127, 255, 299, 299]);
        assert_eq!(B.delay(1000, almost_one).as_secs(), 299);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        assert_eq!(B.delay(5, 0.0), Duration::ZERO);
        assert_eq!(B.delay(5, 0.5), Duration::from_secs(8));
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let mut jitter = Jitter::new(42);
        let draws: Vec<f64> = (0..1000).map(|_| jitter.next_f64()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
