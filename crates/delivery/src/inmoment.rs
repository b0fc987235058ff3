//! The real sender: each source's InMoment client behind the client crate's tower stack
//! (rate limit, concurrency, retries, per-attempt timeout), on one shared connection pool.
//! For `serve` one delivery is one HTTP attempt: what fails goes back to the engine, whose
//! schedule in the store survives restarts and long outages and counts every attempt.
//! `send` has no store to come back to, so its deliveries retry quickly in process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use inmoment_client::{
    delivery_stack, http_client, ClientConfig, ClientSecret, DeliveryStack, InMomentClient,
    RetryConfig, StackConfig,
};
use inmoment_core::InMomentCall;
use tower::{Service, ServiceExt};

use super::attempt::{Attempt, Deliver};
use inmoment_config::Config;

/// How many HTTP attempts one delivery makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// `serve`: one; the engine schedules retries durably and counts each.
    Once,
    /// `send`: a few quick ones within seconds (backoff from `retry_base_ms`).
    QuickRetries,
}

/// Sends calls with the client of the call's source.
pub struct InMomentDeliver {
    /// Behind a mutex only because the boxed stack is `Send` but not `Sync`; each
    /// delivery clones its own handle and releases the lock at once.
    stacks: HashMap<String, Mutex<DeliveryStack>>,
    /// Each source's Account Token now, stamped on eligibility checks at send time.
    tokens: HashMap<String, String>,
}

impl InMomentDeliver {
    /// One client per configured source, sharing one connection pool.
    pub fn from_config(config: &Config, attempts: Attempts) -> Result<InMomentDeliver, String> {
        let mut stacks = HashMap::new();
        let mut tokens = HashMap::new();
        let mut http = None;
        for source in &config.sources {
            let settings = &source.source.settings;
            let mut client = ClientConfig::for_token(&settings.account_token);
            if let Some(id) = &settings.client_id {
                let secret = source
                    .client_secret
                    .as_ref()
                    .map(|s| ClientSecret::new(s.expose()));
                client = client.with_client(id.clone(), secret);
            }
            if let Some(url) = &config.eligibility_url {
                client.eligibility_url = url.clone();
            }
            if let Some(url) = &config.api_url {
                client.api_url = url.clone();
            }
            client.stack = stack_config(config, attempts);
            let pool = match &http {
                Some(pool) => pool,
                None => http.insert(http_client(&client).map_err(|e| e.to_string())?),
            };
            let service = InMomentClient::with_http_client(client.clone(), pool.clone())
                .map_err(|e| format!("source `{}`: {e}", source.source.name))?;
            tokens.insert(
                source.source.name.clone(),
                settings.account_token.to_string(),
            );
            let stack = delivery_stack(service, &client.stack);
            stacks.insert(source.source.name.clone(), Mutex::new(stack));
        }
        Ok(InMomentDeliver { stacks, tokens })
    }
}

fn stack_config(config: &Config, attempts: Attempts) -> StackConfig {
    let (max_attempts, max_elapsed) = match attempts {
        Attempts::Once => (1, Duration::ZERO),
        Attempts::QuickRetries => (3, Duration::from_secs(30)),
    };
    StackConfig {
        rate_limit_per_minute: config.delivery.rate_limit_per_minute,
        concurrency: config.delivery.concurrency,
        attempt_timeout: Duration::from_secs(30),
        retry: RetryConfig {
            max_attempts,
            max_elapsed,
            initial_backoff: config.delivery.retry_base,
            max_backoff: config.delivery.retry_cap,
            full_jitter: true,
        },
    }
}

/// An eligibility check carries the Account Token it was mapped with; send it with the
/// source's token of now, so dead letters replayed after fixing a wrong token succeed.
fn with_current_token(call: &InMomentCall, token: Option<&String>) -> InMomentCall {
    let mut call = call.clone();
    if let (InMomentCall::EligibilityCheck { request, .. }, Some(token)) = (&mut call, token) {
        if request.query.get("account_token") != Some(token.as_str()) {
            request.query.set("account_token", token);
        }
    }
    call
}

#[async_trait]
impl Deliver for InMomentDeliver {
    async fn deliver(&self, source: &str, call: &InMomentCall) -> Attempt {
        let stack = self
            .stacks
            .get(source)
            .and_then(|stack| stack.lock().ok().map(|s| s.clone()));
        let Some(mut service) = stack else {
            return Attempt::Permanent {
                status: None,
                reason: format!("source `{source}` is not configured any more; configure it again, then replay the dead letters"),
            };
        };
        let call = with_current_token(call, self.tokens.get(source));
        let result = match service.ready().await {
            Ok(ready) => ready.call(call).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(delivered) => Attempt::Delivered {
                status: delivered.status,
                eligible: delivered.eligibility.map(|answer| answer.eligible),
            },
            Err(error) if error.is_retryable() => Attempt::Retry {
                status: error.status(),
                reason: error.to_string(),
                retry_after: error.retry_after(),
            },
            Err(error) => Attempt::Permanent {
                status: error.status(),
                reason: error.to_string(),
            },
        }
    }
}
