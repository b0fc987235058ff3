//! Timestamps as Segment settles them: the server stamps `receivedAt`, and a client's
//! clock skew is taken out with `timestamp = receivedAt − (sentAt − timestamp)`, where
//! `timestamp` falls back to `originalTimestamp` and, without either, is `receivedAt`.
//! Every rewritten timestamp is ISO-8601 in UTC with milliseconds.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use inmoment_core::Event;
use serde_json::Value;

use super::error::{ApiError, ErrorCode};
use super::Clock;

/// ISO-8601 with milliseconds and `Z`, the shape Segment's own timestamps have.
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads the timestamp shapes real clients send: RFC 3339 with `Z` or an offset (with or
/// without a colon), 0–9 fractional digits, a space instead of `T`, no zone (UTC), and
/// unpadded months or days (a Segment docs example has `2015-2-02T00:30:08.276Z`).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let text = text.replacen(' ', "T", 1);
    let zoned = match text.strip_suffix(['Z', 'z']) {
        Some(rest) => format!("{rest}+00:00"),
        None => text.clone(),
    };
    if let Ok(time) = DateTime::parse_from_str(&zoned, "%Y-%m-%dT%H:%M:%S%.f%#z") {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(time) = DateTime::parse_from_str(&zoned, "%Y-%m-%dT%H:%M%#z") {
        return Some(time.with_timezone(&Utc));
    }
    if let Ok(naive) = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

fn parse_field(path: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    parse_time(text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidTimestamp,
            format!("`{text}` is not an ISO-8601 timestamp (e.g. 2024-05-01T12:00:00.000Z)"),
        )
        .at_path(path)
    })
}

/// When a request arrived, with its text made once for all the request's events.
pub struct Received {
    at: DateTime<Utc>,
    text: String,
}

impl Received {
    pub fn new(at: DateTime<Utc>) -> Received {
        Received {
            at,
            text: format_time(at),
        }
    }

    /// `time` as text, reusing the arrival's text when it is the arrival.
    fn format(&self, time: DateTime<Utc>) -> String {
        if time == self.at {
            self.text.clone()
        } else {
            format_time(time)
        }
    }
}

/// Sets `receivedAt` and the final `timestamp` of an event.
pub fn settle(event: &mut Event, received: &Received, clock: &Clock) -> Result<(), ApiError> {
    match clock {
        Clock::CorrectSkew { batch_sent_at } => {
            correct_skew(event, received, batch_sent_at.as_deref())
        }
        Clock::Forwarded => keep_forwarded(event, received),
    }
}

/// Straight from a client: `receivedAt` is ours, and the client's clock skew
/// (`sentAt` − `receivedAt`) is taken out of its timestamp.
fn correct_skew(
    event: &mut Event,
    received: &Received,
    batch_sent_at: Option<&str>,
) -> Result<(), ApiError> {
    let received_at = received.at;
    let original = match (&event.timestamp, event.extra.get("originalTimestamp")) {
        (Some(text), _) => Some(parse_field("timestamp", text)?),
        (None, Some(Value::String(text))) => Some(parse_field("originalTimestamp", text)?),
        _ => None,
    };
    let sent_at = match event.sent_at.as_deref().or(batch_sent_at) {
        Some(text) => Some(parse_field("sentAt", text)?),
        None => None,
    };
    let timestamp = match (original, sent_at) {
        (None, _) => received_at,
        (Some(original), None) => original,
        (Some(original), Some(sent_at)) => received_at
            .checked_sub_signed(sent_at.signed_duration_since(original))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidTimestamp,
                    "sentAt and timestamp are too far apart to correct the clock skew",
                )
                .at_path("timestamp")
            })?,
    };
    if let Some(client_timestamp) = event.timestamp.take() {
        if !event.extra.contains_key("originalTimestamp") {
            event
                .extra
                .insert("originalTimestamp".into(), Value::String(client_timestamp));
        }
    }
    event.timestamp = Some(received.format(timestamp));
    event
        .extra
        .insert("receivedAt".into(), Value::String(received.text.clone()));
    Ok(())
}

/// Forwarded by Segment: its `timestamp` is already corrected and its `receivedAt` is
/// the real arrival, so both are kept; only what is missing is filled in.
fn keep_forwarded(event: &mut Event, received: &Received) -> Result<(), ApiError> {
    let timestamp = match (&event.timestamp, event.extra.get("originalTimestamp")) {
        (Some(text), _) => parse_field("timestamp", text)?,
        (None, Some(Value::String(text))) => parse_field("originalTimestamp", text)?,
        _ => received.at,
    };
    event.timestamp = Some(received.format(timestamp));
    let has_received_at = matches!(event.extra.get("receivedAt"), Some(Value::String(_)));
    if !has_received_at {
        event
            .extra
            .insert("receivedAt".into(), Value::String(received.text.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn reads_the_shapes_clients_send() {
        let noon = utc("2024-05-01T12:00:00Z");
        for (text, expected) in [
            ("2024-05-01T12:00:00.123Z", "2024-05-01T12:00:00.123Z"),
            ("2024-05-01T12:00:00.123+00:00", "2024-05-01T12:00:00.123Z"),
            (
                "2024-05-01T12:00:00.123456+00:00",
                "2024-05-01T12:00:00.123Z",
            ),
            ("2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.123Z"),
            ("2024-05-01T14:00:00+0200", "2024-05-01T12:00:00.000Z"),
            ("2024-05-01T14:00:00+02", "2024-05-01T12:00:00.000Z"),
            ("2024-05-01 12:00:00", "2024-05-01T12:00:00.000Z"),
            ("2024-05-01T12:00:00", "2024-05-01T12:00:00.000Z"),
            ("2024-05-01T12:00Z", "2024-05-01T12:00:00.000Z"),
            ("2015-2-02T00:30:08.276Z", "2015-02-02T00:30:08.276Z"),
            ("2024-05-01", "2024-05-01T00:00:00.000Z"),
        ] {
            let parsed = parse_time(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(format_time(parsed), expected, "{text}");
        }
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Some(noon));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2024-13-01T00:00:00Z"), None);
    }
}
