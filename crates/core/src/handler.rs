//! The handler contract every event-type crate implements.

use crate::call::InMomentCall;
use crate::dispatch::SkipReason;
use crate::error::{MappingError, Warning};
use crate::event::{Event, EventType};
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
    fn handle(
        &self,
        event: &Event,
        state: UserState,
        settings: &Settings,
    ) -> Result<HandlerOutput, MappingError>;
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
