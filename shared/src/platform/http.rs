//! The one outbound-call path of the platform clients: bearer auth, per-request timeout, retries.
//!
//! Retry rules:
//! - [`Safety::Idempotent`] (GET, DELETE, PUT, and creations made safe to repeat): retried on
//!   429, any 5xx, connect errors and timeouts.
//! - [`Safety::NotProcessedOnly`] (creations that cannot be repeated safely): retried only when
//!   the request was certainly not acted on: 429, 503 and connect errors. A timeout or another
//!   5xx may hide a success, so it is returned to the caller instead of creating twice.
//! - Another 4xx is never retried.
//!
//! The delay is `Retry-After` (seconds) when the platform sends one, capped at
//! [`RetryPolicy::max_retry_after`]; otherwise exponential backoff with full jitter
//! (`random(0, min(max_delay, base_delay * 2^n))`), which spreads retries of many Lambda
//! instances hitting the same rate limit. Attempts are bounded so a call finishes well within
//! API Gateway's 30 s.

use std::time::Duration;

use ::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::PlatformError;
use crate::domain::Platform;
use crate::http_client::LazyClient;

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A longer `Retry-After` is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Millisecond delays so tests run fast.
    pub fn fast_for_tests() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(1500),
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)));
        let cap = exp.min(self.max_delay);
        // Full jitter; randomness from the OS via uuid v4, which is already a dependency.
        let r = uuid::Uuid::new_v4().as_u128() as u64;
        let millis = cap.as_millis() as u64;
        if millis == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(r % (millis + 1))
    }
}

/// Timeout and retry settings shared by the platform clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Whole request, from connect to the last body byte.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

impl HttpSettings {
    pub fn fast_for_tests() -> Self {
        Self {
            timeout: Duration::from_millis(500),
            retry: RetryPolicy::fast_for_tests(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Safety {
    Idempotent,
    NotProcessedOnly,
}

/// A complete answer from the platform.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub status: StatusCode,
    pub body: Bytes,
    /// An earlier attempt timed out or got a 5xx: it may have been acted on.
    pub earlier_attempt_uncertain: bool,
}

/// Bearer-authenticated calls to one platform's REST API.
#[derive(Clone)]
pub(crate) struct ApiCaller {
    pub platform: Platform,
    client: LazyClient,
    base: Url,
    api_key: SecretString,
    settings: HttpSettings,
}

impl std::fmt::Debug for ApiCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCaller")
            .field("platform", &self.platform)
            .field("base", &self.base.as_str())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The variable that holds a platform's API URL, for configuration errors.
fn url_var(platform: Platform) -> &'static str {
    match platform {
        Platform::Daily => "DAILY_API_URL",
        Platform::Whereby => "WHEREBY_API_URL",
        Platform::Mock => "API_URL",
    }
}

impl ApiCaller {
    pub fn new(
        platform: Platform,
        client: LazyClient,
        base_url: &str,
        api_key: SecretString,
        settings: HttpSettings,
    ) -> Result<Self, PlatformError> {
        let base = Url::parse(base_url)
            .ok()
            .filter(|u| !u.cannot_be_a_base())
            .ok_or_else(|| PlatformError::Config {
                platform,
                var: url_var(platform),
                reason: format!("{base_url:?} is not a usable base URL"),
            })?;
        Ok(Self {
            platform,
            client,
            base,
            api_key,
            settings,
        })
    }

    /// `base` + percent-encoded path segments.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends the request built by `build` (rebuilt for each attempt), retrying per `safety`.
    /// Returns the final answer whatever its status; only transport failures are errors.
    ///
    /// Under a request deadline ([`crate::deadline`]) no attempt outlives it (each attempt's
    /// timeout is cut to the time left), no retry waits past it, and a call with no time left
    /// is a timed-out [`PlatformError::Transport`] without a request.
    pub async fn call<F>(
        &self,
        operation: &'static str,
        safety: Safety,
        build: F,
    ) -> Result<Exchange, PlatformError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let client = self
            .client
            .get()
            .map_err(|reason| PlatformError::Transport {
                platform: self.platform,
                operation,
                timed_out: false,
                message: format!("cannot build the HTTP client: {reason}"),
            })?;
        let policy = &self.settings.retry;
        let max_attempts = policy.max_attempts.max(1);
        let deadline = crate::deadline::current();
        let mut uncertain = false;
        let mut attempt = 1;
        loop {
            let timeout = match crate::deadline::remaining() {
                Some(left) if left.is_zero() => {
                    tracing::warn!(platform = %self.platform, operation, attempt,
                        "no time left before the request's deadline; not calling the platform");
                    return Err(PlatformError::Transport {
                        platform: self.platform,
                        operation,
                        timed_out: true,
                        message: "no time left before the request's deadline".into(),
                    });
                }
                Some(left) => self.settings.timeout.min(left),
                None => self.settings.timeout,
            };
            let request = build(client)
                .bearer_auth(self.api_key.expose_secret())
                .timeout(timeout);
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            let last = attempt >= max_attempts;
            // A retry that would start at or after the deadline is not made: the answer in hand
            // is the final one.
            let too_late = |delay: Duration| {
                deadline.is_some_and(|d| tokio::time::Instant::now() + delay >= d)
            };
            match outcome {
                Ok((status, headers, body)) => {
                    let delay = retry_after(&headers)
                        .map(|d| d.min(policy.max_retry_after))
                        .unwrap_or_else(|| policy.backoff(attempt - 1));
                    if last || !retryable_status(status, safety) || too_late(delay) {
                        return Ok(Exchange {
                            status,
                            body,
                            earlier_attempt_uncertain: uncertain,
                        });
                    }
                    tracing::warn!(
                        platform = %self.platform,
                        operation,
                        attempt,
                        status = status.as_u16(),
                        delay_ms = delay.as_millis() as u64,
                        "platform call failed, retrying"
                    );
                    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                        uncertain = true;
                    }
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let timed_out = e.is_timeout();
                    // A connect error means nothing reached the server; a timeout may hide a
                    // request that was processed.
                    let not_sent = e.is_connect() && !timed_out;
                    let retry = match safety {
                        Safety::Idempotent => {
                            timed_out || e.is_connect() || e.is_request() || e.is_body()
                        }
                        Safety::NotProcessedOnly => not_sent,
                    };
                    let delay = policy.backoff(attempt - 1);
                    if last || !retry || too_late(delay) {
                        tracing::warn!(
                            platform = %self.platform,
                            operation,
                            attempt,
                            timed_out,
                            "platform call failed"
                        );
                        return Err(PlatformError::Transport {
                            platform: self.platform,
                            operation,
                            timed_out,
                            message: transport_message(&e),
                        });
                    }
                    if !not_sent {
                        uncertain = true;
                    }
                    tracing::warn!(
                        platform = %self.platform,
                        operation,
                        attempt,
                        timed_out,
                        delay_ms = delay.as_millis() as u64,
                        "platform call failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
            attempt += 1;
        }
    }
}

fn retryable_status(status: StatusCode, safety: Safety) -> bool {
    match safety {
        Safety::Idempotent => status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
        Safety::NotProcessedOnly => {
            status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// `Retry-After` in seconds. (The HTTP-date form is not used by Daily or Whereby; it falls back
/// to backoff.)
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(::http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // The URL is ours and holds no secret; it is left out so the message stays short.
    let mut message = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Turns a non-2xx answer into [`PlatformError::Api`]: Daily's `{error, info}`, Whereby's
/// `{error}` or `{message}`, or the first bytes of a non-JSON body.
pub(crate) fn api_error(platform: Platform, exchange: &Exchange) -> PlatformError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&exchange.body).ok();
    let text =
        |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_owned);
    let (error, info) = match &parsed {
        Some(v) if v.is_object() => (
            text(v, "error").or_else(|| text(v, "message")),
            text(v, "info"),
        ),
        _ => (None, None),
    };
    let error = error.unwrap_or_else(|| {
        let raw = String::from_utf8_lossy(&exchange.body);
        let raw = raw.trim();
        if raw.is_empty() {
            exchange
                .status
                .canonical_reason()
                .unwrap_or("error")
                .to_owned()
        } else {
            raw.chars().take(200).collect()
        }
    });
    PlatformError::Api {
        platform,
        status: exchange.status.as_u16(),
        error,
        info,
    }
}

/// Parses a 2xx JSON body.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    platform: Platform,
    operation: &'static str,
    exchange: &Exchange,
) -> Result<T, PlatformError> {
    serde_json::from_slice(&exchange.body).map_err(|e| PlatformError::Decode {
        platform,
        operation,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_an_exponential_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            max_retry_after: Duration::from_secs(1),
        };
        for _ in 0..200 {
            assert!(p.backoff(0) <= Duration::from_millis(100));
            assert!(p.backoff(1) <= Duration::from_millis(200));
            assert!(p.backoff(5) <= Duration::from_millis(350));
        }
        // Jitter: not every delay is the same.
        let delays: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn only_429_and_5xx_are_retried_and_creations_only_when_unprocessed() {
        use Safety::*;
        for s in [429, 500, 502, 503, 504] {
            assert!(
                retryable_status(StatusCode::from_u16(s).unwrap(), Idempotent),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 422] {
            assert!(
                !retryable_status(StatusCode::from_u16(s).unwrap(), Idempotent),
                "{s}"
            );
            assert!(
                !retryable_status(StatusCode::from_u16(s).unwrap(), NotProcessedOnly),
                "{s}"
            );
        }
        assert!(retryable_status(
            StatusCode::TOO_MANY_REQUESTS,
            NotProcessedOnly
        ));
        assert!(retryable_status(
            StatusCode::SERVICE_UNAVAILABLE,
            NotProcessedOnly
        ));
        assert!(!retryable_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            NotProcessedOnly
        ));
        assert!(!retryable_status(
            StatusCode::GATEWAY_TIMEOUT,
            NotProcessedOnly
        ));
    }
}
