//! Track: passes the event name (InMoment's Targeted Sampling matches it exactly) with the
//! user's data and the event's properties, then asks whether to survey the user now. With a
//! Client ID, the configured response/decline events record survey answers given in the
//! customer's own UI.

mod answer;
mod mapping;

use inmoment_core::eligibility::{eligibility_check, Trigger};
use inmoment_core::end_user::sync_identity_once;
use std::borrow::Cow;

use inmoment_core::handler::{take_message_id, take_payload, take_segment_user_id, wrong_type};
use inmoment_core::{
    properties, Event, EventHandler, EventType, HandlerOutput, MappingError, Payload, Settings,
    SkipReason, UserState,
};

/// Maps `track` events.
pub struct TrackHandler;

inmoment_core::register_handler!(EventType::Track, TrackHandler);

impl EventHandler for TrackHandler {
    /// An owned event's properties are moved into the state's properties, not copied.
    fn handle(
        &self,
        mut event: Cow<'_, Event>,
        mut state: UserState,
        settings: &Settings,
    ) -> Result<HandlerOutput, MappingError> {
        let (name, properties) = match take_payload(&mut event) {
            Cow::Owned(Payload::Track { event, properties }) => (event, Cow::Owned(properties)),
            Cow::Borrowed(Payload::Track { event, properties }) => {
                (event.clone(), Cow::Borrowed(properties))
            }
            _ => return Err(wrong_type(EventType::Track, &event)),
        };

        let mut warnings = Vec::new();
        match mapping::email(&event, &properties) {
            Some(Ok(email)) => state.email = Some(email),
            Some(Err(warning)) => warnings.push(warning),
            None => {}
        }
        // After the email, which may be the user id.
        if state.segment_user_id.is_none() {
            state.segment_user_id = Some(take_segment_user_id(&mut event));
        }
        match mapping::language(&properties) {
            Some(Ok(language)) => state.language = Some(language),
            Some(Err(warning)) => warnings.push(warning),
            None => {}
        }

        let answer = answer::kind(&name, &event.integrations, settings)?;
        // The answer reads the event's own properties, so it is made before they are converted
        // (it needs only the user's identity from the state, which is already set).
        let answer_call = match answer {
            Some(kind) if settings.client_id.is_some() => Some(answer::call(
                kind,
                &event,
                &properties,
                &state,
                &mut warnings,
            )?),
            Some(kind) => {
                warnings.push(answer::needs_client_id(kind));
                None
            }
            None => None,
        };
        state.event_name = Some(name);
        state.properties = properties::convert_cow(properties);

        let message_id = take_message_id(&mut event);
        let mut calls = Vec::with_capacity(3);
        calls.extend(sync_identity_once(&message_id, settings, &mut state));
        calls.push(eligibility_check(
            message_id,
            settings,
            &state,
            Trigger::Track,
        ));
        calls.extend(answer_call);
        Ok(HandlerOutput {
            state,
            calls,
            warnings,
            skipped: None,
        })
    }

    /// Only a survey answer can be refused (its score, say): other events are never
    /// refused nor skipped, so only answers are mapped to find out.
    fn check(
        &self,
        event: &Event,
        settings: &Settings,
    ) -> Result<Option<SkipReason>, MappingError> {
        let Payload::Track { event: name, .. } = &event.payload else {
            return Err(wrong_type(EventType::Track, event));
        };
        match answer::kind(name, &event.integrations, settings)? {
            Some(_) if settings.client_id.is_some() => {
                inmoment_core::handler::check_by_mapping(self, event, settings)
            }
            _ => Ok(None),
        }
    }
}
