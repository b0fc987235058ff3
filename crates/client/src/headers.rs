//! Reading InMoment's rate-limit headers and `Retry-After`, turned into delays from now.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};

pub const RATE_LIMIT_REMAINING: &str = "x-rate-limit-remaining";
pub const RATE_LIMIT_RESET: &str = "x-rate-limit-reset";

/// Values below this are read as "seconds from now" rather than a unix time: a reset
/// before 2001 cannot be meant literally.
const SMALLEST_UNIX_TIME: u64 = 1_000_000_000;

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// `X-Rate-Limit-Remaining`: requests left in the current window.
pub fn rate_limit_remaining(headers: &HeaderMap) -> Option<u64> {
    text(headers, RATE_LIMIT_REMAINING)?.parse().ok()
}

/// `X-Rate-Limit-Reset` (unix seconds) as a delay from `now`; zero when already past.
pub fn rate_limit_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let secs: u64 = text(headers, RATE_LIMIT_RESET)?.parse().ok()?;
    if secs < SMALLEST_UNIX_TIME {
        return Some(Duration::from_secs(secs));
    }
    Some(until(UNIX_EPOCH + Duration::from_secs(secs), now))
}

/// `Retry-After` as delay-seconds or an HTTP date; zero when the date is past.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = text(headers, RETRY_AFTER.as_str())?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = u64::try_from(date.timestamp()).ok()?;
    Some(until(UNIX_EPOCH + Duration::from_secs(secs), now))
}

fn until(instant: SystemTime, now: SystemTime) -> Duration {
    instant.duration_since(now).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const NOW: u64 = 1_700_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[test]
    fn reset_is_a_unix_time_turned_into_a_delay() {
        let h = headers(&[("X-Rate-Limit-Reset", "1700000042")]);
        assert_eq!(rate_limit_reset(&h, now()), Some(Duration::from_secs(42)));
        let sub_second = now() + Duration::from_millis(400);
        assert_eq!(
            rate_limit_reset(&h, sub_second),
            Some(Duration::from_millis(41_600))
        );
    }

    #[test]
    fn a_past_reset_is_zero_and_a_small_one_is_seconds_from_now() {
        let past = headers(&[("X-Rate-Limit-Reset", "1699999990")]);
        assert_eq!(rate_limit_reset(&past, now()), Some(Duration::ZERO));
        let delta = headers(&[("X-Rate-Limit-Reset", "30")]);
        assert_eq!(
            rate_limit_reset(&delta, now()),
            Some(Duration::from_secs(30))
        );
        let junk = headers(&[("X-Rate-Limit-Reset", "soon")]);
        assert_eq!(rate_limit_reset(&junk, now()), None);
        assert_eq!(rate_limit_reset(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn remaining_is_a_count() {
        assert_eq!(
            rate_limit_remaining(&headers(&[("X-Rate-Limit-Remaining", " 7 ")])),
            Some(7)
        );
        assert_eq!(
            rate_limit_remaining(&headers(&[("X-Rate-Limit-Remaining", "-1")])),
            None
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(
            retry_after(&headers(&[("Retry-After", "120")]), now()),
            Some(Duration::from_secs(120))
        );
        // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            retry_after(
                &headers(&[("Retry-After", "Tue, 14 Nov 2023 22:13:50 GMT")]),
                now()
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(
                &headers(&[("Retry-After", "Tue, 14 Nov 2023 22:00:00 GMT")]),
                now()
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers(&[("Retry-After", "later")]), now()),
            None
        );
    }
}
