//! Domain types shared by every function. Parsed once at the edge ("parse, don't validate"):
//! a value of these types is valid by construction.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The video platform a room or meeting runs on. Serialized lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Whereby,
    Daily,
    /// No network; deterministic URLs. Selectable only where configured (local stack, tests).
    Mock,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown video platform {given:?}: known platforms are {}", Platform::KNOWN.join(", "))]
pub struct UnknownPlatform {
    pub given: String,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::Whereby, Platform::Daily, Platform::Mock];
    pub const KNOWN: [&'static str; 3] = ["whereby", "daily", "mock"];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Whereby => "whereby",
            Platform::Daily => "daily",
            Platform::Mock => "mock",
        }
    }

    /// The name people know the platform by, for messages to API callers.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Whereby => "Whereby",
            Platform::Daily => "Daily",
            Platform::Mock => "The mock platform",
        }
    }
}

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "whereby" => Ok(Platform::Whereby),
            "daily" => Ok(Platform::Daily),
            "mock" => Ok(Platform::Mock),
            _ => Err(UnknownPlatform {
                given: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whereby room mode: `normal` (up to 4) or `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomMode {
    #[default]
    Normal,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingType {
    None,
    Local,
    #[default]
    Cloud,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingTrigger {
    None,
    Prompt,
    #[default]
    #[serde(rename = "automatic-2nd-participant")]
    Automatic2ndParticipant,
    Automatic,
}

/// A kind of Daily recording the server starts (`POST /rooms/:name/recordings/start`, field
/// `type`): `cloud` (one mixed file) or `raw-tracks` (one file per participant track).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordingKind {
    Cloud,
    RawTracks,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:path => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const KNOWN: &'static [&'static str] = &[$($name),+];
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($variant),)+
                    _ => Err(format!("{s:?} is not one of {}", Self::KNOWN.join(", "))),
                }
            }
        }
    };
}

str_enum!(RoomMode { RoomMode::Normal => "normal", RoomMode::Group => "group" });
str_enum!(RecordingType {
    RecordingType::None => "none",
    RecordingType::Local => "local",
    RecordingType::Cloud => "cloud",
});
str_enum!(RecordingTrigger {
    RecordingTrigger::None => "none",
    RecordingTrigger::Prompt => "prompt",
    RecordingTrigger::Automatic => "automatic",
    RecordingTrigger::Automatic2ndParticipant => "automatic-2nd-participant",
});
str_enum!(RecordingKind {
    RecordingKind::Cloud => "cloud",
    RecordingKind::RawTracks => "raw-tracks",
});

/// A room name both platforms accept and that is safe in URLs and S3 keys: 1 to
/// [`RoomName::MAX_LEN`] characters of `[a-z0-9-]` (Whereby lowercases prefixes; Daily allows
/// `[A-Za-z0-9_-]`; the original Reflector used slug-like lowercase names), not starting or
/// ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    /// Daily allows 128 characters; our meeting names add `-YYYYMMDDHHMMSS` (15), and Whereby's
    /// prefix allows 39 but is not the stored name, so 100 leaves room for both.
    pub const MAX_LEN: usize = 100;

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("room name must not be empty".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!(
                "room name must be at most {} characters",
                Self::MAX_LEN
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("room name may contain only lowercase letters, digits and hyphens".into());
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err("room name must not start or end with a hyphen".into());
        }
        Ok(RoomName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RoomName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RoomName::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room as stored and as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub id: String,
    pub name: RoomName,
    /// Owner; `None` for rooms created anonymously (`AUTH_BACKEND=none`).
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub zulip_auto_post: bool,
    pub zulip_stream: String,
    pub zulip_topic: String,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub is_shared: bool,
    /// Chosen by the flags when the room was created, and kept as a record of that. The API
    /// shows the platform of the room's next meeting under the current flags instead
    /// (`select_platform`), since the flags change at run time.
    pub platform: Platform,
    /// Participants record without the consent dialog; on Daily this also shows Daily's own
    /// record button for cloud recordings. Rooms stored before the field existed read false.
    #[serde(default)]
    pub skip_consent: bool,
}

/// A meeting: one platform room instance for a Reflector room, live until `end_date`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    pub id: String,
    pub room_id: String,
    /// The platform's room name (Daily room name, Whereby roomName without the leading slash).
    pub room_name: String,
    pub room_url: String,
    pub host_room_url: String,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub user_id: Option<String>,
    pub is_locked: bool,
    pub room_mode: RoomMode,
    pub recording_type: RecordingType,
    pub recording_trigger: RecordingTrigger,
    pub num_clients: i64,
    pub is_active: bool,
    /// The platform actually used for this meeting.
    pub platform: Platform,
    /// Platform-specific data kept as JSON (for example the platform's meeting id).
    #[serde(default)]
    pub extra_data: serde_json::Value,
    /// The Daily recording kinds the server has started for this meeting; each is started at
    /// most once (`MeetingStore::mark_recording_started`).
    #[serde(default)]
    pub recordings_started: BTreeSet<RecordingKind>,
}

/// One participant's stay in a meeting (Daily's session history; also recorded for Whereby).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantSession {
    pub meeting_id: String,
    pub session_id: String,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

/// Where a recording comes from; also its identity for create-if-absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingSource {
    /// An object in a bucket (Whereby's S3 upload, Daily's `s3_key`).
    S3 { bucket: String, key: String },
    /// A platform's recording id (Daily `recording_id`): one file.
    PlatformRecording {
        platform: Platform,
        recording_id: String,
    },
    /// A platform's multitrack recording (Daily `raw-tracks`): one audio file per participant.
    /// Its identity is the same as [`RecordingSource::PlatformRecording`]'s with the same id, so
    /// a recording announced once as each kind is still one recording.
    PlatformTracks {
        platform: Platform,
        recording_id: String,
    },
}

impl RecordingSource {
    /// A stable string key for uniqueness (`s3://bucket/key` or `daily:<id>`).
    pub fn source_key(&self) -> String {
        match self {
            RecordingSource::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            RecordingSource::PlatformRecording {
                platform,
                recording_id,
            }
            | RecordingSource::PlatformTracks {
                platform,
                recording_id,
            } => format!("{platform}:{recording_id}"),
        }
    }

    /// Whether the recording has one audio track per participant.
    pub fn is_multitrack(&self) -> bool {
        matches!(self, RecordingSource::PlatformTracks { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    /// The file is kept in our bucket but not transcribed: a meeting's cloud recording when
    /// the same meeting has a multitrack one, which is what the pipeline gets.
    Stored,
}

impl RecordingStatus {
    /// Legal transitions: pending -> processing -> completed | stored | failed; pending ->
    /// failed (recording.error before any processing); failed -> processing (reprocessing).
    pub fn can_become(self, next: RecordingStatus) -> bool {
        use RecordingStatus::*;
        matches!(
            (self, next),
            (Pending, Processing)
                | (Pending, Failed)
                | (Processing, Completed)
                | (Processing, Stored)
                | (Processing, Failed)
                | (Failed, Processing)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub id: String,
    pub meeting_id: String,
    pub source: RecordingSource,
    pub status: RecordingStatus,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptStatus {
    Idle,
    Uploaded,
    Error,
}

/// An object in S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub id: String,
    pub recording_id: String,
    pub meeting_id: String,
    pub room_id: String,
    pub status: TranscriptStatus,
    pub error: Option<String>,
    /// Whether `error` is permanent (no audio, disallowed host) or worth a retry.
    pub error_permanent: bool,
    pub audio: Option<S3Location>,
    /// Set once the pipeline message was sent, so it is sent at most once.
    pub pipeline_sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    pub id: String,
    pub meeting_id: String,
    /// `None` for anonymous consents, which are appended rather than upserted.
    pub user_id: Option<String>,
    pub consent_given: bool,
    pub consent_timestamp: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_round_trips_lowercase_and_unknown_names_list_known_ones() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>().unwrap(), p);
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        let err = "zoom".parse::<Platform>().unwrap_err().to_string();
        assert!(
            err.contains("zoom") && err.contains("whereby, daily, mock"),
            "{err}"
        );
    }

    #[test]
    fn enums_serialize_as_the_original_api_spells_them() {
        assert_eq!(
            serde_json::to_string(&RecordingTrigger::Automatic2ndParticipant).unwrap(),
            "\"automatic-2nd-participant\""
        );
        assert_eq!(
            serde_json::from_str::<RecordingTrigger>("\"automatic\"").unwrap(),
            RecordingTrigger::Automatic
        );
        assert_eq!(
            "automatic-2nd-participant".parse::<RecordingTrigger>(),
            Ok(RecordingTrigger::Automatic2ndParticipant)
        );
        assert_eq!(
            serde_json::to_string(&RoomMode::Group).unwrap(),
            "\"group\""
        );
        assert_eq!(
            serde_json::to_string(&RecordingType::Cloud).unwrap(),
            "\"cloud\""
        );
        assert!("loud".parse::<RecordingType>().is_err());
        assert_eq!(
            serde_json::to_string(&RecordingKind::RawTracks).unwrap(),
            "\"raw-tracks\""
        );
        for k in [RecordingKind::Cloud, RecordingKind::RawTracks] {
            assert_eq!(k.as_str().parse::<RecordingKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert!("local".parse::<RecordingKind>().is_err());
    }

    #[test]
    fn rooms_and_meetings_written_before_the_new_fields_read_with_defaults() {
        let room = serde_json::json!({
            "id": "r", "name": "team", "user_id": null, "created_at": "2026-01-02T03:04:05Z",
            "zulip_auto_post": false, "zulip_stream": "", "zulip_topic": "", "is_locked": false,
            "room_mode": "normal", "recording_type": "cloud",
            "recording_trigger": "automatic", "is_shared": false, "platform": "daily"
        });
        let room: Room = serde_json::from_value(room).unwrap();
        assert!(!room.skip_consent);
        let meeting = serde_json::json!({
            "id": "m", "room_id": "r", "room_name": "team-1", "room_url": "u",
            "host_room_url": "u", "start_date": "2026-01-02T03:04:05Z",
            "end_date": "2026-01-02T11:04:05Z", "user_id": null, "is_locked": false,
            "room_mode": "normal", "recording_type": "cloud", "recording_trigger": "automatic",
            "num_clients": 0, "is_active": true, "platform": "daily"
        });
        let meeting: Meeting = serde_json::from_value(meeting).unwrap();
        assert!(meeting.recordings_started.is_empty());
    }

    #[test]
    fn room_names_follow_platform_rules() {
        assert!(RoomName::parse("team-standup-2").is_ok());
        assert!(RoomName::parse(&"a".repeat(RoomName::MAX_LEN)).is_ok());
        for bad in [
            "",
            "Upper",
            "with space",
            "-lead",
            "trail-",
            "under_score",
            "slash/x",
            "émoji",
        ] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RoomName::parse(&"a".repeat(RoomName::MAX_LEN + 1)).is_err());
        assert!(serde_json::from_str::<RoomName>("\"Bad Name\"").is_err());
    }

    #[test]
    fn recording_status_refuses_illegal_transitions() {
        use RecordingStatus::*;
        assert!(Pending.can_become(Processing));
        assert!(Processing.can_become(Completed));
        assert!(Processing.can_become(Failed));
        assert!(!Completed.can_become(Processing));
        assert!(!Completed.can_become(Failed));
        assert!(!Pending.can_become(Completed));
        assert!(!Processing.can_become(Pending));
    }

    #[test]
    fn recording_source_keys_are_distinct_per_source() {
        let a = RecordingSource::S3 {
            bucket: "b".into(),
            key: "k".into(),
        };
        let b = RecordingSource::PlatformRecording {
            platform: Platform::Daily,
            recording_id: "k".into(),
        };
        assert_eq!(a.source_key(), "s3://b/k");
        assert_eq!(b.source_key(), "daily:k");
    }

    #[test]
    fn a_multitrack_recording_has_the_identity_of_the_single_file_one_with_its_id() {
        let tracks = RecordingSource::PlatformTracks {
            platform: Platform::Daily,
            recording_id: "k".into(),
        };
        assert_eq!(tracks.source_key(), "daily:k");
        assert!(tracks.is_multitrack());
        assert!(!RecordingSource::PlatformRecording {
            platform: Platform::Daily,
            recording_id: "k".into(),
        }
        .is_multitrack());
    }
}
