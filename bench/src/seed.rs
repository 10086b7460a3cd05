//! Meetings the cold-start events refer to, written to the emulator before the runs, so a
//! participant event meets a real meeting and the DynamoDB requests counted are the full path
//! (claim, meeting lookup, session or count writes), not the "unknown meeting" short cut.

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use serde::Deserialize;
use shared::domain::{
    Meeting, Platform, RecordingKind, RecordingTrigger, RecordingType, Room, RoomMode, RoomName,
};
use shared::store::dynamo::{DynamoMeetingStore, DynamoRoomStore};
use shared::store::{Claim, MeetingStore, RoomStore, StoreError};

#[derive(Debug, Clone, Deserialize)]
pub struct SeedMeeting {
    /// The platform room name the events name (`payload.room`, `data.roomName` without `/`).
    pub room_name: String,
    pub platform: Platform,
    /// A fixed meeting id, for events that name the meeting (a join); fresh when absent.
    #[serde(default)]
    pub meeting_id: Option<String>,
    /// The Reflector room the meeting belongs to, created under this name (id
    /// `bench-<room_name>`) for routes that read the room by name; none when absent.
    #[serde(default)]
    pub reflector_room: Option<String>,
    /// Recordings the server has already started for the meeting: a join then has nothing to
    /// start, as every join after a recording began.
    #[serde(default)]
    pub recordings_started: BTreeSet<RecordingKind>,
}

/// Makes each seeded room's active meeting exist in `table` at the emulator `endpoint` (and its
/// Reflector room in `rooms_table` when the seed names one). An already active meeting for the
/// room is kept.
pub async fn seed_meetings(
    seeds: &[SeedMeeting],
    endpoint: &str,
    table: &str,
    rooms_table: &str,
) -> Result<(), StoreError> {
    if seeds.is_empty() {
        return Ok(());
    }
    let sdk = shared::aws::load_sdk_config()
        .await
        .into_builder()
        .endpoint_url(endpoint)
        .build();
    let client = shared::aws::AwsClients::new(&sdk).dynamodb;
    let store = DynamoMeetingStore::new(client.clone(), table.to_owned());
    let rooms = DynamoRoomStore::new(client, rooms_table.to_owned());
    for seed in seeds {
        let now = Utc::now();
        if let Some(name) = &seed.reflector_room {
            seed_room(
                &rooms,
                name,
                &format!("bench-{}", seed.room_name),
                seed.platform,
            )
            .await?;
        }
        let meeting = Meeting {
            recordings_started: seed.recordings_started.clone(),
            id: seed
                .meeting_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            // Stable per room name, so a second seeding finds the first meeting and keeps it.
            room_id: format!("bench-{}", seed.room_name),
            room_name: seed.room_name.clone(),
            room_url: format!("https://bench.invalid/{}", seed.room_name),
            host_room_url: String::new(),
            start_date: now,
            // Outlives any benchmark run.
            end_date: now + Duration::hours(8),
            user_id: None,
            is_locked: false,
            room_mode: RoomMode::Normal,
            recording_type: RecordingType::Cloud,
            recording_trigger: RecordingTrigger::Automatic2ndParticipant,
            num_clients: 0,
            is_active: true,
            platform: seed.platform,
            extra_data: serde_json::Value::Null,
        };
        match store.claim_active(&meeting, now).await? {
            Claim::Won => eprintln!("seeded meeting {} for room {}", meeting.id, seed.room_name),
            Claim::Lost(m) => eprintln!("room {} already has meeting {}", seed.room_name, m.id),
        }
    }
    Ok(())
}

/// Creates the Reflector room `name` with id `id`; one left by an earlier seeding is kept.
async fn seed_room(
    rooms: &DynamoRoomStore,
    name: &str,
    id: &str,
    platform: Platform,
) -> Result<(), StoreError> {
    let room = Room {
        id: id.to_owned(),
        name: RoomName::parse(name)
            .map_err(|reason| StoreError::Other(format!("seed room name {name:?}: {reason}")))?,
        user_id: None,
        created_at: Utc::now(),
        zulip_auto_post: false,
        zulip_stream: String::new(),
        zulip_topic: String::new(),
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        is_shared: false,
        platform,
        skip_consent: false,
    };
    match rooms.create(&room).await {
        Ok(()) => eprintln!("seeded room {name}"),
        Err(StoreError::Conflict { .. }) => eprintln!("room {name} already exists"),
        Err(e) => return Err(e),
    }
    Ok(())
}
