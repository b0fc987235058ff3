//! A user's survey state: what the browser beacon's `wootricSettings` would hold.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::scalar::Scalar;
use crate::settings::Settings;
use crate::VERSION;

/// What one user's earlier events left behind. `email`, `created_at`, `language` and
/// `segment_user_id` persist from call to call as in one browser session; `event_name`
/// and `properties` are replaced by every identify and track.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// As the event gave it: a string, or a number or boolean copied unconverted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Scalar>,
    /// The userId as sent (a number stays a number), else the anonymousId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_user_id: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_info: Option<Map<String, Value>>,
    /// The URL of the last page sent to InMoment, to drop duplicate page calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_page_url: Option<String>,
    /// An end-user upsert was already made for this user (API path), so track and page
    /// need not make another.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end_user_synced: bool,
}

/// The exact object InMoment's browser beacon receives as `wootricSettings`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveySettings<'a> {
    pub account_token: &'a str,
    pub version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a Scalar>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<&'a Scalar>,
    pub event_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_user_id: Option<&'a Scalar>,
    pub properties: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_info: Option<&'a Map<String, Value>>,
}

impl<'a> SurveySettings<'a> {
    pub fn new(settings: &'a Settings, state: &'a UserState) -> SurveySettings<'a> {
        SurveySettings {
            account_token: settings.account_token.as_str(),
            version: VERSION,
            email: state.email.as_ref(),
            created_at: state.created_at,
            language: state.language.as_ref(),
            event_name: state.event_name.as_deref(),
            segment_user_id: state.segment_user_id.as_ref(),
            properties: &state.properties,
            page_info: state.page_info.as_ref(),
        }
    }
}
