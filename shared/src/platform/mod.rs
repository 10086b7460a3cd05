//! Video platform layer (DESIGN.md section 3).
//!
//! - [`VideoPlatform`]: what the handlers need from a platform (create a meeting room, list its
//!   sessions, delete it). Implemented by [`DailyClient`],
//!   [`WherebyClient`] and [`MockClient`].
//! - [`PlatformRegistry`]: `Platform -> Arc<dyn VideoPlatform>` built once from [`Config`];
//!   a platform without credentials answers with a [`PlatformError::Config`] naming the variable.
//! - [`select_platform`]: the migration rule that picks a platform for a room.
//!
//! Every outbound call goes through one retry loop ([`http::HttpSettings`]): a per-request
//! timeout; retries with exponential backoff and full jitter on 429, 5xx and connect/timeout
//! errors for calls that are safe to repeat, honouring `Retry-After`; never a retry on another
//! 4xx. Calls that create something are made safe to repeat or are retried only when the
//! request was provably not processed; see each client.
//!
//! Deleting a room: Daily deletes by room name, Whereby by its `meetingId`, so
//! [`VideoPlatform::delete_room`] takes both (the meeting id is what `create_meeting` returned
//! in [`MeetingData::meeting_id`]).
//!
//! [`Config`]: crate::config::Config

pub mod daily;
pub mod http;
pub mod mock;
pub mod registry;
pub mod whereby;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Flags;
use crate::domain::{Platform, Room, UnknownPlatform};
use crate::retry::{is_transient_status, Transient};

pub use daily::DailyClient;
pub use http::{HttpSettings, RetryPolicy};
pub use mock::{MockCall, MockClient};
pub use registry::{PlatformRegistry, RegistryOptions};
pub use whereby::WherebyClient;

/// A platform room created for a meeting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetingData {
    /// The platform's id for the meeting (Daily room id, Whereby `meetingId`).
    pub meeting_id: String,
    /// The platform room name, never with a leading slash (Whereby's is stripped).
    pub room_name: String,
    pub room_url: String,
    pub host_room_url: String,
    pub platform: Platform,
    /// The platform's full response, kept for support and for later calls.
    pub extra_data: serde_json::Value,
}

/// One session of a platform room: from the first join to the moment the room emptied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub session_id: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the session is ongoing.
    pub ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The platform cannot be used as configured (missing credentials, partial bucket settings).
    #[error("{platform} is not configured: {var} {reason}")]
    Config {
        platform: Platform,
        var: &'static str,
        reason: String,
    },
    /// The platform answered with an error. For Daily, `error` is the stable type and `info`
    /// the human text of its `{error, info}` body.
    #[error("{platform} API error (HTTP {status}): {error}{}", info.as_deref().map(|i| format!(": {i}")).unwrap_or_default())]
    Api {
        platform: Platform,
        status: u16,
        error: String,
        info: Option<String>,
    },
    /// The platform could not be reached (connect error or timeout), after any retries.
    #[error("{platform} API unreachable during {operation}: {message}")]
    Transport {
        platform: Platform,
        operation: &'static str,
        timed_out: bool,
        message: String,
    },
    /// The platform answered 2xx with a body of an unexpected shape.
    #[error("{platform} API returned an unexpected response to {operation}: {message}")]
    Decode {
        platform: Platform,
        operation: &'static str,
        message: String,
    },
    /// The operation needs something this platform or client does not have.
    #[error("{platform} cannot {operation}: {reason}")]
    Unsupported {
        platform: Platform,
        operation: &'static str,
        reason: String,
    },
    /// A call that creates a room got no answer that says whether it did (no answer before the
    /// deadline, a 5xx that may hide a success, a success we could not read): the room may
    /// exist. `room_name` is the room asked for where our side names rooms (Daily), so it can
    /// still be deleted by name; `None` where the platform names rooms itself (Whereby).
    #[error("{platform} did not confirm {operation}{}: {cause}", room_name.as_deref().map(|n| format!(" of {n}")).unwrap_or_default())]
    Unconfirmed {
        platform: Platform,
        operation: &'static str,
        room_name: Option<String>,
        cause: Box<PlatformError>,
    },
    #[error(transparent)]
    UnknownPlatform(#[from] UnknownPlatform),
}

impl PlatformError {
    pub fn platform(&self) -> Option<Platform> {
        match self {
            PlatformError::Config { platform, .. }
            | PlatformError::Api { platform, .. }
            | PlatformError::Transport { platform, .. }
            | PlatformError::Decode { platform, .. }
            | PlatformError::Unsupported { platform, .. }
            | PlatformError::Unconfirmed { platform, .. } => Some(*platform),
            PlatformError::UnknownPlatform(_) => None,
        }
    }

    /// The HTTP status the platform answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            PlatformError::Api { status, .. } => Some(*status),
            PlatformError::Unconfirmed { cause, .. } => cause.status(),
            _ => None,
        }
    }

    /// The call ran out of time (its own timeout, or the request's deadline) without an answer.
    pub fn timed_out(&self) -> bool {
        match self {
            PlatformError::Transport { timed_out, .. } => *timed_out,
            PlatformError::Unconfirmed { cause, .. } => cause.timed_out(),
            _ => false,
        }
    }
}

impl Transient for PlatformError {
    /// Connect errors, timeouts and transient statuses ([`is_transient_status`]; for Daily's
    /// recording start, a 503 when no worker is free). An answer of an unexpected shape is
    /// permanent: the same request gets the same answer.
    fn is_transient(&self) -> bool {
        match self {
            PlatformError::Transport { .. } => true,
            PlatformError::Api { status, .. } => is_transient_status(*status),
            PlatformError::Unconfirmed { cause, .. } => cause.is_transient(),
            PlatformError::Config { .. }
            | PlatformError::Decode { .. }
            | PlatformError::Unsupported { .. }
            | PlatformError::UnknownPlatform(_) => false,
        }
    }
}

impl PlatformError {
    /// Whether a failed creation may still have made the room: no answer in time, an answer
    /// of 5xx (or 408) that may hide a success, or a success we could not read. A refusal
    /// (another 4xx), a configuration error or a connection that never opened made nothing.
    pub fn may_have_created(&self) -> bool {
        match self {
            PlatformError::Api { status, .. } => *status >= 500 || *status == 408,
            PlatformError::Transport { timed_out, .. } => *timed_out,
            PlatformError::Decode { .. } | PlatformError::Unconfirmed { .. } => true,
            PlatformError::Config { .. }
            | PlatformError::Unsupported { .. }
            | PlatformError::UnknownPlatform(_) => false,
        }
    }

    /// This failure of `platform`'s `operation`, wrapped as [`PlatformError::Unconfirmed`] when
    /// it may have created `room_name` (see [`Self::may_have_created`]).
    pub(crate) fn unconfirmed_creation(
        self,
        platform: Platform,
        operation: &'static str,
        room_name: Option<&str>,
    ) -> Self {
        match self {
            e @ PlatformError::Unconfirmed { .. } => e,
            e if e.may_have_created() => PlatformError::Unconfirmed {
                platform,
                operation,
                room_name: room_name.map(str::to_owned),
                cause: Box::new(e),
            },
            e => e,
        }
    }
}

/// What the handlers need from a video platform.
#[async_trait]
pub trait VideoPlatform: Send + Sync {
    fn platform(&self) -> Platform;

    /// Creates a platform room for a meeting of `room` that ends at `end_date`.
    async fn create_meeting(
        &self,
        room_name_prefix: &str,
        end_date: DateTime<Utc>,
        room: &Room,
    ) -> Result<MeetingData, PlatformError>;

    /// The sessions held in the platform room, oldest first where the platform says so.
    async fn get_room_sessions(&self, room_name: &str) -> Result<Vec<SessionData>, PlatformError>;

    /// Deletes the platform room; a room that is already gone counts as deleted.
    /// `platform_meeting_id` is [`MeetingData::meeting_id`]; Whereby needs it, Daily ignores it.
    async fn delete_room(
        &self,
        room_name: &str,
        platform_meeting_id: Option<&str>,
    ) -> Result<(), PlatformError>;
}

/// Where Daily room sessions come from: Daily's own history is coarse (a join is recorded only
/// after 10 s, times are accurate to ~15 s), so sessions are built from the participant sessions
/// our webhook stores. The data layer implements this; tests use an in-memory source.
#[async_trait]
pub trait RoomSessionSource: Send + Sync {
    async fn sessions_for_room(&self, room_name: &str) -> Result<Vec<SessionData>, PlatformError>;
}

/// The platform for a new room or meeting, the seed's rule: migration disabled -> Whereby;
/// room id listed in `DAILY_MIGRATION_ROOM_IDS` -> Daily; otherwise `DEFAULT_VIDEO_PLATFORM`.
pub fn select_platform(room_id: &str, flags: &Flags) -> Platform {
    if !flags.daily_migration_enabled {
        Platform::Whereby
    } else if flags.daily_migration_room_ids.contains(room_id) {
        Platform::Daily
    } else {
        flags.default_video_platform
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn select_platform_follows_the_migration_rule_for_every_flag_combination() {
        use Platform::*;
        // (migration enabled, room listed, default) -> expected
        let table = [
            (false, false, Whereby, Whereby),
            (false, false, Daily, Whereby),
            (false, false, Mock, Whereby),
            (false, true, Whereby, Whereby),
            (false, true, Daily, Whereby),
            (false, true, Mock, Whereby),
            (true, false, Whereby, Whereby),
            (true, false, Daily, Daily),
            (true, false, Mock, Mock),
            (true, true, Whereby, Daily),
            (true, true, Daily, Daily),
            (true, true, Mock, Daily),
        ];
        for (enabled, listed, default, want) in table {
            let mut ids = BTreeSet::from(["other-room".to_owned()]);
            if listed {
                ids.insert("room-1".to_owned());
            }
            let flags = Flags {
                daily_migration_enabled: enabled,
                daily_migration_room_ids: ids,
                default_video_platform: default,
            };
            assert_eq!(
                select_platform("room-1", &flags),
                want,
                "enabled={enabled} listed={listed} default={default}"
            );
        }
    }

    #[test]
    fn platform_errors_name_the_platform_and_keep_daily_fields() {
        let e = PlatformError::Api {
            platform: Platform::Daily,
            status: 400,
            error: "invalid-request-error".into(),
            info: Some("exp must be in the future".into()),
        };
        assert_eq!(
            e.to_string(),
            "daily API error (HTTP 400): invalid-request-error: exp must be in the future"
        );
        let e = PlatformError::Config {
            platform: Platform::Whereby,
            var: "WHEREBY_API_KEY",
            reason: "is not set".into(),
        };
        assert_eq!(
            e.to_string(),
            "whereby is not configured: WHEREBY_API_KEY is not set"
        );
    }
}

#[cfg(test)]
pub(crate) mod test_support;
