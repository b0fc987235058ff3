//! Survey answers collected in the customer's own UI, recorded in InMoment as responses and
//! declines: a track whose name is the configured response/decline event, or that carries
//! `integrations.InMoment.eventType` = `create response` / `create decline`.

use inmoment_core::end_user::end_user_ref;
use inmoment_core::integrations::our_options;
use inmoment_core::timestamp::parse_str;
use inmoment_core::{Event, InMomentCall, MappingError, Params, Settings, UserState, Warning};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Response,
    Decline,
}

/// Whether this track records an answer. An `eventType` we do not know is an error, so a
/// typo never silently turns an answer into a plain event.
pub fn kind(
    name: &str,
    integrations: &Map<String, Value>,
    settings: &Settings,
) -> Result<Option<Kind>, MappingError> {
    let option = our_options(integrations).and_then(|(name, o)| Some((name, o.get("eventType")?)));
    if let Some((name, event_type)) = option {
        let text = event_type.as_str().map(|t| t.trim().to_ascii_lowercase());
        return match text.as_deref() {
            Some("create response") => Ok(Some(Kind::Response)),
            Some("create decline") => Ok(Some(Kind::Decline)),
            _ => Err(MappingError::new(
                format!("integrations.{name}.eventType"),
                format!("unsupported value {event_type}; expected \"create response\" or \"create decline\""),
            )),
        };
    }
    if name == settings.response_event {
        Ok(Some(Kind::Response))
    } else if name == settings.decline_event {
        Ok(Some(Kind::Decline))
    } else {
        Ok(None)
    }
}

/// The warning for an answer that cannot be recorded without the API path.
pub fn needs_client_id(kind: Kind) -> Warning {
    let what = match kind {
        Kind::Response => "survey responses",
        Kind::Decline => "survey declines",
    };
    Warning::new(
        "event",
        format!("{what} are recorded through InMoment's API: set client_id (InMoment Settings > API); only the eligibility check was made"),
    )
}

/// The response or decline call. A response's score must be a whole number from 0 to 10.
pub fn call(
    kind: Kind,
    event: &Event,
    properties: &Map<String, Value>,
    state: &UserState,
    warnings: &mut Vec<Warning>,
) -> Result<InMomentCall, MappingError> {
    let message_id = event.message_id.clone().unwrap_or_default();
    let end_user = end_user_ref(state);
    let mut fields = Params::new();
    if kind == Kind::Response {
        fields.push("score", score(properties.get("score"))?.to_string());
        if let Some(text) = properties.get("text").and_then(Value::as_str) {
            fields.push("text", text);
        }
        if let Some(ip) = &event.context.ip {
            fields.push("ip_address", ip.as_str());
        }
    }
    if let Some(url) = origin_url(event, properties) {
        fields.push("origin_url", url);
    }
    if let Some(timestamp) = &event.timestamp {
        match parse_str(timestamp) {
            Ok(seconds) => fields.push("created_at", seconds.to_string()),
            Err(error) => warnings.push(Warning::new(
                "timestamp",
                format!("left out of created_at: {error}"),
            )),
        }
    }
    Ok(match kind {
        Kind::Response => InMomentCall::CreateResponse {
            message_id,
            end_user,
            fields,
        },
        Kind::Decline => InMomentCall::CreateDecline {
            message_id,
            end_user,
            fields,
        },
    })
}

/// `properties.score`: a whole number (or digit string) from 0 to 10, as InMoment's NPS scale.
fn score(value: Option<&Value>) -> Result<i64, MappingError> {
    let invalid = |found: String| {
        MappingError::new(
            "properties.score",
            format!("a survey response needs a score from 0 to 10; found {found}"),
        )
    };
    let Some(value) = value else {
        return Err(invalid("nothing".to_string()));
    };
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match number {
        Some(n) if n.fract() == 0.0 && (0.0..=10.0).contains(&n) => Ok(n as i64),
        _ => Err(invalid(value.to_string())),
    }
}

/// `context.page.url`, else `properties.url`.
fn origin_url<'a>(event: &'a Event, properties: &'a Map<String, Value>) -> Option<&'a str> {
    let non_empty = |v: &'a Value| v.as_str().filter(|s| !s.trim().is_empty());
    event
        .context
        .page
        .get("url")
        .and_then(non_empty)
        .or_else(|| properties.get("url").and_then(non_empty))
}
