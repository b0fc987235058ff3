//! End-user routes: list, lookups (id, e-mail, external id, phone), create,
//! update, delete, export and settings, with InMoment's object shape (§1).

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use crate::api::Ctx;
use crate::clock::render as date;
use crate::config::PropertiesUpdate;
use crate::listing;
use crate::params::Params;
use crate::reply::{status, ApiError, Reply};
use crate::state::{AccountData, EndUser, EndUserSettings, World};

/// `GET /v1/end_users`: filters, sorting and paging; `?email=` gives `[]` or `[user]`.
pub fn list(world: &mut World, ctx: &Ctx) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let p = ctx.params;
    let data = world.account(ctx.account);
    let email = p.non_empty("email").map(str::to_lowercase);
    let mut users: Vec<&EndUser> = data
        .end_users
        .values()
        .filter(|u| match &email {
            Some(e) => u.email.as_deref().map(str::to_lowercase).as_ref() == Some(e),
            None => true,
        })
        .filter(|u| listing::time_filter_ok(p, "created", u.created_at))
        .filter(|u| listing::time_filter_ok(p, "updated", u.updated_at))
        .collect();
    match p.get("sort_key") {
        Some("updated_at") => users.sort_by_key(|u| (u.updated_at, u.id)),
        Some("created_at") => users.sort_by_key(|u| (u.created_at, u.id)),
        _ => users.sort_by(|a, b| {
            (a.email.as_deref().map(str::to_lowercase), a.id)
                .cmp(&(b.email.as_deref().map(str::to_lowercase), b.id))
        }),
    }
    if listing::descending(p, false) {
        users.reverse();
    }
    let page = listing::paginate(users, p);
    let body: Vec<Value> = page.iter().map(|u| render(u, data, offset)).collect();
    Ok(Reply::json(StatusCode::OK, Value::Array(body)))
}

/// `GET /v1/end_users/{key}` by id, or by e-mail / external id when
/// `lookup_by_email=true` / `lookup_by_external_id=true`.
pub fn get(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let data = world.account(ctx.account);
    let id = if ctx.params.flag("lookup_by_email") {
        data.id_by_email(key)
    } else if ctx.params.flag("lookup_by_external_id") {
        data.id_by_external_id(key)
    } else {
        parse_id(key)
    };
    let user = id
        .and_then(|id| data.end_users.get(&id))
        .ok_or(ApiError::RecordNotFound)?;
    Ok(Reply::json(StatusCode::OK, render(user, data, offset)))
}

/// `GET /v1/end_users/phone_number/{+E164}`.
pub fn get_by_phone(world: &mut World, ctx: &Ctx, phone: &str) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let data = world.account(ctx.account);
    let user = data
        .id_by_phone(phone)
        .and_then(|id| data.end_users.get(&id))
        .ok_or(ApiError::RecordNotFound)?;
    Ok(Reply::json(StatusCode::OK, render(user, data, offset)))
}

/// `POST /v1/end_users`: needs `email` or `phone_number`; e-mail unique.
pub fn create(world: &mut World, ctx: &Ctx) -> Result<Reply, ApiError> {
    let p = ctx.params;
    if p.non_empty("email").is_none() && p.non_empty("phone_number").is_none() {
        return Err(ApiError::Validation("Email can't be blank".into()));
    }
    let mut user = EndUser {
        id: 0,
        email: None,
        external_id: None,
        phone_number: None,
        external_created_at: None,
        last_surveyed: None,
        created_at: ctx.now,
        updated_at: ctx.now,
        properties: Map::new(),
        settings: EndUserSettings::default(),
        last_response: None,
    };
    apply_fields(&mut user, p, PropertiesUpdate::Merge)?;
    let offset = world.config.utc_offset_minutes;
    let created = status(world.config.create_status);
    check_email_free(world.account(ctx.account), &user)?;
    user.id = world.next_id();
    let data = world.account(ctx.account);
    data.save(user.clone());
    Ok(Reply::json(created, render(&user, data, offset)))
}

/// `PUT /v1/end_users/{id}`: changes only the fields sent; 200 with the object.
pub fn update(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let mode = world.config.properties_update;
    let data = world.account(ctx.account);
    let mut user = parse_id(key)
        .and_then(|id| data.end_users.get(&id))
        .cloned()
        .ok_or(ApiError::RecordNotFound)?;
    apply_fields(&mut user, ctx.params, mode)?;
    check_email_free(data, &user)?;
    user.updated_at = ctx.now;
    data.save(user.clone());
    Ok(Reply::json(StatusCode::OK, render(&user, data, offset)))
}

/// `DELETE /v1/end_users/{id | email}`: 200 with the deleted object.
pub fn delete(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let data = world.account(ctx.account);
    let id = parse_id(key)
        .or_else(|| data.id_by_email(key))
        .filter(|id| data.end_users.contains_key(id))
        .ok_or(ApiError::RecordNotFound)?;
    let body = data
        .end_users
        .get(&id)
        .map(|u| render(u, data, offset))
        .unwrap_or(Value::Null);
    data.remove(id);
    Ok(Reply::json(StatusCode::OK, body))
}

/// `GET /v1/end_users/{id}/export`: 202, empty (the export is "e-mailed").
pub fn export(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    existing_id(world.account(ctx.account), key)?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// `GET /v1/end_users/{id}/settings`.
pub fn settings_get(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    let data = world.account(ctx.account);
    let id = existing_id(data, key)?;
    let body = data
        .end_users
        .get(&id)
        .map_or(Value::Null, |u| render_settings(&u.settings));
    Ok(Reply::json(StatusCode::OK, body))
}

/// `PUT /v1/end_users/{id}/settings` with boolean parameters.
pub fn settings_update(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    let data = world.account(ctx.account);
    let id = existing_id(data, key)?;
    let p = ctx.params;
    let Some(user) = data.end_users.get_mut(&id) else {
        return Err(ApiError::RecordNotFound);
    };
    let s = &mut user.settings;
    for (name, slot) in [
        ("email_nps", &mut s.email_nps),
        ("mobile_nps", &mut s.mobile_nps),
        ("web_nps", &mut s.web_nps),
        ("force_mobile_survey", &mut s.force_mobile_survey),
        ("force_web_survey", &mut s.force_web_survey),
    ] {
        if let Some(v) = p.non_empty(name) {
            *slot = matches!(v, "true" | "1");
        }
    }
    user.updated_at = ctx.now;
    Ok(Reply::json(StatusCode::OK, render_settings(&user.settings)))
}

/// Parses an integer end-user (or record) id.
pub fn parse_id(key: &str) -> Option<u64> {
    key.parse().ok()
}

/// The id of an existing end user addressed by integer id.
pub fn existing_id(data: &AccountData, key: &str) -> Result<u64, ApiError> {
    parse_id(key)
        .filter(|id| data.end_users.contains_key(id))
        .ok_or(ApiError::RecordNotFound)
}

/// PUT on a response or decline may change `end_user[properties]` only when the account
/// allows historical property edits; InMoment answers 423 otherwise.
pub fn check_property_edit(world: &World, ctx: &Ctx) -> Result<(), ApiError> {
    let allowed = world
        .config
        .account(ctx.account)
        .is_some_and(|a| a.historical_property_edits);
    if ctx.params.has_nested(&["end_user", "properties"]) && !allowed {
        return Err(ApiError::Locked(
            "Historical property editing is not enabled for this account".into(),
        ));
    }
    Ok(())
}

/// Writes `sent` properties into `target`, merging or replacing.
pub fn apply_properties(
    target: &mut Map<String, Value>,
    sent: Vec<(String, String)>,
    mode: PropertiesUpdate,
) {
    if sent.is_empty() {
        return;
    }
    if mode == PropertiesUpdate::Replace {
        target.clear();
    }
    for (k, v) in sent {
        target.insert(k, Value::String(v));
    }
}

/// Parses unix seconds (fractions are truncated).
pub fn unix_param(p: &Params, key: &str, label: &str) -> Result<Option<i64>, ApiError> {
    let Some(raw) = p.non_empty(key) else {
        return Ok(None);
    };
    let raw = raw.trim();
    if let Ok(v) = raw.parse::<i64>() {
        return Ok(Some(v));
    }
    match raw.parse::<f64>() {
        // Truncation is the intent: unix seconds from a fractional value.
        #[allow(clippy::cast_possible_truncation)]
        Ok(v) if v.is_finite() => Ok(Some(v.trunc() as i64)),
        _ => Err(ApiError::Validation(format!("{label} is not a number"))),
    }
}

fn apply_fields(user: &mut EndUser, p: &Params, mode: PropertiesUpdate) -> Result<(), ApiError> {
    if let Some(v) = p.non_empty("email") {
        user.email = Some(v.to_owned());
    }
    if let Some(v) = p.non_empty("external_id") {
        user.external_id = Some(v.to_owned());
    }
    if let Some(v) = p.non_empty("phone_number") {
        user.phone_number = Some(v.to_owned());
    }
    if let Some(v) = unix_param(p, "external_created_at", "External created at")? {
        user.external_created_at = Some(v);
    }
    if let Some(v) = unix_param(p, "last_surveyed", "Last surveyed")? {
        user.last_surveyed = Some(v);
    }
    apply_properties(&mut user.properties, p.children(&["properties"]), mode);
    Ok(())
}

fn check_email_free(data: &AccountData, user: &EndUser) -> Result<(), ApiError> {
    let taken = user
        .email
        .as_deref()
        .and_then(|e| data.id_by_email(e))
        .is_some_and(|other| other != user.id);
    if taken {
        return Err(ApiError::Validation("Email has already been taken".into()));
    }
    Ok(())
}

/// The end-user JSON of InMoment's read side.
pub fn render(user: &EndUser, data: &AccountData, offset: i32) -> Value {
    let last_response = user
        .last_response
        .and_then(|id| data.responses.get(&id))
        .map_or(Value::Null, |r| {
            json!({
                "id": r.id,
                "score": r.score,
                "text": r.text,
                "survey": {"channel": r.channel.as_deref().unwrap_or("api")}
            })
        });
    json!({
        "id": user.id,
        "created_at": date(user.created_at, offset),
        "updated_at": date(user.updated_at, offset),
        "email": user.email,
        "last_surveyed": user.last_surveyed.map(|t| date(t, offset)),
        "external_created_at": user.external_created_at,
        "last_seen_at": null,
        "properties": user.properties,
        "phone_number": user.phone_number,
        "external_id": user.external_id,
        "last_response": last_response,
        "settings": render_settings(&user.settings),
    })
}

fn render_settings(s: &EndUserSettings) -> Value {
    json!({
        "email_nps": s.email_nps,
        "mobile_nps": s.mobile_nps,
        "web_nps": s.web_nps,
        "force_mobile_survey": s.force_mobile_survey,
        "force_web_survey": s.force_web_survey,
        "surveys_disabled_by_end_user": s.surveys_disabled_by_end_user,
    })
}
