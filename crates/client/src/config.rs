//! Everything the client and its delivery stack can be told, with defaults that fit
//! InMoment's production hosts; tests override the base URLs and use millisecond timings.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use inmoment_core::{AccountToken, ClientId};

/// The API client secret (InMoment Settings > API). Its `Debug` never shows the value, so a
/// logged config cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> ClientSecret {
        ClientSecret(secret.into())
    }

    /// The raw value, for the token request body only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Where "now" comes from when InMoment's unix-time headers (`X-Rate-Limit-Reset`,
/// `Retry-After` dates) become delays. The system clock, except in tests that align it
/// with a fake server's clock.
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl WallClock {
    pub fn system() -> WallClock {
        WallClock(Arc::new(SystemTime::now))
    }

    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> WallClock {
        WallClock(Arc::new(now))
    }

    pub fn now(&self) -> SystemTime {
        (self.0)()
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WallClock")
    }
}

/// How one InMoment account is reached.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The account this client speaks for; it keys the end-user cache.
    pub account_token: AccountToken,
    /// Base URL of the eligibility server (`https://eligibility.wootric.<tld>`).
    pub eligibility_url: String,
    /// Base URL of the REST API and `/oauth/token` (`https://app.wootric.<tld>`).
    pub api_url: String,
    /// Path prefix of REST routes: `/api/v1` on `app.wootric.<tld>` (the mobile SDKs' form);
    /// `/v1` for the older `api.wootric.com` host.
    pub rest_prefix: String,
    /// Needed for end-user upserts, responses and declines (OAuth client credentials).
    pub client_id: Option<ClientId>,
    /// Sent with the client id when set; InMoment also accepts the id alone.
    pub client_secret: Option<ClientSecret>,
    /// Bound on opening a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// A cached token is refreshed this long before InMoment says it expires, so a request
    /// never leaves with a token that dies in flight.
    pub token_refresh_margin: Duration,
    /// When `X-Rate-Limit-Remaining` falls to this value or below, new requests wait for
    /// `X-Rate-Limit-Reset` (0 waits only when the window is used up).
    pub rate_limit_floor: u64,
    /// Longest the client-side limiter holds requests, whatever the headers say (guards
    /// against a skewed clock); zero turns the limiter off.
    pub max_rate_limit_hold: Duration,
    /// The clock rate-limit headers are read against.
    pub wall_clock: WallClock,
    /// End-user ids remembered before the cache starts over; bounds memory.
    pub end_user_cache_capacity: usize,
    /// The tower stack around the client.
    pub stack: StackConfig,
}

/// The layers of [`crate::delivery_stack`].
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Optional fixed ceiling of calls per minute (shared by every clone of the stack).
    pub rate_limit_per_minute: Option<u32>,
    /// Calls in flight at once, retries included (values below 1 count as 1).
    pub concurrency: usize,
    /// Bound on one attempt of one call (lookups, token fetch and write together).
    pub attempt_timeout: Duration,
    pub retry: RetryConfig,
}

/// Exponential backoff with full jitter and a cap.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Attempts in total, the first included (values below 1 count as 1).
    pub max_attempts: u32,
    /// No new attempt starts once this much time has passed since the first failure; the
    /// last error is handed back (with InMoment's retry-after, if any) for a later try.
    pub max_elapsed: Duration,
    /// Backoff before the second attempt; it doubles after each failure.
    pub initial_backoff: Duration,
    /// The doubling stops here.
    pub max_backoff: Duration,
    /// Wait a random time between zero and the backoff (spreads retries of many callers);
    /// off gives the exact backoff, for tests.
    pub full_jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            full_jitter: true,
        }
    }
}

impl Default for StackConfig {
    fn default() -> StackConfig {
        StackConfig {
            rate_limit_per_minute: None,
            concurrency: 4,
            attempt_timeout: Duration::from_secs(30),
            retry: RetryConfig::default(),
        }
    }
}

/// The REST prefix InMoment's current clients use on `app.wootric.<tld>`.
pub const DEFAULT_REST_PREFIX: &str = "/api/v1";

impl ClientConfig {
    /// Production hosts of the token's region: `NPS-EU-…` → `.eu`, `NPS-AU-…` → `.au`,
    /// anything else → `.com`.
    pub fn for_token(token: &AccountToken) -> ClientConfig {
        let tld = token.region().tld();
        ClientConfig {
            account_token: token.clone(),
            eligibility_url: format!("https://eligibility.wootric.{tld}"),
            api_url: format!("https://app.wootric.{tld}"),
            rest_prefix: DEFAULT_REST_PREFIX.to_string(),
            client_id: None,
            client_secret: None,
            connect_timeout: Duration::from_secs(10),
            token_refresh_margin: Duration::from_secs(60),
            rate_limit_floor: 0,
            max_rate_limit_hold: Duration::from_secs(120),
            wall_clock: WallClock::system(),
            end_user_cache_capacity: 100_000,
            stack: StackConfig::default(),
        }
    }

    /// Turns on the REST API path (upserts, responses, declines).
    pub fn with_client(mut self, id: ClientId, secret: Option<ClientSecret>) -> ClientConfig {
        self.client_id = Some(id);
        self.client_secret = secret;
        self
    }

    /// Points both roles elsewhere (a proxy, or a local sandbox in tests).
    pub fn with_base_urls(
        mut self,
        eligibility_url: impl Into<String>,
        api_url: impl Into<String>,
    ) -> ClientConfig {
        self.eligibility_url = eligibility_url.into();
        self.api_url = api_url.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(token: &str) -> (String, String) {
        let config = ClientConfig::for_token(&AccountToken::parse(token).unwrap());
        (config.eligibility_url, config.api_url)
    }

    #[test]
    fn region_hosts_follow_the_token() {
        assert_eq!(
            hosts("NPS-4aeb53c1"),
            (
                "https://eligibility.wootric.com".to_string(),
                "https://app.wootric.com".to_string()
            )
        );
        assert_eq!(
            hosts("NPS-EU-4aeb53c1"),
            (
                "https://eligibility.wootric.eu".to_string(),
                "https://app.wootric.eu".to_string()
            )
        );
        assert_eq!(
            hosts("NPS-AU-4aeb53c1"),
            (
                "https://eligibility.wootric.au".to_string(),
                "https://app.wootric.au".to_string()
            )
        );
        // Only the exact regional prefixes count.
        assert_eq!(hosts("NPS-EUROPE123").1, "https://app.wootric.com");
    }

    #[test]
    fn rest_prefix_defaults_to_api_v1() {
        let config = ClientConfig::for_token(&AccountToken::parse("NPS-4aeb53c1").unwrap());
        assert_eq!(config.rest_prefix, "/api/v1");
        assert!(config.client_id.is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = ClientConfig::for_token(&AccountToken::parse("NPS-4aeb53c1").unwrap())
            .with_client(
                ClientId::parse("demo-client-id").unwrap(),
                Some(ClientSecret::new("s3cr3t-value")),
            );
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
