//! HTTP clients built at their first request instead of at start-up.
//!
//! Building a reqwest client loads and parses every trusted root certificate: with rustls,
//! `rustls-platform-verifier` reads the system store when the client is built (146 files under
//! `/etc/ssl/certs` on Debian, a bundle on Amazon Linux), and the recording processor built two
//! such clients. A cold start whose first invocation never calls out (a join with
//! `DAILY_DOMAIN_ID` set, a server-side copy, an event for an unknown meeting) paid for it all
//! the same; a [`LazyClient`] makes the first request pay instead.

use std::fmt;
use std::sync::{Arc, OnceLock};

type Make = Box<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>;

/// A reqwest client built once, at the first [`LazyClient::get`]; clones share it (one
/// connection pool).
#[derive(Clone)]
pub struct LazyClient(Arc<Inner>);

struct Inner {
    make: Make,
    built: OnceLock<Result<reqwest::Client, String>>,
}

impl LazyClient {
    /// A client that `make` builds at the first request. A build error is kept and returned to
    /// every caller (reqwest fails to build only for a broken TLS set-up, which a retry would
    /// not mend).
    pub fn new(
        make: impl Fn() -> reqwest::Result<reqwest::Client> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(Inner {
            make: Box::new(make),
            built: OnceLock::new(),
        }))
    }

    /// The client, built now if this is the first request; `Err` says why it cannot be built.
    pub fn get(&self) -> Result<&reqwest::Client, &str> {
        self.0
            .built
            .get_or_init(|| (self.0.make)().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(String::as_str)
    }

    /// Whether the client has been built.
    pub fn is_built(&self) -> bool {
        self.0.built.get().is_some()
    }
}

/// An already built client (tests, and callers that share one they own); "building" it is a
/// clone of the handle.
impl From<reqwest::Client> for LazyClient {
    fn from(client: reqwest::Client) -> Self {
        Self::new(move || Ok(client.clone()))
    }
}

impl fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.is_built())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_client_is_built_at_the_first_request_once_for_every_clone() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = builds.clone();
        let lazy = LazyClient::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            reqwest::Client::builder().build()
        });
        let clone = lazy.clone();
        assert_eq!(builds.load(Ordering::SeqCst), 0);
        assert!(!lazy.is_built());
        lazy.get().unwrap();
        clone.get().unwrap();
        assert!(clone.is_built());
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_given_client_is_used_as_it_is() {
        let lazy = LazyClient::from(reqwest::Client::new());
        assert!(lazy.get().is_ok());
        assert!(lazy.is_built());
    }

    #[test]
    fn a_build_error_is_kept_and_said_to_every_caller() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = builds.clone();
        let lazy = LazyClient::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            // An invalid proxy URL is the one build error reqwest reports without TLS trouble.
            reqwest::Client::builder()
                .proxy(reqwest::Proxy::all("http://[::1")?)
                .build()
        });
        let first = lazy.get().unwrap_err().to_owned();
        assert!(!first.is_empty());
        assert_eq!(lazy.get().unwrap_err(), first);
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }
}
