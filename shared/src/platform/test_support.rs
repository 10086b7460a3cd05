//! Helpers for the platform tests: a fixed clock, a sample room, fake-server plumbing.

use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::http::HttpSettings;
use crate::domain::{Meeting, Platform, RecordingTrigger, RecordingType, Room, RoomMode, RoomName};

pub const API_KEY: &str = "test-api-key";

pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

pub fn room() -> Room {
    Room {
        skip_consent: false,
        id: "room-id-1".into(),
        name: RoomName::parse("team-standup").unwrap(),
        user_id: Some("user-1".into()),
        created_at: fixed_now(),
        zulip_auto_post: false,
        zulip_stream: String::new(),
        zulip_topic: String::new(),
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        is_shared: false,
        platform: Platform::Daily,
    }
}

/// An active Daily meeting of [`room`].
pub fn meeting() -> Meeting {
    Meeting {
        id: "meeting-1".into(),
        room_id: "room-id-1".into(),
        room_name: "team-standup-20260102030405".into(),
        room_url: "https://x.daily.co/team-standup-20260102030405".into(),
        host_room_url: "https://x.daily.co/team-standup-20260102030405".into(),
        start_date: fixed_now(),
        end_date: fixed_now() + chrono::Duration::hours(8),
        user_id: Some("user-1".into()),
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        num_clients: 0,
        is_active: true,
        platform: Platform::Daily,
        extra_data: serde_json::json!({}),
        recordings_started: Default::default(),
    }
}

pub fn key() -> SecretString {
    SecretString::from(API_KEY)
}

pub fn settings() -> HttpSettings {
    HttpSettings::fast_for_tests()
}

/// Like the real APIs, the fake answers any request the test did not expect (wrong path,
/// method, or a missing/wrong bearer token) with an error: 401 with Daily's/Whereby's error
/// body. Mounted at the lowest priority so the test's own mocks win.
pub async fn reject_unexpected(server: &MockServer, body: serde_json::Value) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401).set_body_json(body))
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}
