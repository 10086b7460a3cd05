//! Recording downloads over HTTP(S), limited to `RECORDING_URL_ALLOWED_HOSTS`: the
//! [`Downloader`] port, implemented over HTTP by [`HttpDownloader`] (and in memory by
//! `fakes::MemoryDownloads`, for handler tests).
//!
//! The allow-list is checked before the first request and again on every redirect (a custom
//! redirect policy), so an allowed host cannot bounce the function to an internal address or a
//! host nobody approved. The body is a stream: nothing is buffered here.

use std::sync::Arc;

use async_trait::async_trait;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use url::Url;

use crate::config::AllowedHost;
use crate::http_client::LazyClient;
use crate::retry::{is_transient_status, Transient};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence between two reads of the body; the whole transfer has no limit, since a
/// multi-GiB recording legitimately takes minutes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("invalid recording URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The URL (or a redirect target) is not in RECORDING_URL_ALLOWED_HOSTS; nothing was sent
    /// to it.
    #[error("{url} is not on an allowed recording host (RECORDING_URL_ALLOWED_HOSTS)")]
    NotAllowed { url: String },
    #[error("redirect refused for {url}: {reason}")]
    Redirect { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("download of {url} failed: {reason}")]
    Network { url: String, reason: String },
}

impl Transient for DownloadError {
    /// Network failures, timeouts and transient statuses ([`is_transient_status`]). A
    /// disallowed host, a bad URL or another 4xx will not change by retrying.
    fn is_transient(&self) -> bool {
        match self {
            DownloadError::Network { .. } => true,
            DownloadError::Status { status, .. } => is_transient_status(*status),
            DownloadError::InvalidUrl { .. }
            | DownloadError::NotAllowed { .. }
            | DownloadError::Redirect { .. } => false,
        }
    }
}

/// An open download: headers are in, the body streams.
pub struct Download {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub content_length: Option<u64>,
    pub content_type: Option<String>,
    pub body: BoxStream<'static, Result<Bytes, DownloadError>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("url", &redact(&self.url))
            .field("content_length", &self.content_length)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// The URL without its query string, which for signed S3/Daily links is a credential.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Opens recording downloads. Contract (what the processor relies on): a URL that does not
/// parse is `InvalidUrl`, one off the allow-list is `NotAllowed` and nothing is sent to it; a
/// non-2xx answer is `Status`; a transfer that breaks is `Network`, at open or in the body.
#[async_trait]
pub trait Downloader: Send + Sync {
    /// Sends the request and returns the open body once a 2xx answer arrived.
    async fn open(&self, url: &str) -> Result<Download, DownloadError>;
}

/// Parses `url` and checks it against the allow-list, without sending anything.
pub fn check_allowed(allowed: &[AllowedHost], url: &str) -> Result<Url, DownloadError> {
    let parsed = Url::parse(url).map_err(|e| DownloadError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if !allowed.iter().any(|h| h.allows(&parsed)) {
        return Err(DownloadError::NotAllowed {
            url: redact(&parsed),
        });
    }
    Ok(parsed)
}

/// [`Downloader`] over HTTP(S) with reqwest; the allow-list is also applied to every redirect.
#[derive(Clone, Debug)]
pub struct HttpDownloader {
    client: LazyClient,
    allowed: Arc<Vec<AllowedHost>>,
}

/// The error a redirect to a host off the list is refused with (found again in the source
/// chain of reqwest's error).
#[derive(Debug, thiserror::Error)]
#[error("redirect to {0}, which is not on an allowed recording host")]
struct DisallowedRedirect(String);

impl HttpDownloader {
    /// The client is built at the first download ([`LazyClient`]), not here.
    pub fn new(allowed: Vec<AllowedHost>) -> Self {
        let allowed = Arc::new(allowed);
        let policy_hosts = Arc::clone(&allowed);
        let client = LazyClient::new(move || {
            let hosts = Arc::clone(&policy_hosts);
            let policy = reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
                } else if hosts.iter().any(|h| h.allows(attempt.url())) {
                    attempt.follow()
                } else {
                    let to = redact(attempt.url());
                    attempt.error(DisallowedRedirect(to))
                }
            });
            reqwest::Client::builder()
                .redirect(policy)
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .build()
        });
        Self { client, allowed }
    }
}

#[async_trait]
impl Downloader for HttpDownloader {
    /// Sends the GET and returns the open body once a 2xx answer arrived.
    async fn open(&self, url: &str) -> Result<Download, DownloadError> {
        let url = check_allowed(&self.allowed, url)?;
        let shown = redact(&url);
        let client = self.client.get().map_err(|reason| DownloadError::Network {
            url: shown.clone(),
            reason: format!("cannot build the HTTP client: {reason}"),
        })?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| classify(&shown, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status {
                url: shown,
                status: status.as_u16(),
            });
        }
        let final_url = response.url().clone();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_length = response.content_length();
        let body_url = redact(&final_url);
        let body = response
            .bytes_stream()
            .map_err(move |e| DownloadError::Network {
                url: body_url.clone(),
                reason: error_chain(&e.without_url()),
            })
            .boxed();
        Ok(Download {
            url: final_url,
            content_length,
            content_type,
            body,
        })
    }
}

fn classify(url: &str, e: reqwest::Error) -> DownloadError {
    // reqwest prints the full URL, query included; for signed links that is a credential.
    let e = e.without_url();
    if e.is_redirect() {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if let Some(DisallowedRedirect(to)) = s.downcast_ref::<DisallowedRedirect>() {
                return DownloadError::NotAllowed { url: to.clone() };
            }
            source = s.source();
        }
        return DownloadError::Redirect {
            url: url.to_owned(),
            reason: error_chain(&e),
        };
    }
    DownloadError::Network {
        url: url.to_owned(),
        reason: error_chain(&e),
    }
}

/// The error and its causes on one line (reqwest's own message hides the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
