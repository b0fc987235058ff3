//! Turns calls into exact wire requests (method, URL, form body). Pure: the token is added
//! only when the request is sent.

use std::fmt;

use inmoment_core::{ClientId, Host, HttpRequest, Method, Params};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;

use crate::config::{ClientConfig, ClientSecret};
use crate::error::ConfigError;

/// Everything but RFC 3986's unreserved characters is escaped in a path segment, so an
/// external id or email can never add a segment or a query.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One HTTP request as it goes on the wire, minus credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct WireRequest {
    pub method: Method,
    /// Which role answers; decides the classification of 401 and 404.
    pub host: Host,
    /// Built on the parsed base URL, so sending does not parse it again (an eligibility
    /// URL carries every property in its query).
    pub url: Url,
    /// `application/x-www-form-urlencoded` body, for POST and PUT.
    pub body: Option<String>,
    /// Sends `Authorization: Bearer <token>`.
    pub bearer: bool,
}

/// The body can hold the client secret (token request), so only its size is shown.
impl fmt::Debug for WireRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireRequest")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("url", &self.url.as_str())
            .field("body_bytes", &self.body.as_ref().map(String::len))
            .field("bearer", &self.bearer)
            .finish()
    }
}

/// Form encoding with bracket keys kept in order (`properties%5Bplan%5D=pro`).
pub fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `base` with `path` (escaped already, and ending in `?query` or not) after its own path.
fn under(base: &Url, path: &str) -> Url {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut url = base.clone();
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url.set_query(query);
    url
}

fn segment(raw: &str) -> String {
    utf8_percent_encode(raw, SEGMENT).to_string()
}

/// True when `id` can be a path segment: URL parsers resolve `.` and `..` (even escaped)
/// as directory moves.
pub fn usable_in_path(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".."
}

/// The base URLs and REST prefix, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    eligibility: Url,
    api: Url,
    prefix: String,
}

impl Endpoints {
    pub fn new(config: &ClientConfig) -> Result<Endpoints, ConfigError> {
        let base = |setting: &'static str, value: &str| {
            let trimmed = value.trim().trim_end_matches('/');
            match Url::parse(trimmed) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
                _ => Err(ConfigError::BadUrl {
                    setting,
                    value: value.to_string(),
                }),
            }
        };
        let prefix = config.rest_prefix.trim().trim_end_matches('/');
        if !config.rest_prefix.trim().starts_with('/') {
            return Err(ConfigError::BadPrefix(config.rest_prefix.clone()));
        }
        Ok(Endpoints {
            eligibility: base("eligibility_url", &config.eligibility_url)?,
            api: base("api_url", &config.api_url)?,
            prefix: prefix.to_string(),
        })
    }

    /// A request the handler spelled out (the eligibility check): its host's base URL plus
    /// its path, query and form; never OAuth.
    pub fn raw(&self, request: &HttpRequest) -> WireRequest {
        let base = match request.host {
            Host::Eligibility => &self.eligibility,
            Host::Api => &self.api,
        };
        let mut url = under(base, &request.path);
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(request.query.iter());
        }
        let body = (!request.form.is_empty()).then(|| form_encode(request.form.iter()));
        WireRequest {
            method: request.method,
            host: request.host,
            url,
            body,
            bearer: false,
        }
    }

    /// `POST /oauth/token` with the client-credentials grant.
    pub fn token(&self, client_id: &ClientId, secret: Option<&ClientSecret>) -> WireRequest {
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
        ];
        if let Some(secret) = secret {
            pairs.push(("client_secret", secret.expose()));
        }
        WireRequest {
            method: Method::Post,
            host: Host::Api,
            url: under(&self.api, "/oauth/token"),
            body: Some(form_encode(pairs)),
            bearer: false,
        }
    }

    fn rest(&self, method: Method, path: &str, body: Option<String>) -> WireRequest {
        WireRequest {
            method,
            host: Host::Api,
            url: under(&self.api, &format!("{}{path}", self.prefix)),
            body,
            bearer: true,
        }
    }

    /// `GET /end_users/{external_id}?lookup_by_external_id=true`.
    pub fn end_user_by_external_id(&self, external_id: &str) -> WireRequest {
        let path = format!(
            "/end_users/{}?lookup_by_external_id=true",
            segment(external_id)
        );
        self.rest(Method::Get, &path, None)
    }

    /// `GET /end_users?email=…` (answers `[]` or `[user]`).
    pub fn end_users_by_email(&self, email: &str) -> WireRequest {
        let path = format!("/end_users?{}", form_encode([("email", email)]));
        self.rest(Method::Get, &path, None)
    }

    /// `POST /end_users`.
    pub fn create_end_user(&self, fields: &Params) -> WireRequest {
        self.rest(Method::Post, "/end_users", Some(form_encode(fields.iter())))
    }

    /// `PUT /end_users/{id}`.
    pub fn update_end_user(&self, id: u64, fields: &Params) -> WireRequest {
        let path = format!("/end_users/{id}");
        self.rest(Method::Put, &path, Some(form_encode(fields.iter())))
    }

    /// `POST /end_users/{id}/responses`.
    pub fn create_response(&self, id: u64, fields: &Params) -> WireRequest {
        let path = format!("/end_users/{id}/responses");
        self.rest(Method::Post, &path, Some(form_encode(fields.iter())))
    }

    /// `POST /end_users/{id}/declines`.
    pub fn create_decline(&self, id: u64, fields: &Params) -> WireRequest {
        let path = format!("/end_users/{id}/declines");
        self.rest(Method::Post, &path, Some(form_encode(fields.iter())))
    }

    /// `POST /email_survey`: `emails[]`, `external_ids[]` (same order), then `fields`.
    pub fn email_survey(
        &self,
        emails: &[String],
        external_ids: &[String],
        fields: &Params,
    ) -> WireRequest {
        let lists = emails
            .iter()
            .map(|email| ("emails[]", email.as_str()))
            .chain(
                external_ids
                    .iter()
                    .map(|id| ("external_ids[]", id.as_str())),
            );
        let body = form_encode(lists.chain(fields.iter()));
        self.rest(Method::Post, "/email_survey", Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inmoment_core::AccountToken;

    #[test]
    fn an_email_survey_is_a_form_post_with_the_lists_first() {
        let mut fields = Params::new();
        fields.push("delay", "2");
        fields.push("end_user[properties][plan]", "pro");
        let request = endpoints().email_survey(
            &["ann@example.com".into(), "bo@example.com".into()],
            &["u-1".into(), "u-2".into()],
            &fields,
        );
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:8/api/v1/email_survey"
        );
        assert!(request.bearer);
        assert_eq!(
            request.body.as_deref(),
            Some(
                "emails%5B%5D=ann%40example.com&emails%5B%5D=bo%40example.com&external_ids%5B%5D=u-1\
                 &external_ids%5B%5D=u-2&delay=2&end_user%5Bproperties%5D%5Bplan%5D=pro"
            )
        );
    }

    fn endpoints() -> Endpoints {
        let config = ClientConfig::for_token(&AccountToken::parse("NPS-d3m0d3m0").unwrap())
            .with_base_urls("http://127.0.0.1:9/", "http://127.0.0.1:8");
        Endpoints::new(&config).unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        let mut p = Params::new();
        for (k, v) in pairs {
            p.push(*k, *v);
        }
        p
    }

    #[test]
    fn eligibility_check_is_a_get_with_the_query_in_order() {
        let request = HttpRequest {
            method: Method::Get,
            host: Host::Eligibility,
            path: "/eligible.json".into(),
            query: params(&[
                ("account_token", "NPS-d3m0d3m0"),
                ("email", "a+b@example.com"),
                ("properties[plan]", "pro plan"),
            ]),
            form: Params::new(),
        };
        let wire = endpoints().raw(&request);
        assert_eq!(wire.method, Method::Get);
        assert_eq!(
            wire.url.as_str(),
            "http://127.0.0.1:9/eligible.json?account_token=NPS-d3m0d3m0&email=a%2Bb%40example.com&properties%5Bplan%5D=pro+plan"
        );
        assert_eq!(wire.body, None);
        assert!(!wire.bearer);
    }

    #[test]
    fn token_request_is_a_client_credentials_form() {
        let id = ClientId::parse("demo-client-id").unwrap();
        let wire = endpoints().token(&id, None);
        assert_eq!(wire.url.as_str(), "http://127.0.0.1:8/oauth/token");
        assert_eq!(wire.method, Method::Post);
        assert_eq!(
            wire.body.as_deref(),
            Some("grant_type=client_credentials&client_id=demo-client-id")
        );
        let secret = ClientSecret::new("s3cret&x");
        let wire = endpoints().token(&id, Some(&secret));
        assert_eq!(
            wire.body.as_deref(),
            Some("grant_type=client_credentials&client_id=demo-client-id&client_secret=s3cret%26x")
        );
        assert!(!wire.bearer);
    }

    #[test]
    fn lookups_escape_the_path_segment_and_the_email() {
        let e = endpoints();
        assert_eq!(
            e.end_user_by_external_id("user/1 ?x").url.as_str(),
            "http://127.0.0.1:8/api/v1/end_users/user%2F1%20%3Fx?lookup_by_external_id=true"
        );
        assert_eq!(
            e.end_user_by_external_id("ken@example.com").url.as_str(),
            "http://127.0.0.1:8/api/v1/end_users/ken%40example.com?lookup_by_external_id=true"
        );
        let by_email = e.end_users_by_email("ken+1@example.com");
        assert_eq!(
            by_email.url.as_str(),
            "http://127.0.0.1:8/api/v1/end_users?email=ken%2B1%40example.com"
        );
        assert_eq!(by_email.method, Method::Get);
        assert!(by_email.bearer);
        assert!(!usable_in_path(".."));
        assert!(!usable_in_path(""));
        assert!(usable_in_path("a.b"));
    }

    #[test]
    fn writes_are_bracket_key_forms_under_the_prefix() {
        let e = endpoints();
        let fields = params(&[
            ("email", "ken@example.com"),
            ("external_id", "u1"),
            ("properties[plan]", "pro"),
        ]);
        let create = e.create_end_user(&fields);
        assert_eq!(
            (create.method, create.url.as_str()),
            (Method::Post, "http://127.0.0.1:8/api/v1/end_users")
        );
        assert_eq!(
            create.body.as_deref(),
            Some("email=ken%40example.com&external_id=u1&properties%5Bplan%5D=pro")
        );
        let update = e.update_end_user(42, &fields);
        assert_eq!(
            (update.method, update.url.as_str()),
            (Method::Put, "http://127.0.0.1:8/api/v1/end_users/42")
        );
        assert_eq!(update.body, create.body);
        let answer = params(&[("score", "9"), ("text", "Great & fast")]);
        let response = e.create_response(42, &answer);
        assert_eq!(
            (response.method, response.url.as_str()),
            (
                Method::Post,
                "http://127.0.0.1:8/api/v1/end_users/42/responses"
            )
        );
        assert_eq!(
            response.body.as_deref(),
            Some("score=9&text=Great+%26+fast")
        );
        let decline = e.create_decline(42, &params(&[("origin_url", "https://x.io/a?b=1")]));
        assert_eq!(
            decline.url.as_str(),
            "http://127.0.0.1:8/api/v1/end_users/42/declines"
        );
        assert_eq!(
            decline.body.as_deref(),
            Some("origin_url=https%3A%2F%2Fx.io%2Fa%3Fb%3D1")
        );
        assert!(create.bearer && update.bearer && response.bearer && decline.bearer);
    }

    #[test]
    fn a_base_url_with_a_path_keeps_it() {
        let config = ClientConfig::for_token(&AccountToken::parse("NPS-d3m0d3m0").unwrap())
            .with_base_urls("http://127.0.0.1:9/proxy/", "http://127.0.0.1:8/im");
        let e = Endpoints::new(&config).unwrap();
        let request = HttpRequest {
            method: Method::Get,
            host: Host::Eligibility,
            path: "/eligible.json".into(),
            query: params(&[("a b", "c&d")]),
            form: Params::new(),
        };
        assert_eq!(
            e.raw(&request).url.as_str(),
            "http://127.0.0.1:9/proxy/eligible.json?a+b=c%26d"
        );
        assert_eq!(
            e.end_users_by_email("k@x.io").url.as_str(),
            "http://127.0.0.1:8/im/api/v1/end_users?email=k%40x.io"
        );
        let id = ClientId::parse("demo-client-id").unwrap();
        assert_eq!(
            e.token(&id, None).url.as_str(),
            "http://127.0.0.1:8/im/oauth/token"
        );
    }

    #[test]
    fn the_prefix_is_configurable() {
        let mut config = ClientConfig::for_token(&AccountToken::parse("NPS-d3m0d3m0").unwrap());
        config.rest_prefix = "/v1/".into();
        let e = Endpoints::new(&config).unwrap();
        assert_eq!(
            e.update_end_user(1, &Params::new()).url.as_str(),
            "https://app.wootric.com/v1/end_users/1"
        );
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let token = AccountToken::parse("NPS-d3m0d3m0").unwrap();
        let bad_url = ClientConfig::for_token(&token).with_base_urls("ftp://x", "http://ok");
        assert_eq!(
            Endpoints::new(&bad_url),
            Err(ConfigError::BadUrl {
                setting: "eligibility_url",
                value: "ftp://x".into()
            })
        );
        let mut bad_prefix = ClientConfig::for_token(&token);
        bad_prefix.rest_prefix = "api/v1".into();
        assert!(matches!(
            Endpoints::new(&bad_prefix),
            Err(ConfigError::BadPrefix(_))
        ));
    }

    #[test]
    fn debug_hides_the_body() {
        let id = ClientId::parse("demo-client-id").unwrap();
        let secret = ClientSecret::new("s3cr3t-value");
        let shown = format!("{:?}", endpoints().token(&id, Some(&secret)));
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
    }
}
