//! Identify: passes the user to InMoment (email, sign-up time, language, user id, and the
//! other traits as custom properties), then asks whether to survey them now. With a Client
//! ID it also creates or updates the user's InMoment end user.

mod mapping;

use inmoment_core::eligibility::{eligibility_check, Trigger};
use inmoment_core::end_user::{upsert, Include};
use std::borrow::Cow;

use inmoment_core::handler::{take_message_id, take_payload, take_segment_user_id, wrong_type};
use inmoment_core::{
    Event, EventHandler, EventType, HandlerOutput, MappingError, Payload, Settings, SkipReason,
    UserState,
};

/// Maps `identify` events.
pub struct IdentifyHandler;

inmoment_core::register_handler!(EventType::Identify, IdentifyHandler);

impl EventHandler for IdentifyHandler {
    /// An owned event's traits are moved into the state's properties, not copied.
    fn handle(
        &self,
        mut event: Cow<'_, Event>,
        mut state: UserState,
        settings: &Settings,
    ) -> Result<HandlerOutput, MappingError> {
        let traits = match take_payload(&mut event) {
            Cow::Owned(Payload::Identify { traits }) => Cow::Owned(traits),
            Cow::Borrowed(Payload::Identify { traits }) => Cow::Borrowed(traits),
            _ => return Err(wrong_type(EventType::Identify, &event)),
        };
        let mut warnings = Vec::new();

        match mapping::email(&traits, event.user_id_text()) {
            Some(Ok(email)) => state.email = Some(email),
            Some(Err(warning)) => warnings.push(warning),
            None => {}
        }
        match mapping::created_at(&traits) {
            Some(Ok(seconds)) => state.created_at = Some(seconds),
            Some(Err(warning)) => warnings.push(warning),
            None => {}
        }
        match mapping::language(&traits) {
            Some(Ok(language)) => state.language = Some(language),
            Some(Err(warning)) => warnings.push(warning),
            None => {}
        }
        // The `id` trait is a copy; the state keeps the event's own user id.
        let user_id = event.user_id_value();
        state.segment_user_id = Some(take_segment_user_id(&mut event));
        state.event_name = None;
        state.properties = mapping::properties(traits, user_id);

        let message_id = take_message_id(&mut event);
        let mut calls = Vec::with_capacity(2);
        match upsert(&message_id, settings, &state, Include::Traits) {
            Some(Ok(call)) => {
                calls.push(call);
                state.end_user_synced = true;
            }
            Some(Err(warning)) => warnings.push(warning),
            None => {}
        }
        // The last call keeps the message id.
        calls.push(eligibility_check(
            message_id,
            settings,
            &state,
            Trigger::Identify,
        ));
        Ok(HandlerOutput {
            state,
            calls,
            warnings,
            skipped: None,
        })
    }

    /// An identify is never refused nor skipped: leaving a trait out is a warning.
    fn check(&self, event: &Event, _: &Settings) -> Result<Option<SkipReason>, MappingError> {
        match event.payload {
            Payload::Identify { .. } => Ok(None),
            _ => Err(wrong_type(EventType::Identify, event)),
        }
    }
}
