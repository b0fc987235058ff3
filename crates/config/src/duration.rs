//! The one duration syntax (`30s`, `15m`, `24h`, `7d`) of settings and of `queue`
//! options, so `keep_delivered` and `queue dead purge --older-than` cannot drift apart.

use std::time::Duration;

/// What a bad duration looks like, for messages.
pub const DURATION_HINT: &str = "a number with a unit: 30s, 15m, 12h or 7d";

/// Parses a whole number followed by `s`, `m`, `h` or `d`; `None` for anything else.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let seconds = match unit {
        's' => number,
        'm' => number.checked_mul(60)?,
        'h' => number.checked_mul(3600)?,
        'd' => number.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

/// Writes a duration in the largest unit that divides it, as [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    for (unit, size) in [('d', 86_400), ('h', 3600), ('m', 60)] {
        if secs > 0 && secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bad_text() {
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 0s "), Some(Duration::ZERO));
        for bad in ["7", "d", "7w", "-1h", "+1h", "1.5h", "", "h1"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting_reads_back() {
        for text in ["7d", "24h", "90m", "45s", "0s"] {
            let duration = parse_duration(text).unwrap_or_default();
            assert_eq!(parse_duration(&format_duration(duration)), Some(duration));
        }
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
    }
}
