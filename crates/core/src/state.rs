//! A user's survey state: what the browser beacon's `wootricSettings` would hold.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::properties::Properties;
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
    #[serde(default, skip_serializing_if = "Properties::is_empty")]
    pub properties: Properties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_info: Option<Map<String, Value>>,
    /// The URL of the last page sent to InMoment, to drop duplicate page calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_page_url: Option<String>,
    /// An end-user upsert was already made for this user (API path), so track and page
    /// need not make another.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub end_user_synced: bool,
    /// When delivery last decided to survey this user by email (unix seconds), so a
    /// retried or replayed event, or another node, does not survey them again too soon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_email_survey_at: Option<i64>,
    /// Survey settings a handler keeps for the user beyond the fields above, by name (group
    /// keeps `group_info`). They persist until that handler replaces them, appear in every
    /// later survey settings view, and are sent with every later eligibility check
    /// (`<name>[<key>]=…`) and end-user upsert (`properties[<name>_<key>]`), so a new
    /// handler needs no change here.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub kept: Map<String, Value>,
}

/// The survey settings fields core defines itself: a kept field may not take one of
/// these names (it would be hidden behind the built-in one).
pub const BUILT_IN_FIELDS: [&str; 9] = [
    "account_token",
    "version",
    "email",
    "created_at",
    "language",
    "event_name",
    "segment_user_id",
    "properties",
    "page_info",
];

impl UserState {
    /// The kept fields other than the built-in names, in the order they were first kept.
    pub fn kept_fields(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.kept
            .iter()
            .filter(|(name, _)| !BUILT_IN_FIELDS.contains(&name.as_str()))
    }
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
    pub properties: &'a Properties,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_info: Option<&'a Map<String, Value>>,
    /// The handlers' kept fields, e.g. `group_info`, at the top level as the beacon holds them.
    #[serde(flatten)]
    pub kept: KeptFields<'a>,
}

/// Serializes a state's kept fields as map entries (see [`UserState::kept_fields`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeptFields<'a>(&'a UserState);

impl Serialize for KeptFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.0.kept_fields() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
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
            kept: KeptFields(state),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kept_fields_survive_the_store_and_show_at_the_top_level() {
        let mut state = UserState::default();
        state.kept.insert("group_info".into(), json!({"id": "g-1"}));
        state.kept.insert("email".into(), json!("hidden"));
        let text = serde_json::to_string(&state).unwrap();
        let back: UserState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);

        let settings: Settings =
            serde_json::from_value(json!({"account_token": "NPS-4aeb53c1"})).unwrap();
        let view = serde_json::to_value(SurveySettings::new(&settings, &back)).unwrap();
        assert_eq!(view["group_info"], json!({"id": "g-1"}));
        assert_eq!(
            view.get("email"),
            None,
            "a kept field never hides a built-in one"
        );
    }
}
