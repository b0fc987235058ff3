//! One event through the registry: the destination switch first, then its handler.

use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

use crate::error::MappingError;
use crate::event::Event;
use crate::handler::{EventHandler, HandlerOutput};
use crate::integrations::destination_enabled;
use crate::registry::Registry;
use crate::settings::Settings;
use crate::state::UserState;

/// Why an accepted event produced no InMoment calls (counted, never an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// `integrations` switched InMoment off for this event.
    DestinationDisabled,
    /// No handler is registered for this event type (screen, group, alias today).
    NoHandler,
    /// Same user, same URL as the last page sent, with `skip_repeated_pages` on (our
    /// choice to spare InMoment's rate limit; the browser integration 2.5.1 sends these).
    DuplicatePage,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::DestinationDisabled => "destination_disabled",
            SkipReason::NoHandler => "no_handler",
            SkipReason::DuplicatePage => "duplicate_page",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maps one event with the user's state; the output's state is the user's new state.
pub fn map_event(
    registry: &Registry,
    event: &Event,
    state: UserState,
    settings: &Settings,
) -> Result<HandlerOutput, MappingError> {
    match handler_for(registry, event) {
        Ok(handler) => handler.handle(Cow::Borrowed(event), state, settings),
        Err(reason) => Ok(HandlerOutput::skipped(state, reason)),
    }
}

/// [`map_event`] for a caller that no longer needs the event: handlers move its traits
/// and properties into the output instead of copying them. Same output as [`map_event`].
pub fn map_event_owned(
    registry: &Registry,
    event: Event,
    state: UserState,
    settings: &Settings,
) -> Result<HandlerOutput, MappingError> {
    match handler_for(registry, &event) {
        // The event (hundreds of bytes) moves straight into the call: passing it through
        // another function first cost a copy per event.
        Ok(handler) => handler.handle(Cow::Owned(event), state, settings),
        Err(reason) => Ok(HandlerOutput::skipped(state, reason)),
    }
}

/// What can be decided of an event before its user's state is known: an error in the
/// event itself (a response score out of range, say), or a skip that no state changes
/// (no handler for its type, InMoment switched off). Ingest answers these at once;
/// everything else is mapped later with the user's state.
pub fn check_stateless(
    registry: &Registry,
    event: &Event,
    settings: &Settings,
) -> Result<Option<SkipReason>, MappingError> {
    let handler = match handler_for(registry, event) {
        Ok(handler) => handler,
        Err(reason) => return Ok(Some(reason)),
    };
    let skipped = handler.check(event, settings)?;
    Ok(skipped.filter(|reason| *reason != SkipReason::DuplicatePage))
}

/// The destination switch first, then the event type's handler: the handler to map the
/// event with, or why there is none.
#[inline]
fn handler_for(
    registry: &Registry,
    event: &Event,
) -> Result<&'static dyn EventHandler, SkipReason> {
    if !destination_enabled(&event.integrations) {
        return Err(SkipReason::DestinationDisabled);
    }
    registry
        .get(event.event_type())
        .map(|registration| registration.handler)
        .ok_or(SkipReason::NoHandler)
}

/// One line of `map` output: what the beacon would hold and the calls to make.
#[derive(Debug, Serialize)]
pub struct MappedEvent<'a> {
    #[serde(rename = "messageId")]
    pub message_id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub settings: crate::state::SurveySettings<'a>,
    pub calls: &'a [crate::call::InMomentCall],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub warnings: &'a [crate::error::Warning],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<SkipReason>,
    /// With `survey_channel = "email"`: the email survey an eligible answer would lead to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_survey: Option<crate::email_survey::SurveyPreview>,
}

impl<'a> MappedEvent<'a> {
    pub fn new(
        event: &'a Event,
        settings: &'a Settings,
        output: &'a HandlerOutput,
    ) -> MappedEvent<'a> {
        MappedEvent {
            message_id: event.message_id.as_deref().unwrap_or_default(),
            event_type: event.event_type().as_str(),
            settings: crate::state::SurveySettings::new(settings, &output.state),
            calls: &output.calls,
            warnings: &output.warnings,
            skipped: output.skipped,
            email_survey: crate::email_survey::for_event(
                settings,
                event,
                &output.calls,
                &output.state,
            )
            .map(crate::email_survey::SurveyPreview::new),
        }
    }
}
