//! Handles one resolved API route under the world lock: token check, rate
//! limit, then the route's handler.

use axum::http::HeaderMap;

use crate::auth;
use crate::declines;
use crate::eligibility;
use crate::email_survey;
use crate::end_users;
use crate::params::Params;
use crate::rate_limit::Decision;
use crate::reply::{ApiError, Reply};
use crate::responses;
use crate::routes::{Matcher, Route};
use crate::state::World;

/// What a REST handler needs besides the world.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// Sandbox time, unix seconds.
    pub now: i64,
    /// Account token the access token belongs to.
    pub account: &'a str,
    /// Merged parameters.
    pub params: &'a Params,
}

/// One request as the API handlers see it.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Raw path.
    pub path: &'a str,
    /// Resolved route.
    pub route: &'a Route,
    /// Merged parameters.
    pub params: &'a Params,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// Answers a request; also returns the account it was attributed to.
pub fn handle(world: &mut World, now: i64, req: &Incoming) -> (Reply, Option<String>) {
    let account = if req.route.needs_token() {
        match auth::authenticate(&world.tokens, now, req.headers, req.params) {
            Ok(a) => Some(a),
            Err(reply) => return (reply, None),
        }
    } else {
        account_hint(world, req.params)
    };
    let rate_headers = match &account {
        Some(a) => match rate_limit(world, now, req, a) {
            Ok(h) => h,
            Err(reply) => return (reply, account),
        },
        None => Vec::new(),
    };
    let (mut reply, account) = match (req.route, account) {
        (Route::OauthToken, _) => auth::token_endpoint(world, now, req.params),
        (Route::Eligible, _) => eligibility::check(world, req.params),
        (Route::RegisteredEvents, _) => eligibility::registered_events(world, req.params),
        (route, Some(account)) => {
            let ctx = Ctx {
                now,
                account: &account,
                params: req.params,
            };
            let reply = rest(world, &ctx, route).unwrap_or_else(|e| e.reply());
            (reply, Some(account))
        }
        (_, None) => (Reply::not_found(), None),
    };
    reply.headers.extend(rate_headers);
    (reply, account)
}

/// Account named by `account_token` or `client_id` on unauthenticated routes.
fn account_hint(world: &World, params: &Params) -> Option<String> {
    let accounts = &world.config.accounts;
    params
        .non_empty("account_token")
        .and_then(|t| accounts.iter().find(|a| a.account_token == t))
        .or_else(|| {
            params
                .non_empty("client_id")
                .and_then(|c| accounts.iter().find(|a| a.client_id == c))
        })
        .map(|a| a.account_token.clone())
}

fn rate_limit(
    world: &mut World,
    now: i64,
    req: &Incoming,
    account: &str,
) -> Result<Vec<(axum::http::HeaderName, String)>, Reply> {
    let config = &world.config;
    let limit = config
        .account(account)
        .and_then(|a| a.rate_limit_per_minute)
        .or(config.rate_limit.per_minute);
    let Some(limit) = limit else {
        return Ok(Vec::new());
    };
    let name = req.route.name();
    let limited = config
        .rate_limit
        .routes
        .iter()
        .any(|r| Matcher::new(r.as_str()).matches(req.method, req.path, name));
    if !limited {
        return Ok(Vec::new());
    }
    match world.rate.count(account, limit, now, &config.rate_limit) {
        Decision::Allow(headers) => Ok(headers),
        Decision::Deny(reply) => Err(reply),
    }
}

fn rest(world: &mut World, ctx: &Ctx, route: &Route) -> Result<Reply, ApiError> {
    match route {
        Route::EndUsersList => end_users::list(world, ctx),
        Route::EndUserCreate => end_users::create(world, ctx),
        Route::EndUserGet(k) => end_users::get(world, ctx, k),
        Route::EndUserByPhone(phone) => end_users::get_by_phone(world, ctx, phone),
        Route::EndUserUpdate(k) => end_users::update(world, ctx, k),
        Route::EndUserDelete(k) => end_users::delete(world, ctx, k),
        Route::EndUserExport(k) => end_users::export(world, ctx, k),
        Route::EndUserSettingsGet(k) => end_users::settings_get(world, ctx, k),
        Route::EndUserSettingsUpdate(k) => end_users::settings_update(world, ctx, k),
        Route::ResponsesList(k, c) => responses::list(world, ctx, k.as_deref(), *c),
        Route::ResponseGet(k, r) => responses::get(world, ctx, k, r),
        Route::ResponseCreate(k) => responses::create(world, ctx, k),
        Route::ResponseUpdate(r) => responses::update(world, ctx, r),
        Route::ResponseDelete(k, r) => responses::delete(world, ctx, k, r),
        Route::DeclinesList(k) => declines::list(world, ctx, k.as_deref()),
        Route::DeclineGet(k, d) => declines::get(world, ctx, k, d),
        Route::DeclineCreate(k) => declines::create(world, ctx, k),
        Route::DeclineUpdate(d) => declines::update(world, ctx, d),
        Route::DeclineDelete(k, d) => declines::delete(world, ctx, k, d),
        Route::EmailSurveyCreate => email_survey::create(world, ctx),
        Route::OauthToken | Route::Eligible | Route::RegisteredEvents => {
            Err(ApiError::RecordNotFound)
        }
    }
}
