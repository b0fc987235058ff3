//! Dates "in whatever format they came in" to whole unix seconds, read as the browser
//! integration reads them (facade, `new-date` and `isodate`), since InMoment wants
//! `created_at` and `*_date` properties as unix seconds.
//!
//! A number is seconds below 31557600000 and milliseconds from there on. A string is, in
//! this order: ISO-8601 as isodate reads it ([`isodate`]); a string with 13 or more
//! digits in a row, milliseconds; with 10 to 12, whole seconds (its leading integer, so
//! `"1420099200.9"` is 1420099200); else what a browser's `Date` reads ([`fallback`]),
//! or, for a shorter number, the number rule. Milliseconds round to the nearest second,
//! halves up, as the integration's `Math.round(ms / 1000)` does.

mod cursor;
mod fallback;
pub mod isodate;

use serde_json::Value;

use crate::event::kind;

/// Numbers below this are seconds, larger ones milliseconds (a year of seconds, in ms).
pub const MILLISECONDS_THRESHOLD: f64 = 31_557_600_000.0;

/// The farthest a date may lie from 1970, in milliseconds: JavaScript's `Date` range,
/// which the browser integration is bound by. Anything beyond is no date at all (an
/// Invalid Date), and is refused rather than wrapped around.
pub const MAX_ABS_MILLISECONDS: f64 = 8.64e15;

/// [`MAX_ABS_MILLISECONDS`] in seconds.
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
        Value::Number(n) => n
            .as_f64()
            .and_then(number_seconds)
            .ok_or_else(|| TimestampError::Unparseable(n.to_string())),
        other => Err(TimestampError::WrongType(kind(other))),
    }
}

/// Parses a date string in any accepted format to rounded unix seconds.
pub fn parse_str(text: &str) -> Result<i64, TimestampError> {
    let unparseable = || TimestampError::Unparseable(text.to_string());
    if let Some(ms) = isodate::parse_millis(text) {
        return millis_seconds(ms as f64).ok_or_else(unparseable);
    }
    match longest_digit_run(text) {
        // new-date's `/\d{13}/` and `/\d{10}/`, read with `parseInt`.
        13.. => parse_int(text)
            .and_then(millis_seconds)
            .ok_or_else(unparseable),
        10..=12 => parse_int(text)
            .and_then(|seconds| millis_seconds(seconds * 1000.0))
            .ok_or_else(unparseable),
        _ => fallback::parse_millis(text)
            .and_then(|ms| millis_seconds(ms as f64))
            .or_else(|| short_number(text))
            .ok_or_else(unparseable),
    }
}

/// True for a string facade turns into a `Date` (isodate's strict check): these are the
/// values the browser integration renames to `<key>_date`.
pub fn is_strict_iso_date(text: &str) -> bool {
    isodate::is(text, true)
}

/// Strict ISO dates to rounded seconds; `None` when `text` is not one.
#[inline]
pub fn strict_iso_seconds(text: &str) -> Option<i64> {
    isodate::parse_strict_millis(text).and_then(|ms| millis_seconds(ms as f64))
}

/// The number rule: seconds below the threshold, milliseconds from it on.
fn number_seconds(value: f64) -> Option<i64> {
    let ms = if value < MILLISECONDS_THRESHOLD {
        value * 1000.0
    } else {
        value
    };
    millis_seconds(ms)
}

/// `Math.round(new Date(ms).getTime() / 1000)`: `None` outside JavaScript's date range;
/// a fraction of a millisecond is dropped (as `Date` does), then halves round up.
fn millis_seconds(ms: f64) -> Option<i64> {
    if !ms.is_finite() || ms.abs() > MAX_ABS_MILLISECONDS {
        return None;
    }
    Some((ms.trunc() as i64 + 500).div_euclid(1000))
}

fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

/// JavaScript's `parseInt(text, 10)`: leading white space, an optional sign, then the
/// digits up to the first other character; `None` (NaN) without digits.
fn parse_int(text: &str) -> Option<f64> {
    let s = text.trim_start();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let value: f64 = rest[..end].parse().ok()?;
    Some(if negative { -value } else { value })
}

/// A shorter number written as text (`"1730541"`, `"-5"`, `"12.5"`) follows the number
/// rule. Browsers disagree on such strings, so this is our choice.
fn short_number(text: &str) -> Option<i64> {
    let s = text.trim();
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return None;
    }
    s.parse::<f64>().ok().and_then(number_seconds)
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
            json!("9000000000000000"),
            json!(-8_640_000_000_000.5),
            json!(8_640_000_000_000_001_i64),
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
    fn digit_strings_of_10_to_12_digits_are_whole_seconds_truncated() {
        assert_eq!(secs(json!("1420099200")), 1420099200);
        assert_eq!(secs(json!("1420099200.9")), 1420099200);
        assert_eq!(secs(json!("31557600000")), 31557600000);
        assert_eq!(secs(json!("999999999999")), 999999999999);
        assert_eq!(secs(json!("-1420099200.9")), -1420099200);
        assert_eq!(secs(json!(" 1420099200 ")), 1420099200);
        // `parseInt` reads the leading integer, whatever follows.
        assert_eq!(secs(json!("1420099200 seconds")), 1420099200);
    }

    #[test]
    fn digit_strings_of_13_or_more_digits_are_milliseconds_rounded() {
        assert_eq!(secs(json!("1420099200000")), 1420099200);
        assert_eq!(secs(json!("1420099200499")), 1420099200);
        assert_eq!(secs(json!("1420099200500")), 1420099201);
        // The fraction of a millisecond is dropped by `parseInt`.
        assert_eq!(secs(json!("1420099200499.9")), 1420099200);
    }

    #[test]
    fn numbers_round_to_the_nearest_second() {
        assert_eq!(secs(json!(1420099200.9)), 1420099201);
        assert_eq!(secs(json!(1420099200.4)), 1420099200);
        assert_eq!(secs(json!(31557600000_i64)), 31557600);
        assert_eq!(secs(json!(31557600500_i64)), 31557601);
    }

    #[test]
    fn shorter_digit_strings_follow_the_number_rule() {
        assert_eq!(secs(json!("1730541")), 1730541);
        assert_eq!(secs(json!("-5")), -5);
        assert_eq!(secs(json!("12.5")), 13);
    }

    #[test]
    fn iso_fields_roll_over_as_javascript_dates_do() {
        assert_eq!(secs(json!("2015-02-30")), 1425254400);
        assert_eq!(secs(json!("2015-01-01T24:00")), 1420156800);
        assert_eq!(secs(json!("0099-01-01")), 915148800);
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
            "13/01/2015",
            "2015-02-30t10:00",
            "",
            "1.2.3",
            // Ten digits in a row make it a seconds string, but `parseInt` finds no number.
            "id 1420099200",
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
        assert!(!is_strict_iso_date("2024-04-16t10:00:00Z"));
        assert!(!is_strict_iso_date("2024-04-16T10:00:00z"));
        assert!(!is_strict_iso_date("2024-04-16 10:00:00 +02:00"));
        assert!(is_strict_iso_date("2024-04-16 10:00:00+02:00"));
        assert_eq!(strict_iso_seconds("2015-02-30"), Some(1425254400));
        assert_eq!(strict_iso_seconds("2024-04-16"), Some(1713225600));
    }

    #[test]
    fn strict_seconds_are_the_strict_check_then_the_parse() {
        for text in [
            "2024-04-16",
            "2024-04-16T10:00:00.5Z",
            "2024-04-16 10:00:00+02:00",
            "2024-04-16T10:00:00 +02:00",
            "2024-0416",
            "20240416",
            "2024-04-1",
            "2024-04-16x",
            "x2024-04-16",
            "2024-04-16T",
            "",
        ] {
            let expected = if is_strict_iso_date(text) {
                isodate::parse_millis(text).and_then(|ms| millis_seconds(ms as f64))
            } else {
                None
            };
            assert_eq!(strict_iso_seconds(text), expected, "{text}");
        }
    }
}
