//! `InMomentClient`: the innermost `tower::Service`, sending one attempt of one call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use inmoment_core::{InMomentCall, VERSION};
use tokio::time::Sleep;
use tower::Service;

use crate::config::ClientConfig;
use crate::end_users::{Directory, EndUserCache, Who};
use crate::error::{ConfigError, DeliveryError};
use crate::exchange::Exchange;
use crate::limiter::Limiter;
use crate::oauth::{OAuth, TokenCache};
use crate::outcome::{Delivered, EligibilityAnswer};
use crate::request::Endpoints;

/// Builds the HTTP client with our `User-Agent`. Share one across [`InMomentClient`]s (one
/// per account) through [`InMomentClient::with_http_client`] to share its connection pool.
pub fn http_client(config: &ClientConfig) -> Result<reqwest::Client, ConfigError> {
    http_client_builder(config)
        .build()
        .map_err(|e| ConfigError::Http(e.to_string()))
}

/// The settings of [`http_client`], for callers that add their own (a proxy, a pinned
/// address in tests).
pub fn http_client_builder(config: &ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(VERSION)
        .connect_timeout(config.connect_timeout)
        // A backstop for direct `send` calls; the stack's per-attempt timeout is the real bound.
        .timeout(config.stack.attempt_timeout)
        // A redirected POST would silently turn into a GET; a 3xx is a setup error instead.
        .redirect(reqwest::redirect::Policy::none())
}

struct Shared {
    http: reqwest::Client,
    config: ClientConfig,
    endpoints: Endpoints,
    oauth: Option<OAuth>,
    end_users: EndUserCache,
    limiter: Limiter,
}

/// Sends [`InMomentCall`]s for one account. Clones share the connection pool, the token,
/// the end-user ids and the rate-limit state. Wrap it with [`crate::delivery_stack`] for
/// retries, timeouts and limits.
pub struct InMomentClient {
    shared: Arc<Shared>,
    /// This clone's wait for the limiter, polled by `poll_ready`.
    hold: Option<Pin<Box<Sleep>>>,
}

impl Clone for InMomentClient {
    fn clone(&self) -> InMomentClient {
        InMomentClient {
            shared: self.shared.clone(),
            hold: None,
        }
    }
}

impl fmt::Debug for InMomentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMomentClient")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl InMomentClient {
    /// A client with its own connection pool.
    pub fn new(config: ClientConfig) -> Result<InMomentClient, ConfigError> {
        let http = http_client(&config)?;
        InMomentClient::with_http_client(config, http)
    }

    /// A client on a shared connection pool (see [`http_client`]).
    pub fn with_http_client(
        config: ClientConfig,
        http: reqwest::Client,
    ) -> Result<InMomentClient, ConfigError> {
        let endpoints = Endpoints::new(&config)?;
        let oauth = config.client_id.as_ref().map(|id| OAuth {
            cache: TokenCache::new(config.token_refresh_margin),
            request: endpoints.token(id, config.client_secret.as_ref()),
        });
        let shared = Shared {
            end_users: EndUserCache::new(&config.account_token, config.end_user_cache_capacity),
            limiter: Limiter::new(config.rate_limit_floor, config.max_rate_limit_hold),
            http,
            endpoints,
            oauth,
            config,
        };
        Ok(InMomentClient {
            shared: Arc::new(shared),
            hold: None,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.shared.config
    }

    /// One attempt at `call`, without retries (waits for the limiter first).
    pub async fn send(&self, call: &InMomentCall) -> Result<Delivered, DeliveryError> {
        self.shared.limiter.wait().await;
        self.shared.deliver(call).await
    }
}

impl Shared {
    async fn deliver(&self, call: &InMomentCall) -> Result<Delivered, DeliveryError> {
        let kind = call.kind();
        if call.needs_oauth() && self.oauth.is_none() {
            return Err(DeliveryError::MissingClientId { kind });
        }
        let mut x = Exchange {
            http: &self.http,
            limiter: &self.limiter,
            oauth: self.oauth.as_ref(),
            clock: &self.config.wall_clock,
            kind,
            refreshed: false,
        };
        let directory = Directory {
            endpoints: &self.endpoints,
            cache: &self.end_users,
        };
        let delivered = |status, eligibility, end_user_id| Delivered {
            kind,
            status,
            eligibility,
            end_user_id,
            attempts: 1,
        };
        match call {
            InMomentCall::EligibilityCheck { request, .. } => {
                let answer = x.send(&self.endpoints.raw(request)).await?.checked()?;
                let eligibility = EligibilityAnswer::parse(answer.status, &answer.body)?;
                Ok(delivered(answer.status, Some(eligibility), None))
            }
            InMomentCall::UpsertEndUser {
                end_user, fields, ..
            } => {
                let who = Who::new(end_user, fields);
                let (id, status) = directory.upsert(&mut x, &who, fields).await?;
                Ok(delivered(status, None, Some(id)))
            }
            InMomentCall::CreateResponse {
                end_user, fields, ..
            } => {
                let who = Who::new(end_user, &inmoment_core::Params::new());
                let build = |id| self.endpoints.create_response(id, fields);
                let (id, status) = directory.write_for(&mut x, &who, build).await?;
                Ok(delivered(status, None, Some(id)))
            }
            InMomentCall::CreateDecline {
                end_user, fields, ..
            } => {
                let who = Who::new(end_user, &inmoment_core::Params::new());
                let build = |id| self.endpoints.create_decline(id, fields);
                let (id, status) = directory.write_for(&mut x, &who, build).await?;
                Ok(delivered(status, None, Some(id)))
            }
            InMomentCall::EmailSurvey {
                emails,
                external_ids,
                fields,
                ..
            } => {
                let request = self.endpoints.email_survey(emails, external_ids, fields);
                let answer = x.send(&request).await?.checked()?;
                Ok(delivered(answer.status, None, None))
            }
        }
    }
}

impl Service<InMomentCall> for InMomentClient {
    type Response = Delivered;
    type Error = DeliveryError;
    type Future = Pin<Box<dyn Future<Output = Result<Delivered, DeliveryError>> + Send>>;

    /// Not ready while the limiter holds requests, so a retry layer above waits here,
    /// outside the per-attempt timeout.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DeliveryError>> {
        loop {
            if let Some(hold) = self.hold.as_mut() {
                ready!(hold.as_mut().poll(cx));
                self.hold = None;
            }
            match self.shared.limiter.held_until() {
                Some(until) => self.hold = Some(Box::pin(tokio::time::sleep_until(until))),
                None => return Poll::Ready(Ok(())),
            }
        }
    }

    fn call(&mut self, call: InMomentCall) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { shared.deliver(&call).await })
    }
}
