//! Per-account, per-minute rate limiting with InMoment's `X-Rate-Limit-*`
//! headers; windows follow minute boundaries of the sandbox clock.

use std::collections::HashMap;

use axum::http::{HeaderName, StatusCode};

use crate::config::RateLimitConfig;
use crate::reply::Reply;

/// Requests counted per account in the current minute.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: HashMap<String, (i64, u32)>,
}

/// Outcome of counting one request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Go on; add these headers to the answer.
    Allow(Vec<(HeaderName, String)>),
    /// Answer with this 429.
    Deny(Reply),
}

impl RateLimiter {
    /// Counts a request of `account` against `limit` per minute at `now`.
    pub fn count(
        &mut self,
        account: &str,
        limit: u32,
        now: i64,
        config: &RateLimitConfig,
    ) -> Decision {
        let window = now.div_euclid(60);
        let reset = (window + 1) * 60;
        let slot = self
            .windows
            .entry(account.to_owned())
            .or_insert((window, 0));
        if slot.0 != window {
            *slot = (window, 0);
        }
        let allowed = slot.1 < limit;
        if allowed {
            slot.1 += 1;
        }
        let headers = vec![
            (
                HeaderName::from_static("x-rate-limit-limit"),
                limit.to_string(),
            ),
            (
                HeaderName::from_static("x-rate-limit-remaining"),
                limit.saturating_sub(slot.1).to_string(),
            ),
            (
                HeaderName::from_static("x-rate-limit-reset"),
                reset.to_string(),
            ),
        ];
        if allowed {
            return Decision::Allow(headers);
        }
        let mut reply = Reply::text(
            StatusCode::TOO_MANY_REQUESTS,
            &config.content_type,
            &config.body,
        );
        reply.headers = headers;
        Decision::Deny(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(d: &'a Decision, name: &str) -> &'a str {
        let headers = match d {
            Decision::Allow(h) => h,
            Decision::Deny(r) => &r.headers,
        };
        headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn limit_then_deny_until_next_minute() {
        let mut r = RateLimiter::default();
        let c = RateLimitConfig::default();
        let t = 1_700_000_080; // 20 s before a minute boundary
        let first = r.count("a", 2, t, &c);
        assert_eq!(header(&first, "x-rate-limit-remaining"), "1");
        assert_eq!(header(&first, "x-rate-limit-reset"), "1700000100");
        assert!(matches!(r.count("a", 2, t, &c), Decision::Allow(_)));
        assert!(matches!(r.count("a", 2, t + 19, &c), Decision::Deny(_)));
        assert!(matches!(r.count("b", 2, t, &c), Decision::Allow(_)));
        assert!(matches!(r.count("a", 2, t + 20, &c), Decision::Allow(_)));
    }
}
