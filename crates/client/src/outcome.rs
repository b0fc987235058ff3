//! What a delivered call reports back to the host (for its records and metrics).

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::DeliveryError;

/// A call InMoment accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// [`inmoment_core::InMomentCall::kind`] of the call.
    pub kind: &'static str,
    /// Status of the request that completed the call (the write, or the eligibility GET).
    pub status: u16,
    /// The eligibility server's answer, for eligibility checks.
    pub eligibility: Option<EligibilityAnswer>,
    /// InMoment's integer end-user id, for REST calls.
    pub end_user_id: Option<u64>,
    /// Attempts the delivery stack made (1 when it went through first time).
    pub attempts: u32,
}

/// Whether InMoment would survey the user now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EligibilityAnswer {
    pub eligible: bool,
    /// `details.code`; its values are not documented by InMoment.
    pub code: Option<String>,
    /// `details.why`, a human-readable reason.
    pub why: Option<String>,
    /// `sampling_rule.name`, when a targeted sampling rule matched.
    pub sampling_rule: Option<String>,
}

impl EligibilityAnswer {
    /// Reads `{"eligible": bool, "details": {"code","why"}, ...}`. An `"error"` in the answer
    /// means the account is unknown.
    pub(crate) fn parse(status: u16, body: &[u8]) -> Result<EligibilityAnswer, DeliveryError> {
        let unreadable = |detail: &str| DeliveryError::UnexpectedAnswer {
            status,
            detail: detail.to_string(),
            body: crate::classify::excerpt(body),
        };
        let fields: AnswerFields = match serde_json::from_slice(body) {
            Ok(fields) if body.trim_ascii_start().starts_with(b"{") => fields,
            _ if serde_json::from_slice::<IgnoredAny>(body).is_ok() => {
                return Err(unreadable("no `eligible` field"))
            }
            _ => return Err(unreadable("not JSON from /eligible.json")),
        };
        if let Some(error) = fields.error.filter(|e| !e.is_null()) {
            let detail = match error {
                Value::String(text) => text,
                other => other.to_string(),
            };
            return Err(DeliveryError::UnknownAccount { status, detail });
        }
        // iOS compares `eligible` to 1, so accept a number too.
        let eligible = match fields.eligible {
            Some(Value::Bool(b)) => b,
            Some(Value::Number(n)) => n.as_u64() == Some(1),
            _ => return Err(unreadable("no `eligible` field")),
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let details = fields.details.as_ref();
        Ok(EligibilityAnswer {
            eligible,
            code: text(details.and_then(|d| d.get("code"))),
            why: text(details.and_then(|d| d.get("why"))),
            sampling_rule: text(fields.sampling_rule.as_ref().and_then(|r| r.get("name"))),
        })
    }
}

/// The fields of an eligibility answer that are read. The rest (the survey `settings`,
/// most of the answer) is skipped without being built, which made reading an answer
/// about a sixth of a delivered event's work.
#[derive(Deserialize)]
struct AnswerFields {
    error: Option<Value>,
    eligible: Option<Value>,
    details: Option<Value>,
    sampling_rule: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_eligible_answer() {
        let body = br#"{"eligible":true,"details":{"code":"1","why":"sampled"},"sampling_rule":{"name":"Rule A"},"settings":{"client_id":"x"}}"#;
        assert_eq!(
            EligibilityAnswer::parse(200, body).unwrap(),
            EligibilityAnswer {
                eligible: true,
                code: Some("1".into()),
                why: Some("sampled".into()),
                sampling_rule: Some("Rule A".into()),
            }
        );
    }

    #[test]
    fn an_error_in_the_answer_means_check_the_account_token() {
        let err =
            EligibilityAnswer::parse(200, br#"{"eligible":false,"error":"Account not found"}"#)
                .unwrap_err();
        assert_eq!(
            err,
            DeliveryError::UnknownAccount {
                status: 200,
                detail: "Account not found".into()
            }
        );
        assert!(err.to_string().contains("check the Account Token"));
    }

    #[test]
    fn a_body_that_is_not_an_answer_is_unexpected() {
        let err = EligibilityAnswer::parse(200, b"<html>").unwrap_err();
        assert!(
            matches!(err, DeliveryError::UnexpectedAnswer { .. }),
            "{err}"
        );
        for body in [
            &b"{}"[..],
            br#"[true, null, {}, {}]"#,
            br#"{"eligible":"yes"}"#,
        ] {
            let err = EligibilityAnswer::parse(200, body).unwrap_err();
            assert!(
                matches!(&err, DeliveryError::UnexpectedAnswer { detail, .. } if detail.contains("eligible")),
                "{err}"
            );
        }
    }

    #[test]
    fn reads_a_numeric_answer_and_skips_what_it_does_not_use() {
        let body = br#"{"settings":{"survey":{"questions":[1,2,{"a":"b"}]}},"eligible":1,
            "details":"odd","sampling_rule":null,"error":null}"#;
        assert_eq!(
            EligibilityAnswer::parse(200, body).unwrap(),
            EligibilityAnswer {
                eligible: true,
                code: None,
                why: None,
                sampling_rule: None,
            }
        );
    }
}
