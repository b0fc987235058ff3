//! Everything the fake remembers between requests, behind one lock: the
//! configuration, per-account records, tokens, rate-limit windows and faults.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::auth::Tokens;
use crate::config::SandboxConfig;
use crate::faults::Faults;
use crate::rate_limit::RateLimiter;

/// The mutable world of one sandbox.
#[derive(Debug)]
pub struct World {
    /// Current configuration (changes at run time via `/_sandbox/config`).
    pub config: SandboxConfig,
    /// Records per account token.
    pub data: BTreeMap<String, AccountData>,
    /// Issued OAuth tokens.
    pub tokens: Tokens,
    /// Rate-limit windows.
    pub rate: RateLimiter,
    /// Pending injected faults.
    pub faults: Faults,
    next_id: u64,
}

impl World {
    /// A fresh world for this configuration.
    pub fn new(config: SandboxConfig) -> Self {
        Self {
            config,
            data: BTreeMap::new(),
            tokens: Tokens::default(),
            rate: RateLimiter::default(),
            faults: Faults::default(),
            next_id: 0,
        }
    }

    /// Forgets records, tokens, windows and faults; keeps the configuration.
    pub fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    /// Records of an account, created on first use.
    pub fn account(&mut self, account_token: &str) -> &mut AccountData {
        self.data.entry(account_token.to_owned()).or_default()
    }

    /// Next integer id; shared by end users, responses and declines of every
    /// account, so an id of one account never resolves in another.
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Per-end-user survey settings (`/v1/end_users/{id}/settings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUserSettings {
    /// E-mail surveys allowed.
    pub email_nps: bool,
    /// Mobile surveys allowed.
    pub mobile_nps: bool,
    /// Web surveys allowed.
    pub web_nps: bool,
    /// Force a mobile survey.
    pub force_mobile_survey: bool,
    /// Force a web survey.
    pub force_web_survey: bool,
    /// The end user opted out.
    pub surveys_disabled_by_end_user: bool,
}

impl Default for EndUserSettings {
    fn default() -> Self {
        Self {
            email_nps: true,
            mobile_nps: true,
            web_nps: true,
            force_mobile_survey: false,
            force_web_survey: false,
            surveys_disabled_by_end_user: false,
        }
    }
}

/// A surveyed person.
#[derive(Debug, Clone, PartialEq)]
pub struct EndUser {
    /// Integer id.
    pub id: u64,
    /// E-mail, unique per account (case-insensitive).
    pub email: Option<String>,
    /// Caller's own id for the person.
    pub external_id: Option<String>,
    /// Phone number (E.164 expected).
    pub phone_number: Option<String>,
    /// Sign-up time in the caller's system, unix seconds.
    pub external_created_at: Option<i64>,
    /// Last time surveyed, unix seconds.
    pub last_surveyed: Option<i64>,
    /// Creation time on the sandbox clock.
    pub created_at: i64,
    /// Last change on the sandbox clock.
    pub updated_at: i64,
    /// Custom properties.
    pub properties: Map<String, Value>,
    /// Survey settings.
    pub settings: EndUserSettings,
    /// Id of the latest response.
    pub last_response: Option<u64>,
}

/// A submitted score.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Integer id.
    pub id: u64,
    /// Owner.
    pub end_user_id: u64,
    /// Score.
    pub score: i64,
    /// Comment.
    pub text: Option<String>,
    /// Completed flag.
    pub completed: bool,
    /// Excluded from NPS calculations.
    pub excluded_from_calculations: bool,
    /// Respondent's IP.
    pub ip_address: Option<String>,
    /// Where the survey was shown.
    pub origin_url: Option<String>,
    /// `survey[channel]` as sent.
    pub channel: Option<String>,
    /// Creation time (sent `created_at` or now).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Snapshot of the profile properties.
    pub properties: Map<String, Value>,
    /// Every parameter of the create call, for assertions.
    pub params: Map<String, Value>,
}

/// A dismissed survey.
#[derive(Debug, Clone, PartialEq)]
pub struct Decline {
    /// Integer id.
    pub id: u64,
    /// Owner.
    pub end_user_id: u64,
    /// Respondent's IP.
    pub ip_address: Option<String>,
    /// Where the survey was shown.
    pub origin_url: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Snapshot of the profile properties.
    pub properties: Map<String, Value>,
    /// Every parameter of the create call, for assertions.
    pub params: Map<String, Value>,
}

/// One e-mail survey scheduled by `POST /v1/email_survey`, kept so tests can
/// see what a client asked InMoment to send.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSurvey {
    /// The end user surveyed (found or created).
    pub end_user_id: u64,
    /// Address as sent.
    pub email: String,
    /// `external_ids[]` entry at the same position, if any.
    pub external_id: Option<String>,
    /// `end_user[properties][k]` sent with the call.
    pub properties: Map<String, Value>,
    /// `survey_settings[...]` sent with the call, by raw bracket key.
    pub survey_settings: Map<String, Value>,
    /// Subject override.
    pub subject: Option<String>,
    /// Intro override.
    pub intro: Option<String>,
    /// Days to wait before sending.
    pub delay: Option<i64>,
    /// Whether the eligibility check was overridden.
    pub survey_immediately: bool,
    /// When the call arrived, on the sandbox clock.
    pub created_at: i64,
    /// When the survey goes out, on the sandbox clock.
    pub send_at: i64,
}

/// Records of one account, with lookup indexes.
#[derive(Debug, Default)]
pub struct AccountData {
    /// End users by id.
    pub end_users: BTreeMap<u64, EndUser>,
    /// Responses by id.
    pub responses: BTreeMap<u64, Response>,
    /// Declines by id.
    pub declines: BTreeMap<u64, Decline>,
    /// E-mail surveys in arrival order.
    pub surveys: Vec<EmailSurvey>,
    by_email: HashMap<String, u64>,
    by_external_id: HashMap<String, BTreeSet<u64>>,
}

impl AccountData {
    /// Id of the end user with this e-mail (case-insensitive).
    pub fn id_by_email(&self, email: &str) -> Option<u64> {
        self.by_email.get(&email.to_lowercase()).copied()
    }

    /// Lowest id of an end user with this external id.
    pub fn id_by_external_id(&self, external_id: &str) -> Option<u64> {
        self.by_external_id
            .get(external_id)
            .and_then(|ids| ids.first().copied())
    }

    /// Lowest id of an end user with this phone number.
    pub fn id_by_phone(&self, phone: &str) -> Option<u64> {
        self.end_users
            .values()
            .find(|u| u.phone_number.as_deref() == Some(phone))
            .map(|u| u.id)
    }

    /// Inserts or replaces an end user, keeping the indexes right.
    pub fn save(&mut self, user: EndUser) {
        self.unindex(user.id);
        if let Some(email) = &user.email {
            self.by_email.insert(email.to_lowercase(), user.id);
        }
        if let Some(ext) = &user.external_id {
            self.by_external_id
                .entry(ext.clone())
                .or_default()
                .insert(user.id);
        }
        self.end_users.insert(user.id, user);
    }

    /// Removes an end user.
    pub fn remove(&mut self, id: u64) -> Option<EndUser> {
        self.unindex(id);
        self.end_users.remove(&id)
    }

    fn unindex(&mut self, id: u64) {
        let Some(old) = self.end_users.get(&id) else {
            return;
        };
        if let Some(email) = &old.email {
            self.by_email.remove(&email.to_lowercase());
        }
        if let Some(ext) = &old.external_id {
            if let Some(ids) = self.by_external_id.get_mut(ext) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_external_id.remove(ext);
                }
            }
        }
    }
}
