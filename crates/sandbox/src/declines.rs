//! Decline routes: create (all fields optional, profile properties updated),
//! list, get, PUT and DELETE.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::answers::{owned_by, record_on_user, with_params};
use crate::api::Ctx;
use crate::clock::render as date;
use crate::end_users::{apply_properties, check_property_edit, existing_id, parse_id, unix_param};
use crate::listing;
use crate::reply::{status, ApiError, Reply};
use crate::state::{Decline, World};

/// `POST /v1/end_users/{id}/declines`.
pub fn create(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    let p = ctx.params;
    let (mode, offset) = (
        world.config.properties_update,
        world.config.utc_offset_minutes,
    );
    let created = status(world.config.create_status);
    let end_user_id = existing_id(world.account(ctx.account), key)?;
    let created_at = unix_param(p, "created_at", "Created at")?.unwrap_or(ctx.now);
    let id = world.next_id();
    let data = world.account(ctx.account);
    let user = record_on_user(data, ctx, end_user_id, mode, created_at)?;
    let decline = Decline {
        id,
        end_user_id,
        ip_address: p.get("ip_address").map(str::to_owned),
        origin_url: p.get("origin_url").map(str::to_owned),
        created_at,
        updated_at: ctx.now,
        properties: user.properties.clone(),
        params: p.to_flat_json(),
    };
    let body = render(&decline, offset);
    data.declines.insert(id, decline);
    Ok(Reply::json(created, body))
}

/// `GET /v1/declines`, `/v1/end_users/{id}/declines`; newest first unless
/// `sort_order=asc`.
pub fn list(world: &mut World, ctx: &Ctx, key: Option<&str>) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let p = ctx.params;
    let data = world.account(ctx.account);
    let owner = key.map(|k| existing_id(data, k)).transpose()?;
    let mut items: Vec<&Decline> = data
        .declines
        .values()
        .filter(|d| owner.is_none_or(|o| d.end_user_id == o))
        .filter(|d| listing::time_filter_ok(p, "created", d.created_at))
        .filter(|d| listing::time_filter_ok(p, "updated", d.updated_at))
        .collect();
    items.sort_by_key(|d| (d.created_at, d.id));
    if listing::descending(p, true) {
        items.reverse();
    }
    let body: Vec<Value> = listing::paginate(items, p)
        .into_iter()
        .map(|d| render(d, offset))
        .collect();
    Ok(Reply::json(StatusCode::OK, Value::Array(body)))
}

/// `GET /v1/end_users/{id}/declines/{did}`.
pub fn get(world: &mut World, ctx: &Ctx, key: &str, did: &str) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let data = world.account(ctx.account);
    let owner = existing_id(data, key)?;
    let (_, decline) = owned_by(&data.declines, did, owner)?;
    Ok(Reply::json(StatusCode::OK, render(decline, offset)))
}

/// `PUT /v1/declines/{id}`: `end_user[properties]` (423 when the account does
/// not allow it); 204.
pub fn update(world: &mut World, ctx: &Ctx, did: &str) -> Result<Reply, ApiError> {
    let p = ctx.params;
    check_property_edit(world, ctx)?;
    let mode = world.config.properties_update;
    let data = world.account(ctx.account);
    let decline = parse_id(did)
        .and_then(|id| data.declines.get_mut(&id))
        .ok_or(ApiError::RecordNotFound)?;
    apply_properties(
        &mut decline.properties,
        p.children(&["end_user", "properties"]),
        mode,
    );
    decline.updated_at = ctx.now;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// `DELETE /v1/end_users/{id}/declines/{did}`: 204.
pub fn delete(world: &mut World, ctx: &Ctx, key: &str, did: &str) -> Result<Reply, ApiError> {
    let data = world.account(ctx.account);
    let owner = existing_id(data, key)?;
    let (id, _) = owned_by(&data.declines, did, owner)?;
    data.declines.remove(&id);
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// The decline JSON of InMoment's read side.
pub fn render(d: &Decline, offset: i32) -> Value {
    json!({
        "id": d.id,
        "end_user_id": d.end_user_id,
        "survey_id": null,
        "ip_address": d.ip_address,
        "origin_url": d.origin_url,
        "created_at": date(d.created_at, offset),
        "updated_at": date(d.updated_at, offset),
        "end_user": {"properties": d.properties},
    })
}

/// Decline plus every parameter of its create call (for `/_sandbox/state`).
pub fn render_with_params(d: &Decline, offset: i32) -> Value {
    with_params(render(d, offset), &d.params)
}
