//! Track: passes the event name (InMoment's Targeted Sampling matches it exactly) with the
//! user's data and the event's properties, then asks whether to survey the user now.

mod mapping;

use inmoment_core::eligibility::{eligibility_check, Trigger};
use inmoment_core::handler::wrong_type;
use inmoment_core::{
    properties, Event, EventHandler, EventType, HandlerOutput, HandlerRegistration, MappingError,
    Payload, Settings, UserState,
};

/// Maps `track` events.
pub struct TrackHandler;

inmoment_core::inventory::submit! {
    HandlerRegistration::new(EventType::Track, env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), &TrackHandler)
}

impl EventHandler for TrackHandler {
    fn handle(
        &self,
        event: &Event,
        mut state: UserState,
        settings: &Settings,
    ) -> Result<HandlerOutput, MappingError> {
        let Payload::Track {
            event: name,
            properties,
        } = &event.payload
        else {
            return Err(wrong_type(EventType::Track, event));
        };

        if state.segment_user_id.is_none() {
            state.segment_user_id = Some(event.user_key().to_string());
        }
        if let Some(email) = mapping::email(event, properties) {
            state.email = Some(email.to_string());
        }
        if let Some(language) = mapping::language(properties) {
            state.language = Some(language.to_string());
        }
        state.event_name = Some(name.clone());
        state.properties = properties::convert(properties);

        let message_id = event.message_id.as_deref().unwrap_or_default();
        let calls = vec![eligibility_check(
            message_id,
            settings,
            &state,
            Trigger::Track,
        )];
        Ok(HandlerOutput {
            state,
            calls,
            warnings: Vec::new(),
            skipped: None,
        })
    }
}
