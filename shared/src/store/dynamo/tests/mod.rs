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

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{DynamoStores, RequestCounter};
use crate::config::TableNames;
use crate::domain::{Meeting, Platform, RecordingTrigger, RecordingType, Room, RoomMode, RoomName};
use crate::store::{Claim, EventClaim, MeetingStore};
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

/// A webhook event's claim as the webhook functions make it: remembered a day, leased a minute.
pub(super) fn event_claim(
    platform: Platform,
    event_id: &str,
    now: DateTime<Utc>,
) -> EventClaim<'_> {
    EventClaim {
        platform,
        event_id,
        ttl: std::time::Duration::from_secs(86_400),
        lease: std::time::Duration::from_secs(60),
        now,
    }
}

/// An active meeting of `room_name`, stored; the operation counter is reset afterwards.
pub(super) async fn stored_meeting(env: &Env, room_name: &str) -> Meeting {
    let m = meeting(&id(), room_name, at(0), 8);
    assert_eq!(
        env.stores.meetings.claim_active(&m, at(0)).await.unwrap(),
        Claim::Won
    );
    env.ops();
    m
}

/// The meeting's stored count (the counter reset afterwards).
pub(super) async fn num_clients(env: &Env, meeting_id: &str) -> i64 {
    let n = env
        .stores
        .meetings
        .get(meeting_id)
        .await
        .unwrap()
        .unwrap()
        .num_clients;
    env.ops();
    n
}

/// A webhook event's item by key (`daily#<id>`), read raw: claims dated in the past would look
/// expired to `WebhookEventStore::claim`, which uses the real time.
pub(super) async fn webhook_event_item(
    env: &Env,
    pk: &str,
) -> Option<HashMap<String, AttributeValue>> {
    env.raw
        .get_item()
        .table_name(&env.tables.webhook_events)
        .key("pk", AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}
