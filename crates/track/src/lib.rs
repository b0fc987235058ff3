//! Track: passes the event name (InMoment's Targeted Sampling matches it exactly) with the
//! user's data and the event's properties, then asks whether to survey the user now. With a
//! Client ID, the configured response/decline events record survey answers given in the
//! customer's own UI.

mod answer;
mod mapping;

use inmoment_core::eligibility::{eligibility_check, Trigger};
use inmoment_core::end_user::{upsert, Include};
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

        let answer = answer::kind(name, &event.integrations, settings)?;
        let message_id = event.message_id.as_deref().unwrap_or_default();
        let mut calls = Vec::with_capacity(3);
        let mut warnings = Vec::new();
        if !state.end_user_synced {
            if let Some(Ok(call)) = upsert(message_id, settings, &state, Include::IdentityOnly) {
                calls.push(call);
                state.end_user_synced = true;
            }
        }
        calls.push(eligibility_check(
            message_id,
            settings,
            &state,
            Trigger::Track,
        ));
        if let Some(kind) = answer {
            if settings.client_id.is_some() {
                calls.push(answer::call(
                    kind,
                    event,
                    properties,
                    &state,
                    &mut warnings,
                )?);
            } else {
                warnings.push(answer::needs_client_id(kind));
            }
        }
        Ok(HandlerOutput {
            state,
            calls,
            warnings,
            skipped: None,
        })
    }
}
