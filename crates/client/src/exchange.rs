//! One HTTP request/answer: the client-side limiter, the bearer token and the single
//! refresh-and-retry on a 401 wrap the bare send.

use bytes::Bytes;
use inmoment_core::{Host, Method};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE};

use crate::classify::{classify, classify_transport, excerpt, Verdict};
use crate::config::WallClock;
use crate::error::DeliveryError;
use crate::limiter::Limiter;
use crate::oauth::{AccessToken, OAuth};
use crate::request::WireRequest;

/// An answer with the table's verdict on it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) verdict: Verdict,
}

impl Answer {
    /// Passes a 2xx; anything else becomes the table's error.
    pub(crate) fn checked(self) -> Result<Answer, DeliveryError> {
        match &self.verdict {
            Verdict::Delivered => Ok(self),
            Verdict::RefreshToken => Err(DeliveryError::Unauthorized {
                status: self.status,
                body: excerpt(&self.body),
            }),
            Verdict::Failed(error) => Err(error.clone()),
        }
    }
}

fn method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
    }
}

/// Sends `request` once, exactly as built, and classifies the answer.
pub(crate) async fn transmit(
    http: &reqwest::Client,
    request: &WireRequest,
    token: Option<&AccessToken>,
    clock: &WallClock,
) -> Result<Answer, DeliveryError> {
    let mut builder = http
        .request(method(request.method), request.url.clone())
        .header(ACCEPT, "application/json");
    if let Some(body) = &request.body {
        builder = builder
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone());
    }
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
    }
    let response = builder.send().await.map_err(classify_transport)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(classify_transport)?;
    tracing::debug!(
        method = request.method.as_str(),
        host = host_name(request.host),
        status,
        "InMoment answered."
    );
    let verdict = classify(request.host, status, &headers, &body, clock.now());
    Ok(Answer {
        status,
        headers,
        body,
        verdict,
    })
}

fn host_name(host: Host) -> &'static str {
    match host {
        Host::Eligibility => "eligibility",
        Host::Api => "api",
    }
}

/// The requests of one attempt of one call: they share the one-refresh allowance.
pub(crate) struct Exchange<'a> {
    pub(crate) http: &'a reqwest::Client,
    pub(crate) limiter: &'a Limiter,
    pub(crate) oauth: Option<&'a OAuth>,
    pub(crate) clock: &'a WallClock,
    pub(crate) kind: &'static str,
    pub(crate) refreshed: bool,
}

impl Exchange<'_> {
    /// Sends `request`, waiting for the limiter first and adding the bearer token when the
    /// request needs one. A 401 drops the token and tries once more with a fresh one; a
    /// second 401 means the credentials are wrong.
    pub(crate) async fn send(&mut self, request: &WireRequest) -> Result<Answer, DeliveryError> {
        loop {
            self.limiter.wait().await;
            let token = match (request.bearer, self.oauth) {
                (false, _) => None,
                (true, Some(oauth)) => Some(oauth.token(self.http, self.clock).await?),
                (true, None) => return Err(DeliveryError::MissingClientId { kind: self.kind }),
            };
            let answer = transmit(self.http, request, token.as_ref(), self.clock).await?;
            self.limiter.observe(&answer.headers, self.clock.now());
            match &answer.verdict {
                Verdict::RefreshToken if !self.refreshed => {
                    let (Some(oauth), Some(token)) = (self.oauth, &token) else {
                        return Ok(answer);
                    };
                    tracing::info!(
                        kind = self.kind,
                        "InMoment refused the access token; fetching a new one."
                    );
                    oauth.cache.invalidate(token).await;
                    self.refreshed = true;
                }
                Verdict::Failed(DeliveryError::Retryable {
                    status: Some(429),
                    retry_after: Some(wait),
                    ..
                }) => {
                    self.limiter.hold_for(*wait);
                    return Ok(answer);
                }
                _ => return Ok(answer),
            }
        }
    }
}
