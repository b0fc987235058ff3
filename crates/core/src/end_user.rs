//! The end-user upsert every handler makes on the API path (when a Client ID is set): the
//! user's identity and, for identify, their traits as custom properties.

use crate::call::{EndUserRef, InMomentCall, Params};
use crate::custom_fields::{push_flattened, push_flattened_one};
use crate::error::Warning;
use crate::scalar::Scalar;
use crate::settings::Settings;
use crate::state::UserState;

/// Whether the upsert carries the state's `properties` (identify's traits) or only the
/// identity (track and page, whose properties describe the event, not the user). Either
/// way it carries the handlers' kept fields (`group_info` → `properties[group_info_id]`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    Traits,
    IdentityOnly,
}

/// The user's reference for InMoment lookups, from the state.
pub fn end_user_ref(state: &UserState) -> EndUserRef {
    EndUserRef {
        external_id: state
            .segment_user_id
            .as_ref()
            .map(|id| id.text().into_owned()),
        email: api_email(state).map(str::to_string),
    }
}

/// The email InMoment's API can use: a non-blank string. The survey settings copy any
/// email as given, as the browser integration does, but the REST API (our addition) only
/// takes an address.
fn api_email(state: &UserState) -> Option<&str> {
    state
        .email
        .as_ref()
        .and_then(Scalar::as_str)
        .filter(|email| !email.trim().is_empty())
}

/// The identity upsert a track or page makes for a user not synced yet (then marked
/// synced); nothing when already synced, off the API path, or without an email so far.
pub fn sync_identity_once(
    message_id: &str,
    settings: &Settings,
    state: &mut UserState,
) -> Option<InMomentCall> {
    if state.end_user_synced {
        return None;
    }
    let call = upsert(message_id, settings, state, Include::IdentityOnly)?.ok()?;
    state.end_user_synced = true;
    Some(call)
}

/// Builds the upsert, or a warning when InMoment could not accept one (it needs an email).
/// Returns nothing without a Client ID: the API path is off.
pub fn upsert(
    message_id: &str,
    settings: &Settings,
    state: &UserState,
    include: Include,
) -> Option<Result<InMomentCall, Warning>> {
    settings.client_id.as_ref()?;
    let Some(email) = api_email(state) else {
        let message = match &state.email {
            None => "InMoment's API needs an email to create an end user; this user is not synced until one is known".to_string(),
            Some(other) => format!(
                "InMoment's API needs an email address to create an end user, not `{}`; this user is not synced until one is known",
                other.text()
            ),
        };
        return Some(Err(Warning::new("traits.email", message)));
    };
    let mut fields = Params::new();
    fields.push("email", email);
    if let Some(id) = &state.segment_user_id {
        fields.push("external_id", id.text());
    }
    if let Some(created_at) = state.created_at {
        fields.push("external_created_at", created_at.to_string());
    }
    if include == Include::Traits {
        push_flattened(&mut fields, "properties", &state.properties);
    }
    for (name, value) in state.kept_fields() {
        push_flattened_one(&mut fields, "properties", name, value);
    }
    Some(Ok(InMomentCall::UpsertEndUser {
        message_id: message_id.to_string(),
        end_user: end_user_ref(state),
        fields,
    }))
}
