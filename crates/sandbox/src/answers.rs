//! What responses and declines share: each belongs to one end user, snapshots that user's
//! profile properties (after applying any sent with it), and keeps its create parameters
//! for `/_sandbox/state`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::api::Ctx;
use crate::config::PropertiesUpdate;
use crate::end_users::{apply_properties, parse_id};
use crate::reply::ApiError;
use crate::state::{AccountData, Decline, EndUser, Response};

/// A response or a decline.
pub trait Answer {
    fn end_user_id(&self) -> u64;
}

impl Answer for Response {
    fn end_user_id(&self) -> u64 {
        self.end_user_id
    }
}

impl Answer for Decline {
    fn end_user_id(&self) -> u64 {
        self.end_user_id
    }
}

/// The end user an answer is created for, with the `end_user[properties]` sent along
/// applied and the user marked surveyed at `created_at`.
pub fn record_on_user<'a>(
    data: &'a mut AccountData,
    ctx: &Ctx,
    end_user_id: u64,
    mode: PropertiesUpdate,
    created_at: i64,
) -> Result<&'a mut EndUser, ApiError> {
    let user = data
        .end_users
        .get_mut(&end_user_id)
        .ok_or(ApiError::RecordNotFound)?;
    let sent = ctx.params.children(&["end_user", "properties"]);
    if !sent.is_empty() {
        apply_properties(&mut user.properties, sent, mode);
        user.updated_at = ctx.now;
    }
    user.last_surveyed = Some(created_at);
    Ok(user)
}

/// The id and answer that `raw` names, when it belongs to end user `owner`.
pub fn owned_by<'a, A: Answer>(
    answers: &'a BTreeMap<u64, A>,
    raw: &str,
    owner: u64,
) -> Result<(u64, &'a A), ApiError> {
    parse_id(raw)
        .and_then(|id| answers.get(&id).map(|answer| (id, answer)))
        .filter(|(_, answer)| answer.end_user_id() == owner)
        .ok_or(ApiError::RecordNotFound)
}

/// A rendered answer plus every parameter of its create call.
pub fn with_params(mut rendered: Value, params: &Map<String, Value>) -> Value {
    if let Value::Object(map) = &mut rendered {
        map.insert("params".into(), Value::Object(params.clone()));
    }
    rendered
}
