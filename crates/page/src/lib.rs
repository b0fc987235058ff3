//! Page: passes a pageview (URL, page name and path) for URL-targeted sampling. A repeat of
//! the user's last page is dropped when `skip_repeated_pages` is on (the default): our
//! choice, since every page is an InMoment call against its rate limit; the browser
//! integration 2.5.1 sends every page.

mod mapping;

use inmoment_core::eligibility::{eligibility_check, Trigger};
use inmoment_core::end_user::sync_identity_once;
use std::borrow::Cow;

use inmoment_core::handler::{take_message_id, take_payload, take_segment_user_id, wrong_type};
use inmoment_core::{
    Event, EventHandler, EventType, HandlerOutput, MappingError, Payload, Settings, SkipReason,
    UserState,
};

/// Maps `page` events.
pub struct PageHandler;

inmoment_core::register_handler!(EventType::Page, PageHandler);

impl EventHandler for PageHandler {
    /// An owned event's properties become `page_info` in place.
    fn handle(
        &self,
        mut event: Cow<'_, Event>,
        mut state: UserState,
        settings: &Settings,
    ) -> Result<HandlerOutput, MappingError> {
        let (name, category, properties) = match take_payload(&mut event) {
            Cow::Owned(Payload::Page {
                name,
                category,
                properties,
            }) => (
                name.map(Cow::Owned),
                category.map(Cow::Owned),
                Cow::Owned(properties),
            ),
            Cow::Borrowed(Payload::Page {
                name,
                category,
                properties,
            }) => (
                name.as_deref().map(Cow::Borrowed),
                category.as_deref().map(Cow::Borrowed),
                Cow::Borrowed(properties),
            ),
            _ => return Err(wrong_type(EventType::Page, &event)),
        };

        let url = mapping::url(&properties, &event.context.page);
        if settings.skip_repeated_pages && url.is_some() && state.last_page_url.as_deref() == url {
            return Ok(HandlerOutput::skipped(state, SkipReason::DuplicatePage));
        }
        // The URL is kept in the state before `properties` move into `page_info`.
        let has_url = url.is_some();
        if let Some(url) = url {
            state.last_page_url = Some(url.to_string());
        }
        state.page_info = Some(mapping::page_info(
            properties,
            &event.context.page,
            name,
            category,
        ));
        if state.segment_user_id.is_none() {
            state.segment_user_id = Some(take_segment_user_id(&mut event));
        }

        let message_id = take_message_id(&mut event);
        let mut calls = Vec::with_capacity(2);
        calls.extend(sync_identity_once(&message_id, settings, &mut state));
        let url = if has_url {
            state.last_page_url.as_deref()
        } else {
            None
        };
        calls.push(eligibility_check(
            message_id,
            settings,
            &state,
            Trigger::Page { url },
        ));
        Ok(HandlerOutput {
            state,
            calls,
            warnings: Vec::new(),
            skipped: None,
        })
    }

    /// A page is never refused; with no state there is no previous page to repeat.
    fn check(&self, event: &Event, _: &Settings) -> Result<Option<SkipReason>, MappingError> {
        match event.payload {
            Payload::Page { .. } => Ok(None),
            _ => Err(wrong_type(EventType::Page, event)),
        }
    }
}
