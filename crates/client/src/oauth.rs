//! The OAuth access token: fetched with the client-credentials grant, cached until shortly
//! before it expires, fetched by one caller at a time.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::classify::excerpt;
use crate::config::WallClock;
use crate::error::DeliveryError;
use crate::exchange::transmit;
use crate::request::WireRequest;

/// InMoment's documented token lifetime, assumed when an answer omits `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(7200);

/// A bearer token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AccessToken(String);

impl AccessToken {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// The token endpoint's answer (`{"access_token","token_type","expires_in",...}`).
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// Holds at most one token. The lock is held while fetching, so concurrent callers wait
/// for that one fetch instead of stampeding the token endpoint.
pub(crate) struct TokenCache {
    margin: Duration,
    slot: Mutex<Option<Cached>>,
}

impl TokenCache {
    pub(crate) fn new(margin: Duration) -> TokenCache {
        TokenCache {
            margin,
            slot: Mutex::new(None),
        }
    }

    /// The cached token while it is fresh, else the result of `fetch`.
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<AccessToken, DeliveryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TokenAnswer, DeliveryError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref() {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.token.clone());
            }
        }
        let answer = fetch().await?;
        let lifetime = answer
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME);
        let token = AccessToken(answer.access_token);
        *slot = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(self.margin),
        });
        Ok(token)
    }

    /// Drops `stale` after InMoment refused it; a newer token fetched meanwhile stays.
    pub(crate) async fn invalidate(&self, stale: &AccessToken) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|cached| &cached.token == stale) {
            *slot = None;
        }
    }
}

/// The token endpoint plus its cache.
pub(crate) struct OAuth {
    pub(crate) cache: TokenCache,
    pub(crate) request: WireRequest,
}

impl OAuth {
    /// A valid token, fetching one if needed.
    pub(crate) async fn token(
        &self,
        http: &reqwest::Client,
        clock: &WallClock,
    ) -> Result<AccessToken, DeliveryError> {
        self.cache.get(|| fetch(http, &self.request, clock)).await
    }
}

/// One `POST /oauth/token`. Refused credentials (400, 401, 403) say to check the Client ID
/// and Secret; other failures go through the classification table.
async fn fetch(
    http: &reqwest::Client,
    request: &WireRequest,
    clock: &WallClock,
) -> Result<TokenAnswer, DeliveryError> {
    tracing::debug!("Fetching an InMoment access token.");
    let answer = transmit(http, request, None, clock).await?;
    if matches!(answer.status, 400 | 401 | 403) {
        return Err(DeliveryError::Unauthorized {
            status: answer.status,
            body: excerpt(&answer.body),
        });
    }
    let answer = answer.checked()?;
    serde_json::from_slice(&answer.body).map_err(|_| DeliveryError::UnexpectedAnswer {
        status: answer.status,
        detail: "no `access_token` from /oauth/token".into(),
        body: excerpt(&answer.body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn answer(token: &str, expires_in: u64) -> TokenAnswer {
        TokenAnswer {
            access_token: token.into(),
            expires_in: Some(expires_in),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_is_reused_until_shortly_before_it_expires() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let fetches = AtomicU32::new(0);
        let fetch = || async {
            let n = fetches.fetch_add(1, Ordering::SeqCst);
            Ok(answer(&format!("t{n}"), 7200))
        };
        assert_eq!(cache.get(fetch).await.unwrap().expose(), "t0");
        tokio::time::advance(Duration::from_secs(7139)).await;
        assert_eq!(cache.get(fetch).await.unwrap().expose(), "t0");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get(fetch).await.unwrap().expose(), "t1");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(60)));
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(answer("shared", 7200))
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().expose(), "shared");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalidating_a_stale_token_keeps_a_newer_one() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let old = cache
            .get(|| async { Ok(answer("old", 7200)) })
            .await
            .unwrap();
        cache.invalidate(&old).await;
        let new = cache
            .get(|| async { Ok(answer("new", 7200)) })
            .await
            .unwrap();
        cache.invalidate(&old).await;
        let again = cache
            .get(|| async { Ok(answer("other", 7200)) })
            .await
            .unwrap();
        assert_eq!((new.expose(), again.expose()), ("new", "new"));
    }

    #[test]
    fn debug_never_shows_a_token() {
        let token = AccessToken("tok-123456".into());
        assert_eq!(format!("{token:?}"), "AccessToken(<redacted>)");
        let shown = format!("{:?}", answer("tok-123456", 10));
        assert!(!shown.contains("tok-123456"), "{shown}");
    }
}
