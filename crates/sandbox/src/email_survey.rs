//! `POST /v1/email_survey` (note §1 row 20, [DOC-EMAIL]): schedules e-mail
//! surveys for up to 100 addresses, creating unknown end users as InMoment
//! says it does, and records each survey for `/_sandbox/state`.
//!
//! The real answer is undocumented; the sandbox answers
//! `{"scheduled": n, "surveys": [{"email", "external_id", "end_user_id", "send_at"}]}`.

use serde_json::{json, Map, Value};

use crate::api::Ctx;
use crate::clock::render as date;
use crate::end_users::apply_properties;
use crate::params::{key_path, Params};
use crate::reply::{status, ApiError, Reply};
use crate::state::{AccountData, EmailSurvey, EndUser, EndUserSettings, World};

/// Most addresses one call may carry (documented).
pub const MAX_EMAILS: usize = 100;

/// Documented range of `delay`, in days.
const DELAY_DAYS: std::ops::RangeInclusive<i64> = 1..=31;

const DAY_SECS: i64 = 86_400;

/// What a valid call asks for, read before anything is changed so a refused
/// call leaves no trace.
struct Request {
    targets: Vec<(String, Option<String>)>,
    delay: Option<i64>,
    survey_immediately: bool,
}

/// `POST /v1/email_survey`.
///
/// Answers with `create_status` (201 by default), the status the sandbox
/// uses for every create whose real code is undocumented, so one switch lets
/// tests check that clients accept any 2xx here too.
pub fn create(world: &mut World, ctx: &Ctx) -> Result<Reply, ApiError> {
    let p = ctx.params;
    let req = validate(p)?;
    let mode = world.config.properties_update;
    let offset = world.config.utc_offset_minutes;
    let created = status(world.config.create_status);
    let properties = p.children(&["end_user", "properties"]);
    let survey_settings = survey_settings(p);
    // The default delay of the real service is undocumented; without one the
    // sandbox sends at once.
    let send_at = ctx.now + req.delay.unwrap_or(0) * DAY_SECS;
    let props: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut listed = Vec::with_capacity(req.targets.len());
    for (email, external_id) in req.targets {
        let end_user_id = find_or_create(world, ctx, &email, external_id.as_deref());
        let data = world.account(ctx.account);
        // The properties sent update the profile as a PUT would.
        if let Some(mut user) = data.end_users.get(&end_user_id).cloned() {
            if let Some(ext) = &external_id {
                user.external_id = Some(ext.clone());
            }
            apply_properties(&mut user.properties, properties.clone(), mode);
            user.updated_at = ctx.now;
            data.save(user);
        }
        data.surveys.push(EmailSurvey {
            end_user_id,
            email: email.clone(),
            external_id: external_id.clone(),
            properties: props.clone(),
            survey_settings: survey_settings.clone(),
            subject: p.get("subject").map(str::to_owned),
            intro: p.get("intro").map(str::to_owned),
            delay: req.delay,
            survey_immediately: req.survey_immediately,
            created_at: ctx.now,
            send_at,
        });
        listed.push(json!({
            "email": email,
            "external_id": external_id,
            "end_user_id": end_user_id,
            "send_at": date(send_at, offset),
        }));
    }
    let body = json!({"scheduled": listed.len(), "surveys": listed});
    Ok(Reply::json(created, body))
}

/// Checks the call, in this order (each a 422 `Validation failed: …`):
/// 1. `emails[]` missing or empty (documented as the list to survey);
/// 2. more than 100 addresses (documented maximum);
/// 3. an entry that is not an address (ours: one `@`, a dotted domain, no spaces);
/// 4. `external_ids[]` sent but not one per e-mail (ours: positions pair them);
/// 5. `delay` not an integer in 1..=31 (documented range);
/// 6. `delay` with `survey_immediately=true`.
///
/// Only `emails[]` is read, as documented; a bare `emails=` is not a list.
fn validate(p: &Params) -> Result<Request, ApiError> {
    let invalid = |msg: &str| Err(ApiError::Validation(msg.to_owned()));
    let emails = p.all("emails[]");
    if emails.is_empty() {
        return invalid("Emails can't be blank");
    }
    if emails.len() > MAX_EMAILS {
        return Err(ApiError::Validation(format!(
            "Emails is too long (maximum is {MAX_EMAILS})"
        )));
    }
    if let Some(bad) = emails.iter().find(|e| !is_address(e)) {
        return Err(ApiError::Validation(format!(
            "Emails contains an invalid address: '{bad}'"
        )));
    }
    let external_ids = p.all("external_ids[]");
    if !external_ids.is_empty() && external_ids.len() != emails.len() {
        return invalid("External ids must have one entry per email");
    }
    let delay = match p.non_empty("delay") {
        None => None,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(d) if DELAY_DAYS.contains(&d) => Some(d),
            _ => return invalid("Delay must be an integer between 1 and 31"),
        },
    };
    let survey_immediately = p.flag("survey_immediately");
    // The docs only say `survey_immediately` overrides the eligibility check
    // and `delay` postpones the send; refusing both together is our
    // conservative reading, so clients never rely on one silently winning.
    if delay.is_some() && survey_immediately {
        return invalid("Delay can't be combined with survey_immediately");
    }
    let targets = emails
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let ext = external_ids
                .get(i)
                .filter(|x| !x.is_empty())
                .map(|x| (*x).to_owned());
            ((*e).to_owned(), ext)
        })
        .collect();
    Ok(Request {
        targets,
        delay,
        survey_immediately,
    })
}

/// A plain sanity check, not RFC 5322: `local@domain.tld` without spaces.
fn is_address(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// The `survey_settings[...]` pairs, by raw key, to show in the state view.
fn survey_settings(p: &Params) -> Map<String, Value> {
    p.pairs()
        .iter()
        .filter(|(k, _)| key_path(k).first() == Some(&"survey_settings") && k.contains('['))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// The end user for this address: matched by e-mail (case-insensitive), else
/// by external id (then given the address when it has none), else created, as
/// InMoment creates end users it is asked to survey.
fn find_or_create(world: &mut World, ctx: &Ctx, email: &str, external_id: Option<&str>) -> u64 {
    let data = world.account(ctx.account);
    if let Some(id) = data.id_by_email(email) {
        return id;
    }
    if let Some(id) = external_id.and_then(|x| data.id_by_external_id(x)) {
        give_email(data, id, email);
        return id;
    }
    let id = world.next_id();
    world.account(ctx.account).save(EndUser {
        id,
        email: Some(email.to_owned()),
        external_id: external_id.map(str::to_owned),
        phone_number: None,
        external_created_at: None,
        last_surveyed: None,
        created_at: ctx.now,
        updated_at: ctx.now,
        properties: Map::new(),
        settings: EndUserSettings::default(),
        last_response: None,
    });
    id
}

fn give_email(data: &mut AccountData, id: u64, email: &str) {
    if let Some(user) = data.end_users.get(&id).filter(|u| u.email.is_none()) {
        let mut user = user.clone();
        user.email = Some(email.to_owned());
        data.save(user);
    }
}

/// A survey for `/_sandbox/state`.
pub fn render(s: &EmailSurvey, offset: i32) -> Value {
    json!({
        "end_user_id": s.end_user_id,
        "email": s.email,
        "external_id": s.external_id,
        "properties": s.properties,
        "survey_settings": s.survey_settings,
        "subject": s.subject,
        "intro": s.intro,
        "delay": s.delay,
        "survey_immediately": s.survey_immediately,
        "created_at": date(s.created_at, offset),
        "send_at": date(s.send_at, offset),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_loosely() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com"] {
            assert!(is_address(ok), "{ok}");
        }
        for bad in [
            "", "a", "@b.co", "a@", "a@b", "a@@b.co", "a b@c.co", "a@.co", "a@b.", "a@b..co",
        ] {
            assert!(!is_address(bad), "{bad}");
        }
    }

    #[test]
    fn validation_order_and_messages() {
        let msg = |q: &str| match validate(&Params::from_urlencoded(q.as_bytes())) {
            Err(ApiError::Validation(m)) => m,
            other => panic!("{q}: {:?}", other.map(|r| r.targets)),
        };
        assert_eq!(msg(""), "Emails can't be blank");
        assert!(msg("emails[]=x").contains("invalid address"));
        assert!(msg("emails[]=a@b.co&external_ids[]=1&external_ids[]=2").contains("one entry"));
        assert!(msg("emails[]=a@b.co&delay=0").starts_with("Delay must"));
        assert!(msg("emails[]=a@b.co&delay=32").starts_with("Delay must"));
        assert!(msg("emails[]=a@b.co&delay=1.5").starts_with("Delay must"));
        assert!(msg("emails[]=a@b.co&delay=2&survey_immediately=true").contains("combined"));
        let ok = validate(&Params::from_urlencoded(
            b"emails[]=a@b.co&delay=31&survey_immediately=false",
        ));
        assert!(ok.is_ok_and(|r| r.delay == Some(31) && !r.survey_immediately));
    }
}
