//! `Platform -> Arc<dyn VideoPlatform>`, built once at start from [`Config`].
//!
//! A platform that cannot be built (no API key, partial bucket settings) is kept as the error
//! that names the variable, returned by [`PlatformRegistry::get`] when that platform is asked
//! for: start-up does not fail because a platform nobody selects is unconfigured, and nothing
//! panics. The mock is available only when [`RegistryOptions`] says so (local stack, tests);
//! with `mock_fallback` every platform without credentials resolves to it, and the meeting
//! records `platform: mock` because that is what [`VideoPlatform::platform`] answers.

use std::collections::HashMap;
use std::sync::Arc;

use super::{
    DailyClient, HttpSettings, MockClient, PlatformError, RoomSessionSource, VideoPlatform,
    WherebyClient,
};
use crate::config::Config;
use crate::domain::Platform;
use crate::http_client::LazyClient;

#[derive(Clone, Default)]
pub struct RegistryOptions {
    pub http: HttpSettings,
    /// `Platform::Mock` may be selected (local stack, tests). Never set in Lambda.
    pub allow_mock: bool,
    /// Platforms without credentials resolve to the mock instead of failing (the local stack
    /// when no platform is configured). Implies `allow_mock`.
    pub mock_fallback: bool,
    /// Where Daily room sessions come from (the participant-session store).
    pub session_source: Option<Arc<dyn RoomSessionSource>>,
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("http", &self.http)
            .field("allow_mock", &self.allow_mock)
            .field("mock_fallback", &self.mock_fallback)
            .field("has_session_source", &self.session_source.is_some())
            .finish()
    }
}

type Entry = Result<Arc<dyn VideoPlatform>, PlatformError>;

pub struct PlatformRegistry {
    entries: HashMap<Platform, Entry>,
    /// The Daily client as its concrete type, when Daily is configured: meeting tokens and
    /// recording starts are Daily's alone, so they are not on [`VideoPlatform`].
    daily: Option<Arc<DailyClient>>,
}

impl std::fmt::Debug for PlatformRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformRegistry")
            .field("available", &self.available())
            .finish()
    }
}

impl PlatformRegistry {
    /// A registry in which every platform is unavailable; add clients with [`Self::with`].
    pub fn empty() -> Self {
        let entries = Platform::ALL
            .into_iter()
            .map(|p| (p, Err(not_available(p))))
            .collect();
        Self {
            entries,
            daily: None,
        }
    }

    pub fn from_config(config: &Config, options: RegistryOptions) -> Self {
        let mut registry = Self::empty();
        // One connection pool for both platforms, built at the first platform request
        // ([`LazyClient`]): a cold start that calls no platform does not load the TLS roots.
        let timeout = options.http.timeout;
        let client = LazyClient::new(move || reqwest::Client::builder().timeout(timeout).build());

        let daily: Entry = if config.daily.api_key.is_some() {
            DailyClient::from_config(&config.daily, client.clone(), options.http.clone()).map(
                |mut d| {
                    if let Some(source) = &options.session_source {
                        d = d.with_session_source(source.clone());
                    }
                    let d = Arc::new(d);
                    registry.daily = Some(d.clone());
                    d as Arc<dyn VideoPlatform>
                },
            )
        } else {
            Err(not_available(Platform::Daily))
        };
        let whereby: Entry = if config.whereby.api_key.is_some() {
            WherebyClient::from_config(&config.whereby, client, options.http.clone())
                .map(|w| Arc::new(w) as Arc<dyn VideoPlatform>)
        } else {
            Err(not_available(Platform::Whereby))
        };

        let mock: Option<Arc<dyn VideoPlatform>> = (options.allow_mock || options.mock_fallback)
            .then(|| Arc::new(MockClient::new()) as Arc<dyn VideoPlatform>);
        let fallback = |entry: Entry| match (&entry, &mock) {
            (Err(PlatformError::Config { var, .. }), Some(m))
                if options.mock_fallback && var.ends_with("_API_KEY") =>
            {
                Ok(m.clone())
            }
            _ => entry,
        };
        registry.entries.insert(Platform::Daily, fallback(daily));
        registry
            .entries
            .insert(Platform::Whereby, fallback(whereby));
        if let Some(m) = mock {
            registry.entries.insert(Platform::Mock, Ok(m));
        }
        registry
    }

    /// Adds or replaces the client for `platform` (tests, or a client built by hand).
    pub fn with(mut self, platform: Platform, client: Arc<dyn VideoPlatform>) -> Self {
        self.entries.insert(platform, Ok(client));
        self
    }

    pub fn get(&self, platform: Platform) -> Result<Arc<dyn VideoPlatform>, PlatformError> {
        self.entries
            .get(&platform)
            .cloned()
            .unwrap_or_else(|| Err(not_available(platform)))
    }

    /// The configured Daily client itself (for what only Daily does: meeting tokens, recording
    /// starts); `None` when Daily is not configured or stood in for by the mock.
    pub fn daily_client(&self) -> Option<Arc<DailyClient>> {
        self.daily.clone()
    }

    /// By name (`whereby`, `daily`, `mock`); an unknown name lists the known ones.
    pub fn get_by_name(&self, name: &str) -> Result<Arc<dyn VideoPlatform>, PlatformError> {
        self.get(name.parse::<Platform>()?)
    }

    /// The platforms that can be used.
    pub fn available(&self) -> Vec<Platform> {
        Platform::ALL
            .into_iter()
            .filter(|p| matches!(self.entries.get(p), Some(Ok(_))))
            .collect()
    }
}

fn not_available(platform: Platform) -> PlatformError {
    match platform {
        Platform::Mock => PlatformError::Config {
            platform,
            var: "DEFAULT_VIDEO_PLATFORM",
            reason: "names the mock platform, which exists only in the local stack and tests"
                .into(),
        },
        Platform::Daily => PlatformError::Config {
            platform,
            var: "DAILY_API_KEY",
            reason: "is not set".into(),
        },
        Platform::Whereby => PlatformError::Config {
            platform,
            var: "WHEREBY_API_KEY",
            reason: "is not set".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as Map;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let vars: Map<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_vars(&vars).unwrap()
    }

    fn config_error_var(r: Result<Arc<dyn VideoPlatform>, PlatformError>) -> &'static str {
        match r {
            Err(PlatformError::Config { var, .. }) => var,
            Err(other) => panic!("expected a configuration error, got {other}"),
            Ok(p) => panic!("expected a configuration error, got {}", p.platform()),
        }
    }

    #[test]
    fn configured_platforms_resolve_to_their_clients() {
        let r = PlatformRegistry::from_config(
            &config(&[
                ("DAILY_API_KEY", "dk"),
                ("WHEREBY_API_KEY", "wk"),
                ("DAILY_API_URL", "http://127.0.0.1:9/v1"),
                ("WHEREBY_API_URL", "http://127.0.0.1:9/v1"),
            ]),
            RegistryOptions::default(),
        );
        assert_eq!(r.get(Platform::Daily).unwrap().platform(), Platform::Daily);
        assert_eq!(
            r.get(Platform::Whereby).unwrap().platform(),
            Platform::Whereby
        );
        assert_eq!(r.available(), vec![Platform::Whereby, Platform::Daily]);
        assert!(r.daily_client().is_some());
    }

    #[test]
    fn missing_credentials_name_the_variable() {
        let r = PlatformRegistry::from_config(&config(&[]), RegistryOptions::default());
        assert_eq!(config_error_var(r.get(Platform::Daily)), "DAILY_API_KEY");
        assert_eq!(
            config_error_var(r.get(Platform::Whereby)),
            "WHEREBY_API_KEY"
        );
        let msg = r.get(Platform::Daily).err().unwrap().to_string();
        assert!(
            msg.contains("DAILY_API_KEY") && msg.contains("daily"),
            "{msg}"
        );
    }

    #[test]
    fn partial_bucket_settings_name_the_missing_variable() {
        let r = PlatformRegistry::from_config(
            &config(&[
                ("DAILY_API_KEY", "dk"),
                ("AWS_DAILY_S3_BUCKET", "b"),
                ("AWS_DAILY_S3_REGION", "eu-west-1"),
                ("WHEREBY_API_KEY", "wk"),
                ("AWS_WHEREBY_S3_BUCKET", "b"),
                ("AWS_WHEREBY_ACCESS_KEY_ID", "AKIA"),
            ]),
            RegistryOptions::default(),
        );
        assert_eq!(
            config_error_var(r.get(Platform::Daily)),
            "AWS_DAILY_ROLE_ARN"
        );
        assert_eq!(
            config_error_var(r.get(Platform::Whereby)),
            "AWS_WHEREBY_ACCESS_KEY_SECRET"
        );
    }

    #[test]
    fn mock_is_not_selectable_unless_allowed() {
        let r = PlatformRegistry::from_config(&config(&[]), RegistryOptions::default());
        assert_eq!(
            config_error_var(r.get(Platform::Mock)),
            "DEFAULT_VIDEO_PLATFORM"
        );
        let r = PlatformRegistry::from_config(
            &config(&[]),
            RegistryOptions {
                allow_mock: true,
                ..Default::default()
            },
        );
        assert_eq!(r.get(Platform::Mock).unwrap().platform(), Platform::Mock);
        // Allowing the mock does not make it stand in for an unconfigured platform.
        assert_eq!(config_error_var(r.get(Platform::Daily)), "DAILY_API_KEY");
    }

    #[test]
    fn mock_fallback_stands_in_only_for_platforms_without_credentials() {
        let r = PlatformRegistry::from_config(
            &config(&[("DAILY_API_KEY", "dk")]),
            RegistryOptions {
                mock_fallback: true,
                ..Default::default()
            },
        );
        assert_eq!(r.get(Platform::Daily).unwrap().platform(), Platform::Daily);
        assert_eq!(r.get(Platform::Whereby).unwrap().platform(), Platform::Mock);
        assert_eq!(r.get(Platform::Mock).unwrap().platform(), Platform::Mock);
        // Only the real Daily client is handed out as one.
        assert!(r.daily_client().is_some());
        let r = PlatformRegistry::from_config(
            &config(&[]),
            RegistryOptions {
                mock_fallback: true,
                ..Default::default()
            },
        );
        assert!(r.daily_client().is_none());
    }

    #[test]
    fn unknown_platform_name_lists_the_known_ones() {
        let r = PlatformRegistry::empty();
        let msg = r.get_by_name("zoom").err().unwrap().to_string();
        assert!(msg.contains("zoom"), "{msg}");
        assert!(msg.contains("whereby, daily, mock"), "{msg}");
        assert!(matches!(
            r.get_by_name("zoom"),
            Err(PlatformError::UnknownPlatform(_))
        ));
    }

    #[test]
    fn hand_built_clients_can_be_registered() {
        let r = PlatformRegistry::empty().with(Platform::Daily, Arc::new(MockClient::new()));
        assert_eq!(r.get_by_name("daily").unwrap().platform(), Platform::Mock);
    }
}
