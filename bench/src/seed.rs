//! Meetings the cold-start events refer to, written to the emulator before the runs, so a
//! participant event meets a real meeting and the DynamoDB requests counted are the full path
//! (claim, meeting lookup, session or count writes), not the "unknown meeting" short cut.

use chrono::{Duration, Utc};
use serde::Deserialize;
use shared::domain::{Meeting, Platform, RecordingTrigger, RecordingType, RoomMode};
use shared::store::dynamo::DynamoMeetingStore;
use shared::store::{Claim, MeetingStore, StoreError};

#[derive(Debug, Clone, Deserialize)]
pub struct SeedMeeting {
    /// The platform room name the events name (`payload.room`, `data.roomName` without `/`).
    pub room_name: String,
    pub platform: Platform,
}

/// Makes each seeded room's active meeting exist in `table` at the emulator `endpoint`. An
/// already active meeting for the room is kept.
pub async fn seed_meetings(
    seeds: &[SeedMeeting],
    endpoint: &str,
    table: &str,
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
    let store = DynamoMeetingStore::new(client, table.to_owned());
    for seed in seeds {
        let now = Utc::now();
        let meeting = Meeting {
            recordings_started: Default::default(),
            id: uuid::Uuid::new_v4().to_string(),
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
