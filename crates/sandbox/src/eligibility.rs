//! The eligibility role: `/eligible.json` (no OAuth, account from
//! `account_token`) and `/registered_events.json`, with configurable,
//! deterministic rules (§3, §6).

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::params::Params;
use crate::reply::Reply;
use crate::state::World;

/// `GET /eligible.json`; also returns the account the call was for.
///
/// Rules, in order (the first that applies decides):
/// 1. unknown account → not eligible with `error`;
/// 2. `survey_immediately=true` → eligible (documented as overriding the
///    eligibility check, so it also beats the two lists below);
/// 3. `eligible_users` set and none of the request's `email`, `external_id`
///    or `phone_number` listed → not eligible (`user_not_eligible`);
/// 4. an `event_name` outside the configured registered events → not
///    eligible (`event_not_registered`);
/// 5. else eligible when the stable hash of account + end-user identity falls
///    under the sampling rate (so a listed user with the default rate 1.0 is
///    always eligible).
pub fn check(world: &mut World, params: &Params) -> (Reply, Option<String>) {
    let token = params.non_empty("account_token").unwrap_or("");
    let Some(account) = world.config.account(token).cloned() else {
        let body = json!({
            "eligible": false,
            "details": {"code": "account_not_found", "why": "No account has this account_token"},
            "settings": {},
            "error": "Account not found",
        });
        return (Reply::json(StatusCode::OK, body), None);
    };
    let rules = &account.eligibility;
    let identity = identity(params);
    let event = params.non_empty("event_name");
    let (eligible, code, why) = if params.flag("survey_immediately") {
        (
            true,
            "survey_immediately",
            "survey_immediately forces a survey".to_owned(),
        )
    } else if !user_listed(params, rules.eligible_users.as_deref()) {
        (
            false,
            "user_not_eligible",
            "end user is not in eligible_users".to_owned(),
        )
    } else if let (Some(e), Some(list)) = (event, &rules.registered_events) {
        if list.iter().any(|r| r == e) {
            sampled(token, identity, rules.sampling_rate)
        } else {
            (
                false,
                "event_not_registered",
                format!("event_name '{e}' is not a registered event"),
            )
        }
    } else {
        sampled(token, identity, rules.sampling_rate)
    };
    let mut body = json!({
        "eligible": eligible,
        "details": {"code": code, "why": why},
        "settings": {},
    });
    if eligible {
        let end_user_id = params
            .non_empty("email")
            .and_then(|e| world.account(token).id_by_email(e));
        body["settings"] = json!({
            "account_token": account.account_token,
            "client_id": account.client_id,
            "end_user_id": end_user_id,
            "account_id": account_number(world, token),
            "user_id": 1,
            "survey_type": account.survey_type.as_str(),
            "survey_type_scale": 0,
            "first_survey": 30,
            "time_delay": 10,
            "resurvey_throttle": 180,
            "decline_resurvey_throttle": 30,
            "language": "en",
            "powered_by": true,
        });
    }
    (Reply::json(StatusCode::OK, body), Some(token.to_owned()))
}

/// `GET /registered_events.json?account_token=…`: the configured names.
pub fn registered_events(world: &World, params: &Params) -> (Reply, Option<String>) {
    let token = params.non_empty("account_token").unwrap_or("");
    match world.config.account(token) {
        Some(a) => {
            let events = a.eligibility.registered_events.clone().unwrap_or_default();
            (
                Reply::json(StatusCode::OK, json!(events)),
                Some(token.to_owned()),
            )
        }
        None => (Reply::not_found(), None),
    }
}

fn account_number(world: &World, token: &str) -> Value {
    world
        .config
        .accounts
        .iter()
        .position(|a| a.account_token == token)
        .map_or(Value::Null, |i| json!(i + 1))
}

/// Who is being surveyed: e-mail (iOS sends `Unknown` when unset), else
/// external id, else phone number, else nobody (`""`).
fn identity(params: &Params) -> &str {
    params
        .non_empty("email")
        .filter(|e| *e != "Unknown")
        .or_else(|| params.non_empty("external_id"))
        .or_else(|| params.non_empty("phone_number"))
        .unwrap_or("")
}

/// Whether the request names an end user of `eligible_users` (`None`: everyone).
fn user_listed(params: &Params, listed: Option<&[String]>) -> bool {
    let Some(listed) = listed else {
        return true;
    };
    let email = params.non_empty("email").filter(|e| *e != "Unknown");
    let others = [
        params.non_empty("external_id"),
        params.non_empty("phone_number"),
    ];
    listed.iter().any(|who| {
        email.is_some_and(|e| e.eq_ignore_ascii_case(who)) || others.contains(&Some(who.as_str()))
    })
}

fn sampled(account: &str, identity: &str, rate: f64) -> (bool, &'static str, String) {
    if sample_point(account, identity) < rate {
        (true, "sampled_in", format!("sampled in at rate {rate}"))
    } else {
        (false, "sampled_out", format!("sampled out at rate {rate}"))
    }
}

/// A point in [0, 1) fixed by account and identity (FNV-1a), so tests are
/// repeatable across runs and Rust versions.
pub fn sample_point(account: &str, identity: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in account.bytes().chain([0]).chain(identity.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The top 53 bits fit an f64 mantissa exactly.
    #[allow(clippy::cast_precision_loss)]
    let point = (hash >> 11) as f64 / (1u64 << 53) as f64;
    point
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_point_is_stable_and_in_range() {
        let a = sample_point("NPS-x", "a@b.c");
        assert_eq!(a, sample_point("NPS-x", "a@b.c"));
        assert_ne!(a, sample_point("NPS-y", "a@b.c"));
        assert!((0.0..1.0).contains(&a));
    }

    #[test]
    fn sampling_splits_users_roughly_by_rate() {
        let inside = (0..1000)
            .filter(|i| sample_point("NPS-x", &format!("user{i}@x.io")) < 0.3)
            .count();
        assert!((200..400).contains(&inside), "{inside}");
    }
}
