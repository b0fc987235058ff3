//! The route table of the fake (REST under `/v1/` and `/api/v1/`, OAuth and
//! eligibility) and the pattern syntax used to pick routes for faults and
//! rate limits.
//!
//! Matching scheme (a [`Matcher`] string):
//! - `*` matches every request;
//! - a route name such as `responses.create`, or a name prefix ending in
//!   `.*` such as `responses.*`;
//! - `METHOD /path` or just `/path`, where `METHOD` may be `*`, a path
//!   segment `*` matches exactly one segment and a final `**` matches any
//!   rest (also none). Paths are compared as received (not decoded).

use axum::http::Method;
use percent_encoding::percent_decode_str;

/// Which kind of NPS responses to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Scores 9–10.
    Promoters,
    /// Scores 7–8.
    Passives,
    /// Scores 0–6.
    Detractors,
}

/// One recognised API route with its decoded path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /oauth/token`.
    OauthToken,
    /// `GET /eligible.json`.
    Eligible,
    /// `GET /registered_events.json`.
    RegisteredEvents,
    /// `GET /v1/end_users`.
    EndUsersList,
    /// `POST /v1/end_users`.
    EndUserCreate,
    /// `GET /v1/end_users/{id | email | external id}`.
    EndUserGet(String),
    /// `GET /v1/end_users/phone_number/{+E164}`.
    EndUserByPhone(String),
    /// `PUT /v1/end_users/{id}`.
    EndUserUpdate(String),
    /// `DELETE /v1/end_users/{id | email}`.
    EndUserDelete(String),
    /// `GET /v1/end_users/{id}/export`.
    EndUserExport(String),
    /// `GET /v1/end_users/{id}/settings`.
    EndUserSettingsGet(String),
    /// `PUT /v1/end_users/{id}/settings`.
    EndUserSettingsUpdate(String),
    /// `GET /v1/responses`, `/v1/end_users/{id}/responses[/{category}]`.
    ResponsesList(Option<String>, Option<Category>),
    /// `GET /v1/end_users/{id}/responses/{rid}`.
    ResponseGet(String, String),
    /// `POST /v1/end_users/{id}/responses`.
    ResponseCreate(String),
    /// `PUT /v1/responses/{id}`.
    ResponseUpdate(String),
    /// `DELETE /v1/end_users/{id}/responses/{rid}`.
    ResponseDelete(String, String),
    /// `GET /v1/declines`, `/v1/end_users/{id}/declines`.
    DeclinesList(Option<String>),
    /// `GET /v1/end_users/{id}/declines/{did}`.
    DeclineGet(String, String),
    /// `POST /v1/end_users/{id}/declines`.
    DeclineCreate(String),
    /// `PUT /v1/declines/{id}`.
    DeclineUpdate(String),
    /// `DELETE /v1/end_users/{id}/declines/{did}`.
    DeclineDelete(String, String),
    /// `POST /v1/email_survey`.
    EmailSurveyCreate,
}

impl Route {
    /// Stable name used by counters, faults and the request log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::OauthToken => "oauth.token",
            Self::Eligible => "eligible",
            Self::RegisteredEvents => "registered_events",
            Self::EndUsersList => "end_users.list",
            Self::EndUserCreate => "end_users.create",
            Self::EndUserGet(_) => "end_users.get",
            Self::EndUserByPhone(_) => "end_users.get_by_phone",
            Self::EndUserUpdate(_) => "end_users.update",
            Self::EndUserDelete(_) => "end_users.delete",
            Self::EndUserExport(_) => "end_users.export",
            Self::EndUserSettingsGet(_) => "end_users.settings.get",
            Self::EndUserSettingsUpdate(_) => "end_users.settings.update",
            Self::ResponsesList(..) => "responses.list",
            Self::ResponseGet(..) => "responses.get",
            Self::ResponseCreate(_) => "responses.create",
            Self::ResponseUpdate(_) => "responses.update",
            Self::ResponseDelete(..) => "responses.delete",
            Self::DeclinesList(_) => "declines.list",
            Self::DeclineGet(..) => "declines.get",
            Self::DeclineCreate(_) => "declines.create",
            Self::DeclineUpdate(_) => "declines.update",
            Self::DeclineDelete(..) => "declines.delete",
            Self::EmailSurveyCreate => "email_survey.create",
        }
    }

    /// Whether the route needs an OAuth access token.
    pub fn needs_token(&self) -> bool {
        !matches!(
            self,
            Self::OauthToken | Self::Eligible | Self::RegisteredEvents
        )
    }
}

/// Name recorded for requests that match no route.
pub const UNKNOWN: &str = "unknown";

/// Finds the route of a request; `None` answers 404.
pub fn resolve(method: &Method, path: &str) -> Option<Route> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let owned: Vec<String> = trimmed.split('/').map(decode).collect();
    let segs: Vec<&str> = owned.iter().map(String::as_str).collect();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["oauth", "token"]) => Some(Route::OauthToken),
        ("GET", ["eligible.json"]) => Some(Route::Eligible),
        ("GET", ["registered_events.json"]) => Some(Route::RegisteredEvents),
        (m, ["v1", rest @ ..]) | (m, ["api", "v1", rest @ ..]) => rest_route(m, rest),
        _ => None,
    }
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn rest_route(method: &str, segs: &[&str]) -> Option<Route> {
    let s = |v: &str| v.to_owned();
    let route = match (method, segs) {
        ("GET", ["end_users"]) => Route::EndUsersList,
        ("POST", ["end_users"]) => Route::EndUserCreate,
        ("GET", ["end_users", "phone_number", phone]) if phone.starts_with('+') => {
            Route::EndUserByPhone(s(phone))
        }
        // A number without `+` is looked up as an end-user id (note §1 row 6).
        ("GET", ["end_users", "phone_number", id]) => Route::EndUserGet(s(id)),
        ("GET", ["end_users", id]) => Route::EndUserGet(s(id)),
        ("PUT", ["end_users", id]) => Route::EndUserUpdate(s(id)),
        ("DELETE", ["end_users", id]) => Route::EndUserDelete(s(id)),
        ("GET", ["end_users", id, "export"]) => Route::EndUserExport(s(id)),
        ("GET", ["end_users", id, "settings"]) => Route::EndUserSettingsGet(s(id)),
        ("PUT", ["end_users", id, "settings"]) => Route::EndUserSettingsUpdate(s(id)),
        ("GET", ["responses"]) => Route::ResponsesList(None, None),
        ("GET", ["end_users", id, "responses"]) => Route::ResponsesList(Some(s(id)), None),
        ("GET", ["end_users", id, "responses", "promoters"]) => {
            Route::ResponsesList(Some(s(id)), Some(Category::Promoters))
        }
        ("GET", ["end_users", id, "responses", "passives"]) => {
            Route::ResponsesList(Some(s(id)), Some(Category::Passives))
        }
        ("GET", ["end_users", id, "responses", "detractors"]) => {
            Route::ResponsesList(Some(s(id)), Some(Category::Detractors))
        }
        ("GET", ["end_users", id, "responses", rid]) => Route::ResponseGet(s(id), s(rid)),
        ("POST", ["end_users", id, "responses"]) => Route::ResponseCreate(s(id)),
        ("PUT", ["responses", rid]) => Route::ResponseUpdate(s(rid)),
        ("DELETE", ["end_users", id, "responses", rid]) => Route::ResponseDelete(s(id), s(rid)),
        ("GET", ["declines"]) => Route::DeclinesList(None),
        ("GET", ["end_users", id, "declines"]) => Route::DeclinesList(Some(s(id))),
        ("GET", ["end_users", id, "declines", did]) => Route::DeclineGet(s(id), s(did)),
        ("POST", ["end_users", id, "declines"]) => Route::DeclineCreate(s(id)),
        ("PUT", ["declines", did]) => Route::DeclineUpdate(s(did)),
        ("DELETE", ["end_users", id, "declines", did]) => Route::DeclineDelete(s(id), s(did)),
        ("POST", ["email_survey"]) => Route::EmailSurveyCreate,
        _ => return None,
    };
    Some(route)
}

/// A request selector in the documented matching scheme (see module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher(String);

impl Matcher {
    /// Wraps a pattern string.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    /// Whether a request with this method, raw path and route name matches.
    pub fn matches(&self, method: &str, path: &str, route: &str) -> bool {
        let pattern = self.0.trim();
        if pattern == "*" {
            return true;
        }
        let (want_method, want_path) = match pattern.split_once(' ') {
            Some((m, p)) => (m.trim(), p.trim()),
            None if pattern.starts_with('/') => ("*", pattern),
            None => return name_matches(pattern, route),
        };
        (want_method == "*" || want_method.eq_ignore_ascii_case(method))
            && path_matches(want_path, path)
    }
}

fn name_matches(pattern: &str, route: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => route
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == route,
    }
}

fn path_matches(pattern: &str, path: &str) -> bool {
    let want: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_matches('/').split('/').collect();
    for (i, w) in want.iter().enumerate() {
        if *w == "**" && i + 1 == want.len() {
            return true;
        }
        match got.get(i) {
            Some(g) if *w == "*" && !g.is_empty() => {}
            Some(g) if w == g => {}
            _ => return false,
        }
    }
    want.len() == got.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_prefixes_resolve_to_the_same_route() {
        let a = resolve(&Method::POST, "/v1/end_users/7/responses");
        let b = resolve(&Method::POST, "/api/v1/end_users/7/responses");
        assert_eq!(a, Some(Route::ResponseCreate("7".into())));
        assert_eq!(a, b);
    }

    #[test]
    fn email_survey_resolves_under_both_prefixes_and_needs_a_token() {
        let a = resolve(&Method::POST, "/v1/email_survey");
        assert_eq!(a, Some(Route::EmailSurveyCreate));
        assert_eq!(a, resolve(&Method::POST, "/api/v1/email_survey"));
        assert_eq!(resolve(&Method::GET, "/v1/email_survey"), None);
        assert_eq!(Route::EmailSurveyCreate.name(), "email_survey.create");
        assert!(Route::EmailSurveyCreate.needs_token());
    }

    #[test]
    fn path_segments_are_percent_decoded_and_keep_dot_com() {
        assert_eq!(
            resolve(&Method::GET, "/v1/end_users/a.b%40c.com"),
            Some(Route::EndUserGet("a.b@c.com".into()))
        );
        assert_eq!(
            resolve(&Method::GET, "/v1/end_users/x%2Fy"),
            Some(Route::EndUserGet("x/y".into()))
        );
    }

    #[test]
    fn phone_route_needs_a_plus() {
        assert_eq!(
            resolve(&Method::GET, "/v1/end_users/phone_number/%2B15551234"),
            Some(Route::EndUserByPhone("+15551234".into()))
        );
        assert_eq!(
            resolve(&Method::GET, "/v1/end_users/phone_number/12"),
            Some(Route::EndUserGet("12".into()))
        );
    }

    #[test]
    fn wrong_method_or_path_is_unknown() {
        assert_eq!(resolve(&Method::PATCH, "/v1/end_users/1"), None);
        assert_eq!(resolve(&Method::GET, "/v2/end_users"), None);
        assert_eq!(resolve(&Method::GET, "/oauth/token"), None);
    }

    #[test]
    fn matcher_by_name_and_prefix() {
        assert!(Matcher::new("responses.create").matches("POST", "/x", "responses.create"));
        assert!(Matcher::new("responses.*").matches("POST", "/x", "responses.create"));
        assert!(!Matcher::new("responses.*").matches("POST", "/x", "responses_x.create"));
        assert!(!Matcher::new("end_users.get").matches("GET", "/x", "end_users.list"));
        assert!(Matcher::new("*").matches("GET", "/anything", "unknown"));
    }

    #[test]
    fn matcher_by_method_and_path() {
        let m = Matcher::new("POST /v1/end_users/*/responses");
        assert!(m.matches("POST", "/v1/end_users/12/responses", "responses.create"));
        assert!(!m.matches("GET", "/v1/end_users/12/responses", "responses.list"));
        assert!(!m.matches("POST", "/api/v1/end_users/12/responses", "responses.create"));
        assert!(!m.matches("POST", "/v1/end_users/responses", "x"));
        let all = Matcher::new("* /api/v1/**");
        assert!(all.matches("DELETE", "/api/v1/end_users/1", "end_users.delete"));
        assert!(all.matches("GET", "/api/v1", "unknown"));
        assert!(!all.matches("GET", "/v1/end_users", "end_users.list"));
        assert!(Matcher::new("/eligible.json").matches("GET", "/eligible.json", "eligible"));
    }
}
