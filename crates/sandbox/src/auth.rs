//! OAuth: the `/oauth/token` endpoint (password, client_credentials and
//! refresh_token grants) and the bearer check of REST routes, Doorkeeper-style
//! as the research note infers (§2, §6).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use axum::http::{header, HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::config::{AccountConfig, ErrorReply};
use crate::params::Params;
use crate::reply::{status, Reply};
use crate::state::World;

/// Issued access and refresh tokens, each tied to one account.
#[derive(Debug, Default)]
pub struct Tokens {
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, String>,
    seed: RandomState,
    issued: u64,
}

#[derive(Debug, Clone)]
struct AccessToken {
    account: String,
    expires_at: i64,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token, or one the sandbox never issued.
    #[error("The access token is invalid")]
    Invalid,
    /// The token's lifetime is over on the sandbox clock.
    #[error("The access token expired")]
    Expired,
}

impl Tokens {
    fn random(&mut self) -> String {
        self.issued += 1;
        let mut a = self.seed.build_hasher();
        a.write_u64(self.issued);
        let mut b = self.seed.build_hasher();
        b.write_u64(a.finish());
        format!("{:016x}{:016x}", a.finish(), b.finish())
    }

    /// Issues an access token (and a refresh token when asked) for `account`.
    fn issue(
        &mut self,
        account: &str,
        now: i64,
        lifetime: i64,
        with_refresh: bool,
    ) -> (String, Option<String>) {
        if self.issued % 4096 == 4095 {
            self.access.retain(|_, t| t.expires_at > now);
        }
        let access = self.random();
        self.access.insert(
            access.clone(),
            AccessToken {
                account: account.to_owned(),
                expires_at: now + lifetime,
            },
        );
        let refresh = with_refresh.then(|| {
            let r = self.random();
            self.refresh.insert(r.clone(), account.to_owned());
            r
        });
        (access, refresh)
    }

    /// The account of a valid access token.
    pub fn check(&self, token: &str, now: i64) -> Result<&str, TokenError> {
        let t = self.access.get(token).ok_or(TokenError::Invalid)?;
        if now >= t.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(&t.account)
    }

    /// Expires every access token issued so far (refresh tokens stay valid).
    pub fn expire_all(&mut self, now: i64) {
        for t in self.access.values_mut() {
            t.expires_at = t.expires_at.min(now);
        }
    }
}

/// Answers `POST /oauth/token`; also returns the account the call was for.
pub fn token_endpoint(world: &mut World, now: i64, params: &Params) -> (Reply, Option<String>) {
    let scope = match params.non_empty("account_token") {
        Some(t) if world.config.account(t).is_none() => return (Reply::not_found(), None),
        other => other.map(str::to_owned),
    };
    match grant(world, params, scope.as_deref()) {
        Ok((account, with_refresh)) => {
            let reply = issue(world, now, &account, with_refresh);
            (reply, Some(account))
        }
        Err(reply) => (reply, scope),
    }
}

/// Checks the grant; gives the account and whether a refresh token goes with it.
fn grant(world: &mut World, params: &Params, scope: Option<&str>) -> Result<(String, bool), Reply> {
    let in_scope = |a: &AccountConfig| scope.is_none_or(|s| a.account_token == s);
    let errors = &world.config.oauth_errors;
    match params.get("grant_type") {
        Some("password") => world
            .config
            .accounts
            .iter()
            .find(|a| {
                in_scope(a)
                    && a.username.is_some()
                    && a.username.as_deref() == params.get("username")
                    && a.password.is_some()
                    && a.password.as_deref() == params.get("password")
            })
            .map(|a| (a.account_token.clone(), true))
            .ok_or_else(|| error(&errors.invalid_grant)),
        Some("client_credentials") => params
            .non_empty("client_id")
            .and_then(|id| world.config.accounts.iter().find(|a| a.client_id == id))
            .filter(|a| in_scope(a))
            .filter(|a| client_secret_ok(a, params.non_empty("client_secret")))
            .map(|a| (a.account_token.clone(), false))
            .ok_or_else(|| error(&errors.invalid_client)),
        Some("refresh_token") => {
            let known = params.non_empty("refresh_token").filter(|r| {
                world
                    .tokens
                    .refresh
                    .get(*r)
                    .is_some_and(|acc| scope.is_none_or(|s| s == acc))
            });
            match known.and_then(|r| world.tokens.refresh.remove(r)) {
                Some(account) => Ok((account, true)),
                None => Err(error(&world.config.oauth_errors.invalid_grant)),
            }
        }
        Some(_) => Err(doorkeeper_error(
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )),
        None => Err(doorkeeper_error(
            "invalid_request",
            "Missing required parameter: grant_type.",
        )),
    }
}

/// Issues tokens and renders the documented success body.
fn issue(world: &mut World, now: i64, account: &str, with_refresh: bool) -> Reply {
    let lifetime = world.config.token_lifetime_secs;
    let (access, refresh) = world.tokens.issue(account, now, lifetime, with_refresh);
    let mut body = Map::new();
    body.insert("access_token".into(), json!(access));
    body.insert("token_type".into(), json!("bearer"));
    body.insert("expires_in".into(), json!(lifetime));
    if let Some(r) = refresh {
        body.insert("refresh_token".into(), json!(r));
    }
    body.insert("scope".into(), json!("public"));
    body.insert("created_at".into(), json!(now));
    Reply::json(StatusCode::OK, Value::Object(body))
        .with_header(header::CACHE_CONTROL, "no-store")
        .with_header(header::PRAGMA, "no-cache")
}

fn client_secret_ok(account: &AccountConfig, sent: Option<&str>) -> bool {
    match sent {
        Some(secret) => account.client_secret.as_deref() == Some(secret),
        None => !account.require_client_secret,
    }
}

fn error(reply: &ErrorReply) -> Reply {
    Reply::json(status(reply.status), reply.body.clone())
}

fn doorkeeper_error(code: &str, description: &str) -> Reply {
    Reply::json(
        StatusCode::BAD_REQUEST,
        json!({"error": code, "error_description": description}),
    )
}

/// The account of the request's access token (`Authorization: Bearer` or
/// the `access_token` parameter), or the 401 answer.
pub fn authenticate(
    tokens: &Tokens,
    now: i64,
    headers: &HeaderMap,
    params: &Params,
) -> Result<String, Reply> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let token = bearer.or_else(|| params.non_empty("access_token"));
    let result = match token {
        Some(t) => tokens.check(t, now).map(str::to_owned),
        None => Err(TokenError::Invalid),
    };
    result.map_err(unauthorized)
}

fn unauthorized(e: TokenError) -> Reply {
    let description = e.to_string();
    Reply::json(
        StatusCode::UNAUTHORIZED,
        json!({"error": "invalid_token", "error_description": description}),
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        format!(
            "Bearer realm=\"Doorkeeper\", error=\"invalid_token\", error_description=\"{description}\""
        ),
    )
}
