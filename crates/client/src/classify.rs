//! The one table from an HTTP answer (or a transport failure) to what happens next.
//! Call-specific readings (a lookup's 404 meaning "no such user", a create's duplicate
//! email) are checked by their callers first; everything else comes through here.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use inmoment_core::Host;
use reqwest::header::HeaderMap;

use crate::error::DeliveryError;
use crate::headers;

/// Longest body excerpt kept in an error.
pub const MAX_BODY_EXCERPT: usize = 512;

/// Wait after a 429 that carries neither `X-Rate-Limit-Reset` nor `Retry-After`: InMoment's
/// limits are per minute.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// What to do with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// 401 from the REST host: fetch a new token and try once more.
    RefreshToken,
    /// Anything else, with the error that says what to do.
    Failed(DeliveryError),
}

/// The table. `host` matters for 401 (OAuth only on the REST host) and 404 (on the
/// eligibility host it means an unknown account).
pub fn classify(
    host: Host,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Verdict {
    let retry = |reason: String, retry_after: Option<Duration>| {
        Verdict::Failed(DeliveryError::Retryable {
            status: Some(status),
            reason,
            retry_after,
        })
    };
    let permanent = |reason: &str| {
        Verdict::Failed(DeliveryError::Permanent {
            status,
            body: excerpt(body),
            reason: reason.to_string(),
        })
    };
    match (host, status) {
        (_, 200..=299) => Verdict::Delivered,
        (Host::Api, 401) => Verdict::RefreshToken,
        (Host::Eligibility, 404) => Verdict::Failed(DeliveryError::UnknownAccount {
            status,
            detail: format!("HTTP 404 from the eligibility server: {}", excerpt(body)),
        }),
        (_, 408) => retry(
            "InMoment timed out reading the request (HTTP 408)".into(),
            None,
        ),
        (_, 429) => {
            let wait = headers::rate_limit_reset(headers, now)
                .or_else(|| headers::retry_after(headers, now))
                .unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
            retry(
                "InMoment's rate limit is used up (HTTP 429); waiting for its reset".into(),
                Some(wait),
            )
        }
        (_, 501) => permanent("InMoment does not implement this request (HTTP 501)"),
        (_, 500..=599) => retry(
            format!("InMoment had a server error (HTTP {status})"),
            headers::retry_after(headers, now),
        ),
        (_, 400) => permanent("InMoment refused the parameters; see the response for the field"),
        (Host::Eligibility, 401) => {
            permanent("the eligibility server wants no credentials; check the eligibility URL")
        }
        (_, 403) => {
            permanent("the API client may not do this; check its scope in InMoment Settings > API")
        }
        (_, 404) => permanent(
            "not found; check the REST base URL and prefix, or whether the end user was deleted",
        ),
        (_, 422) => permanent("InMoment could not validate the fields; see the response"),
        (_, 423) => {
            permanent("editing historical properties is not enabled for this InMoment account")
        }
        (_, 300..=399) => {
            permanent("InMoment redirected the request; point the base URL at the final host")
        }
        _ => permanent("InMoment refused the request"),
    }
}

/// A failure before any answer: timeouts and connection problems are worth retrying; a
/// request that could not even be built is not.
pub fn classify_transport(error: reqwest::Error) -> DeliveryError {
    // The URL can hold an email address in its query; keep it out of errors and logs.
    let error = error.without_url();
    if error.is_builder() {
        return DeliveryError::InvalidCall(chain(&error));
    }
    let what = if error.is_timeout() {
        "InMoment did not answer in time"
    } else if error.is_connect() {
        "could not connect to InMoment"
    } else {
        "the connection to InMoment failed"
    };
    DeliveryError::Retryable {
        status: None,
        reason: format!("{what}: {}", chain(&error)),
        retry_after: None,
    }
}

/// An error and its causes on one line.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// At most [`MAX_BODY_EXCERPT`] bytes of a body, cut on a character boundary.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.len() <= MAX_BODY_EXCERPT {
        return text.to_string();
    }
    let mut end = MAX_BODY_EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn verdict(host: Host, status: u16) -> Verdict {
        classify(host, status, &HeaderMap::new(), b"{\"error\":\"x\"}", now())
    }

    fn with_header(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).unwrap());
        map
    }

    fn is_retry(v: &Verdict) -> bool {
        matches!(v, Verdict::Failed(e) if e.is_retryable())
    }

    fn permanent_status(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Failed(DeliveryError::Permanent { status, .. }) => Some(*status),
            _ => None,
        }
    }

    #[test]
    fn every_2xx_is_delivered() {
        for status in [200, 201, 202, 204] {
            for host in [Host::Api, Host::Eligibility] {
                assert_eq!(verdict(host, status), Verdict::Delivered, "{status}");
            }
        }
    }

    #[test]
    fn a_401_on_the_rest_host_refreshes_the_token() {
        assert_eq!(verdict(Host::Api, 401), Verdict::RefreshToken);
        assert_eq!(
            permanent_status(&verdict(Host::Eligibility, 401)),
            Some(401)
        );
    }

    #[test]
    fn timeouts_and_server_errors_retry_but_501_does_not() {
        for status in [408, 500, 502, 503, 504, 599] {
            assert!(is_retry(&verdict(Host::Api, status)), "{status}");
            assert!(is_retry(&verdict(Host::Eligibility, status)), "{status}");
        }
        assert_eq!(permanent_status(&verdict(Host::Api, 501)), Some(501));
    }

    #[test]
    fn a_503_honours_retry_after() {
        let v = classify(Host::Api, 503, &with_header("Retry-After", "7"), b"", now());
        let Verdict::Failed(err) = v else {
            panic!("{v:?}")
        };
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_429_waits_for_the_reset_then_retry_after_then_a_minute() {
        let wait = |headers: HeaderMap| match classify(Host::Api, 429, &headers, b"", now()) {
            Verdict::Failed(e) if e.is_retryable() => e.retry_after(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            wait(with_header("X-Rate-Limit-Reset", "1700000030")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait(with_header("Retry-After", "12")),
            Some(Duration::from_secs(12))
        );
        assert_eq!(wait(HeaderMap::new()), Some(DEFAULT_RATE_LIMIT_WAIT));
    }

    #[test]
    fn other_4xx_and_3xx_are_permanent_with_the_body() {
        for status in [301, 400, 403, 404, 409, 410, 413, 422, 423] {
            match verdict(Host::Api, status) {
                Verdict::Failed(DeliveryError::Permanent {
                    status: s, body, ..
                }) => {
                    assert_eq!(s, status);
                    assert_eq!(body, "{\"error\":\"x\"}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_404_from_the_eligibility_host_means_check_the_account_token() {
        let Verdict::Failed(err) = verdict(Host::Eligibility, 404) else {
            panic!()
        };
        assert!(matches!(
            err,
            DeliveryError::UnknownAccount { status: 404, .. }
        ));
        assert!(err.to_string().contains("check the Account Token"), "{err}");
    }

    /// A real transport failure from reqwest against 127.0.0.1.
    async fn transport_error(url: &str, timeout: Duration) -> DeliveryError {
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap();
        classify_transport(http.get(url).send().await.unwrap_err())
    }

    #[tokio::test]
    async fn refused_connections_timeouts_and_drops_retry_and_bad_urls_do_not() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let refused_at = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let err = transport_error(&refused_at, Duration::from_secs(5)).await;
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("could not connect"), "{err}");

        // Accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_at = format!("http://{}/", silent.local_addr().unwrap());
        let keep = tokio::spawn(async move {
            let (socket, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let err = transport_error(&silent_at, Duration::from_millis(50)).await;
        assert!(err.is_retryable(), "{err}");
        assert!(err.to_string().contains("did not answer in time"), "{err}");
        keep.abort();

        // Accepts and hangs up at once.
        let rude = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rude_at = format!("http://{}/", rude.local_addr().unwrap());
        tokio::spawn(async move {
            let (socket, _) = rude.accept().await.unwrap();
            drop(socket);
        });
        let err = transport_error(&rude_at, Duration::from_secs(5)).await;
        assert!(err.is_retryable(), "{err}");

        let err = transport_error("http://exa mple.invalid/", Duration::from_secs(5)).await;
        assert!(matches!(err, DeliveryError::InvalidCall(_)), "{err}");
    }

    #[test]
    fn excerpts_stop_at_512_bytes_on_a_char_boundary() {
        let long = "é".repeat(400); // 800 bytes
        let cut = excerpt(long.as_bytes());
        assert!(cut.len() <= MAX_BODY_EXCERPT);
        assert_eq!(cut.len(), 512);
        let odd = format!("a{}", "é".repeat(400));
        assert_eq!(excerpt(odd.as_bytes()).len(), 511);
    }
}
