//! Email surveys for users the browser beacon never sees (events sent from servers): when
//! InMoment answers that a user is eligible after a track event, and the source asks for
//! email surveys, an email survey call follows (`POST /v1/email_survey`). The decision is
//! a pure function of the settings, the event, the answer and the user's state, so `map`
//! can show it and delivery can commit it together with the user's new state.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::{InMomentCall, Params};
use crate::event::{Event, Payload};
use crate::settings::Settings;
use crate::state::UserState;

/// At most one survey per user this often, by default (on top of InMoment's throttling).
pub const DEFAULT_MIN_INTERVAL_DAYS: u32 = 30;
/// InMoment takes at most this many emails in one call.
pub const MAX_EMAILS_PER_CALL: usize = 100;

const DAY_SECS: i64 = 24 * 3600;

/// A source's email survey settings (`survey_channel = "email"` and the `survey_*` keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailSurveySettings {
    /// Off unless the source sets `survey_channel = "email"`.
    #[serde(default)]
    pub enabled: bool,
    /// Track event names that may lead to a survey (exact match); empty: every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// InMoment's `delay` in days (1–31); none: InMoment's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_days: Option<u8>,
    /// Send at once (`survey_immediately`) instead of after a delay.
    #[serde(default)]
    pub immediately: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intro: Option<String>,
    /// A user surveyed fewer days ago than this is not surveyed again.
    #[serde(default = "default_min_interval_days")]
    pub min_interval_days: u32,
}

fn default_min_interval_days() -> u32 {
    DEFAULT_MIN_INTERVAL_DAYS
}

impl Default for EmailSurveySettings {
    fn default() -> EmailSurveySettings {
        EmailSurveySettings {
            enabled: false,
            events: Vec::new(),
            delay_days: None,
            immediately: false,
            subject: None,
            intro: None,
            min_interval_days: DEFAULT_MIN_INTERVAL_DAYS,
        }
    }
}

impl EmailSurveySettings {
    /// Whether a track event of this name may lead to a survey (before asking InMoment).
    pub fn selects(&self, event_name: &str) -> bool {
        self.enabled && (self.events.is_empty() || self.events.iter().any(|e| e == event_name))
    }
}

/// Why no survey was sent; each is counted and logged with the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SurveySkip {
    /// The source does not survey after this event (or not by email at all).
    EventNotSelected,
    /// InMoment answered that the user is not eligible now.
    NotEligible,
    /// The user has no email to send the survey to.
    NoEmail,
    /// The user was surveyed `days_ago` days ago, within `survey_min_interval_days`.
    SurveyedRecently { days_ago: i64 },
}

impl SurveySkip {
    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SurveySkip::EventNotSelected => "event_not_selected",
            SurveySkip::NotEligible => "not_eligible",
            SurveySkip::NoEmail => "no_email",
            SurveySkip::SurveyedRecently { .. } => "surveyed_recently",
        }
    }

    /// The reason in words, for logs and `map`.
    pub fn reason(&self) -> String {
        match self {
            SurveySkip::EventNotSelected => "event not selected".into(),
            SurveySkip::NotEligible => "not eligible".into(),
            SurveySkip::NoEmail => "no email".into(),
            SurveySkip::SurveyedRecently { days_ago } => format!("surveyed {days_ago} days ago"),
        }
    }
}

/// The survey call a track event would lead to if InMoment found the user eligible, made
/// when the event is mapped (the user's properties are the event's then), or why none.
pub fn draft(
    settings: &EmailSurveySettings,
    message_id: &str,
    event_name: &str,
    state: &UserState,
    external_id: Option<&str>,
) -> Result<InMomentCall, SurveySkip> {
    if !settings.selects(event_name) {
        return Err(SurveySkip::EventNotSelected);
    }
    let email = state
        .email
        .as_ref()
        .and_then(|email| email.as_str())
        .map(str::trim)
        .filter(|email| email.contains('@'))
        .ok_or(SurveySkip::NoEmail)?;
    Ok(InMomentCall::EmailSurvey {
        message_id: message_id.to_string(),
        emails: vec![email.to_string()],
        external_ids: external_id
            .map(|id| vec![id.to_string()])
            .unwrap_or_default(),
        fields: survey_fields(settings, state),
    })
}

/// Whether a drafted survey goes out once InMoment answered: the user must be eligible and
/// not surveyed by email (`last_at`, unix seconds) within `min_interval_days`.
pub fn after_answer(
    settings: &EmailSurveySettings,
    eligible: bool,
    last_at: Option<i64>,
    now_secs: i64,
) -> Result<(), SurveySkip> {
    if !eligible {
        return Err(SurveySkip::NotEligible);
    }
    if let Some(last) = last_at {
        if now_secs - last < i64::from(settings.min_interval_days) * DAY_SECS {
            let days_ago = (now_secs - last).max(0) / DAY_SECS;
            return Err(SurveySkip::SurveyedRecently { days_ago });
        }
    }
    Ok(())
}

/// For a mapped event of a source that surveys by email: the survey its eligibility answer
/// would lead to, or why none (`None`: the source does not survey, or the event is not a
/// track, or it is a survey answer itself: the response and decline events).
/// `state_after` is the user's state as the event left it, before anything is trimmed.
pub fn for_event(
    settings: &Settings,
    event: &Event,
    calls: &[InMomentCall],
    state_after: &UserState,
) -> Option<Result<InMomentCall, SurveySkip>> {
    let Payload::Track { event: name, .. } = &event.payload else {
        return None;
    };
    let message_id = event.message_id.as_deref().unwrap_or_default();
    for_track(
        settings,
        message_id,
        name,
        event.user_id.as_deref(),
        calls,
        state_after,
    )
}

/// [`for_event`] for track event `name` (`message_id`, of user `user_id`).
pub fn for_track(
    settings: &Settings,
    message_id: &str,
    name: &str,
    user_id: Option<&str>,
    calls: &[InMomentCall],
    state_after: &UserState,
) -> Option<Result<InMomentCall, SurveySkip>> {
    if !settings.email_survey.enabled
        || name == settings.response_event
        || name == settings.decline_event
    {
        return None;
    }
    if !calls.iter().any(|call| call.kind() == "eligibility_check") {
        return Some(Err(SurveySkip::EventNotSelected));
    }
    Some(draft(
        &settings.email_survey,
        message_id,
        name,
        state_after,
        user_id,
    ))
}

/// What `map` shows of a survey: the call it would make if InMoment answered eligible.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyPreview {
    IfEligible(InMomentCall),
    None(String),
}

impl SurveyPreview {
    pub fn new(survey: Result<InMomentCall, SurveySkip>) -> SurveyPreview {
        match survey {
            Ok(call) => SurveyPreview::IfEligible(call),
            Err(skip) => SurveyPreview::None(skip.reason()),
        }
    }
}

/// `subject`, `intro`, `survey_immediately` or `delay`, and the user's properties as
/// `end_user[properties][<key>]` (scalars only, as InMoment's custom properties).
fn survey_fields(settings: &EmailSurveySettings, state: &UserState) -> Params {
    let mut fields = Params::new();
    if let Some(subject) = &settings.subject {
        fields.push("subject", subject);
    }
    if let Some(intro) = &settings.intro {
        fields.push("intro", intro);
    }
    if settings.immediately {
        fields.push("survey_immediately", "true");
    } else if let Some(days) = settings.delay_days {
        fields.push("delay", days.to_string());
    }
    for (key, value) in &state.properties {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            _ => continue,
        };
        fields.push_parts(&["end_user[properties][", key, "]"], &text);
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What follows an eligibility answer.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum SurveyDecision {
        /// Send this call, and remember the time in the user's state.
        Send(InMomentCall),
        Skip(SurveySkip),
    }

    /// Decides whether the answer to the eligibility check of track event `event_name` leads
    /// to an email survey for the user (`state` as the event left it, `external_id` their
    /// user id), at `now_secs`: `draft` then `after_answer`, as delivery does.
    fn decide(
        settings: &EmailSurveySettings,
        message_id: &str,
        event_name: &str,
        eligible: bool,
        state: &UserState,
        external_id: Option<&str>,
        now_secs: i64,
    ) -> SurveyDecision {
        let call = match draft(settings, message_id, event_name, state, external_id) {
            Ok(call) => call,
            Err(skip) => return SurveyDecision::Skip(skip),
        };
        match after_answer(settings, eligible, state.last_email_survey_at, now_secs) {
            Ok(()) => SurveyDecision::Send(call),
            Err(skip) => SurveyDecision::Skip(skip),
        }
    }
    use crate::Scalar;
    use serde_json::json;

    fn on() -> EmailSurveySettings {
        EmailSurveySettings {
            enabled: true,
            events: vec!["Invoice Paid".into()],
            delay_days: Some(2),
            subject: Some("How did we do?".into()),
            ..EmailSurveySettings::default()
        }
    }

    fn ann() -> UserState {
        let mut state = UserState {
            email: Some(Scalar::from("ann@example.com")),
            ..UserState::default()
        };
        state.properties.insert("plan".into(), json!("pro"));
        state.properties.insert("seats_amount".into(), json!(12));
        state.properties.insert("tags".into(), json!(["a"]));
        state
    }

    const NOW: i64 = 1_764_600_000;

    #[test]
    fn an_eligible_selected_user_with_an_email_is_surveyed_once_per_interval() {
        let decision = decide(&on(), "m1", "Invoice Paid", true, &ann(), Some("u-1"), NOW);
        let SurveyDecision::Send(InMomentCall::EmailSurvey {
            message_id,
            emails,
            external_ids,
            fields,
        }) = decision
        else {
            panic!("no survey: {decision:?}");
        };
        assert_eq!(message_id, "m1");
        assert_eq!(emails, ["ann@example.com"]);
        assert_eq!(external_ids, ["u-1"]);
        let fields: Vec<(&str, &str)> = fields.iter().collect();
        assert_eq!(
            fields,
            [
                ("subject", "How did we do?"),
                ("delay", "2"),
                ("end_user[properties][plan]", "pro"),
                ("end_user[properties][seats_amount]", "12"),
            ]
        );
        let mut surveyed = ann();
        surveyed.last_email_survey_at = Some(NOW - 29 * DAY_SECS);
        assert_eq!(
            decide(
                &on(),
                "m2",
                "Invoice Paid",
                true,
                &surveyed,
                Some("u-1"),
                NOW
            ),
            SurveyDecision::Skip(SurveySkip::SurveyedRecently { days_ago: 29 })
        );
        surveyed.last_email_survey_at = Some(NOW - 30 * DAY_SECS);
        assert!(matches!(
            decide(
                &on(),
                "m3",
                "Invoice Paid",
                true,
                &surveyed,
                Some("u-1"),
                NOW
            ),
            SurveyDecision::Send(_)
        ));
    }

    #[test]
    fn each_reason_not_to_survey_is_named_in_order() {
        let skip =
            |settings: &EmailSurveySettings, event: &str, eligible: bool, state: &UserState| {
                match decide(settings, "m", event, eligible, state, None, NOW) {
                    SurveyDecision::Skip(why) => why.reason(),
                    SurveyDecision::Send(call) => panic!("surveyed: {call:?}"),
                }
            };
        assert_eq!(
            skip(
                &EmailSurveySettings::default(),
                "Invoice Paid",
                true,
                &ann()
            ),
            "event not selected"
        );
        assert_eq!(skip(&on(), "Signed Up", true, &ann()), "event not selected");
        assert_eq!(skip(&on(), "Invoice Paid", false, &ann()), "not eligible");
        assert_eq!(
            skip(&on(), "Invoice Paid", true, &UserState::default()),
            "no email"
        );
        let every = EmailSurveySettings {
            events: Vec::new(),
            ..on()
        };
        assert!(every.selects("Anything"));
    }

    #[test]
    fn immediately_replaces_the_delay() {
        let settings = EmailSurveySettings {
            immediately: true,
            ..on()
        };
        let SurveyDecision::Send(InMomentCall::EmailSurvey { fields, .. }) =
            decide(&settings, "m", "Invoice Paid", true, &ann(), None, NOW)
        else {
            panic!("no survey");
        };
        assert_eq!(fields.get("survey_immediately"), Some("true"));
        assert_eq!(fields.get("delay"), None);
    }
}
