//! Destination settings, parsed once at start-up so later code never re-checks them.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::email_survey::EmailSurveySettings;

/// A bad setting; the message names the setting and shows the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("account_token: `{0}` is not an InMoment Account Token; expected `NPS-` followed by 8 or more letters or digits (e.g. `NPS-4aeb53c1`, or `NPS-EU-…`/`NPS-AU-…` for EU and AU accounts); find it in InMoment under Settings > Installation")]
    InvalidAccountToken(String),
    #[error("account_token: missing; set the InMoment Account Token (e.g. `NPS-4aeb53c1`)")]
    MissingAccountToken,
    #[error(
        "client_id: must be non-empty and without spaces; find it in InMoment under Settings > API"
    )]
    InvalidClientId,
}

/// The InMoment data centre an account lives in; it follows from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    Us,
    Eu,
    Au,
}

impl Region {
    /// The top-level domain of that region's hosts (`com`, `eu`, `au`).
    pub fn tld(self) -> &'static str {
        match self {
            Region::Us => "com",
            Region::Eu => "eu",
            Region::Au => "au",
        }
    }
}

/// The public key of an InMoment account (`NPS-4aeb53c1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountToken(String);

impl AccountToken {
    pub fn parse(raw: &str) -> Result<AccountToken, SettingsError> {
        let token = raw.trim();
        if token.is_empty() {
            return Err(SettingsError::MissingAccountToken);
        }
        let invalid = || SettingsError::InvalidAccountToken(token.to_string());
        let rest = token.strip_prefix("NPS-").ok_or_else(invalid)?;
        let key = rest
            .strip_prefix("EU-")
            .or_else(|| rest.strip_prefix("AU-"))
            .unwrap_or(rest);
        if key.len() < 8 || !key.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid());
        }
        Ok(AccountToken(token.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `NPS-EU-…` and `NPS-AU-…` accounts live in those regions, all others in the US.
    pub fn region(&self) -> Region {
        if self.0.starts_with("NPS-EU-") {
            Region::Eu
        } else if self.0.starts_with("NPS-AU-") {
            Region::Au
        } else {
            Region::Us
        }
    }
}

impl TryFrom<String> for AccountToken {
    type Error = SettingsError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        AccountToken::parse(&raw)
    }
}

impl From<AccountToken> for String {
    fn from(token: AccountToken) -> String {
        token.0
    }
}

impl fmt::Display for AccountToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The API client id used for InMoment's OAuth (the API/mobile path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: &str) -> Result<ClientId, SettingsError> {
        let id = raw.trim();
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            return Err(SettingsError::InvalidClientId);
        }
        Ok(ClientId(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ClientId {
    type Error = SettingsError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        ClientId::parse(&raw)
    }
}

impl From<ClientId> for String {
    fn from(id: ClientId) -> String {
        id.0
    }
}

/// The track event name that records a survey response by default.
pub const DEFAULT_RESPONSE_EVENT: &str = "Survey Response Submitted";
/// The track event name that records a survey decline by default.
pub const DEFAULT_DECLINE_EVENT: &str = "Survey Declined";

/// What every handler needs to know about the InMoment account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub account_token: AccountToken,
    /// Enables the API path: end-user upserts, responses and declines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// A track with this exact name records a survey response.
    #[serde(default = "default_response_event")]
    pub response_event: String,
    /// A track with this exact name records a survey decline.
    #[serde(default = "default_decline_event")]
    pub decline_event: String,
    /// A page with the same URL as the user's previous page makes no InMoment call. Our
    /// choice, not the browser integration's (2.5.1 checks every page): each page is an
    /// eligibility call counted against InMoment's rate limit.
    #[serde(default = "default_skip_repeated_pages")]
    pub skip_repeated_pages: bool,
    /// Email surveys after an eligible answer (off by default).
    #[serde(default)]
    pub email_survey: EmailSurveySettings,
}

fn default_response_event() -> String {
    DEFAULT_RESPONSE_EVENT.to_string()
}

fn default_decline_event() -> String {
    DEFAULT_DECLINE_EVENT.to_string()
}

fn default_skip_repeated_pages() -> bool {
    true
}

impl Settings {
    pub fn new(account_token: AccountToken) -> Settings {
        Settings {
            account_token,
            client_id: None,
            response_event: default_response_event(),
            decline_event: default_decline_event(),
            skip_repeated_pages: default_skip_repeated_pages(),
            email_survey: EmailSurveySettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_tokens() {
        for ok in [
            "NPS-4aeb53c1",
            "NPS-7fbb3f3c",
            " NPS-4aeb53c1 ",
            "NPS-EU-4aeb53c1",
            "NPS-AU-1234abcd",
            "NPS-4aeb53c1ff",
        ] {
            assert!(AccountToken::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_tokens_naming_the_setting() {
        for bad in [
            "4aeb53c1",
            "NPS-4aeb",
            "NPS-4aeb53c!",
            "nps-4aeb53c1",
            "NPS-EU-1234",
            "NPS-",
        ] {
            let err = AccountToken::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("account_token:"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            AccountToken::parse("  "),
            Err(SettingsError::MissingAccountToken)
        );
    }

    #[test]
    fn region_follows_the_token() {
        assert_eq!(
            AccountToken::parse("NPS-4aeb53c1").unwrap().region(),
            Region::Us
        );
        assert_eq!(
            AccountToken::parse("NPS-EU-4aeb53c1").unwrap().region(),
            Region::Eu
        );
        assert_eq!(
            AccountToken::parse("NPS-AU-4aeb53c1").unwrap().region(),
            Region::Au
        );
        assert_eq!(
            AccountToken::parse("NPS-EUROPE123").unwrap().region(),
            Region::Us
        );
    }

    #[test]
    fn client_id_must_be_a_single_word() {
        assert!(ClientId::parse("abc123").is_ok());
        assert_eq!(ClientId::parse("a b"), Err(SettingsError::InvalidClientId));
        assert_eq!(ClientId::parse(""), Err(SettingsError::InvalidClientId));
    }

    #[test]
    fn repeated_pages_are_skipped_unless_switched_off() {
        let on: Settings = serde_json::from_str(r#"{"account_token":"NPS-4aeb53c1"}"#).unwrap();
        assert!(on.skip_repeated_pages);
        let off: Settings =
            serde_json::from_str(r#"{"account_token":"NPS-4aeb53c1","skip_repeated_pages":false}"#)
                .unwrap();
        assert!(!off.skip_repeated_pages);
    }

    #[test]
    fn settings_deserialize_through_the_checks() {
        let err = serde_json::from_str::<Settings>(r#"{"account_token":"bad"}"#).unwrap_err();
        assert!(err.to_string().contains("account_token"), "{err}");
    }
}
