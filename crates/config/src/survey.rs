//! A source's email survey settings (`survey_*`), read the same way for the default
//! source and for each `[[sources]]` table.

use inmoment_core::EmailSurveySettings;

use crate::keys::{key, Key};
use crate::ConfigError;

/// Reads the `survey_*` keys through `text` (a source table's value, else the top-level
/// key's, else its default); a bad value is reported through `invalid`.
pub(crate) fn email_survey<'a>(
    text: impl Fn(&Key) -> Option<&'a str>,
    invalid: impl Fn(&Key, String) -> ConfigError,
) -> Result<EmailSurveySettings, ConfigError> {
    let enabled = match text(&key::survey_channel).unwrap_or("none") {
        "none" => false,
        "email" => true,
        other => {
            return Err(invalid(
                &key::survey_channel,
                format!("expected `none` or `email`, got `{other}`"),
            ))
        }
    };
    let events = text(&key::survey_events)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(String::from)
        .collect();
    let delay_days = match text(&key::survey_delay_days) {
        None => None,
        Some(raw) => match raw.parse::<u8>() {
            Ok(days @ 1..=31) => Some(days),
            _ => {
                return Err(invalid(
                    &key::survey_delay_days,
                    format!("expected a whole number of days from 1 to 31, got `{raw}`"),
                ))
            }
        },
    };
    let immediately = match text(&key::survey_immediately).unwrap_or("false") {
        "true" => true,
        "false" => false,
        other => {
            return Err(invalid(
                &key::survey_immediately,
                format!("expected true or false, got `{other}`"),
            ))
        }
    };
    let interval = &key::survey_min_interval_days;
    let min_interval_days = match text(interval) {
        None => inmoment_core::email_survey::DEFAULT_MIN_INTERVAL_DAYS,
        Some(raw) => raw.parse().map_err(|_| {
            invalid(
                interval,
                format!("expected a whole number of days, got `{raw}`"),
            )
        })?,
    };
    Ok(EmailSurveySettings {
        enabled,
        events,
        delay_days,
        immediately,
        subject: text(&key::survey_subject).map(String::from),
        intro: text(&key::survey_intro).map(String::from),
        min_interval_days,
    })
}
