//! Group: keeps the user's `group_info` (the group's traits plus `id` = `groupId`), as the
//! browser integration 2.5.1 does before `wootric('group')`. It is shown in the user's later
//! survey settings and sent with their later eligibility checks; with a Client ID it also
//! goes to InMoment as end-user properties right away (when the user's email is known;
//! otherwise with their first upsert).

mod mapping;

use std::borrow::Cow;

use inmoment_core::end_user::{upsert, Include};
use inmoment_core::handler::{take_message_id, take_payload, take_segment_user_id, wrong_type};
use inmoment_core::{
    Event, EventHandler, EventType, HandlerOutput, MappingError, Payload, Settings, SkipReason,
    UserState,
};

/// Maps `group` events.
pub struct GroupHandler;

inmoment_core::register_handler!(EventType::Group, GroupHandler);

impl EventHandler for GroupHandler {
    /// An owned event's traits become `group_info` in place.
    fn handle(
        &self,
        mut event: Cow<'_, Event>,
        mut state: UserState,
        settings: &Settings,
    ) -> Result<HandlerOutput, MappingError> {
        let (group_id, traits) = match take_payload(&mut event) {
            Cow::Owned(Payload::Group { group_id, traits }) => (group_id, traits),
            Cow::Borrowed(Payload::Group { group_id, traits }) => {
                (group_id.clone(), traits.clone())
            }
            _ => return Err(wrong_type(EventType::Group, &event)),
        };
        if state.segment_user_id.is_none() {
            state.segment_user_id = Some(take_segment_user_id(&mut event));
        }
        state.kept.insert(
            mapping::GROUP_INFO.to_string(),
            mapping::group_info(traits, group_id),
        );

        let message_id = take_message_id(&mut event);
        let mut calls = Vec::with_capacity(1);
        // Without an email InMoment's API cannot take the user yet; group_info stays kept
        // and goes with the user's first upsert, so nothing is lost and nothing is warned.
        if let Some(Ok(call)) = upsert(&message_id, settings, &state, Include::IdentityOnly) {
            state.end_user_synced = true;
            calls.push(call);
        }
        Ok(HandlerOutput {
            state,
            calls,
            warnings: Vec::new(),
            skipped: None,
        })
    }

    /// A group is never refused nor skipped.
    fn check(&self, event: &Event, _: &Settings) -> Result<Option<SkipReason>, MappingError> {
        match event.payload {
            Payload::Group { .. } => Ok(None),
            _ => Err(wrong_type(EventType::Group, event)),
        }
    }
}
