//! Store tests against the moto server through the real SDK (no SDK mocks). Each test gets its
//! own uniquely prefixed tables, and checks the DynamoDB operations each call makes against the
//! counts documented on the methods.

mod client_counts;
mod consents;
mod flags;
mod meetings;
mod participant_events;
mod provision;
mod recordings;
mod rooms;
mod sessions;
mod transcripts;
mod webhooks;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{DynamoStores, RequestCounter};
use crate::config::TableNames;
use crate::domain::{Meeting, Platform, RecordingTrigger, RecordingType, Room, RoomMode, RoomName};
use crate::testing::{emulator, fresh_tables};

pub(super) struct Env {
    pub stores: DynamoStores,
    /// Counts the operations of `stores` only (not of `raw`).
    pub counter: RequestCounter,
    /// An uncounted client for arranging and inspecting raw items.
    pub raw: aws_sdk_dynamodb::Client,
    pub tables: TableNames,
}

impl Env {
    /// The operations made since the last call, by name.
    pub fn ops(&self) -> Vec<String> {
        self.counter.take()
    }
}

pub(super) async fn env() -> Env {
    let clients = emulator().await;
    let tables = fresh_tables(&clients).await;
    let (client, counter) = RequestCounter::instrument(&clients.dynamodb);
    Env {
        stores: DynamoStores::new(client, &tables),
        counter,
        raw: clients.dynamodb,
        tables,
    }
}

/// A fixed instant plus `secs`, so ordering in tests is explicit.
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::seconds(secs)
}

pub(super) fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(super) fn room(name: &str, user: Option<&str>, created_at: DateTime<Utc>) -> Room {
    Room {
        skip_consent: false,
        id: id(),
        name: RoomName::parse(name).unwrap(),
        user_id: user.map(str::to_owned),
        created_at,
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

pub(super) fn meeting(room_id: &str, room_name: &str, start: DateTime<Utc>, hours: i64) -> Meeting {
    Meeting {
        recordings_started: Default::default(),
        id: id(),
        room_id: room_id.to_owned(),
        room_name: room_name.to_owned(),
        room_url: format!("https://mock.video/{room_name}"),
        host_room_url: format!("https://mock.video/{room_name}?host"),
        start_date: start,
        end_date: start + Duration::hours(hours),
        user_id: Some("owner".into()),
        is_locked: false,
        room_mode: RoomMode::Group,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic,
        num_clients: 0,
        is_active: true,
        platform: Platform::Daily,
        extra_data: serde_json::json!({"daily_room_id": "abc"}),
    }
}
