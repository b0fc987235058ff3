//! Response routes: create (score validated per survey type, profile
//! properties updated), list (with NPS categories), get, PUT and DELETE.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::answers::{owned_by, record_on_user, with_params};
use crate::api::Ctx;
use crate::clock::render as date;
use crate::end_users::{apply_properties, check_property_edit, existing_id, parse_id, unix_param};
use crate::listing;
use crate::reply::{status, ApiError, Reply};
use crate::routes::Category;
use crate::state::{Response, World};

/// `POST /v1/end_users/{id}/responses`.
pub fn create(world: &mut World, ctx: &Ctx, key: &str) -> Result<Reply, ApiError> {
    let p = ctx.params;
    let account = world
        .config
        .account(ctx.account)
        .map(|a| a.survey_type)
        .unwrap_or_default();
    let (mode, offset) = (
        world.config.properties_update,
        world.config.utc_offset_minutes,
    );
    let created = status(world.config.create_status);
    let end_user_id = existing_id(world.account(ctx.account), key)?;
    let score = score(p.non_empty("score"), account.score_range())?;
    let created_at = unix_param(p, "created_at", "Created at")?.unwrap_or(ctx.now);
    let id = world.next_id();
    let data = world.account(ctx.account);
    let user = record_on_user(data, ctx, end_user_id, mode, created_at)?;
    user.last_response = Some(id);
    let response = Response {
        id,
        end_user_id,
        score,
        text: p.get("text").map(str::to_owned),
        completed: p.get("completed").is_none_or(|v| matches!(v, "true" | "1")),
        excluded_from_calculations: p.flag("excluded_from_calculations"),
        ip_address: p.get("ip_address").map(str::to_owned),
        origin_url: p.get("origin_url").map(str::to_owned),
        channel: p.non_empty("survey[channel]").map(str::to_owned),
        created_at,
        updated_at: ctx.now,
        properties: user.properties.clone(),
        params: p.to_flat_json(),
    };
    let body = render(&response, offset);
    data.responses.insert(id, response);
    Ok(Reply::json(created, body))
}

fn score(raw: Option<&str>, (low, high): (i64, i64)) -> Result<i64, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::Validation("Score can't be blank".into()))?;
    let value: i64 = raw
        .trim()
        .parse()
        .map_err(|_| ApiError::Validation("Score is not a number".into()))?;
    if !(low..=high).contains(&value) {
        return Err(ApiError::Validation(format!(
            "Score must be between {low} and {high}"
        )));
    }
    Ok(value)
}

/// `GET /v1/responses`, `/v1/end_users/{id}/responses[/{category}]`;
/// newest first unless `sort_order=asc`.
pub fn list(
    world: &mut World,
    ctx: &Ctx,
    key: Option<&str>,
    category: Option<Category>,
) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let p = ctx.params;
    let data = world.account(ctx.account);
    let owner = key.map(|k| existing_id(data, k)).transpose()?;
    let mut items: Vec<&Response> = data
        .responses
        .values()
        .filter(|r| owner.is_none_or(|o| r.end_user_id == o))
        .filter(|r| category.is_none_or(|c| in_category(r.score, c)))
        .filter(|r| listing::time_filter_ok(p, "created", r.created_at))
        .filter(|r| listing::time_filter_ok(p, "updated", r.updated_at))
        .collect();
    items.sort_by_key(|r| (r.created_at, r.id));
    if listing::descending(p, true) {
        items.reverse();
    }
    let body: Vec<Value> = listing::paginate(items, p)
        .into_iter()
        .map(|r| render(r, offset))
        .collect();
    Ok(Reply::json(StatusCode::OK, Value::Array(body)))
}

fn in_category(score: i64, category: Category) -> bool {
    match category {
        Category::Promoters => score >= 9,
        Category::Passives => (7..=8).contains(&score),
        Category::Detractors => score <= 6,
    }
}

/// `GET /v1/end_users/{id}/responses/{rid}`.
pub fn get(world: &mut World, ctx: &Ctx, key: &str, rid: &str) -> Result<Reply, ApiError> {
    let offset = world.config.utc_offset_minutes;
    let data = world.account(ctx.account);
    let owner = existing_id(data, key)?;
    let (_, response) = owned_by(&data.responses, rid, owner)?;
    Ok(Reply::json(StatusCode::OK, render(response, offset)))
}

/// `PUT /v1/responses/{id}`: `completed`, `excluded_from_calculations`,
/// `end_user[properties]` (423 when the account does not allow it); 204.
pub fn update(world: &mut World, ctx: &Ctx, rid: &str) -> Result<Reply, ApiError> {
    let p = ctx.params;
    check_property_edit(world, ctx)?;
    let mode = world.config.properties_update;
    let data = world.account(ctx.account);
    let response = parse_id(rid)
        .and_then(|id| data.responses.get_mut(&id))
        .ok_or(ApiError::RecordNotFound)?;
    if let Some(v) = p.non_empty("completed") {
        response.completed = matches!(v, "true" | "1");
    }
    if let Some(v) = p.non_empty("excluded_from_calculations") {
        response.excluded_from_calculations = matches!(v, "true" | "1");
    }
    apply_properties(
        &mut response.properties,
        p.children(&["end_user", "properties"]),
        mode,
    );
    response.updated_at = ctx.now;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// `DELETE /v1/end_users/{id}/responses/{rid}`: 204.
pub fn delete(world: &mut World, ctx: &Ctx, key: &str, rid: &str) -> Result<Reply, ApiError> {
    let data = world.account(ctx.account);
    let owner = existing_id(data, key)?;
    let (id, _) = owned_by(&data.responses, rid, owner)?;
    data.responses.remove(&id);
    let latest = data
        .responses
        .values()
        .filter(|r| r.end_user_id == owner)
        .max_by_key(|r| (r.created_at, r.id))
        .map(|r| r.id);
    if let Some(user) = data.end_users.get_mut(&owner) {
        if user.last_response == Some(id) {
            user.last_response = latest;
        }
    }
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// The response JSON of InMoment's read side.
pub fn render(r: &Response, offset: i32) -> Value {
    json!({
        "id": r.id,
        "end_user_id": r.end_user_id,
        "survey_id": null,
        "score": r.score,
        "text": r.text,
        "completed": r.completed,
        "excluded_from_calculations": r.excluded_from_calculations,
        "ip_address": r.ip_address,
        "origin_url": r.origin_url,
        "created_at": date(r.created_at, offset),
        "updated_at": date(r.updated_at, offset),
        "tags": [],
        "notes": [],
        "end_user": {"properties": r.properties},
    })
}

/// Response plus every parameter of its create call (for `/_sandbox/state`).
pub fn render_with_params(r: &Response, offset: i32) -> Value {
    with_params(render(r, offset), &r.params)
}
