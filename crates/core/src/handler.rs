//! The handler contract every event-type crate implements.

use std::borrow::Cow;

use crate::call::InMomentCall;
use crate::dispatch::SkipReason;
use crate::error::{MappingError, Warning};
use crate::event::{Event, EventType, Payload};
use crate::scalar::Scalar;
use crate::settings::Settings;
use crate::state::UserState;

/// What a handler made of one event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HandlerOutput {
    /// The user's state after this event (stored for the user's next event).
    pub state: UserState,
    /// The InMoment calls to make, in order.
    pub calls: Vec<InMomentCall>,
    /// Values left out, with why (the event still goes through).
    pub warnings: Vec<Warning>,
    /// Set when the event deliberately produces no calls (e.g. a duplicate page).
    pub skipped: Option<SkipReason>,
}

impl HandlerOutput {
    /// No calls, state unchanged, and the reason why.
    pub fn skipped(state: UserState, reason: SkipReason) -> HandlerOutput {
        HandlerOutput {
            state,
            skipped: Some(reason),
            ..HandlerOutput::default()
        }
    }
}

/// Turns one Segment event into InMoment calls. Pure: no I/O, no clock, no globals,
/// so the same input always gives the same output and fixtures can pin it exactly.
pub trait EventHandler: Send + Sync {
    /// `state` is the user's state before the event; the output carries the new one.
    /// The event is owned when the caller no longer needs it (the store, `send`), so the
    /// handler can move its traits and properties instead of copying them; borrowed
    /// otherwise (`map`). Both must give the same output: the fixture runner checks it.
    fn handle(
        &self,
        event: Cow<'_, Event>,
        state: UserState,
        settings: &Settings,
    ) -> Result<HandlerOutput, MappingError>;

    /// What ingest can decide before the user's state is known: an error in the event
    /// itself, or a skip. The default maps the event with an empty state, which is always
    /// right; a handler overrides it only to skip that work, and the fixture runner checks
    /// on every fixture that the override answers as the default does.
    fn check(
        &self,
        event: &Event,
        settings: &Settings,
    ) -> Result<Option<SkipReason>, MappingError> {
        check_by_mapping(self, event, settings)
    }
}

/// [`EventHandler::check`]'s default: the event mapped with an empty state.
pub fn check_by_mapping<H: EventHandler + ?Sized>(
    handler: &H,
    event: &Event,
    settings: &Settings,
) -> Result<Option<SkipReason>, MappingError> {
    handler
        .handle(Cow::Borrowed(event), UserState::default(), settings)
        .map(|output| output.skipped)
}

/// The payload: moved out of an owned event (which keeps an emptied payload of the same
/// kind), borrowed from a borrowed one.
pub fn take_payload<'a>(event: &mut Cow<'a, Event>) -> Cow<'a, Payload> {
    match event {
        Cow::Borrowed(borrowed) => {
            let borrowed: &'a Event = borrowed;
            Cow::Borrowed(&borrowed.payload)
        }
        Cow::Owned(owned) => Cow::Owned(owned.payload.take()),
    }
}

/// The `messageId` (empty when absent): moved out of an owned event, borrowed from a
/// borrowed one, so the last call made can keep it without a copy.
pub fn take_message_id<'a>(event: &mut Cow<'a, Event>) -> Cow<'a, str> {
    match event {
        Cow::Borrowed(borrowed) => {
            let borrowed: &'a Event = borrowed;
            Cow::Borrowed(borrowed.message_id.as_deref().unwrap_or_default())
        }
        Cow::Owned(owned) => Cow::Owned(owned.message_id.take().unwrap_or_default()),
    }
}

/// [`Event::segment_user_id`]: moved out of an owned event (which keeps no user id after
/// it), copied from a borrowed one. Call it after the last read of the event's user id.
pub fn take_segment_user_id(event: &mut Cow<'_, Event>) -> Scalar {
    let Cow::Owned(owned) = event else {
        return event.segment_user_id();
    };
    let sent = owned.user_id_as_sent.take();
    match owned.user_id.take() {
        Some(id) => sent
            .and_then(Scalar::from_value)
            .unwrap_or_else(|| Scalar::from(id)),
        None => Scalar::from(owned.anonymous_id.take().unwrap_or_default()),
    }
}

/// Error for a handler given an event of another type (a registry bug, not user input).
pub fn wrong_type(expected: EventType, event: &Event) -> MappingError {
    MappingError::new(
        "type",
        format!(
            "the {expected} handler was given a {} event",
            event.event_type()
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_taken_segment_user_id_is_the_event_s() {
        for ids in [
            json!({"userId": "u-1"}),
            json!({"userId": " u-1 "}),
            json!({"userId": 42}),
            json!({"userId": 4.5}),
            json!({"anonymousId": "a-1"}),
            json!({"userId": "u-1", "anonymousId": "a-1"}),
        ] {
            let mut value = json!({"type": "page"});
            value
                .as_object_mut()
                .unwrap()
                .extend(ids.as_object().unwrap().clone());
            let event = Event::from_value(value, None).unwrap();
            let expected = event.segment_user_id();
            assert_eq!(take_segment_user_id(&mut Cow::Borrowed(&event)), expected);
            assert_eq!(take_segment_user_id(&mut Cow::Owned(event)), expected);
        }
    }
}
