//! Daily.co REST client (video-platform-apis.md part A).
//!
//! - Rooms are named `<prefix>-<YYYYMMDDHHMMSS>` (UTC), made valid for Daily's name rules
//!   (`[A-Za-z0-9_-]`, at most 128 characters). The name is deterministic for one call, which
//!   is what makes creation safe to retry: when an attempt timed out or got a 5xx and the retry
//!   answers 400 "already exists", the earlier attempt did create the room and we fetch it with
//!   `GET /rooms/:name` instead of failing or creating a second one. A 400 "already exists" on
//!   the first attempt is a real conflict and is returned as an error.
//! - Room sessions come from our stored participant sessions ([`RoomSessionSource`]), not from
//!   Daily's coarse meeting history.
//! - Webhooks have no dashboard at Daily, so this client also creates, lists, deletes and
//!   re-activates them (`POST /webhooks/:uuid` re-arms a FAILED circuit-breaker webhook).
//! - Recordings are started by the server ([`DailyClient::start_recording`]), one per meeting
//!   and kind, under a deterministic `instanceId` ([`recording_instance_id`]), so a retry, a
//!   duplicate message or a manual start never makes a second recording of one kind. The start
//!   is a single attempt: its caller (`crate::recording_start`) retries with a queue delay
//!   instead of holding a webhook or a Lambda invocation.
//! - Meeting tokens are self-signed ([`token`]); the domain id they need comes from
//!   `DAILY_DOMAIN_ID` or one `GET /` per client ([`DailyClient::domain_id`]).

pub mod token;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::http::{api_error, decode, ApiCaller, Exchange, HttpSettings, Safety};
use super::{MeetingData, PlatformError, RoomSessionSource, SessionData, VideoPlatform};
use crate::config::DailyConfig;
use crate::domain::{Platform, RecordingKind, RecordingType, Room};
use crate::http_client::LazyClient;
use token::{MeetingTokenClaims, MeetingTokenSigner, TokenRequest};

const PLATFORM: Platform = Platform::Daily;
/// Daily's limit on room names.
pub const MAX_ROOM_NAME_LEN: usize = 128;
const TIMESTAMP_LEN: usize = "-YYYYMMDDHHMMSS".len();

/// Daily's default recording instance, reserved: our instance ids must never be this one.
pub const RESERVED_INSTANCE_ID: uuid::Uuid = uuid::uuid!("c3df927c-f738-4471-a2b7-066fa7e95a6b");
/// The UUID v5 namespace of our recording instance ids (fixed: changing it would let a retry
/// start a second recording of a meeting).
const INSTANCE_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("e45c60f1-fe11-4642-afac-a4240157117e");

/// The `instanceId` of `kind`'s recording of meeting `meeting_id`: UUID v5 of
/// `"<meeting_id>:<kind>"`, the same on every call, and never Daily's reserved default.
pub fn recording_instance_id(meeting_id: &str, kind: RecordingKind) -> uuid::Uuid {
    avoid_reserved(
        uuid::Uuid::new_v5(
            &INSTANCE_ID_NAMESPACE,
            format!("{meeting_id}:{kind}").as_bytes(),
        ),
        meeting_id,
        kind,
    )
}

/// A v5 id equal to the reserved one is astronomically unlikely, but Daily would then record
/// into its default instance: derive another name deterministically instead.
fn avoid_reserved(candidate: uuid::Uuid, meeting_id: &str, kind: RecordingKind) -> uuid::Uuid {
    if candidate != RESERVED_INSTANCE_ID {
        return candidate;
    }
    uuid::Uuid::new_v5(
        &INSTANCE_ID_NAMESPACE,
        format!("{meeting_id}:{kind}:not-reserved").as_bytes(),
    )
}

/// What Daily said to `POST /rooms/:name/recordings/start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingStart {
    Started,
    /// The instance is already recording (an earlier start of ours, or a manual one).
    AlreadyActive,
}

/// Daily's domain configuration (`GET /`); only the id is used.
#[derive(Deserialize)]
struct DomainConfig {
    domain_id: String,
}

/// Daily writes cloud recordings into our bucket by assuming this role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyRecordingsBucket {
    pub bucket_name: String,
    pub bucket_region: String,
    pub assume_role_arn: String,
}

/// Daily's room object (`POST /rooms`, `GET /rooms/:name`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DailyRoom {
    pub id: String,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub privacy: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// `GET /rooms/:name/presence`. Note Daily's camelCase keys inside `data`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RoomPresence {
    pub total_count: u64,
    #[serde(default)]
    pub data: Vec<PresenceParticipant>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceParticipant {
    #[serde(default)]
    pub room: Option<String>,
    pub id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
    /// ISO 8601, as Daily sends it.
    #[serde(default)]
    pub join_time: Option<String>,
    /// Seconds in the room so far.
    #[serde(default)]
    pub duration: Option<u64>,
}

/// `GET /recordings/:id/access-link`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordingAccessLink {
    pub download_link: String,
    /// Unix seconds.
    pub expires: i64,
}

/// A recording as `GET /recordings` and `GET /recordings/:id` describe it. The recording-level
/// key is documented as `s3key`; tracks' keys appear as `s3Key` and `s3key`: both are accepted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DailyRecording {
    pub id: String,
    #[serde(default)]
    pub room_name: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub start_ts: Option<i64>,
    /// `finished`, `in-progress`, `canceled` (and possibly others).
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, alias = "s3_key", alias = "s3Key")]
    pub s3key: Option<String>,
    /// Not documented on recording objects; read when present.
    #[serde(default, rename = "type")]
    pub recording_type: Option<String>,
    /// Only multitrack (`raw-tracks`) recordings have tracks; `null` or absent otherwise.
    #[serde(default)]
    pub tracks: Option<Vec<DailyTrack>>,
}

impl DailyRecording {
    pub fn is_finished(&self) -> bool {
        self.status.as_deref() == Some("finished")
    }

    /// A `raw-tracks` recording: said so, or it lists tracks.
    pub fn is_multitrack(&self) -> bool {
        self.recording_type.as_deref() == Some("raw-tracks")
            || self.tracks.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// The keys of its audio tracks, in the order Daily lists them.
    pub fn audio_track_keys(&self) -> Vec<String> {
        self.tracks
            .iter()
            .flatten()
            .filter(|t| t.is_audio())
            .filter_map(|t| t.s3_key.clone())
            .collect()
    }
}

/// One track of a `raw-tracks` recording: `{type: "audio"|"video", s3Key, size}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DailyTrack {
    #[serde(default, rename = "type")]
    pub track_type: Option<String>,
    #[serde(default, rename = "s3Key", alias = "s3key", alias = "s3_key")]
    pub s3_key: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}

impl DailyTrack {
    pub fn is_audio(&self) -> bool {
        self.track_type.as_deref() == Some("audio")
    }
}

/// `GET /recordings`: one page, newest first; the next page starts after the last id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordingPage {
    #[serde(default)]
    pub total_count: Option<u64>,
    #[serde(default)]
    pub data: Vec<DailyRecording>,
}

/// What a raw-tracks object key says: `{domain}/{room}/{recStartMs}-{participantSessionId}-
/// {cam|screen}-{audio|video}-{trackStartMs}` ([REFLECTOR]; the keys have no extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackKey {
    pub session_id: String,
    /// When the track started (Unix milliseconds).
    pub track_start_ms: u64,
}

/// Parses the file part of a raw-tracks key; `None` when it does not have that shape.
pub fn parse_track_key(key: &str) -> Option<TrackKey> {
    let file = key.rsplit('/').next().unwrap_or(key);
    let (rest, start) = file.rsplit_once('-')?;
    let track_start_ms = start.parse().ok().filter(|_| is_digits(start))?;
    let rest = ["-cam-audio", "-cam-video", "-screen-audio", "-screen-video"]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix))?;
    let (rec_start, session_id) = rest.split_once('-')?;
    if !is_digits(rec_start) || session_id.is_empty() {
        return None;
    }
    Some(TrackKey {
        session_id: session_id.to_owned(),
        track_start_ms,
    })
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookState {
    Active,
    Failed,
    Inactive,
    #[serde(other)]
    Unknown,
}

impl WebhookState {
    /// As Daily spells it (`UNKNOWN` for a state this client does not know).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Active => "ACTIVE",
            WebhookState::Failed => "FAILED",
            WebhookState::Inactive => "INACTIVE",
            WebhookState::Unknown => "UNKNOWN",
        }
    }
}

/// Daily's webhook object.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub uuid: String,
    pub url: String,
    /// The base64 HMAC secret: set it as `DAILY_WEBHOOK_SECRET`.
    #[serde(default)]
    pub hmac: Option<String>,
    #[serde(default)]
    pub basic_auth: Option<String>,
    #[serde(default)]
    pub retry_type: Option<String>,
    #[serde(default)]
    pub event_types: Vec<String>,
    pub state: WebhookState,
    #[serde(default)]
    pub failed_count: u64,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("uuid", &self.uuid)
            .field("url", &self.url)
            .field("hmac", &self.hmac.as_ref().map(|_| "[redacted]"))
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|_| "[redacted]"),
            )
            .field("retry_type", &self.retry_type)
            .field("event_types", &self.event_types)
            .field("state", &self.state)
            .field("failed_count", &self.failed_count)
            .finish_non_exhaustive()
    }
}

/// Body of `POST /webhooks` (camelCase on the wire).
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWebhook {
    pub url: String,
    pub event_types: Vec<String>,
    /// Our own base64 secret; Daily generates one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac: Option<String>,
    /// `circuit-breaker` (Daily's default) or `exponential`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_type: Option<String>,
}

impl std::fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWebhook")
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("retry_type", &self.retry_type)
            .finish_non_exhaustive()
    }
}

/// `GET /webhooks` is documented as a bare array; reflector also accepts `{data: [...]}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum WebhookList {
    Bare(Vec<Webhook>),
    Wrapped { data: Vec<Webhook> },
}

pub struct DailyClient {
    api: ApiCaller,
    /// The same API with no retry: recording starts are retried by their caller.
    single_attempt: ApiCaller,
    signer: MeetingTokenSigner,
    domain_id: tokio::sync::OnceCell<String>,
    recordings_bucket: Option<DailyRecordingsBucket>,
    sessions: Option<Arc<dyn RoomSessionSource>>,
    clock: fn() -> DateTime<Utc>,
}

impl std::fmt::Debug for DailyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DailyClient")
            .field("api", &self.api)
            .field("domain_id", &self.domain_id.get())
            .field("recordings_bucket", &self.recordings_bucket)
            .field("has_session_source", &self.sessions.is_some())
            .finish_non_exhaustive()
    }
}

impl DailyClient {
    pub fn new(
        client: impl Into<LazyClient>,
        api_url: &str,
        api_key: SecretString,
        settings: HttpSettings,
    ) -> Result<Self, PlatformError> {
        let client = client.into();
        let mut once = settings.clone();
        once.retry.max_attempts = 1;
        Ok(Self {
            single_attempt: ApiCaller::new(
                PLATFORM,
                client.clone(),
                api_url,
                api_key.clone(),
                once,
            )?,
            signer: MeetingTokenSigner::new(&api_key),
            api: ApiCaller::new(PLATFORM, client, api_url, api_key, settings)?,
            domain_id: tokio::sync::OnceCell::new(),
            recordings_bucket: None,
            sessions: None,
            clock: Utc::now,
        })
    }

    /// From `DAILY_*` settings: `DAILY_API_KEY` is required; `AWS_DAILY_S3_BUCKET` needs
    /// `AWS_DAILY_S3_REGION` and `AWS_DAILY_ROLE_ARN`, because Daily cannot write to a bucket
    /// without both. Errors name the missing variable.
    pub fn from_config(
        cfg: &DailyConfig,
        client: impl Into<LazyClient>,
        settings: HttpSettings,
    ) -> Result<Self, PlatformError> {
        let api_key = cfg.api_key.clone().ok_or(PlatformError::Config {
            platform: PLATFORM,
            var: "DAILY_API_KEY",
            reason: "is not set".into(),
        })?;
        let bucket = match &cfg.s3_bucket {
            None => None,
            Some(bucket) => {
                let needed = |value: &Option<String>, var: &'static str| {
                    value.clone().ok_or(PlatformError::Config {
                        platform: PLATFORM,
                        var,
                        reason: "is required when AWS_DAILY_S3_BUCKET is set".into(),
                    })
                };
                Some(DailyRecordingsBucket {
                    bucket_name: bucket.clone(),
                    bucket_region: needed(&cfg.s3_region, "AWS_DAILY_S3_REGION")?,
                    assume_role_arn: needed(&cfg.role_arn, "AWS_DAILY_ROLE_ARN")?,
                })
            }
        };
        Ok(Self::new(client, &cfg.api_url, api_key, settings)?
            .with_recordings_bucket(bucket)
            .with_domain_id(cfg.domain_id.clone()))
    }

    /// A known domain id (`DAILY_DOMAIN_ID`): [`Self::domain_id`] then makes no request.
    pub fn with_domain_id(mut self, domain_id: Option<String>) -> Self {
        if let Some(id) = domain_id {
            self.domain_id = tokio::sync::OnceCell::new_with(Some(id));
        }
        self
    }

    pub fn with_recordings_bucket(mut self, bucket: Option<DailyRecordingsBucket>) -> Self {
        self.recordings_bucket = bucket;
        self
    }

    pub fn with_session_source(mut self, source: Arc<dyn RoomSessionSource>) -> Self {
        self.sessions = Some(source);
        self
    }

    /// The clock used for room names (tests pin it).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// `<prefix>-<YYYYMMDDHHMMSS>`, with characters Daily refuses replaced by `-` and the prefix
    /// shortened so the whole name fits in [`MAX_ROOM_NAME_LEN`].
    pub fn room_name(prefix: &str, now: DateTime<Utc>) -> String {
        let mut clean: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(MAX_ROOM_NAME_LEN - TIMESTAMP_LEN)
            .collect();
        if clean.is_empty() {
            clean.push_str("room");
        }
        format!("{clean}-{}", now.format("%Y%m%d%H%M%S"))
    }

    fn create_body(&self, name: &str, end_date: DateTime<Utc>, room: &Room) -> Value {
        let mut properties = json!({
            "exp": end_date.timestamp(),
            "enable_chat": true,
            "enable_screenshare": true,
            "start_video_off": false,
            "start_audio_off": false,
        });
        match room.recording_type {
            RecordingType::None => {}
            RecordingType::Local => properties["enable_recording"] = json!("local"),
            RecordingType::Cloud => {
                properties["enable_recording"] = json!("cloud");
                if let Some(b) = &self.recordings_bucket {
                    properties["recordings_bucket"] = json!({
                        "bucket_name": b.bucket_name,
                        "bucket_region": b.bucket_region,
                        "assume_role_arn": b.assume_role_arn,
                        "allow_api_access": true,
                    });
                }
            }
        }
        json!({
            "name": name,
            "privacy": if room.is_locked { "private" } else { "public" },
            "properties": properties,
        })
    }

    /// `GET /rooms/:name`.
    pub async fn get_room(&self, name: &str) -> Result<(DailyRoom, Value), PlatformError> {
        let url = self.api.url(&["rooms", name]);
        let ex = self
            .api
            .call("get room", Safety::Idempotent, |c| c.get(url.clone()))
            .await?;
        room_from(&ex, "get room")
    }

    /// `GET /rooms/:name/presence`: who is in the room right now.
    pub async fn get_presence(&self, name: &str) -> Result<RoomPresence, PlatformError> {
        let url = self.api.url(&["rooms", name, "presence"]);
        let ex = self
            .api
            .call("get presence", Safety::Idempotent, |c| c.get(url.clone()))
            .await?;
        ok_json(&ex, "get presence")
    }

    /// `GET /recordings/:id/access-link`: a time-limited download URL.
    pub async fn get_recording_access_link(
        &self,
        recording_id: &str,
        valid_for_secs: Option<u32>,
    ) -> Result<RecordingAccessLink, PlatformError> {
        let url = self.api.url(&["recordings", recording_id, "access-link"]);
        let ex = self
            .api
            .call("get recording link", Safety::Idempotent, |c| {
                let r = c.get(url.clone());
                match valid_for_secs {
                    Some(s) => r.query(&[("valid_for_secs", s)]),
                    None => r,
                }
            })
            .await?;
        ok_json(&ex, "get recording link")
    }

    /// `GET /recordings?limit&starting_after[&room_name]`: one page of the domain's recordings
    /// (or one room's), newest first. Daily allows about 2 of these per second.
    pub async fn list_recordings(
        &self,
        room_name: Option<&str>,
        starting_after: Option<&str>,
        limit: u32,
    ) -> Result<RecordingPage, PlatformError> {
        let url = self.api.url(&["recordings"]);
        let mut query: Vec<(&str, String)> = vec![("limit", limit.clamp(1, 100).to_string())];
        if let Some(room) = room_name {
            query.push(("room_name", room.to_owned()));
        }
        if let Some(after) = starting_after {
            query.push(("starting_after", after.to_owned()));
        }
        let ex = self
            .api
            .call("list recordings", Safety::Idempotent, |c| {
                c.get(url.clone()).query(&query)
            })
            .await?;
        ok_json(&ex, "list recordings")
    }

    /// `GET /recordings/:id`: status, key and (for raw-tracks) tracks of one recording.
    pub async fn get_recording(&self, recording_id: &str) -> Result<DailyRecording, PlatformError> {
        let url = self.api.url(&["recordings", recording_id]);
        let ex = self
            .api
            .call("get recording", Safety::Idempotent, |c| c.get(url.clone()))
            .await?;
        ok_json(&ex, "get recording")
    }

    /// The Daily domain id (the `d` claim of meeting tokens): the configured one, else read
    /// from Daily's domain configuration (`GET /`, field `domain_id`) on the first call and
    /// kept for the life of the client (a warm Lambda container). Concurrent first calls make
    /// one request; a failed read is not cached, so the next call tries again.
    pub async fn domain_id(&self) -> Result<&str, PlatformError> {
        self.domain_id
            .get_or_try_init(|| async {
                // `[""]` gives the base URL with a trailing slash: `.../v1/`.
                let url = self.api.url(&[""]);
                let ex = self
                    .api
                    .call("get domain", Safety::Idempotent, |c| c.get(url.clone()))
                    .await?;
                let config: DomainConfig = ok_json(&ex, "get domain")?;
                tracing::info!("Daily domain id read from the domain configuration");
                Ok(config.domain_id)
            })
            .await
            .map(String::as_str)
    }

    /// A self-signed meeting token for `request` (no request to Daily once the domain id is
    /// known). Join with [`token::join_url`].
    pub async fn meeting_token(
        &self,
        request: &TokenRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<String, PlatformError> {
        let domain_id = self.domain_id().await?;
        self.signer
            .sign(&MeetingTokenClaims::new(request, domain_id, now))
    }

    /// `POST /rooms/:name/recordings/start` with `{"type", "instanceId"}`, one attempt.
    ///
    /// A transient failure (429, 5xx, notably 503 when Daily has no recording worker free, a
    /// timeout or connect error) is returned as the error for the caller to retry later under
    /// the same `instance_id`. Daily does not document how it answers a start of an instance
    /// that is already recording: a 4xx whose `{error, info}` says "already" together with
    /// recording/started/active/in progress is taken as [`RecordingStart::AlreadyActive`]. If
    /// Daily words it otherwise, the caller sees a permanent error instead, and the meeting's
    /// stored marker (set after the first success) still prevents a second start.
    pub async fn start_recording(
        &self,
        room_name: &str,
        kind: RecordingKind,
        instance_id: uuid::Uuid,
    ) -> Result<RecordingStart, PlatformError> {
        let url = self
            .single_attempt
            .url(&["rooms", room_name, "recordings", "start"]);
        let body = json!({ "type": kind.as_str(), "instanceId": instance_id.to_string() });
        let ex = self
            .single_attempt
            .call("start recording", Safety::Idempotent, |c| {
                c.post(url.clone()).json(&body)
            })
            .await?;
        if ex.status.is_success() {
            return Ok(RecordingStart::Started);
        }
        let error = api_error(PLATFORM, &ex);
        if is_already_recording(&error) {
            tracing::info!(room_name, %kind, %instance_id, "Daily recording already active");
            return Ok(RecordingStart::AlreadyActive);
        }
        Err(error)
    }

    /// `POST /webhooks`. Daily probes the URL with `{"test":"test"}` before answering. Not
    /// retried after a timeout: a domain holds one webhook, so use [`Self::ensure_webhook`] to
    /// converge instead.
    pub async fn create_webhook(&self, webhook: &NewWebhook) -> Result<Webhook, PlatformError> {
        let url = self.api.url(&["webhooks"]);
        let ex = self
            .api
            .call("create webhook", Safety::NotProcessedOnly, |c| {
                c.post(url.clone()).json(webhook)
            })
            .await?;
        ok_json(&ex, "create webhook")
    }

    /// `GET /webhooks`.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, PlatformError> {
        let url = self.api.url(&["webhooks"]);
        let ex = self
            .api
            .call("list webhooks", Safety::Idempotent, |c| c.get(url.clone()))
            .await?;
        Ok(match ok_json::<WebhookList>(&ex, "list webhooks")? {
            WebhookList::Bare(v) | WebhookList::Wrapped { data: v } => v,
        })
    }

    /// `DELETE /webhooks/:uuid`; an unknown uuid counts as deleted. Daily's answer, when it
    /// sent a JSON body (its shape is not documented); `None` for a 404 or no body.
    pub async fn delete_webhook(&self, uuid: &str) -> Result<Option<Value>, PlatformError> {
        let url = self.api.url(&["webhooks", uuid]);
        let ex = self
            .api
            .call("delete webhook", Safety::Idempotent, |c| {
                c.delete(url.clone())
            })
            .await?;
        if ex.status.is_success() {
            Ok(serde_json::from_slice(&ex.body).ok())
        } else if ex.status == reqwest::StatusCode::NOT_FOUND {
            Ok(None)
        } else {
            Err(api_error(PLATFORM, &ex))
        }
    }

    /// `POST /webhooks/:uuid` with `{url}` (and `eventTypes` when given): Daily probes the URL
    /// again and sets the webhook ACTIVE on a 200. This is how a FAILED webhook is re-armed.
    pub async fn reactivate_webhook(
        &self,
        uuid: &str,
        url: &str,
        event_types: Option<&[String]>,
    ) -> Result<Webhook, PlatformError> {
        let endpoint = self.api.url(&["webhooks", uuid]);
        let mut body = json!({ "url": url });
        if let Some(types) = event_types {
            body["eventTypes"] = json!(types);
        }
        let ex = self
            .api
            .call("update webhook", Safety::Idempotent, |c| {
                c.post(endpoint.clone()).json(&body)
            })
            .await?;
        ok_json(&ex, "update webhook")
    }

    /// Makes the domain's webhook point at `webhook.url` and be ACTIVE: creates it when there is
    /// none, re-activates it when FAILED/INACTIVE or pointing elsewhere, leaves it otherwise.
    pub async fn ensure_webhook(&self, webhook: &NewWebhook) -> Result<Webhook, PlatformError> {
        let existing = self.list_webhooks().await?;
        let current = existing
            .iter()
            .find(|w| w.url == webhook.url)
            .or(existing.first());
        match current {
            Some(w) if w.url == webhook.url && w.state == WebhookState::Active => Ok(w.clone()),
            Some(w) => {
                tracing::info!(uuid = %w.uuid, state = ?w.state, "re-activating Daily webhook");
                self.reactivate_webhook(&w.uuid, &webhook.url, Some(&webhook.event_types))
                    .await
            }
            None => self.create_webhook(webhook).await,
        }
    }
}

fn ok_json<T: serde::de::DeserializeOwned>(
    ex: &Exchange,
    operation: &'static str,
) -> Result<T, PlatformError> {
    if ex.status.is_success() {
        decode(PLATFORM, operation, ex)
    } else {
        Err(api_error(PLATFORM, ex))
    }
}

fn room_from(ex: &Exchange, operation: &'static str) -> Result<(DailyRoom, Value), PlatformError> {
    let raw: Value = ok_json(ex, operation)?;
    let room = serde_json::from_value(raw.clone()).map_err(|e| PlatformError::Decode {
        platform: PLATFORM,
        operation,
        message: e.to_string(),
    })?;
    Ok((room, raw))
}

fn is_already_exists(e: &PlatformError) -> bool {
    matches!(e, PlatformError::Api { status: 400, error, info, .. }
        if error.contains("already exists")
            || info.as_deref().is_some_and(|i| i.contains("already exists")))
}

/// See [`DailyClient::start_recording`]: Daily's wording is not documented, so this looks for
/// "already" next to a word about recording in a client-error answer.
fn is_already_recording(e: &PlatformError) -> bool {
    let PlatformError::Api {
        status,
        error,
        info,
        ..
    } = e
    else {
        return false;
    };
    if !(400..500).contains(status) || crate::retry::is_transient_status(*status) {
        return false;
    }
    let text = format!("{error} {}", info.as_deref().unwrap_or_default()).to_ascii_lowercase();
    text.contains("already")
        && [
            "record",
            "started",
            "active",
            "in progress",
            "in-progress",
            "running",
        ]
        .iter()
        .any(|w| text.contains(w))
}

#[async_trait]
impl VideoPlatform for DailyClient {
    fn platform(&self) -> Platform {
        PLATFORM
    }

    async fn create_meeting(
        &self,
        room_name_prefix: &str,
        end_date: DateTime<Utc>,
        room: &Room,
    ) -> Result<MeetingData, PlatformError> {
        let name = Self::room_name(room_name_prefix, (self.clock)());
        let body = self.create_body(&name, end_date, room);
        let url = self.api.url(&["rooms"]);
        // Whatever failed after the request may have left the room behind; the error names it
        // so the caller can delete it (see `PlatformError::Unconfirmed`).
        let unconfirmed =
            |e: PlatformError| e.unconfirmed_creation(PLATFORM, "create room", Some(&name));
        let ex = self
            .api
            .call("create room", Safety::Idempotent, |c| {
                c.post(url.clone()).json(&body)
            })
            .await
            .map_err(unconfirmed)?;
        let (created, raw) = if ex.status.is_success() {
            room_from(&ex, "create room").map_err(unconfirmed)?
        } else {
            let error = api_error(PLATFORM, &ex);
            if ex.earlier_attempt_uncertain && is_already_exists(&error) {
                // Our earlier attempt created it before its answer was lost.
                tracing::info!(room_name = %name, "Daily room exists after a retried create; fetching it");
                self.get_room(&name).await.map_err(|e| {
                    // It exists, whatever the lookup says.
                    PlatformError::Unconfirmed {
                        platform: PLATFORM,
                        operation: "create room",
                        room_name: Some(name.clone()),
                        cause: Box::new(e),
                    }
                })?
            } else {
                return Err(unconfirmed(error));
            }
        };
        tracing::info!(room_name = %created.name, "Daily room created");
        Ok(MeetingData {
            meeting_id: created.id,
            room_name: created.name,
            room_url: created.url.clone(),
            // Daily has one URL per room; owners are told apart by meeting tokens.
            host_room_url: created.url,
            platform: PLATFORM,
            extra_data: raw,
        })
    }

    async fn get_room_sessions(&self, room_name: &str) -> Result<Vec<SessionData>, PlatformError> {
        match &self.sessions {
            Some(source) => source.sessions_for_room(room_name).await,
            None => Err(PlatformError::Unsupported {
                platform: PLATFORM,
                operation: "list room sessions",
                reason: "no participant-session source is configured".into(),
            }),
        }
    }

    async fn delete_room(
        &self,
        room_name: &str,
        _platform_meeting_id: Option<&str>,
    ) -> Result<(), PlatformError> {
        let url = self.api.url(&["rooms", room_name]);
        let ex = self
            .api
            .call("delete room", Safety::Idempotent, |c| c.delete(url.clone()))
            .await?;
        // 404: never existed, already deleted, or expired (Daily then also says deleted: true).
        if ex.status.is_success() || ex.status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(api_error(PLATFORM, &ex))
        }
    }
}

#[cfg(test)]
#[path = "daily_tests.rs"]
mod tests;
