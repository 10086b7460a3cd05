//! The Daily webhook's dependencies over in-memory stores, and its fixtures, shared by this
//! crate's test binaries.

#![allow(dead_code)] // each test binary uses its own part

use std::sync::Arc;

use chrono::{Duration, Utc};
use daily_webhook::handler::Deps;
use secrecy::SecretString;
use serde_json::Value;
use shared::domain::{Meeting, Platform, RecordingKind, RecordingTrigger, RecordingType, RoomMode};
use shared::fakes::{
    MemoryMeetings, MemoryParticipantEvents, MemoryRecordingQueue, MemoryRecordings,
    MemorySessions, MemoryWebhookEvents,
};
use shared::metrics::{Function, Metrics, Registry};
use shared::webhook::fixtures::retarget;

/// Base64, as Daily issues webhook secrets; the seed scheme uses the same string's bytes.
pub const SECRET: &str = "c2VjcmV0LWZvci1kYWlseS10ZXN0cw==";
pub const ROOM: &str = "fixture-room";
pub const MEETING_ID: &str = "meeting-1";
pub const BUCKET: &str = "daily-recordings";

pub struct World {
    pub meetings: Arc<MemoryMeetings>,
    pub sessions: Arc<MemorySessions>,
    pub recordings: Arc<MemoryRecordings>,
    pub events: Arc<MemoryWebhookEvents>,
    pub participants: Arc<MemoryParticipantEvents>,
    pub queue: Arc<MemoryRecordingQueue>,
    pub metrics: Arc<Registry>,
    pub deps: Arc<Deps>,
}

pub fn meeting(id: &str, room_name: &str) -> Meeting {
    let now = Utc::now();
    Meeting {
        recordings_started: Default::default(),
        id: id.into(),
        room_id: "room-1".into(),
        room_name: room_name.into(),
        room_url: format!("https://example.daily.co/{room_name}"),
        host_room_url: String::new(),
        start_date: now,
        end_date: now + Duration::hours(8),
        user_id: None,
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        num_clients: 0,
        is_active: true,
        platform: Platform::Daily,
        extra_data: Value::Null,
    }
}

pub fn world_with(secret: Option<&str>, bucket: Option<&str>) -> World {
    let meetings = Arc::new(MemoryMeetings::default());
    meetings.insert(meeting(MEETING_ID, ROOM));
    let sessions = Arc::new(MemorySessions::default());
    let recordings = Arc::new(MemoryRecordings::default());
    let events = Arc::new(MemoryWebhookEvents::default());
    let queue = Arc::new(MemoryRecordingQueue::default());
    let participants = Arc::new(MemoryParticipantEvents::new(
        meetings.clone(),
        sessions.clone(),
        events.clone(),
    ));
    let metrics = Arc::new(Registry::default());
    let deps = Deps {
        metrics: Metrics::new(Function::DailyWebhook, metrics.clone()),
        meetings: meetings.clone(),
        participants: participants.clone(),
        recordings: recordings.clone(),
        events: events.clone(),
        queue: queue.clone(),
        secret: secret.map(|s| SecretString::from(s.to_owned())),
        daily_bucket: bucket.map(str::to_owned),
        recording_types: [RecordingKind::Cloud].into(),
        lease: shared::webhook::pipeline::DEFAULT_LEASE,
    };
    World {
        meetings,
        sessions,
        recordings,
        events,
        participants,
        queue,
        metrics,
        deps: Arc::new(deps),
    }
}

pub fn world() -> World {
    world_with(Some(SECRET), Some(BUCKET))
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The Daily fixture of `event` in `format`, with the top-level id replaced when given.
pub fn daily_fixture(format: &str, event: &str, id: Option<&str>) -> Vec<u8> {
    retarget(&fixture(&format!("daily/{format}/{event}.json")), None, id).unwrap()
}
