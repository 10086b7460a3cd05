//! Whereby Embedded REST client (video-platform-apis.md part B).
//!
//! - `POST /meetings` answers 201 with `roomName` carrying a leading slash; [`MeetingData`]
//!   holds it without the slash, and the Whereby-facing calls put it back where the API wants it
//!   (`roomName=/<name>` for insights).
//! - `roomNamePrefix`: the OpenAPI pattern is `[a-z0-9]{0,39}`, but Whereby's name-prefix guide
//!   uses `"Customer0348-"` and Reflector sends `prefix + "-"`; we follow Reflector (lowercased,
//!   at most 39 characters including the trailing `-`).
//! - Meeting creation is not idempotent and Whereby names rooms with a random uuid, so a lost
//!   answer cannot be looked up again. It is retried only when the request was certainly not
//!   processed (429, 503, connect error); after a timeout the error goes back to the caller
//!   rather than risking two meetings.
//! - Deletion is by `meetingId` (`DELETE /meetings/:id`, 204, idempotent), so
//!   [`VideoPlatform::delete_room`] needs the platform meeting id.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{api_error, decode, ApiCaller, Exchange, HttpSettings, Safety};
use super::{MeetingData, PlatformError, SessionData, VideoPlatform};
use crate::config::WherebyConfig;
use crate::domain::{Platform, RecordingType, Room};
use crate::http_client::LazyClient;

const PLATFORM: Platform = Platform::Whereby;
/// Whereby's limit on `roomNamePrefix`.
pub const MAX_PREFIX_LEN: usize = 39;
/// Insights pages are at most 100 results; this bounds a runaway cursor.
const MAX_SESSION_PAGES: usize = 50;

/// Where Whereby uploads cloud recordings (an access-key S3 destination).
#[derive(Clone)]
pub struct WherebyRecordingDestination {
    /// May include a sub-folder, e.g. `bucket/recordings`.
    pub bucket: String,
    pub access_key_id: String,
    pub access_key_secret: SecretString,
}

impl std::fmt::Debug for WherebyRecordingDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WherebyRecordingDestination")
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedMeeting {
    meeting_id: String,
    room_name: String,
    room_url: String,
    host_room_url: String,
}

#[derive(Debug, Deserialize)]
struct SessionsPage {
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    results: Vec<RoomSession>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomSession {
    room_session_id: String,
    started_at: DateTime<Utc>,
    #[serde(default)]
    ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub struct WherebyClient {
    api: ApiCaller,
    recording: Option<WherebyRecordingDestination>,
}

impl WherebyClient {
    pub fn new(
        client: impl Into<LazyClient>,
        api_url: &str,
        api_key: SecretString,
        settings: HttpSettings,
    ) -> Result<Self, PlatformError> {
        Ok(Self {
            api: ApiCaller::new(PLATFORM, client.into(), api_url, api_key, settings)?,
            recording: None,
        })
    }

    /// From `WHEREBY_*` settings: `WHEREBY_API_KEY` is required; `AWS_WHEREBY_S3_BUCKET` needs
    /// `AWS_WHEREBY_ACCESS_KEY_ID` and `AWS_WHEREBY_ACCESS_KEY_SECRET`. Errors name the variable.
    pub fn from_config(
        cfg: &WherebyConfig,
        client: impl Into<LazyClient>,
        settings: HttpSettings,
    ) -> Result<Self, PlatformError> {
        let api_key = cfg.api_key.clone().ok_or(PlatformError::Config {
            platform: PLATFORM,
            var: "WHEREBY_API_KEY",
            reason: "is not set".into(),
        })?;
        let missing = |var: &'static str| PlatformError::Config {
            platform: PLATFORM,
            var,
            reason: "is required when AWS_WHEREBY_S3_BUCKET is set".into(),
        };
        let recording = match &cfg.s3_bucket {
            None => None,
            Some(bucket) => Some(WherebyRecordingDestination {
                bucket: bucket.clone(),
                access_key_id: cfg
                    .access_key_id
                    .clone()
                    .ok_or_else(|| missing("AWS_WHEREBY_ACCESS_KEY_ID"))?,
                access_key_secret: cfg
                    .access_key_secret
                    .clone()
                    .ok_or_else(|| missing("AWS_WHEREBY_ACCESS_KEY_SECRET"))?,
            }),
        };
        Ok(Self::new(client, &cfg.api_url, api_key, settings)?
            .with_recording_destination(recording))
    }

    pub fn with_recording_destination(
        mut self,
        destination: Option<WherebyRecordingDestination>,
    ) -> Self {
        self.recording = destination;
        self
    }

    /// Lowercase `[a-z0-9-]` plus a trailing `-`, at most [`MAX_PREFIX_LEN`] characters.
    pub fn room_name_prefix(prefix: &str) -> String {
        let mut clean: String = prefix
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(MAX_PREFIX_LEN - 1)
            .collect();
        clean.push('-');
        clean
    }

    fn create_body(&self, prefix: &str, end_date: DateTime<Utc>, room: &Room) -> Value {
        let mut body = json!({
            "isLocked": room.is_locked,
            "roomNamePrefix": Self::room_name_prefix(prefix),
            "roomNamePattern": "uuid",
            "roomMode": room.room_mode.as_str(),
            "endDate": end_date.to_rfc3339_opts(SecondsFormat::Secs, true),
            "fields": ["hostRoomUrl"],
        });
        if room.recording_type == RecordingType::Cloud {
            match &self.recording {
                Some(d) => {
                    body["recording"] = json!({
                        "type": "cloud",
                        "destination": {
                            "provider": "s3",
                            "authenticationType": "accessKey",
                            "bucket": d.bucket,
                            "accessKeyId": d.access_key_id,
                            "accessKeySecret": d.access_key_secret.expose_secret(),
                            "fileFormat": "mp4",
                        },
                        "startTrigger": room.recording_trigger.as_str(),
                    });
                }
                None => tracing::warn!(
                    room_id = %room.id,
                    "room records to the cloud but AWS_WHEREBY_S3_BUCKET is not set; creating the meeting without recording"
                ),
            }
        }
        body
    }

    /// `DELETE /meetings/:id`: 204, also when already deleted (a 404 counts as deleted too).
    pub async fn delete_meeting(&self, meeting_id: &str) -> Result<(), PlatformError> {
        let url = self.api.url(&["meetings", meeting_id]);
        let ex = self
            .api
            .call("delete meeting", Safety::Idempotent, |c| {
                c.delete(url.clone())
            })
            .await?;
        if ex.status.is_success() || ex.status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(api_error(PLATFORM, &ex))
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

#[async_trait]
impl VideoPlatform for WherebyClient {
    fn platform(&self) -> Platform {
        PLATFORM
    }

    async fn create_meeting(
        &self,
        room_name_prefix: &str,
        end_date: DateTime<Utc>,
        room: &Room,
    ) -> Result<MeetingData, PlatformError> {
        let body = self.create_body(room_name_prefix, end_date, room);
        let url = self.api.url(&["meetings"]);
        // Whereby names the room and answers its meetingId: a creation whose answer is lost
        // cannot be deleted from here, only reported (`PlatformError::Unconfirmed`).
        let unconfirmed =
            |e: PlatformError| e.unconfirmed_creation(PLATFORM, "create meeting", None);
        let ex = self
            .api
            .call("create meeting", Safety::NotProcessedOnly, |c| {
                c.post(url.clone()).json(&body)
            })
            .await
            .map_err(unconfirmed)?;
        let raw: Value = ok_json(&ex, "create meeting").map_err(unconfirmed)?;
        let created: CreatedMeeting = serde_json::from_value(raw.clone()).map_err(|e| {
            unconfirmed(PlatformError::Decode {
                platform: PLATFORM,
                operation: "create meeting",
                message: e.to_string(),
            })
        })?;
        let room_name = created.room_name.trim_start_matches('/').to_owned();
        tracing::info!(room_name = %room_name, meeting_id = %created.meeting_id, "Whereby meeting created");
        Ok(MeetingData {
            meeting_id: created.meeting_id,
            room_name,
            room_url: created.room_url,
            host_room_url: created.host_room_url,
            platform: PLATFORM,
            extra_data: raw,
        })
    }

    async fn get_room_sessions(&self, room_name: &str) -> Result<Vec<SessionData>, PlatformError> {
        let url = self.api.url(&["insights", "room-sessions"]);
        let whereby_name = format!("/{}", room_name.trim_start_matches('/'));
        let mut sessions = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_SESSION_PAGES {
            let ex = self
                .api
                .call("list room sessions", Safety::Idempotent, |c| {
                    let mut query = vec![("roomName", whereby_name.as_str()), ("limit", "100")];
                    if let Some(cur) = &cursor {
                        query.push(("cursor", cur.as_str()));
                    }
                    c.get(url.clone()).query(&query)
                })
                .await?;
            let page: SessionsPage = ok_json(&ex, "list room sessions")?;
            sessions.extend(page.results.into_iter().map(|s| SessionData {
                session_id: s.room_session_id,
                started_at: s.started_at,
                ended_at: s.ended_at,
            }));
            match page.cursor {
                Some(next) if Some(&next) != cursor.as_ref() && !next.is_empty() => {
                    cursor = Some(next)
                }
                _ => return Ok(sessions),
            }
        }
        tracing::warn!(
            room_name,
            pages = MAX_SESSION_PAGES,
            "room-session pages capped"
        );
        Ok(sessions)
    }

    async fn delete_room(
        &self,
        room_name: &str,
        platform_meeting_id: Option<&str>,
    ) -> Result<(), PlatformError> {
        match platform_meeting_id {
            Some(id) => self.delete_meeting(id).await,
            None => Err(PlatformError::Unsupported {
                platform: PLATFORM,
                operation: "delete a room",
                reason: format!("Whereby deletes by meetingId, and none was given for {room_name}"),
            }),
        }
    }
}

#[cfg(test)]
#[path = "whereby_tests.rs"]
mod tests;
