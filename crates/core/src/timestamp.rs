//! Dates "in whatever format they came in" to whole unix seconds.
//!
//! InMoment wants `created_at` and `*_date` properties as unix seconds. Segment sources send
//! ISO-8601 strings, loose ISO forms (`2015`, `201501`, `20150101`), RFC 2822, US dates, or
//! numbers in seconds or milliseconds. Every result is rounded to the nearest second, halves
//! up, as the browser integration's `Math.round(ms / 1000)` does.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;

use crate::event::kind;

/// Numbers below this are seconds, larger ones milliseconds (a year of seconds, in ms).
pub const MILLISECONDS_THRESHOLD: f64 = 31_557_600_000.0;

/// The farthest a date may lie from 1970, in seconds: JavaScript's `Date` range (±8.64e15
/// ms), which the browser integration is bound by. Anything beyond is no date at all, and
/// is refused rather than wrapped around.
pub const MAX_ABS_SECONDS: i64 = 8_640_000_000_000;

/// Why a value is not a date we understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("`{0}` is not a date: expected ISO-8601 (2015-01-01 or 2015-01-01T10:00:00Z), RFC 2822, MM/DD/YYYY, or unix seconds/milliseconds")]
    Unparseable(String),
    #[error("expected a date string or number, found {0}")]
    WrongType(&'static str),
}

/// Converts a JSON date value to unix seconds, rounded to the nearest second.
pub fn unix_seconds(value: &Value) -> Result<i64, TimestampError> {
    match value {
        Value::String(text) => parse_str(text),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                integer_seconds(i).ok_or_else(|| TimestampError::Unparseable(n.to_string()))
            } else if let Some(f) = n.as_f64() {
                float_seconds(f).ok_or_else(|| TimestampError::Unparseable(n.to_string()))
            } else {
                Err(TimestampError::Unparseable(n.to_string()))
            }
        }
        other => Err(TimestampError::WrongType(kind(other))),
    }
}

/// Parses a date string in any accepted format to rounded unix seconds.
pub fn parse_str(text: &str) -> Result<i64, TimestampError> {
    let s = text.trim();
    let unparseable = || TimestampError::Unparseable(text.to_string());
    if let Some(seconds) = loose_iso(s) {
        return Ok(seconds);
    }
    if let Some(seconds) = numeric(s) {
        return seconds.ok_or_else(unparseable);
    }
    if let Some(seconds) = iso8601(s) {
        return Ok(seconds);
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Ok(round(dt.timestamp(), dt.timestamp_subsec_nanos()));
    }
    if let Some(seconds) = us_date(s) {
        return Ok(seconds);
    }
    Err(unparseable())
}

/// True for a strict ISO-8601 date string: it starts with `YYYY-MM-DD` and parses whole.
/// These are the values the browser integration turns into `<key>_date` properties.
pub fn is_strict_iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && iso8601(text).is_some()
}

/// Strict ISO dates to seconds; `None` when `text` is not one.
pub fn strict_iso_seconds(text: &str) -> Option<i64> {
    if is_strict_iso_date(text) {
        iso8601(text)
    } else {
        None
    }
}

fn round(seconds: i64, nanos: u32) -> i64 {
    if nanos >= 500_000_000 {
        seconds + 1
    } else {
        seconds
    }
}

fn integer_seconds(value: i64) -> Option<i64> {
    let seconds = if (value as f64) < MILLISECONDS_THRESHOLD {
        value
    } else {
        value.checked_add(500)?.div_euclid(1000)
    };
    (seconds.unsigned_abs() <= MAX_ABS_SECONDS.unsigned_abs()).then_some(seconds)
}

fn float_seconds(value: f64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    let seconds = if value < MILLISECONDS_THRESHOLD {
        value
    } else {
        value / 1000.0
    };
    let rounded = (seconds + 0.5).floor();
    if rounded.abs() > MAX_ABS_SECONDS as f64 {
        return None;
    }
    Some(rounded as i64)
}

/// `YYYY`, `YYYY-MM`, `YYYYMM` and `YYYYMMDD`: these win over the numeric rule.
fn loose_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = match b.len() {
        4 => (digits(0..4)?, 1, 1),
        6 => (digits(0..4)?, digits(4..6)?, 1),
        7 if b[4] == b'-' => (digits(0..4)?, digits(5..7)?, 1),
        8 => (digits(0..4)?, digits(4..6)?, digits(6..8)?),
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    Some(date.and_time(NaiveTime::MIN).and_utc().timestamp())
}

/// Digit strings (optionally signed, optionally with a fraction) follow the number rule.
/// `Some(None)` means "looked numeric but overflowed".
fn numeric(s: &str) -> Option<Option<i64>> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return None;
    }
    if fraction.is_none() {
        if let Ok(i) = s.parse::<i64>() {
            return Some(integer_seconds(i));
        }
    }
    Some(s.parse::<f64>().ok().and_then(float_seconds))
}

/// ISO-8601 in the forms clients send: a date, optionally `T` or space and a time with
/// minutes, optional seconds and fraction, optional zone (`Z`, `+02:00`, `-0700`, `+02`).
/// No zone means UTC.
fn iso8601(s: &str) -> Option<i64> {
    let mut p = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let year = p.digits(4)?;
    p.eat(b'-');
    let month = p.digits(2)?;
    p.eat(b'-');
    let day = p.digits(2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if p.done() {
        return Some(date.and_time(NaiveTime::MIN).and_utc().timestamp());
    }
    if !(p.eat(b'T') || p.eat(b't') || p.eat(b' ')) {
        return None;
    }
    let hour = p.digits(2)?;
    p.eat(b':');
    let minute = p.digits(2)?;
    let mut second = 0;
    let mut nanos = 0;
    if p.peek_digit() || p.peek(b':') {
        p.eat(b':');
        second = p.digits(2)?;
        if p.eat(b'.') || p.eat(b',') {
            nanos = p.fraction_nanos()?;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local = NaiveDateTime::new(date, time).and_utc();
    p.eat(b' ');
    let offset_seconds = if p.done() || p.eat(b'Z') || p.eat(b'z') {
        0
    } else {
        let sign = if p.eat(b'+') {
            1
        } else if p.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = p.digits(2)?;
        p.eat(b':');
        let minutes = if p.done() { 0 } else { p.digits(2)? };
        if hours > 23 || minutes > 59 {
            return None;
        }
        sign * i64::from(hours * 3600 + minutes * 60)
    };
    if !p.done() {
        return None;
    }
    Some(round(
        local.timestamp() - offset_seconds,
        local.timestamp_subsec_nanos(),
    ))
}

/// `MM/DD/YYYY` (one or two digit month and day) as UTC midnight.
fn us_date(s: &str) -> Option<i64> {
    let mut parts = s.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || y.len() != 4
        || !(1..=2).contains(&m.len())
        || !(1..=2).contains(&d.len())
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
    Some(date.and_time(NaiveTime::MIN).and_utc().timestamp())
}

/// A tiny byte cursor for the ISO grammar.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn peek(&self, c: u8) -> bool {
        self.b.get(self.i) == Some(&c)
    }

    fn peek_digit(&self) -> bool {
        self.b.get(self.i).is_some_and(u8::is_ascii_digit)
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn digits(&mut self, n: usize) -> Option<u32> {
        let part = self.b.get(self.i..self.i + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    /// Reads 1 or more fraction digits as nanoseconds (digits past the ninth are dropped).
    fn fraction_nanos(&mut self) -> Option<u32> {
        let start = self.i;
        let mut nanos = 0u32;
        while self.peek_digit() {
            let digit = u32::from(self.b[self.i] - b'0');
            let position = self.i - start;
            if position < 9 {
                nanos += digit * 10u32.pow(8 - position as u32);
            }
            self.i += 1;
        }
        (self.i > start).then_some(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secs(value: Value) -> i64 {
        unix_seconds(&value).unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    #[test]
    fn examples_from_the_browser_integration() {
        assert_eq!(secs(json!("2015-01-01")), 1420070400);
        assert_eq!(secs(json!("20150101")), 1420070400);
        assert_eq!(secs(json!("1420099200000")), 1420099200);
        assert_eq!(secs(json!("1420099200.435")), 1420099200);
        assert_eq!(secs(json!("2018-08-03T15:28:46.493Z")), 1533310126);
    }

    #[test]
    fn fractions_round_to_the_nearest_second_halves_up() {
        assert_eq!(secs(json!("2018-08-03T15:28:46.500Z")), 1533310127);
        assert_eq!(secs(json!("2018-08-03T15:28:46.499999999Z")), 1533310126);
        assert_eq!(secs(json!("2018-08-03T15:28:46,7Z")), 1533310127);
        assert_eq!(secs(json!(1420099200.5)), 1420099201);
        assert_eq!(secs(json!(1420099200499_i64)), 1420099200);
        assert_eq!(secs(json!(1420099200500_i64)), 1420099201);
    }

    #[test]
    fn zones_and_offsets() {
        assert_eq!(secs(json!("2015-01-01T02:00:00+02:00")), 1420070400);
        assert_eq!(secs(json!("2014-12-31T17:00:00-0700")), 1420070400);
        assert_eq!(secs(json!("2015-01-01T02:00:00+02")), 1420070400);
        assert_eq!(secs(json!("2015-01-01T00:00:00")), 1420070400);
        assert_eq!(secs(json!("2015-01-01 00:00:00")), 1420070400);
        assert_eq!(secs(json!("2014-12-31 16:00:00 -0800")), 1420070400);
    }

    #[test]
    fn minutes_only_times() {
        assert_eq!(secs(json!("2015-01-01T10:30")), 1420108200);
        assert_eq!(secs(json!("2015-01-01T10:30Z")), 1420108200);
    }

    #[test]
    fn loose_iso_forms_win_over_the_numeric_rule() {
        assert_eq!(secs(json!("2015")), 1420070400);
        assert_eq!(secs(json!("2015-01")), 1420070400);
        assert_eq!(secs(json!("201501")), 1420070400);
        assert_eq!(secs(json!("20231105")), 1699142400);
    }

    #[test]
    fn numbers_below_the_threshold_are_seconds_above_are_milliseconds() {
        assert_eq!(secs(json!(1730541660)), 1730541660);
        assert_eq!(secs(json!(31557599999_i64)), 31557599999);
        assert_eq!(secs(json!(31557600000_i64)), 31557600);
        assert_eq!(secs(json!("1730541660")), 1730541660);
    }

    #[test]
    fn numbers_beyond_javascripts_date_range_are_unparseable_never_wrapped() {
        for value in [
            json!(i64::MAX),
            json!(i64::MIN),
            json!(9_000_000_000_000_000_i64),
            json!(9e15),
            json!(-9e18),
            json!(u64::MAX),
            json!("9223372036854775807"),
            json!("-9223372036854775808"),
        ] {
            assert!(
                matches!(unix_seconds(&value), Err(TimestampError::Unparseable(_))),
                "{value}: {:?}",
                unix_seconds(&value)
            );
        }
        // The edge of the range itself is still a date.
        assert_eq!(secs(json!(8_640_000_000_000_000_i64)), MAX_ABS_SECONDS);
        assert_eq!(secs(json!(-8_640_000_000_000_i64)), -MAX_ABS_SECONDS);
    }

    #[test]
    fn rfc_2822() {
        assert_eq!(secs(json!("Wed, 09 Aug 1995 04:10:23 GMT")), 807941423);
        assert_eq!(secs(json!("Thu, 01 Jan 2015 02:00:00 +0200")), 1420070400);
    }

    #[test]
    fn us_dates_are_utc_midnight() {
        assert_eq!(secs(json!("01/01/2015")), 1420070400);
        assert_eq!(secs(json!("8/3/2018")), 1533254400);
    }

    #[test]
    fn garbage_is_an_error_that_quotes_the_value() {
        for bad in [
            "soon",
            "2015-13-01",
            "2015-02-30",
            "13/01/2015",
            "2015-01-01T25:00",
            "",
            "1.2.3",
        ] {
            let err = unix_seconds(&json!(bad)).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{bad}`")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn wrong_json_types_are_errors() {
        assert_eq!(
            unix_seconds(&json!(true)),
            Err(TimestampError::WrongType("a boolean"))
        );
        assert_eq!(
            unix_seconds(&json!({})),
            Err(TimestampError::WrongType("an object"))
        );
    }

    #[test]
    fn strict_iso_dates_start_with_a_full_date_and_parse_whole() {
        assert!(is_strict_iso_date("2024-04-16"));
        assert!(is_strict_iso_date("2026-11-02T09:15:20Z"));
        assert!(!is_strict_iso_date("20240416"));
        assert!(!is_strict_iso_date("2024-04"));
        assert!(!is_strict_iso_date("2024-04-16 is the day"));
        assert!(!is_strict_iso_date("Wed, 09 Aug 1995 04:10:23 GMT"));
        assert_eq!(strict_iso_seconds("2024-04-16"), Some(1713225600));
    }
}
