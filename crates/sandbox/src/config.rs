//! Sandbox configuration: accounts, rate limits, eligibility rules and the
//! switches for behaviours the research note marks as unconfirmed.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Everything a test can choose about the fake. `Default` is one demo account,
/// no rate limit and everything eligible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Accounts known to the fake; data is kept per account.
    pub accounts: Vec<AccountConfig>,
    /// Per-account, per-minute rate limit (off unless `per_minute` is set).
    pub rate_limit: RateLimitConfig,
    /// How many requests the log keeps before dropping the oldest.
    pub request_log_cap: usize,
    /// Request headers copied into the log (lower-case names).
    pub logged_headers: Vec<String>,
    /// What `properties[...]` does to an existing profile (unconfirmed upstream).
    pub properties_update: PropertiesUpdate,
    /// Access-token lifetime; InMoment documents 7200 s.
    pub token_lifetime_secs: i64,
    /// Freeze the sandbox clock at this unix second (it then moves only when
    /// advanced); `None` follows real time plus the offset.
    pub clock_start: Option<i64>,
    /// Offset used when rendering datetimes (`%Y-%m-%d %H:%M:%S %z`).
    pub utc_offset_minutes: i32,
    /// Status of successful creates (end users, responses, declines); the
    /// real code is undocumented, clients should accept any 2xx.
    pub create_status: u16,
    /// Status and body of OAuth credential errors (Doorkeeper-style guesses).
    pub oauth_errors: OAuthErrors,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            accounts: vec![AccountConfig::demo()],
            rate_limit: RateLimitConfig::default(),
            request_log_cap: 100_000,
            logged_headers: ["authorization", "content-type", "user-agent", "accept"]
                .map(String::from)
                .to_vec(),
            properties_update: PropertiesUpdate::Merge,
            token_lifetime_secs: 7200,
            clock_start: None,
            utc_offset_minutes: 0,
            create_status: 201,
            oauth_errors: OAuthErrors::default(),
        }
    }
}

impl SandboxConfig {
    /// The account with this public token, if configured.
    pub fn account(&self, account_token: &str) -> Option<&AccountConfig> {
        self.accounts
            .iter()
            .find(|a| a.account_token == account_token)
    }
}

/// One InMoment account and the credentials that reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Public `NPS-xxxxxxxx` token.
    pub account_token: String,
    /// API client id for the `client_credentials` grant.
    pub client_id: String,
    /// Secret of the API client; checked whenever a secret is sent.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Refuse `client_credentials` without a secret (mobile SDKs send none).
    #[serde(default)]
    pub require_client_secret: bool,
    /// Login for the `password` grant.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for the `password` grant.
    #[serde(default)]
    pub password: Option<String>,
    /// Survey type; decides the valid score range.
    #[serde(default)]
    pub survey_type: SurveyType,
    /// Whether PUT responses/declines may edit `end_user[properties]` (else 423).
    #[serde(default = "yes")]
    pub historical_property_edits: bool,
    /// Overrides the global per-minute limit for this account.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
    /// Rules of the eligibility endpoint.
    #[serde(default)]
    pub eligibility: EligibilityRules,
}

fn yes() -> bool {
    true
}

impl AccountConfig {
    /// An account with the given token and client id and every other field at
    /// its default (no secret required, no login, NPS, always eligible).
    pub fn new(account_token: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            account_token: account_token.into(),
            client_id: client_id.into(),
            client_secret: None,
            require_client_secret: false,
            username: None,
            password: None,
            survey_type: SurveyType::Nps,
            historical_property_edits: true,
            rate_limit_per_minute: None,
            eligibility: EligibilityRules::default(),
        }
    }

    /// The default demo account: `NPS-d3m0d3m0` / `demo-client-id`, login
    /// `demo@example.com` / `demo-password`.
    pub fn demo() -> Self {
        Self {
            username: Some("demo@example.com".into()),
            password: Some("demo-password".into()),
            ..Self::new("NPS-d3m0d3m0", "demo-client-id")
        }
    }
}

/// Survey types the SDKs know, with their score ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SurveyType {
    /// Net Promoter Score, 0–10.
    #[default]
    Nps,
    /// Customer Effort Score, 1–7.
    Ces,
    /// Customer Satisfaction, 1–5.
    Csat,
}

impl SurveyType {
    /// Inclusive valid score range.
    pub fn score_range(self) -> (i64, i64) {
        match self {
            Self::Nps => (0, 10),
            Self::Ces => (1, 7),
            Self::Csat => (1, 5),
        }
    }

    /// Name used in eligibility settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nps => "NPS",
            Self::Ces => "CES",
            Self::Csat => "CSAT",
        }
    }
}

/// Eligibility-server rules for one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EligibilityRules {
    /// Registered events; `None` means no targeted-sampling restriction
    /// (and `/registered_events.json` answers `[]`).
    pub registered_events: Option<Vec<String>>,
    /// Share of end users sampled in, 0.0–1.0, decided by a stable hash.
    pub sampling_rate: f64,
    /// When set, only these end users (by e-mail, case-insensitive, external
    /// id or phone number) can be eligible, so a test can pick who is
    /// surveyed without relying on the sampling hash.
    pub eligible_users: Option<Vec<String>>,
}

impl Default for EligibilityRules {
    fn default() -> Self {
        Self {
            registered_events: None,
            sampling_rate: 1.0,
            eligible_users: None,
        }
    }
}

/// Per-account, per-minute rate limiting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per account per minute; `None` disables limiting.
    pub per_minute: Option<u32>,
    /// Limited routes, in the fault-matching syntax (see `routes::Matcher`).
    pub routes: Vec<String>,
    /// Body of a 429 answer (Rack::Attack's default is a guess).
    pub body: String,
    /// Content type of that body.
    pub content_type: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_minute: None,
            routes: ["* /v1/**", "* /api/v1/**", "GET /eligible.json"]
                .map(String::from)
                .to_vec(),
            body: "Retry later".into(),
            content_type: "text/plain".into(),
        }
    }
}

/// Merge new `properties[...]` into the profile, or replace them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropertiesUpdate {
    /// Keys sent overwrite, others stay.
    #[default]
    Merge,
    /// The keys sent become the whole set (when any are sent).
    Replace,
}

/// Answers to bad OAuth credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthErrors {
    /// Bad password or refresh token (Doorkeeper: 400 `invalid_grant`).
    pub invalid_grant: ErrorReply,
    /// Unknown client or wrong secret (Doorkeeper: 401 `invalid_client`).
    pub invalid_client: ErrorReply,
}

impl Default for OAuthErrors {
    fn default() -> Self {
        Self {
            invalid_grant: ErrorReply {
                status: 400,
                body: json!({
                    "error": "invalid_grant",
                    "error_description": "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."
                }),
            },
            invalid_client: ErrorReply {
                status: 401,
                body: json!({
                    "error": "invalid_client",
                    "error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."
                }),
            },
        }
    }
}

/// A configurable error answer: status and JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

/// A partial change of the configuration at run time (`POST /_sandbox/config`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigPatch {
    /// Replaces the whole rate-limit section (missing fields take defaults).
    pub rate_limit: Option<RateLimitConfig>,
    /// Adds accounts, or replaces the configuration of those with the same
    /// token (their data is kept).
    pub accounts: Option<Vec<AccountConfig>>,
    /// Merge or replace profile properties.
    pub properties_update: Option<PropertiesUpdate>,
    /// New log cap (the log is trimmed at once).
    pub request_log_cap: Option<usize>,
    /// New status of successful creates.
    pub create_status: Option<u16>,
    /// New OAuth error answers.
    pub oauth_errors: Option<OAuthErrors>,
    /// Move the sandbox clock forward (negative moves it back).
    pub advance_clock_secs: Option<i64>,
}
