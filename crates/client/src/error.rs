//! What can go wrong, each variant saying what to do about it.

use std::time::Duration;

/// Why a call was not delivered. Only [`DeliveryError::Retryable`] is worth another try;
/// every other variant needs a person (settings, or the data) before it can succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// A passing problem (timeout, connection, 408, 429, 5xx but 501): try again, after
    /// `retry_after` when InMoment said how long to wait.
    #[error("{reason}; worth retrying")]
    Retryable {
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// InMoment refused the call as sent; `body` is an excerpt of its answer.
    #[error("InMoment refused the call with HTTP {status}: {reason}; response: {body}")]
    Permanent {
        status: u16,
        body: String,
        reason: String,
    },
    /// The credentials do not work, even with a freshly fetched token.
    #[error("InMoment refused the API credentials (HTTP {status}): check the Client ID and Client Secret (InMoment Settings > API); response: {body}")]
    Unauthorized { status: u16, body: String },
    /// The eligibility server does not know the account.
    #[error("InMoment does not know this account ({detail}): check the Account Token (InMoment Settings > Installation)")]
    UnknownAccount { status: u16, detail: String },
    /// A REST call without a configured Client ID.
    #[error("{kind} needs InMoment's REST API: set the Client ID (InMoment Settings > API)")]
    MissingClientId { kind: &'static str },
    /// The call itself cannot be sent (for example an end user with neither email nor id).
    #[error("cannot send this call: {0}")]
    InvalidCall(String),
    /// A success or lookup answer we could not read; usually a base URL that is not InMoment.
    #[error("InMoment answered HTTP {status} with a body we could not read ({detail}): check that the base URLs and REST prefix point at InMoment; response: {body}")]
    UnexpectedAnswer {
        status: u16,
        detail: String,
        body: String,
    },
}

impl DeliveryError {
    /// True when the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Retryable { .. })
    }

    /// How long InMoment asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Retryable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status behind the error, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Retryable { status, .. } => *status,
            DeliveryError::Permanent { status, .. }
            | DeliveryError::Unauthorized { status, .. }
            | DeliveryError::UnknownAccount { status, .. }
            | DeliveryError::UnexpectedAnswer { status, .. } => Some(*status),
            DeliveryError::MissingClientId { .. } | DeliveryError::InvalidCall(_) => None,
        }
    }
}

/// A client that cannot be built; the message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: `{value}` is not an http(s) base URL (e.g. `https://app.wootric.com`)")]
    BadUrl {
        setting: &'static str,
        value: String,
    },
    #[error("rest_prefix: `{0}` must start with `/` (e.g. `/api/v1`)")]
    BadPrefix(String),
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}
