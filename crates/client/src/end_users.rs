//! InMoment's integer end-user id for an [`EndUserRef`]: remembered, else looked up
//! (by external id, or by email without one), else created.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use inmoment_core::{AccountToken, EndUserRef, Params};
use serde_json::Value;

use crate::classify::{excerpt, Verdict};
use crate::error::DeliveryError;
use crate::exchange::{Answer, Exchange};
use crate::request::{usable_in_path, Endpoints, WireRequest};

/// Who a call is about, as far as InMoment lookups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Who {
    external_id: Option<String>,
    email: Option<String>,
}

impl Who {
    /// The reference, with the email taken from `fields` when the reference has none.
    pub(crate) fn new(end_user: &EndUserRef, fields: &Params) -> Who {
        let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        Who {
            external_id: non_empty(end_user.external_id.as_deref()),
            email: non_empty(end_user.email.as_deref()).or_else(|| non_empty(fields.get("email"))),
        }
    }

    /// The fields of a bare end user, for creating one before a response or decline.
    fn identity_fields(&self) -> Params {
        let mut fields = Params::new();
        if let Some(email) = &self.email {
            fields.push("email", email.as_str());
        }
        if let Some(id) = &self.external_id {
            fields.push("external_id", id.as_str());
        }
        fields
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    ExternalId(String),
    Email(String),
}

/// Ids already resolved, keyed by (account token, external id or email). It starts over
/// when full, which only costs a lookup per user.
pub(crate) struct EndUserCache {
    account: String,
    capacity: usize,
    ids: Mutex<HashMap<(String, Key), u64>>,
}

impl EndUserCache {
    pub(crate) fn new(account: &AccountToken, capacity: usize) -> EndUserCache {
        EndUserCache {
            account: account.as_str().to_string(),
            capacity: capacity.max(1),
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn ids(&self) -> MutexGuard<'_, HashMap<(String, Key), u64>> {
        // A panic elsewhere cannot leave a map entry half-written.
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn keys(&self, who: &Who) -> Vec<(String, Key)> {
        let mut keys = Vec::new();
        if let Some(id) = &who.external_id {
            keys.push((self.account.clone(), Key::ExternalId(id.clone())));
        }
        if let Some(email) = &who.email {
            keys.push((self.account.clone(), Key::Email(email.clone())));
        }
        keys
    }

    /// By external id first, then by email (the order lookups use).
    pub(crate) fn get(&self, who: &Who) -> Option<u64> {
        let ids = self.ids();
        self.keys(who).iter().find_map(|key| ids.get(key).copied())
    }

    pub(crate) fn remember(&self, who: &Who, id: u64) {
        let mut ids = self.ids();
        if ids.len() >= self.capacity {
            ids.clear();
        }
        for key in self.keys(who) {
            ids.insert(key, id);
        }
    }

    pub(crate) fn forget(&self, who: &Who) {
        let mut ids = self.ids();
        for key in self.keys(who) {
            ids.remove(&key);
        }
    }
}

/// What `POST /end_users` came to.
enum Created {
    Id {
        id: u64,
        status: u16,
    },
    /// The email belongs to an existing end user; the error is kept in case it cannot be
    /// found.
    EmailTaken(DeliveryError),
}

/// Looks up, creates and updates end users for one attempt of one call.
pub(crate) struct Directory<'a> {
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) cache: &'a EndUserCache,
}

impl Directory<'_> {
    /// Updates the end user, or creates it with `fields`; returns its id and the status of
    /// the write.
    pub(crate) async fn upsert(
        &self,
        x: &mut Exchange<'_>,
        who: &Who,
        fields: &Params,
    ) -> Result<(u64, u16), DeliveryError> {
        if let Some(id) = self.cache.get(who) {
            let update = self.endpoints.update_end_user(id, fields);
            if let Some(status) = write_unless_gone(x, &update).await? {
                return Ok((id, status));
            }
            self.cache.forget(who);
        }
        let id = match self.lookup(x, who).await? {
            Some(id) => id,
            None => match self.create(x, fields).await? {
                Created::Id { id, status } => {
                    self.cache.remember(who, id);
                    return Ok((id, status));
                }
                Created::EmailTaken(error) => self.owner_of_email(x, who, error).await?,
            },
        };
        self.cache.remember(who, id);
        let status = write(x, &self.endpoints.update_end_user(id, fields)).await?;
        Ok((id, status))
    }

    /// Sends the write `build(id)` for the end user, creating a bare end user first when it
    /// does not exist; a remembered id that InMoment no longer knows is looked up again.
    pub(crate) async fn write_for(
        &self,
        x: &mut Exchange<'_>,
        who: &Who,
        build: impl Fn(u64) -> WireRequest,
    ) -> Result<(u64, u16), DeliveryError> {
        if let Some(id) = self.cache.get(who) {
            if let Some(status) = write_unless_gone(x, &build(id)).await? {
                return Ok((id, status));
            }
            self.cache.forget(who);
        }
        let id = self.ensure(x, who).await?;
        let status = write(x, &build(id)).await?;
        Ok((id, status))
    }

    /// The id of an existing or newly created end user.
    async fn ensure(&self, x: &mut Exchange<'_>, who: &Who) -> Result<u64, DeliveryError> {
        let id = match self.lookup(x, who).await? {
            Some(id) => id,
            None => match self.create(x, &who.identity_fields()).await? {
                Created::Id { id, .. } => id,
                Created::EmailTaken(error) => self.owner_of_email(x, who, error).await?,
            },
        };
        self.cache.remember(who, id);
        Ok(id)
    }

    /// By external id when there is a usable one, else by email.
    async fn lookup(&self, x: &mut Exchange<'_>, who: &Who) -> Result<Option<u64>, DeliveryError> {
        if let Some(external_id) = who.external_id.as_deref().filter(|id| usable_in_path(id)) {
            let answer = x
                .send(&self.endpoints.end_user_by_external_id(external_id))
                .await?;
            if answer.status == 404 && is_error_list(&answer.body) {
                return Ok(None);
            }
            return read_id(&answer.checked()?).map(Some);
        }
        match &who.email {
            Some(email) => self.lookup_email(x, email).await,
            None => Err(DeliveryError::InvalidCall(
                "the end user has neither an external id nor an email, so InMoment cannot find or create it".into(),
            )),
        }
    }

    async fn lookup_email(
        &self,
        x: &mut Exchange<'_>,
        email: &str,
    ) -> Result<Option<u64>, DeliveryError> {
        let answer = x
            .send(&self.endpoints.end_users_by_email(email))
            .await?
            .checked()?;
        match serde_json::from_slice::<Value>(&answer.body) {
            Ok(Value::Array(users)) => users.first().map(|user| id_of(user, &answer)).transpose(),
            _ => Err(unexpected(&answer, "expected an array of end users")),
        }
    }

    async fn create(
        &self,
        x: &mut Exchange<'_>,
        fields: &Params,
    ) -> Result<Created, DeliveryError> {
        let answer = x.send(&self.endpoints.create_end_user(fields)).await?;
        if let Verdict::Failed(error @ DeliveryError::Permanent { .. }) = &answer.verdict {
            if String::from_utf8_lossy(&answer.body).contains("already been taken") {
                return Ok(Created::EmailTaken(error.clone()));
            }
        }
        let answer = answer.checked()?;
        Ok(Created::Id {
            id: read_id(&answer)?,
            status: answer.status,
        })
    }

    /// After "Email has already been taken": the end user holding that email.
    async fn owner_of_email(
        &self,
        x: &mut Exchange<'_>,
        who: &Who,
        taken: DeliveryError,
    ) -> Result<u64, DeliveryError> {
        let Some(email) = &who.email else {
            return Err(taken);
        };
        tracing::debug!("InMoment already has this email; updating that end user instead.");
        self.lookup_email(x, email).await?.ok_or(taken)
    }
}

/// A write whose 2xx status is the result; anything else is the table's error.
async fn write(x: &mut Exchange<'_>, request: &WireRequest) -> Result<u16, DeliveryError> {
    Ok(x.send(request).await?.checked()?.status)
}

/// As [`write`], but `None` when the remembered end user is gone (404).
async fn write_unless_gone(
    x: &mut Exchange<'_>,
    request: &WireRequest,
) -> Result<Option<u16>, DeliveryError> {
    let answer = x.send(request).await?;
    if answer.status == 404 {
        tracing::debug!("A remembered InMoment end user is gone; looking it up again.");
        return Ok(None);
    }
    Ok(Some(answer.checked()?.status))
}

/// InMoment's "record not found" body: `{"type":"error_list","errors":[...]}`.
fn is_error_list(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|value| {
        value.get("type").and_then(Value::as_str) == Some("error_list")
            || value.get("errors").is_some_and(Value::is_array)
    })
}

fn read_id(answer: &Answer) -> Result<u64, DeliveryError> {
    match serde_json::from_slice::<Value>(&answer.body) {
        Ok(user) => id_of(&user, answer),
        Err(_) => Err(unexpected(answer, "expected an end user in JSON")),
    }
}

fn id_of(user: &Value, answer: &Answer) -> Result<u64, DeliveryError> {
    match user.get("id") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| unexpected(answer, "the end user has no integer `id`"))
}

fn unexpected(answer: &Answer, detail: &str) -> DeliveryError {
    DeliveryError::UnexpectedAnswer {
        status: answer.status,
        detail: detail.to_string(),
        body: excerpt(&answer.body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(external_id: Option<&str>, email: Option<&str>) -> Who {
        Who::new(
            &EndUserRef {
                external_id: external_id.map(Into::into),
                email: email.map(Into::into),
            },
            &Params::new(),
        )
    }

    #[test]
    fn the_cache_is_keyed_by_account_and_by_either_identity() {
        let account = AccountToken::parse("NPS-d3m0d3m0").unwrap();
        let cache = EndUserCache::new(&account, 10);
        cache.remember(&who(Some("u1"), Some("a@b.co")), 7);
        assert_eq!(cache.get(&who(Some("u1"), None)), Some(7));
        assert_eq!(cache.get(&who(None, Some("a@b.co"))), Some(7));
        assert_eq!(cache.get(&who(Some("u2"), None)), None);
        let other = EndUserCache::new(&AccountToken::parse("NPS-EU-d3m0d3m0").unwrap(), 10);
        assert_eq!(other.get(&who(Some("u1"), None)), None);
        cache.forget(&who(Some("u1"), Some("a@b.co")));
        assert_eq!(cache.get(&who(Some("u1"), None)), None);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let account = AccountToken::parse("NPS-d3m0d3m0").unwrap();
        let cache = EndUserCache::new(&account, 2);
        cache.remember(&who(Some("u1"), None), 1);
        cache.remember(&who(Some("u2"), None), 2);
        cache.remember(&who(Some("u3"), None), 3);
        assert_eq!(cache.get(&who(Some("u1"), None)), None);
        assert_eq!(cache.get(&who(Some("u3"), None)), Some(3));
    }

    #[test]
    fn the_email_can_come_from_the_fields_and_blanks_do_not_count() {
        let mut fields = Params::new();
        fields.push("email", "f@b.co");
        let w = Who::new(
            &EndUserRef {
                external_id: Some(String::new()),
                email: None,
            },
            &fields,
        );
        assert_eq!(w, who(None, Some("f@b.co")));
        let fields = who(Some("u1"), Some("a@b.co")).identity_fields();
        assert_eq!(
            fields.iter().collect::<Vec<_>>(),
            [("email", "a@b.co"), ("external_id", "u1")]
        );
    }

    #[test]
    fn not_found_is_an_error_list() {
        assert!(is_error_list(
            br#"{"type":"error_list","errors":[{"status":"record_not_found","message":"The record could not be found","field":null}]}"#
        ));
        assert!(!is_error_list(b"Not Found"));
        assert!(!is_error_list(br#"{"error":"Not found","status":404}"#));
    }
}
