//! Data describing the HTTP calls InMoment should receive, so mapping stays pure and
//! sending, retrying and storing happen elsewhere.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Which InMoment host a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Host {
    /// `eligibility.wootric.<tld>`: the survey eligibility server (no OAuth).
    Eligibility,
    /// `app.wootric.<tld>` / `api.wootric.com`: the REST API and OAuth.
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// Ordered form/query parameters with InMoment's bracket keys (`properties[plan]`).
/// Serialized as a JSON object so fixtures and the `map` output stay readable.
///
/// Keys and values live back to back in one string, so mapping an event with many
/// properties costs a couple of allocations instead of two per parameter.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    text: String,
    /// (key end = value start, value end) in `text`; a key starts where the parameter
    /// before ends (parameters are written back to back).
    spans: Vec<(usize, usize)>,
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Room for `count` parameters of `text_bytes` in all, so building a large set does
    /// not reallocate (and copy) its buffers as it grows.
    pub fn with_capacity(count: usize, text_bytes: usize) -> Params {
        Params {
            text: String::with_capacity(text_bytes),
            spans: Vec::with_capacity(count),
        }
    }

    pub fn push(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        self.push_parts(&[key.as_ref()], value.as_ref());
    }

    /// Appends a parameter whose key is the concatenation of `key_parts`
    /// (`["properties[", key, "]"]`), without building the key first.
    #[inline]
    pub fn push_parts(&mut self, key_parts: &[&str], value: &str) {
        for part in key_parts {
            self.text.push_str(part);
        }
        let middle = self.text.len();
        self.text.push_str(value);
        self.spans.push((middle, self.text.len()));
    }

    /// Appends a parameter whose value is written by `write` (numbers, without a String).
    #[inline]
    pub fn push_with(&mut self, key_parts: &[&str], write: impl FnOnce(&mut String)) {
        for part in key_parts {
            self.text.push_str(part);
        }
        let middle = self.text.len();
        write(&mut self.text);
        self.spans.push((middle, self.text.len()));
    }

    /// Appends a parameter whose value is an integer, written without the formatting
    /// machinery (it runs for every numeric property of every event).
    #[inline]
    pub fn push_int(&mut self, key_parts: &[&str], value: i64) {
        self.push_with(key_parts, |out| write_int(out, value));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Replaces the value of every parameter named `key` (rare: rebuilds the whole set).
    pub fn set(&mut self, key: &str, value: &str) {
        let mut rebuilt = Params::new();
        for (k, v) in self.iter() {
            rebuilt.push(k, if k == key { value } else { v });
        }
        *self = rebuilt;
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.spans.iter().map(move |&(middle, end)| {
            let pair = (&self.text[start..middle], &self.text[middle..end]);
            start = end;
            pair
        })
    }
}

impl fmt::Debug for Params {
    /// Each parameter as (key start, key end, value end) in `text`, as before the starts
    /// were left implied.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut start = 0;
        let spans: Vec<(usize, usize, usize)> = self
            .spans
            .iter()
            .map(|&(middle, end)| {
                let span = (start, middle, end);
                start = end;
                span
            })
            .collect();
        f.debug_struct("Params")
            .field("text", &self.text)
            .field("spans", &spans)
            .finish()
    }
}

/// Appends the decimal digits of `value` (same text as its `Display`). `itoa` writes them
/// without the formatting machinery or a UTF-8 check of the digits.
pub fn write_int(out: &mut String, value: i64) {
    out.push_str(itoa::Buffer::new().format(value));
}

impl Serialize for Params {
    /// A key that repeats (`tags[]`) becomes an array of its values, in order.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut keys: Vec<&str> = Vec::with_capacity(self.len());
        for (k, _) in self.iter() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let mut map = serializer.serialize_map(Some(keys.len()))?;
        for key in keys {
            let values: Vec<&str> = self
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .collect();
            match values.as_slice() {
                [only] => map.serialize_entry(key, only)?,
                all => map.serialize_entry(key, all)?,
            }
        }
        map.end()
    }
}

/// A parameter value in JSON: one string, or the values of a repeated key. Read directly
/// (an untagged enum would buffer each value and try both shapes).
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;
        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(value.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(value))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(value) = seq.next_element::<String>()? {
                    values.push(value);
                }
                Ok(OneOrMany::Many(values))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParamsVisitor;
        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string (or string array) parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Params, A::Error> {
                let mut params = Params::new();
                while let Some((key, value)) = access.next_entry::<String, OneOrMany>()? {
                    match value {
                        OneOrMany::One(v) => params.push(key, v),
                        OneOrMany::Many(vs) => {
                            for v in vs {
                                params.push(&key, v);
                            }
                        }
                    }
                }
                Ok(params)
            }
        }
        deserializer.deserialize_map(ParamsVisitor)
    }
}

/// One fully known HTTP request: method, host role, path and parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: Method,
    pub host: Host,
    /// Borrowed for the constant paths (the eligibility check's), so a call needs no copy.
    pub path: Cow<'static, str>,
    #[serde(default, skip_serializing_if = "Params::is_empty")]
    pub query: Params,
    #[serde(default, skip_serializing_if = "Params::is_empty")]
    pub form: Params,
}

/// How to find a user's InMoment end user: by our user id (InMoment's `external_id`), else
/// by email. The client resolves it to InMoment's integer id (and remembers it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EndUserRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// One call InMoment should receive because of one Segment event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case", try_from = "FlatCall")]
pub enum InMomentCall {
    /// What the beacon does on `wootric('run')`: ask whether to survey this user now.
    EligibilityCheck {
        #[serde(rename = "messageId")]
        message_id: String,
        request: HttpRequest,
    },
    /// Keep InMoment's end user up to date (API path, needs a Client ID): look the user up
    /// (`GET /v1/end_users/{external_id}?lookup_by_external_id=true`, or
    /// `GET /v1/end_users?email=` without an external id), then `PUT /v1/end_users/{id}` or
    /// `POST /v1/end_users` with `fields` (`email`, `external_id`, `external_created_at`,
    /// `properties[<key>]`).
    UpsertEndUser {
        #[serde(rename = "messageId")]
        message_id: String,
        end_user: EndUserRef,
        fields: Params,
    },
    /// Record a survey answer given in the customer's own UI:
    /// `POST /v1/end_users/{id}/responses` (`score`, `text`, `ip_address`, `origin_url`,
    /// `created_at`).
    CreateResponse {
        #[serde(rename = "messageId")]
        message_id: String,
        end_user: EndUserRef,
        fields: Params,
    },
    /// Record a dismissed survey: `POST /v1/end_users/{id}/declines` (`origin_url`,
    /// `created_at`).
    CreateDecline {
        #[serde(rename = "messageId")]
        message_id: String,
        end_user: EndUserRef,
        fields: Params,
    },
    /// Survey users by email (`POST /v1/email_survey`) after InMoment found them eligible
    /// and their source asks for email surveys: `emails[]`, `external_ids[]` (same order),
    /// and `fields` (`subject`, `intro`, `delay` or `survey_immediately`,
    /// `end_user[properties][<key>]`). One user per event; delivery may send several
    /// users' surveys with the same fields in one request.
    EmailSurvey {
        #[serde(rename = "messageId")]
        message_id: String,
        emails: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        external_ids: Vec<String>,
        fields: Params,
    },
}

/// A stored call read back in one pass. Serde reads an internally tagged enum twice (into
/// a generic tree to find the tag, then into the variant), which was most of the time
/// delivery spent reading the store.
#[derive(Deserialize)]
struct FlatCall {
    call: CallKind,
    #[serde(rename = "messageId")]
    message_id: String,
    request: Option<HttpRequest>,
    end_user: Option<EndUserRef>,
    fields: Option<Params>,
    emails: Option<Vec<String>>,
    external_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CallKind {
    EligibilityCheck,
    UpsertEndUser,
    CreateResponse,
    CreateDecline,
    EmailSurvey,
}

impl TryFrom<FlatCall> for InMomentCall {
    type Error = String;

    fn try_from(flat: FlatCall) -> Result<InMomentCall, String> {
        let kind = flat.call;
        let message_id = flat.message_id;
        Ok(match kind {
            CallKind::EligibilityCheck => InMomentCall::EligibilityCheck {
                message_id,
                request: required(flat.request, kind, "request")?,
            },
            CallKind::UpsertEndUser => InMomentCall::UpsertEndUser {
                message_id,
                end_user: required(flat.end_user, kind, "end_user")?,
                fields: required(flat.fields, kind, "fields")?,
            },
            CallKind::CreateResponse => InMomentCall::CreateResponse {
                message_id,
                end_user: required(flat.end_user, kind, "end_user")?,
                fields: required(flat.fields, kind, "fields")?,
            },
            CallKind::CreateDecline => InMomentCall::CreateDecline {
                message_id,
                end_user: required(flat.end_user, kind, "end_user")?,
                fields: required(flat.fields, kind, "fields")?,
            },
            CallKind::EmailSurvey => InMomentCall::EmailSurvey {
                message_id,
                emails: required(flat.emails, kind, "emails")?,
                external_ids: flat.external_ids.unwrap_or_default(),
                fields: required(flat.fields, kind, "fields")?,
            },
        })
    }
}

fn required<T>(value: Option<T>, kind: CallKind, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("a {kind:?} call needs `{field}`"))
}

impl InMomentCall {
    /// The Segment `messageId` this call came from (for logs and de-duplication).
    pub fn message_id(&self) -> &str {
        match self {
            InMomentCall::EligibilityCheck { message_id, .. }
            | InMomentCall::UpsertEndUser { message_id, .. }
            | InMomentCall::CreateResponse { message_id, .. }
            | InMomentCall::CreateDecline { message_id, .. }
            | InMomentCall::EmailSurvey { message_id, .. } => message_id,
        }
    }

    /// A short stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            InMomentCall::EligibilityCheck { .. } => "eligibility_check",
            InMomentCall::UpsertEndUser { .. } => "upsert_end_user",
            InMomentCall::CreateResponse { .. } => "create_response",
            InMomentCall::CreateDecline { .. } => "create_decline",
            InMomentCall::EmailSurvey { .. } => "email_survey",
        }
    }

    /// True for calls on the REST API, which need OAuth (a Client ID).
    pub fn needs_oauth(&self) -> bool {
        !matches!(self, InMomentCall::EligibilityCheck { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_round_trips_through_json() {
        let mut query = Params::new();
        query.push("account_token", "NPS-4aeb53c1");
        query.push("properties[plan]", "pro");
        let call = InMomentCall::EligibilityCheck {
            message_id: "m-1".into(),
            request: HttpRequest {
                method: Method::Get,
                host: Host::Eligibility,
                path: "/eligible.json".into(),
                query,
                form: Params::new(),
            },
        };
        let value = serde_json::to_value(&call).unwrap();
        assert_eq!(
            value,
            json!({"call":"eligibility_check","messageId":"m-1","request":{"method":"GET","host":"eligibility","path":"/eligible.json","query":{"account_token":"NPS-4aeb53c1","properties[plan]":"pro"}}})
        );
        let back: InMomentCall = serde_json::from_value(value).unwrap();
        assert_eq!(back, call);
    }

    #[test]
    fn every_kind_of_call_round_trips_through_text_in_any_key_order() {
        let mut fields = Params::new();
        fields.push("email", "ann@example.com");
        fields.push("tags[]", "a");
        fields.push("tags[]", "b");
        let end_user = EndUserRef {
            external_id: Some("ann".into()),
            email: None,
        };
        let message_id = String::from("m-2");
        let calls = [
            InMomentCall::UpsertEndUser {
                message_id: message_id.clone(),
                end_user: end_user.clone(),
                fields: fields.clone(),
            },
            InMomentCall::CreateResponse {
                message_id: message_id.clone(),
                end_user: end_user.clone(),
                fields: fields.clone(),
            },
            InMomentCall::CreateDecline {
                message_id,
                end_user,
                fields,
            },
        ];
        for call in calls {
            let text = serde_json::to_string(&call).unwrap();
            assert_eq!(serde_json::from_str::<InMomentCall>(&text).unwrap(), call);
            // The tag need not come first.
            let mut value = serde_json::to_value(&call).unwrap();
            let tag = value.as_object_mut().unwrap().shift_remove("call").unwrap();
            value.as_object_mut().unwrap().insert("call".into(), tag);
            let reordered = serde_json::to_string(&value).unwrap();
            assert!(!reordered.starts_with(r#"{"call""#), "{reordered}");
            assert_eq!(
                serde_json::from_str::<InMomentCall>(&reordered).unwrap(),
                call
            );
        }
    }

    #[test]
    fn a_stored_call_missing_a_part_says_which() {
        let error = serde_json::from_str::<InMomentCall>(
            r#"{"call":"create_response","messageId":"m","end_user":{"email":"a@b.c"}}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("needs `fields`"), "{error}");
        let error = serde_json::from_str::<InMomentCall>(r#"{"call":"launch","messageId":"m"}"#)
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `launch`"),
            "{error}"
        );
        let error = serde_json::from_str::<Params>(r#"{"score": 7}"#).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("a string or an array of strings"),
            "{error}"
        );
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for value in [0, 7, -7, 10, 1713225600, i64::MAX, i64::MIN] {
            let mut out = String::from("x=");
            write_int(&mut out, value);
            assert_eq!(out, format!("x={value}"));
        }
    }

    #[test]
    fn debug_shows_each_parameter_s_start_middle_and_end() {
        let mut params = Params::new();
        params.push("a", "1");
        params.push("bb", "");
        params.push_int(&["c[", "d", "]"], -5);
        assert_eq!(
            format!("{params:?}"),
            r#"Params { text: "a1bbc[d]-5", spans: [(0, 1, 2), (2, 4, 4), (4, 8, 10)] }"#
        );
        assert_eq!(
            params.iter().collect::<Vec<_>>(),
            [("a", "1"), ("bb", ""), ("c[d]", "-5")]
        );
    }

    #[test]
    fn repeated_keys_keep_every_value_in_order() {
        let mut params = Params::new();
        params.push("tags[]", "a");
        params.push("x", "1");
        params.push("tags[]", "b");
        let value = serde_json::to_value(&params).unwrap();
        assert_eq!(value, json!({"tags[]": ["a", "b"], "x": "1"}));
        let back: Params = serde_json::from_value(value).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            [("tags[]", "a"), ("tags[]", "b"), ("x", "1")]
        );
    }
}
