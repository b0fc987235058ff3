//! What `new Date(text)` reads when isodate and the digit rules did not: the browser's own
//! parser, whose forms differ between browsers. We accept the common ground: lenient
//! ISO-8601 (lower-case `t`/`z`, a space before the zone), RFC 2822 and US `MM/DD/YYYY`.
//! Unlike isodate these check their fields (no roll-over).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};

use super::cursor::Cursor;

/// Milliseconds since 1970 of a date in one of the fallback forms.
pub fn parse_millis(text: &str) -> Option<i64> {
    let s = text.trim();
    if let Some(ms) = lenient_iso(s) {
        return Some(ms);
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(dt.timestamp_millis());
    }
    us_date(s)
}

/// ISO-8601 as clients write it: a date, optionally `T`/`t`/space and a time with minutes,
/// optional seconds and fraction, an optional zone (`Z`, `z`, `+02:00`, `-0700`, `+02`),
/// which may follow a space. No zone means UTC.
fn lenient_iso(s: &str) -> Option<i64> {
    let mut p = Cursor::new(s);
    let year = p.digits(4)?;
    p.eat(b'-');
    let month = p.digits(2)?;
    p.eat(b'-');
    let day = p.digits(2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if p.done() {
        return Some(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
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
            nanos = fraction_nanos(p.digit_run()?);
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
    Some(local.timestamp_millis() - offset_seconds * 1000)
}

/// Fraction digits as nanoseconds (digits past the ninth are dropped).
fn fraction_nanos(run: &[u8]) -> u32 {
    run.iter()
        .copied()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
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
    Some(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_isodate_refuses() {
        assert_eq!(
            parse_millis("2015-01-01t10:00:00z"),
            Some(1_420_106_400_000)
        );
        assert_eq!(
            parse_millis("2014-12-31 16:00:00 -0800"),
            Some(1_420_070_400_000)
        );
        assert_eq!(
            parse_millis("Wed, 09 Aug 1995 04:10:23 GMT"),
            Some(807_941_423_000)
        );
        assert_eq!(parse_millis("8/3/2018"), Some(1_533_254_400_000));
    }

    #[test]
    fn fields_are_checked() {
        for bad in ["2015-02-30t10:00", "13/01/2015", "2015-01-01t25:00", "soon"] {
            assert_eq!(parse_millis(bad), None, "{bad}");
        }
    }
}
