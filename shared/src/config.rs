//! Typed configuration, parsed once at start from the environment (DESIGN.md section 10).
//!
//! [`Config::from_env`] reads the process environment; [`Config::from_vars`] takes any map, so
//! every rule is unit-tested without touching `std::env`. A bad value is a [`ConfigError`] naming
//! the variable, the value and what is accepted: start-up fails with that message instead of
//! running half-configured.
//!
//! The variables whose value can be refused are grouped in [`Part`]s, each parsed by its section's
//! own `from_vars` (`WherebyConfig`, `DailyConfig`, `Flags`, `AuthConfig`, `MeetingSettings`,
//! `DownloadSettings`, `SweeperSettings`). A Lambda function loads only the parts it uses
//! ([`Config::from_env_parts`]), so a bad value of a variable it does not read cannot stop it
//! from starting; a part it does not ask for holds its defaults. The local stack's own
//! `LOCAL_*` variables are parsed by the `local` crate, never here.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::domain::{Platform, RecordingKind};
use crate::secrets::{ParameterSource, Secret};

pub const DEFAULT_DAILY_API_URL: &str = "https://api.daily.co/v1";
pub const DEFAULT_WHEREBY_API_URL: &str = "https://api.whereby.dev/v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{var}={value:?} is not valid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
    #[error("{var} is required {why}")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    /// A secret's parameter (`<VAR>_PARAMETER`) names an SSM parameter that could not be read
    /// at start ([`crate::secrets`]); never carries a value.
    #[error("{var}={parameter:?}: cannot read this SSM parameter: {reason}")]
    SecretUnavailable {
        var: &'static str,
        parameter: String,
        reason: String,
    },
    #[error("{var}: cannot read {path}: {reason}")]
    Unreadable {
        var: &'static str,
        path: String,
        reason: String,
    },
}

/// DynamoDB table names, `reflector-<entity>` unless overridden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub rooms: String,
    pub meetings: String,
    pub participant_sessions: String,
    pub recordings: String,
    pub transcripts: String,
    pub meeting_consents: String,
    pub webhook_events: String,
    /// The runtime flags item (DESIGN.md section 13).
    pub config: String,
}

impl TableNames {
    /// Names of the form `<prefix>-<entity>`: the defaults use prefix `reflector`; tests use a
    /// unique prefix each so that they share one emulator without seeing each other's items.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            rooms: format!("{prefix}-rooms"),
            meetings: format!("{prefix}-meetings"),
            participant_sessions: format!("{prefix}-participant-sessions"),
            recordings: format!("{prefix}-recordings"),
            transcripts: format!("{prefix}-transcripts"),
            meeting_consents: format!("{prefix}-meeting-consents"),
            webhook_events: format!("{prefix}-webhook-events"),
            config: format!("{prefix}-config"),
        }
    }

    /// Every table name, in the order of `infra/tables.yaml`.
    pub fn all(&self) -> [&str; 8] {
        [
            &self.rooms,
            &self.meetings,
            &self.participant_sessions,
            &self.recordings,
            &self.transcripts,
            &self.meeting_consents,
            &self.webhook_events,
            &self.config,
        ]
    }
}

impl Default for TableNames {
    fn default() -> Self {
        Self::with_prefix("reflector")
    }
}

/// Feature flags that choose the video platform per room (DESIGN.md section 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    pub daily_migration_enabled: bool,
    pub daily_migration_room_ids: BTreeSet<String>,
    pub default_video_platform: Platform,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            daily_migration_enabled: false,
            daily_migration_room_ids: BTreeSet::new(),
            default_video_platform: Platform::Whereby,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WherebyConfig {
    pub api_url: String,
    pub api_key: Option<SecretString>,
    pub webhook_secret: Option<SecretString>,
    pub s3_bucket: Option<String>,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct DailyConfig {
    pub api_url: String,
    pub api_key: Option<SecretString>,
    pub webhook_secret: Option<SecretString>,
    pub subdomain: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_region: Option<String>,
    pub role_arn: Option<String>,
    /// `DAILY_DOMAIN_ID`: the `d` claim of meeting tokens. Unset, the client reads it once
    /// from Daily's domain configuration (`GET /`).
    pub domain_id: Option<String>,
    /// `DAILY_RECORDING_TYPES`: the recordings the server starts for a cloud-recording room
    /// (never empty; default `cloud`).
    pub recording_types: BTreeSet<RecordingKind>,
    /// `DAILY_WEBHOOK_URL`: our webhook endpoint as Daily knows it; the sweeper finds it in
    /// Daily's list and re-arms it when FAILED. Unset: the webhook is not checked.
    pub webhook_url: Option<String>,
    /// `DAILY_RECORDING_LOOKBACK`: how far back the sweeper looks in Daily's recording list
    /// for recordings no webhook announced (default 48 h).
    pub recording_lookback: Duration,
}

/// Default of `DAILY_RECORDING_LOOKBACK`.
pub const DEFAULT_RECORDING_LOOKBACK: Duration = Duration::from_secs(48 * 3600);

impl Default for DailyConfig {
    fn default() -> Self {
        Self {
            api_url: String::new(),
            api_key: None,
            webhook_secret: None,
            subdomain: None,
            s3_bucket: None,
            s3_region: None,
            role_arn: None,
            domain_id: None,
            recording_types: BTreeSet::from([RecordingKind::Cloud]),
            webhook_url: None,
            recording_lookback: DEFAULT_RECORDING_LOOKBACK,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub enum AuthConfig {
    /// Everyone is anonymous (the original's default).
    #[default]
    None,
    /// RS256 bearer tokens verified with this public key; `sub` is the user id.
    Jwt {
        public_key_pem: String,
        audience: Option<String>,
    },
}

/// One entry of `RECORDING_URL_ALLOWED_HOSTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    /// `example.com`: exactly that host, https only.
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com` (not the apex), https only.
    Wildcard(String),
    /// `http://127.0.0.1:8080`: plain http to exactly that origin (local use).
    HttpOrigin { host: String, port: u16 },
}

impl AllowedHost {
    /// Whether `url` may be downloaded under this rule.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(|h| h.to_ascii_lowercase()) else {
            return false;
        };
        match self {
            AllowedHost::Exact(h) => url.scheme() == "https" && host == *h,
            AllowedHost::Wildcard(suffix) => {
                url.scheme() == "https"
                    && host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            AllowedHost::HttpOrigin { host: h, port } => {
                url.scheme() == "http" && host == *h && url.port_or_known_default() == Some(*port)
            }
        }
    }
}

/// A group of variables whose values can be refused, parsed together by one section's
/// `from_vars`. A function asks for the parts it uses ([`Config::from_env_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `WHEREBY_*`, `AWS_WHEREBY_*`: [`WherebyConfig`].
    Whereby,
    /// `DAILY_API_URL`, `DAILY_API_KEY`, `DAILY_WEBHOOK_SECRET`, `DAILY_SUBDOMAIN`,
    /// `AWS_DAILY_*`: [`DailyConfig`].
    Daily,
    /// `DAILY_MIGRATION_*`, `DEFAULT_VIDEO_PLATFORM`: [`Flags`] (the defaults of the stored
    /// runtime flags); `FLAGS_CACHE_SECONDS`: [`Config::flags_cache`].
    Flags,
    /// `AUTH_*`: [`AuthConfig`].
    Auth,
    /// `PUBLIC_MODE`, `MEETING_DURATION_HOURS`: [`MeetingSettings`].
    Meetings,
    /// `RECORDING_URL_ALLOWED_HOSTS`: [`DownloadSettings`].
    Downloads,
    /// `SWEEPER_*`: [`SweeperSettings`].
    Sweeper,
    /// `WEBHOOK_LEASE_SECONDS`: [`Config::webhook_lease`].
    Webhooks,
}

impl Part {
    pub const ALL: [Part; 8] = [
        Part::Whereby,
        Part::Daily,
        Part::Flags,
        Part::Auth,
        Part::Meetings,
        Part::Downloads,
        Part::Sweeper,
        Part::Webhooks,
    ];
}

impl WherebyConfig {
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        Ok(Self {
            api_url: env.url_or("WHEREBY_API_URL", DEFAULT_WHEREBY_API_URL)?,
            api_key: env.secret("WHEREBY_API_KEY"),
            webhook_secret: env.secret("WHEREBY_WEBHOOK_SECRET"),
            s3_bucket: env.string("AWS_WHEREBY_S3_BUCKET"),
            access_key_id: env.string("AWS_WHEREBY_ACCESS_KEY_ID"),
            access_key_secret: env.secret("AWS_WHEREBY_ACCESS_KEY_SECRET"),
        })
    }
}

impl DailyConfig {
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        Ok(Self {
            api_url: env.url_or("DAILY_API_URL", DEFAULT_DAILY_API_URL)?,
            api_key: env.secret("DAILY_API_KEY"),
            webhook_secret: env.secret("DAILY_WEBHOOK_SECRET"),
            subdomain: env.string("DAILY_SUBDOMAIN"),
            s3_bucket: env.string("AWS_DAILY_S3_BUCKET"),
            s3_region: env.string("AWS_DAILY_S3_REGION"),
            role_arn: env.string("AWS_DAILY_ROLE_ARN"),
            domain_id: env.string("DAILY_DOMAIN_ID"),
            recording_types: match env.string("DAILY_RECORDING_TYPES") {
                None => BTreeSet::from([RecordingKind::Cloud]),
                Some(v) => parse_recording_types(&v)?,
            },
            webhook_url: match env.string("DAILY_WEBHOOK_URL") {
                None => None,
                Some(v) => Some(env.url_or("DAILY_WEBHOOK_URL", &v)?),
            },
            recording_lookback: env
                .duration_or("DAILY_RECORDING_LOOKBACK", DEFAULT_RECORDING_LOOKBACK)?,
        })
    }
}

impl Flags {
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        Ok(Self {
            daily_migration_enabled: env.bool_or("DAILY_MIGRATION_ENABLED", false)?,
            daily_migration_room_ids: env
                .string("DAILY_MIGRATION_ROOM_IDS")
                .map(|v| parse_room_ids(&v))
                .unwrap_or_default(),
            default_video_platform: match env.string("DEFAULT_VIDEO_PLATFORM") {
                None => Platform::Whereby,
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    var: "DEFAULT_VIDEO_PLATFORM",
                    value: v.clone(),
                    expected: format!("one of {}", Platform::KNOWN.join(", ")),
                })?,
            },
        })
    }
}

impl AuthConfig {
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        match env.string("AUTH_BACKEND").as_deref() {
            None | Some("none") => Ok(AuthConfig::None),
            Some("jwt") => {
                let raw = env
                    .string("AUTH_JWT_PUBLIC_KEY")
                    .ok_or(ConfigError::Missing {
                        var: "AUTH_JWT_PUBLIC_KEY",
                        why: "when AUTH_BACKEND=jwt (PEM text or a path to a PEM file)",
                    })?;
                Ok(AuthConfig::Jwt {
                    public_key_pem: read_pem("AUTH_JWT_PUBLIC_KEY", &raw)?,
                    audience: env.string("AUTH_JWT_AUDIENCE"),
                })
            }
            Some(other) => Err(ConfigError::Invalid {
                var: "AUTH_BACKEND",
                value: other.to_owned(),
                expected: "one of none, jwt".into(),
            }),
        }
    }
}

/// The rooms API's meeting settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingSettings {
    pub public_mode: bool,
    pub meeting_duration: Duration,
}

impl Default for MeetingSettings {
    fn default() -> Self {
        Self {
            public_mode: false,
            meeting_duration: Duration::from_secs(8 * 3600),
        }
    }
}

impl MeetingSettings {
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        let meeting_hours = env.u64_or("MEETING_DURATION_HOURS", 8)?;
        if !(1..=24 * 30).contains(&meeting_hours) {
            return Err(ConfigError::Invalid {
                var: "MEETING_DURATION_HOURS",
                value: meeting_hours.to_string(),
                expected: "a whole number of hours from 1 to 720".into(),
            });
        }
        Ok(Self {
            public_mode: env.bool_or("PUBLIC_MODE", false)?,
            meeting_duration: Duration::from_secs(meeting_hours * 3600),
        })
    }
}

/// The recording processor's download rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadSettings {
    pub recording_url_allowed_hosts: Vec<AllowedHost>,
}

impl DownloadSettings {
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let recording_url_allowed_hosts = match Env(vars).string("RECORDING_URL_ALLOWED_HOSTS") {
            None => Vec::new(),
            Some(v) => parse_allowed_hosts(&v)?,
        };
        Ok(Self {
            recording_url_allowed_hosts,
        })
    }
}

/// The meeting sweeper's requeue bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweeperSettings {
    pub requeue_limit: u32,
    pub requeue_cooldown: Duration,
}

impl Default for SweeperSettings {
    fn default() -> Self {
        Self {
            requeue_limit: 50,
            requeue_cooldown: Duration::from_secs(6 * 3600),
        }
    }
}

impl SweeperSettings {
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        Ok(Self {
            requeue_limit: u32::try_from(env.u64_or("SWEEPER_REQUEUE_LIMIT", 50)?).map_err(
                |_| ConfigError::Invalid {
                    var: "SWEEPER_REQUEUE_LIMIT",
                    value: env.string("SWEEPER_REQUEUE_LIMIT").unwrap_or_default(),
                    expected: "a whole number up to 4294967295".into(),
                },
            )?,
            requeue_cooldown: env
                .duration_or("SWEEPER_REQUEUE_COOLDOWN", Duration::from_secs(6 * 3600))?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tables: TableNames,
    pub recordings_queue_url: Option<String>,
    pub pipeline_queue_url: Option<String>,
    pub recordings_bucket: String,
    pub whereby: WherebyConfig,
    pub daily: DailyConfig,
    /// The defaults of the runtime flags, used while no flags are stored (`crate::flags`).
    pub flags: Flags,
    /// `FLAGS_CACHE_SECONDS`: how long a function may use the stored flags it read.
    pub flags_cache: Duration,
    /// Whether `DEFAULT_VIDEO_PLATFORM` was set explicitly (the local stack falls back to the
    /// mock platform only when it was not).
    pub default_platform_explicit: bool,
    pub auth: AuthConfig,
    pub public_mode: bool,
    pub recording_url_allowed_hosts: Vec<AllowedHost>,
    pub meeting_duration: Duration,
    pub sweeper_requeue_limit: u32,
    pub sweeper_requeue_cooldown: Duration,
    /// `WEBHOOK_LEASE_SECONDS`: how long a webhook delivery holds an event's claim before a
    /// retry may take it over (DESIGN.md section 4).
    pub webhook_lease: Duration,
    pub aws_endpoint_url: Option<String>,
}

impl Config {
    /// Reads every part from the process environment (the local stack, which runs every
    /// function). Call once at start.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_parts(&Part::ALL)
    }

    /// Reads the names (tables, queues, bucket, endpoint) and only the given parts from the
    /// process environment; the other parts hold their defaults. Call once at start.
    pub fn from_env_parts(parts: &[Part]) -> Result<Self, ConfigError> {
        Self::from_vars_parts(&std::env::vars().collect(), parts)
    }

    /// The Lambda start-up: [`Self::from_env_parts`] after reading `secrets`, the ones this
    /// function needs, from Parameter Store where their plain variable is unset
    /// ([`crate::secrets`]: one request for all of them, none when nothing is to be read).
    pub async fn from_env_with_secrets(
        parts: &[Part],
        secrets: &[Secret],
        source: &dyn ParameterSource,
    ) -> Result<Self, ConfigError> {
        let mut vars = std::env::vars().collect();
        Self::from_vars_with_secrets(&mut vars, parts, secrets, source).await
    }

    /// [`Self::from_env_with_secrets`] over any map (tests); the secrets read are added to
    /// `vars` under their plain variables.
    pub async fn from_vars_with_secrets(
        vars: &mut HashMap<String, String>,
        parts: &[Part],
        secrets: &[Secret],
        source: &dyn ParameterSource,
    ) -> Result<Self, ConfigError> {
        crate::secrets::resolve(vars, secrets, source).await?;
        Self::from_vars_parts(vars, parts)
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_vars_parts(vars, &Part::ALL)
    }

    pub fn from_vars_parts(
        vars: &HashMap<String, String>,
        parts: &[Part],
    ) -> Result<Self, ConfigError> {
        let unset = HashMap::new();
        // A part not asked for is parsed from no variables at all, which always succeeds.
        let part = |p: Part| if parts.contains(&p) { vars } else { &unset };
        let env = Env(vars);
        let tables = TableNames {
            rooms: env.string_or("ROOMS_TABLE", "reflector-rooms"),
            meetings: env.string_or("MEETINGS_TABLE", "reflector-meetings"),
            participant_sessions: env.string_or(
                "PARTICIPANT_SESSIONS_TABLE",
                "reflector-participant-sessions",
            ),
            recordings: env.string_or("RECORDINGS_TABLE", "reflector-recordings"),
            transcripts: env.string_or("TRANSCRIPTS_TABLE", "reflector-transcripts"),
            meeting_consents: env.string_or("MEETING_CONSENTS_TABLE", "reflector-meeting-consents"),
            webhook_events: env.string_or("WEBHOOK_EVENTS_TABLE", "reflector-webhook-events"),
            config: env.string_or("CONFIG_TABLE", "reflector-config"),
        };
        let meetings = MeetingSettings::from_vars(part(Part::Meetings))?;
        let sweeper = SweeperSettings::from_vars(part(Part::Sweeper))?;
        Ok(Config {
            tables,
            recordings_queue_url: env.string("RECORDINGS_QUEUE_URL"),
            pipeline_queue_url: env.string("PIPELINE_QUEUE_URL"),
            recordings_bucket: env.string_or("RECORDINGS_BUCKET", "reflector-recordings"),
            whereby: WherebyConfig::from_vars(part(Part::Whereby))?,
            daily: DailyConfig::from_vars(part(Part::Daily))?,
            flags: Flags::from_vars(part(Part::Flags))?,
            flags_cache: flags_cache_from_vars(part(Part::Flags))?,
            default_platform_explicit: Env(part(Part::Flags))
                .string("DEFAULT_VIDEO_PLATFORM")
                .is_some(),
            auth: AuthConfig::from_vars(part(Part::Auth))?,
            public_mode: meetings.public_mode,
            recording_url_allowed_hosts: DownloadSettings::from_vars(part(Part::Downloads))?
                .recording_url_allowed_hosts,
            meeting_duration: meetings.meeting_duration,
            sweeper_requeue_limit: sweeper.requeue_limit,
            sweeper_requeue_cooldown: sweeper.requeue_cooldown,
            webhook_lease: webhook_lease_from_vars(part(Part::Webhooks))?,
            aws_endpoint_url: env.string("AWS_ENDPOINT_URL"),
        })
    }

    /// Whether any real video platform has an API key configured.
    pub fn has_platform_credentials(&self) -> bool {
        self.whereby.api_key.is_some() || self.daily.api_key.is_some()
    }
}

/// The default of `WEBHOOK_LEASE_SECONDS`.
pub const DEFAULT_WEBHOOK_LEASE: Duration = crate::webhook::pipeline::DEFAULT_LEASE;

/// `WEBHOOK_LEASE_SECONDS`: seconds (or `90s`, `2m`), at least 1.
fn webhook_lease_from_vars(vars: &HashMap<String, String>) -> Result<Duration, ConfigError> {
    let env = Env(vars);
    let lease = env.duration_or("WEBHOOK_LEASE_SECONDS", DEFAULT_WEBHOOK_LEASE)?;
    if lease < Duration::from_secs(1) {
        return Err(ConfigError::Invalid {
            var: "WEBHOOK_LEASE_SECONDS",
            value: env.string("WEBHOOK_LEASE_SECONDS").unwrap_or_default(),
            expected: "at least 1 second (longer than the webhook functions' timeout)".into(),
        });
    }
    Ok(lease)
}

/// The longest `FLAGS_CACHE_SECONDS` accepted: a longer cache would make a rollback slow.
pub const MAX_FLAGS_CACHE_SECONDS: u64 = 3600;
pub const DEFAULT_FLAGS_CACHE_SECONDS: u64 = 30;

/// `FLAGS_CACHE_SECONDS`: whole seconds from 0 (read the flags on every use) to
/// [`MAX_FLAGS_CACHE_SECONDS`].
fn flags_cache_from_vars(vars: &HashMap<String, String>) -> Result<Duration, ConfigError> {
    let env = Env(vars);
    let secs = env.u64_or("FLAGS_CACHE_SECONDS", DEFAULT_FLAGS_CACHE_SECONDS)?;
    if secs > MAX_FLAGS_CACHE_SECONDS {
        return Err(ConfigError::Invalid {
            var: "FLAGS_CACHE_SECONDS",
            value: secs.to_string(),
            expected: format!("a whole number of seconds from 0 to {MAX_FLAGS_CACHE_SECONDS}"),
        });
    }
    Ok(Duration::from_secs(secs))
}

/// `DAILY_MIGRATION_ROOM_IDS`: comma-separated room ids; blanks around ids and empty entries are
/// ignored, so `"a, b,,c,"` is `{a, b, c}`.
pub fn parse_room_ids(value: &str) -> BTreeSet<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `DAILY_RECORDING_TYPES`: comma-separated `cloud` and/or `raw-tracks` (blanks and
/// repeats ignored); anything else, or no type at all, is an error listing the accepted ones.
pub fn parse_recording_types(value: &str) -> Result<BTreeSet<RecordingKind>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        var: "DAILY_RECORDING_TYPES",
        value: value.to_owned(),
        expected: format!(
            "a comma-separated list of {}",
            RecordingKind::KNOWN.join(", ")
        ),
    };
    let kinds = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase().parse::<RecordingKind>())
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|_| invalid())?;
    if kinds.is_empty() {
        return Err(invalid());
    }
    Ok(kinds)
}

/// `RECORDING_URL_ALLOWED_HOSTS`: comma-separated `host`, `*.domain` or `http://host:port`.
pub fn parse_allowed_hosts(value: &str) -> Result<Vec<AllowedHost>, ConfigError> {
    const VAR: &str = "RECORDING_URL_ALLOWED_HOSTS";
    let invalid = |entry: &str| ConfigError::Invalid {
        var: VAR,
        value: entry.to_owned(),
        expected: "comma-separated host names (example.com), wildcards (*.example.com) or \
                   explicit http origins (http://127.0.0.1:8080)"
            .into(),
    };
    let is_host = |h: &str| {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let mut hosts = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let lower = entry.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("http://") {
            let url = Url::parse(&lower).map_err(|_| invalid(entry))?;
            let host = url.host_str().ok_or_else(|| invalid(entry))?.to_owned();
            let port = url.port_or_known_default().ok_or_else(|| invalid(entry))?;
            if url.path() != "/" || rest.contains('/') && !rest.ends_with('/') {
                return Err(invalid(entry));
            }
            hosts.push(AllowedHost::HttpOrigin { host, port });
        } else if let Some(suffix) = lower.strip_prefix("*.") {
            if !is_host(suffix) {
                return Err(invalid(entry));
            }
            hosts.push(AllowedHost::Wildcard(suffix.to_owned()));
        } else if is_host(&lower) {
            hosts.push(AllowedHost::Exact(lower));
        } else {
            return Err(invalid(entry));
        }
    }
    Ok(hosts)
}

fn read_pem(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    if raw.trim_start().starts_with("-----BEGIN") {
        return Ok(raw.to_owned());
    }
    let text = std::fs::read_to_string(raw).map_err(|e| ConfigError::Unreadable {
        var,
        path: raw.to_owned(),
        reason: e.to_string(),
    })?;
    if !text.trim_start().starts_with("-----BEGIN") {
        return Err(ConfigError::Invalid {
            var,
            value: raw.to_owned(),
            expected: "PEM text or the path of a PEM file".into(),
        });
    }
    Ok(text)
}

/// Read access to the variables; empty values count as unset, as in a SAM template where an
/// optional parameter defaults to "".
struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn string(&self, var: &str) -> Option<String> {
        self.0
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn string_or(&self, var: &str, default: &str) -> String {
        self.string(var).unwrap_or_else(|| default.to_owned())
    }

    fn secret(&self, var: &str) -> Option<SecretString> {
        self.string(var).map(SecretString::from)
    }

    fn url_or(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.string_or(var, default);
        match Url::parse(&value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                Ok(value.trim_end_matches('/').to_owned())
            }
            _ => Err(ConfigError::Invalid {
                var,
                value,
                expected: "an http(s) URL".into(),
            }),
        }
    }

    fn bool_or(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    var,
                    value: v,
                    expected: "true or false (also 1/0, yes/no, on/off)".into(),
                }),
            },
        }
    }

    fn u64_or(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                var,
                value: v,
                expected: "a whole number".into(),
            }),
        }
    }

    /// Plain seconds (`3600`) or a human duration (`6h`, `90m`, `1h 30m`).
    fn duration_or(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map(Duration::from_secs)
                .or_else(|_| humantime::parse_duration(&v))
                .map_err(|_| ConfigError::Invalid {
                    var,
                    value: v,
                    expected: "seconds (3600) or a duration such as 6h or 90m".into(),
                }),
        }
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedHost::Exact(h) => f.write_str(h),
            AllowedHost::Wildcard(s) => write!(f, "*.{s}"),
            AllowedHost::HttpOrigin { host, port } => write!(f, "http://{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&vars(pairs))
    }

    #[test]
    fn daily_reconciliation_settings_are_parsed_and_bad_values_name_the_variable() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.daily.recording_lookback, Duration::from_secs(48 * 3600));
        assert_eq!(c.daily.webhook_url, None);
        let c = parse(&[
            ("DAILY_RECORDING_LOOKBACK", "90m"),
            ("DAILY_WEBHOOK_URL", "https://api.example/v1/daily_webhook"),
        ])
        .unwrap();
        assert_eq!(c.daily.recording_lookback, Duration::from_secs(5400));
        assert_eq!(
            c.daily.webhook_url.as_deref(),
            Some("https://api.example/v1/daily_webhook")
        );
        for (var, bad) in [
            ("DAILY_RECORDING_LOOKBACK", "two days"),
            ("DAILY_WEBHOOK_URL", "not a url"),
        ] {
            let msg = parse(&[(var, bad)]).unwrap_err().to_string();
            assert!(msg.contains(var), "{msg}");
        }
    }

    #[test]
    fn empty_environment_gives_documented_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.tables, TableNames::with_prefix("reflector"));
        assert_eq!(c.tables.rooms, "reflector-rooms");
        assert_eq!(c.tables.webhook_events, "reflector-webhook-events");
        assert_eq!(c.tables.config, "reflector-config");
        assert_eq!(c.flags_cache, Duration::from_secs(30));
        assert_eq!(c.recordings_bucket, "reflector-recordings");
        assert_eq!(c.daily.api_url, DEFAULT_DAILY_API_URL);
        assert_eq!(c.whereby.api_url, DEFAULT_WHEREBY_API_URL);
        assert_eq!(c.flags, Flags::default());
        assert!(!c.default_platform_explicit);
        assert!(matches!(c.auth, AuthConfig::None));
        assert!(!c.public_mode);
        assert!(c.recording_url_allowed_hosts.is_empty());
        assert_eq!(c.meeting_duration, Duration::from_secs(8 * 3600));
        assert_eq!(c.sweeper_requeue_limit, 50);
        assert_eq!(c.sweeper_requeue_cooldown, Duration::from_secs(6 * 3600));
        assert!(!c.has_platform_credentials());
        assert_eq!(c.daily.domain_id, None);
        assert_eq!(
            c.daily.recording_types,
            BTreeSet::from([RecordingKind::Cloud])
        );
        assert_eq!(
            DailyConfig::default().recording_types,
            c.daily.recording_types
        );
    }

    #[test]
    fn daily_domain_id_and_recording_types_are_read() {
        let c = parse(&[
            ("DAILY_DOMAIN_ID", "f2a4c1d0-domain"),
            ("DAILY_RECORDING_TYPES", " raw-tracks, cloud ,,cloud"),
        ])
        .unwrap();
        assert_eq!(c.daily.domain_id.as_deref(), Some("f2a4c1d0-domain"));
        assert_eq!(
            c.daily.recording_types,
            BTreeSet::from([RecordingKind::Cloud, RecordingKind::RawTracks])
        );
        let c = parse(&[("DAILY_RECORDING_TYPES", "RAW-TRACKS")]).unwrap();
        assert_eq!(
            c.daily.recording_types,
            BTreeSet::from([RecordingKind::RawTracks])
        );
    }

    #[test]
    fn unknown_daily_recording_types_name_the_variable_and_the_accepted_values() {
        for bad in ["cloud,local", "audio", ",", "cloud;raw-tracks"] {
            let msg = parse(&[("DAILY_RECORDING_TYPES", bad)])
                .unwrap_err()
                .to_string();
            assert!(msg.contains("DAILY_RECORDING_TYPES"), "{bad}: {msg}");
            assert!(
                msg.contains("cloud") && msg.contains("raw-tracks"),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn table_queue_and_bucket_names_can_be_overridden() {
        let c = parse(&[
            ("ROOMS_TABLE", "r"),
            ("MEETINGS_TABLE", "m"),
            ("PARTICIPANT_SESSIONS_TABLE", "p"),
            ("RECORDINGS_TABLE", "rec"),
            ("TRANSCRIPTS_TABLE", "t"),
            ("MEETING_CONSENTS_TABLE", "c"),
            ("WEBHOOK_EVENTS_TABLE", "w"),
            ("CONFIG_TABLE", "cfg"),
            ("RECORDINGS_QUEUE_URL", "http://q/rec"),
            ("PIPELINE_QUEUE_URL", "http://q/pipe"),
            ("RECORDINGS_BUCKET", "bucket"),
        ])
        .unwrap();
        assert_eq!(
            c.tables,
            TableNames {
                rooms: "r".into(),
                meetings: "m".into(),
                participant_sessions: "p".into(),
                recordings: "rec".into(),
                transcripts: "t".into(),
                meeting_consents: "c".into(),
                webhook_events: "w".into(),
                config: "cfg".into(),
            }
        );
        assert_eq!(c.recordings_queue_url.as_deref(), Some("http://q/rec"));
        assert_eq!(c.pipeline_queue_url.as_deref(), Some("http://q/pipe"));
        assert_eq!(c.recordings_bucket, "bucket");
    }

    #[test]
    fn migration_room_ids_are_split_trimmed_and_deduplicated() {
        let c = parse(&[("DAILY_MIGRATION_ROOM_IDS", " a, b,,c, a ,")]).unwrap();
        let ids: Vec<_> = c.flags.daily_migration_room_ids.iter().cloned().collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(parse_room_ids("").is_empty());
        assert!(parse_room_ids(" , ,").is_empty());
    }

    #[test]
    fn migration_flag_accepts_booleans_and_rejects_others_by_name() {
        for (v, want) in [
            ("true", true),
            ("1", true),
            ("FALSE", false),
            ("off", false),
        ] {
            let c = parse(&[("DAILY_MIGRATION_ENABLED", v)]).unwrap();
            assert_eq!(c.flags.daily_migration_enabled, want, "{v}");
        }
        let err = parse(&[("DAILY_MIGRATION_ENABLED", "maybe")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("DAILY_MIGRATION_ENABLED"), "{msg}");
        assert!(msg.contains("true or false"), "{msg}");
    }

    #[test]
    fn default_platform_parses_known_names_and_rejects_others_listing_them() {
        for (v, want) in [
            ("whereby", Platform::Whereby),
            ("daily", Platform::Daily),
            ("DAILY", Platform::Daily),
            ("mock", Platform::Mock),
        ] {
            let c = parse(&[("DEFAULT_VIDEO_PLATFORM", v)]).unwrap();
            assert_eq!(c.flags.default_video_platform, want);
            assert!(c.default_platform_explicit);
        }
        let msg = parse(&[("DEFAULT_VIDEO_PLATFORM", "zoom")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("DEFAULT_VIDEO_PLATFORM"), "{msg}");
        assert!(msg.contains("zoom"), "{msg}");
        for known in ["whereby", "daily", "mock"] {
            assert!(msg.contains(known), "{msg}");
        }
    }

    #[test]
    fn flags_cache_seconds_are_bounded_and_named_when_bad() {
        let c = parse(&[("FLAGS_CACHE_SECONDS", "1")]).unwrap();
        assert_eq!(c.flags_cache, Duration::from_secs(1));
        assert_eq!(
            parse(&[("FLAGS_CACHE_SECONDS", "0")]).unwrap().flags_cache,
            Duration::ZERO
        );
        for bad in ["3601", "-1", "soon"] {
            let msg = parse(&[("FLAGS_CACHE_SECONDS", bad)])
                .unwrap_err()
                .to_string();
            assert!(msg.contains("FLAGS_CACHE_SECONDS"), "{bad}: {msg}");
        }
        // Read with the flags only: another function's bad value does not stop it.
        let vars = vars(&[("FLAGS_CACHE_SECONDS", "soon")]);
        assert!(Config::from_vars_parts(&vars, &[Part::Whereby]).is_ok());
    }

    #[test]
    fn secrets_never_print_in_debug_output() {
        let c = parse(&[
            ("WHEREBY_API_KEY", "wb-key-123"),
            ("WHEREBY_WEBHOOK_SECRET", "wb-hook-456"),
            ("AWS_WHEREBY_ACCESS_KEY_SECRET", "wb-s3-789"),
            ("DAILY_API_KEY", "daily-key-abc"),
            ("DAILY_WEBHOOK_SECRET", "daily-hook-def"),
        ])
        .unwrap();
        let debug = format!("{c:?}");
        for secret in [
            "wb-key-123",
            "wb-hook-456",
            "wb-s3-789",
            "daily-key-abc",
            "daily-hook-def",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert_eq!(
            c.daily.api_key.as_ref().unwrap().expose_secret(),
            "daily-key-abc"
        );
        assert!(c.has_platform_credentials());
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = parse(&[("DAILY_API_KEY", ""), ("ROOMS_TABLE", "  ")]).unwrap();
        assert!(c.daily.api_key.is_none());
        assert_eq!(c.tables.rooms, "reflector-rooms");
    }

    #[test]
    fn api_urls_must_be_http_urls_and_lose_trailing_slash() {
        let c = parse(&[("DAILY_API_URL", "http://127.0.0.1:9/v1/")]).unwrap();
        assert_eq!(c.daily.api_url, "http://127.0.0.1:9/v1");
        let msg = parse(&[("WHEREBY_API_URL", "not a url")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("WHEREBY_API_URL"), "{msg}");
    }

    #[test]
    fn auth_backend_jwt_needs_a_public_key() {
        let err = parse(&[("AUTH_BACKEND", "jwt")]).unwrap_err();
        assert!(err.to_string().contains("AUTH_JWT_PUBLIC_KEY"), "{err}");
        let pem = "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n";
        let c = parse(&[
            ("AUTH_BACKEND", "jwt"),
            ("AUTH_JWT_PUBLIC_KEY", pem),
            ("AUTH_JWT_AUDIENCE", "reflector"),
        ])
        .unwrap();
        match c.auth {
            AuthConfig::Jwt {
                public_key_pem,
                audience,
            } => {
                assert_eq!(public_key_pem.trim(), pem.trim());
                assert_eq!(audience.as_deref(), Some("reflector"));
            }
            AuthConfig::None => panic!("expected jwt"),
        }
        let msg = parse(&[("AUTH_BACKEND", "oauth")]).unwrap_err().to_string();
        assert!(
            msg.contains("AUTH_BACKEND") && msg.contains("none, jwt"),
            "{msg}"
        );
    }

    #[test]
    fn jwt_public_key_can_be_a_file_path() {
        let dir = std::env::temp_dir().join(format!("cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.pem");
        let pem = "-----BEGIN PUBLIC KEY-----\nxyz\n-----END PUBLIC KEY-----\n";
        std::fs::write(&path, pem).unwrap();
        let c = parse(&[
            ("AUTH_BACKEND", "jwt"),
            ("AUTH_JWT_PUBLIC_KEY", path.to_str().unwrap()),
        ])
        .unwrap();
        assert!(matches!(c.auth, AuthConfig::Jwt { public_key_pem, .. } if public_key_pem == pem));
        let err = parse(&[
            ("AUTH_BACKEND", "jwt"),
            ("AUTH_JWT_PUBLIC_KEY", "/nonexistent/key.pem"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Unreadable {
                var: "AUTH_JWT_PUBLIC_KEY",
                ..
            }
        ));
    }

    #[test]
    fn public_mode_is_a_boolean() {
        assert!(parse(&[("PUBLIC_MODE", "true")]).unwrap().public_mode);
        let msg = parse(&[("PUBLIC_MODE", "sometimes")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("PUBLIC_MODE"), "{msg}");
    }

    #[test]
    fn allowed_hosts_parse_exact_wildcard_and_http_origins() {
        let hosts =
            parse_allowed_hosts(" Example.com, *.daily.co ,http://127.0.0.1:8080,,").unwrap();
        assert_eq!(
            hosts,
            vec![
                AllowedHost::Exact("example.com".into()),
                AllowedHost::Wildcard("daily.co".into()),
                AllowedHost::HttpOrigin {
                    host: "127.0.0.1".into(),
                    port: 8080
                },
            ]
        );
        for bad in [
            "exa mple.com",
            "*.",
            "ftp://x",
            "http://host/path",
            "*.*.com",
            "a..b",
        ] {
            let err = parse_allowed_hosts(bad).unwrap_err();
            assert!(
                err.to_string().contains("RECORDING_URL_ALLOWED_HOSTS"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn allowed_host_rules_match_scheme_host_and_port() {
        let url = |s: &str| Url::parse(s).unwrap();
        let exact = AllowedHost::Exact("example.com".into());
        assert!(exact.allows(&url("https://example.com/a.mp4")));
        assert!(exact.allows(&url("https://EXAMPLE.com/a.mp4")));
        assert!(!exact.allows(&url("http://example.com/a.mp4")));
        assert!(!exact.allows(&url("https://sub.example.com/a.mp4")));
        assert!(!exact.allows(&url("https://example.com.evil.net/a.mp4")));
        let wild = AllowedHost::Wildcard("daily.co".into());
        assert!(wild.allows(&url("https://prod.daily.co/x")));
        assert!(wild.allows(&url("https://a.b.daily.co/x")));
        assert!(!wild.allows(&url("https://daily.co/x")));
        assert!(!wild.allows(&url("https://evildaily.co/x")));
        assert!(!wild.allows(&url("http://prod.daily.co/x")));
        let origin = AllowedHost::HttpOrigin {
            host: "127.0.0.1".into(),
            port: 8080,
        };
        assert!(origin.allows(&url("http://127.0.0.1:8080/f.mp4")));
        assert!(!origin.allows(&url("http://127.0.0.1:8081/f.mp4")));
        assert!(!origin.allows(&url("https://127.0.0.1:8080/f.mp4")));
    }

    #[test]
    fn numbers_and_durations_are_checked_by_name() {
        let c = parse(&[
            ("MEETING_DURATION_HOURS", "2"),
            ("SWEEPER_REQUEUE_LIMIT", "7"),
            ("SWEEPER_REQUEUE_COOLDOWN", "90m"),
        ])
        .unwrap();
        assert_eq!(c.meeting_duration, Duration::from_secs(7200));
        assert_eq!(c.sweeper_requeue_limit, 7);
        assert_eq!(c.sweeper_requeue_cooldown, Duration::from_secs(5400));
        let c = parse(&[("SWEEPER_REQUEUE_COOLDOWN", "3600")]).unwrap();
        assert_eq!(c.sweeper_requeue_cooldown, Duration::from_secs(3600));
        for (var, bad) in [
            ("MEETING_DURATION_HOURS", "0"),
            ("MEETING_DURATION_HOURS", "eight"),
            ("SWEEPER_REQUEUE_LIMIT", "-1"),
            ("SWEEPER_REQUEUE_COOLDOWN", "soon"),
        ] {
            let msg = parse(&[(var, bad)]).unwrap_err().to_string();
            assert!(msg.contains(var), "{var}={bad}: {msg}");
        }
    }

    #[test]
    fn local_stack_variables_are_not_read_by_the_functions_config() {
        let c = parse(&[
            ("LOCAL_LISTEN_ADDR", "localhost"),
            ("LOCAL_SWEEP_SECONDS", "0"),
            ("ROOMS_TABLE", "r"),
        ])
        .unwrap();
        assert_eq!(c.tables.rooms, "r");
    }

    #[test]
    fn a_function_starts_despite_a_bad_variable_of_a_part_it_does_not_use() {
        // The whereby webhook reads the Whereby part; every other part's variable is bad.
        let bad_elsewhere = vars(&[
            ("WHEREBY_WEBHOOK_SECRET", "wb-secret"),
            ("DAILY_API_URL", "not a url"),
            ("DAILY_MIGRATION_ENABLED", "maybe"),
            ("AUTH_BACKEND", "oauth"),
            ("MEETING_DURATION_HOURS", "0"),
            ("RECORDING_URL_ALLOWED_HOSTS", "exa mple.com"),
            ("SWEEPER_REQUEUE_LIMIT", "-1"),
            ("WEBHOOK_LEASE_SECONDS", "0"),
            ("LOCAL_LISTEN_ADDR", "localhost"),
        ]);
        let c = Config::from_vars_parts(&bad_elsewhere, &[Part::Whereby]).unwrap();
        assert_eq!(
            c.whereby.webhook_secret.as_ref().unwrap().expose_secret(),
            "wb-secret"
        );
        // Parts not asked for hold their defaults, not the bad values.
        assert_eq!(c.daily.api_url, DEFAULT_DAILY_API_URL);
        assert_eq!(c.meeting_duration, Duration::from_secs(8 * 3600));
        // The same variable stops a function that does use its part, naming it.
        for (part, var) in [
            (Part::Daily, "DAILY_API_URL"),
            (Part::Flags, "DAILY_MIGRATION_ENABLED"),
            (Part::Auth, "AUTH_BACKEND"),
            (Part::Meetings, "MEETING_DURATION_HOURS"),
            (Part::Downloads, "RECORDING_URL_ALLOWED_HOSTS"),
            (Part::Sweeper, "SWEEPER_REQUEUE_LIMIT"),
            (Part::Webhooks, "WEBHOOK_LEASE_SECONDS"),
        ] {
            let msg = Config::from_vars_parts(&bad_elsewhere, &[part])
                .unwrap_err()
                .to_string();
            assert!(msg.contains(var), "{part:?}: {msg}");
        }
    }
}
