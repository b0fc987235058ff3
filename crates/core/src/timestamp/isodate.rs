//! ISO-8601 exactly as Segment's `isodate` reads it, since that decides what the browser
//! integration treats as a date: facade turns every *strict* match in an event into a
//! `Date` (the `_date` rule), and `new-date` reads `created` with the loose match first.
//!
//! The grammar is isodate's regular expression: `YYYY`, optional `-?MM` and `-?DD`, then
//! optionally `T` or a space, `HH:?MM`, optional `:?SS` with a `.`/`,` fraction, and an
//! optional zone `Z` or `±HH(:?MM)`. Upper-case `T` and `Z` only, no space before the
//! zone. Strict mode also needs `YYYY-MM-DD` at the start. Fields out of range roll over
//! as JavaScript's `Date.UTC` does (`2015-02-30` is 2 March, `24:00` the next day), and
//! years 0–99 mean 1900–1999.

use super::cursor::Cursor;

/// isodate's `is(string, strict)`.
pub fn is(text: &str, strict: bool) -> bool {
    (!strict || has_full_date_prefix(text)) && fields(text).is_some()
}

/// isodate's `parse` of a matching string, as milliseconds since 1970; `None` when the
/// string does not match (isodate would then fall back to the browser's `Date` parser).
pub fn parse_millis(text: &str) -> Option<i64> {
    fields(text).map(millis)
}

/// [`parse_millis`] of a string that [`is`] in strict mode, else `None`: one pass instead
/// of matching twice (it runs for every string trait and property of every event).
#[inline]
pub fn parse_strict_millis(text: &str) -> Option<i64> {
    if !has_full_date_prefix(text) {
        return None;
    }
    fields(text).map(millis)
}

/// Milliseconds since 1970 of matched fields.
fn millis(f: Fields) -> i64 {
    let offset_minutes = match f.zone {
        Zone::Utc => 0,
        Zone::Offset(minutes) => minutes,
    };
    date_utc(
        i64::from(f.year),
        i64::from(f.month.unwrap_or(1).max(1)) - 1,
        i64::from(f.day.unwrap_or(1).max(1)),
        i64::from(f.hour),
        i64::from(f.minute) + offset_minutes,
        i64::from(f.second),
        i64::from(f.millis),
    )
}

/// `/^\d{4}-\d{2}-\d{2}/`, strict mode's extra test.
#[inline]
fn has_full_date_prefix(text: &str) -> bool {
    match text.as_bytes().get(..10) {
        Some(&[y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2]) => [y1, y2, y3, y4, m1, m2, d1, d2]
            .iter()
            .all(u8::is_ascii_digit),
        _ => false,
    }
}

/// The zone a matching string gives. isodate ignores the zone (using the browser's own
/// offset) when a space separates date and time; a server has no such offset, so the
/// written zone counts, and no zone means UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zone {
    Utc,
    /// Minutes to add to the local time to get UTC (`+02:00` is -120).
    Offset(i64),
}

/// The captured fields of isodate's regular expression (month 0 and day 0 count as 1,
/// as isodate's `parseInt(…) || 1` does).
struct Fields {
    year: u32,
    month: Option<u32>,
    day: Option<u32>,
    hour: u32,
    minute: u32,
    second: u32,
    /// The fraction's first three digits, padded: `.5` is 500, `.123456` is 123.
    millis: u32,
    zone: Zone,
}

/// Matches isodate's expression. Each optional part of it either matches whole or not at
/// all, and a part that starts cannot be skipped for a later one, so reading greedily
/// left to right accepts exactly what the expression accepts.
fn fields(text: &str) -> Option<Fields> {
    let mut p = Cursor::new(text);
    let year = p.digits(4)?;
    let month = p.digits_after(b'-', 2);
    let day = month.and_then(|_| p.digits_after(b'-', 2));
    let mut f = Fields {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        millis: 0,
        zone: Zone::Utc,
    };
    if p.done() {
        return Some(f);
    }
    if !(p.eat(b'T') || p.eat(b' ')) {
        return None;
    }
    f.hour = p.digits(2)?;
    p.eat(b':');
    f.minute = p.digits(2)?;
    if let Some(second) = p.digits_after(b':', 2) {
        f.second = second;
        if p.eat(b'.') || p.eat(b',') {
            f.millis = first_three_digits(p.digit_run()?);
        }
    }
    if p.eat(b'Z') {
        f.zone = Zone::Utc;
    } else if p.peek(b'+') || p.peek(b'-') {
        // `+02:00` is two hours ahead of UTC: subtract them.
        let sign = if p.eat(b'+') { -1 } else { 1 };
        p.eat(b'-');
        let hours = p.digits(2)?;
        let minutes = p.digits_after(b':', 2).unwrap_or(0);
        f.zone = Zone::Offset(sign * (i64::from(hours) * 60 + i64::from(minutes)));
    }
    p.done().then_some(f)
}

fn first_three_digits(run: &[u8]) -> u32 {
    (0..3).fold(0, |acc, i| {
        acc * 10 + run.get(i).map_or(0, |digit| u32::from(digit - b'0'))
    })
}

/// JavaScript's `Date.UTC(year, month0, day, hour, minute, second, ms)`: every field may
/// overflow into the next, and years 0–99 are 1900–1999.
fn date_utc(year: i64, month0: i64, day: i64, hour: i64, minute: i64, second: i64, ms: i64) -> i64 {
    let year = if (0..=99).contains(&year) {
        1900 + year
    } else {
        year
    };
    let year = year + month0.div_euclid(12);
    let month = month0.rem_euclid(12) + 1;
    let days = days_from_civil(year, month) + day - 1;
    days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms
}

/// Days from 1970-01-01 to the first of `month` (1–12) of `year`, proleptic Gregorian.
fn days_from_civil(year: i64, month: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> i64 {
        parse_millis(text).unwrap_or_else(|| panic!("{text} is not isodate")) / 1000
    }

    #[test]
    fn what_isodate_accepts() {
        for ok in [
            "2015",
            "2015-01",
            "201501",
            "20150101",
            "2015-0101",
            "2015-01-01",
            "2015-01-01T10:00",
            "2015-01-01T1000",
            "2015-01-01 10:00:00",
            "2015-01-01T10:00:00.1234Z",
            "2015-01-01T10:00:00,5+02:00",
            "2015-01-01T10:00:00-0700",
            "2015-01-01T10:00+02",
            "2015T10:00",
        ] {
            assert!(is(ok, false), "{ok}");
        }
    }

    #[test]
    fn what_isodate_refuses() {
        for bad in [
            "2015-01-01t10:00:00Z",
            "2015-01-01T10:00:00z",
            "2015-01-01 10:00:00 +02:00",
            "2015-01-01T10:00:00 Z",
            "2015-01-01T10",
            "2015-01-01T10:00:00.",
            "2015-01-01T10:00+02:",
            " 2015-01-01",
            "2015-01-01 ",
            "20150",
            "1420099200",
            "Wed, 09 Aug 1995 04:10:23 GMT",
            "",
        ] {
            assert!(!is(bad, false), "{bad}");
        }
    }

    #[test]
    fn strict_mode_needs_a_full_date_first() {
        assert!(is("2015-01-01", true));
        assert!(is("2015-01-01T10:00:00Z", true));
        assert!(!is("20150101", true));
        assert!(!is("2015-01", true));
        assert!(!is("2015-0101", true));
        assert!(!is("2015-01-01 is the day", true));
    }

    #[test]
    fn out_of_range_fields_roll_over_as_date_utc_does() {
        assert_eq!(secs("2015-02-30"), secs("2015-03-02"));
        assert_eq!(secs("2015-01-01T24:00"), secs("2015-01-02"));
        assert_eq!(secs("2015-13-01"), secs("2016-01-01"));
        assert_eq!(secs("2015-12-32"), secs("2016-01-01"));
        assert_eq!(secs("2015-01-01T10:60:60"), secs("2015-01-01T11:01:00"));
        // isodate's `|| 1`: month and day 00 are January and the 1st.
        assert_eq!(secs("2015-00-00"), secs("2015-01-01"));
    }

    #[test]
    fn years_up_to_99_are_in_the_1900s() {
        assert_eq!(secs("0070-01-01"), 0);
        assert_eq!(secs("0000-01-01"), secs("1900-01-01"));
        assert_eq!(secs("0099-12-31"), secs("1999-12-31"));
        assert_eq!(secs("0100-01-01"), -59_011_459_200);
    }

    #[test]
    fn zones_and_fractions() {
        assert_eq!(secs("2015-01-01T02:00:00+02:00"), 1_420_070_400);
        assert_eq!(secs("2014-12-31T17:00:00-0700"), 1_420_070_400);
        assert_eq!(secs("2015-01-01 00:00:00Z"), 1_420_070_400);
        assert_eq!(
            parse_millis("2018-08-03T15:28:46.4999Z"),
            Some(1_533_310_126_499)
        );
        assert_eq!(
            parse_millis("2018-08-03T15:28:46,5Z"),
            Some(1_533_310_126_500)
        );
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1), 0);
        assert_eq!(days_from_civil(2000, 3), 11_017);
        assert_eq!(days_from_civil(1969, 12), -31);
    }
}
