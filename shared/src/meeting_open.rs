//! Opening a room's meeting on a platform: the platform room, then the one conditional write
//! that makes it the room's active meeting. Shared by the rooms API's get-or-create and by
//! `reflector-admin meeting create`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::domain::{Meeting, Platform, Room};
use crate::platform::{PlatformError, VideoPlatform};
use crate::store::{Claim, MeetingStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{platform} failed: {source}")]
    Platform {
        platform: Platform,
        source: PlatformError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How [`open_meeting`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// This call's meeting is now the room's active meeting.
    Created(Meeting),
    /// Another meeting became active first; this call's platform room was deleted.
    Existing(Meeting),
}

impl Opened {
    pub fn meeting(&self) -> &Meeting {
        match self {
            Opened::Created(m) | Opened::Existing(m) => m,
        }
    }
}

/// Creates a platform room on `client` for a meeting of `room` from `now` for `duration`, owned
/// by `user`, and claims the room's active slot with it. When another meeting holds the slot,
/// or the claim fails, the platform room made here is deleted again, so nothing leaks.
pub async fn open_meeting(
    client: &dyn VideoPlatform,
    meetings: &dyn MeetingStore,
    room: &Room,
    user: Option<String>,
    now: DateTime<Utc>,
    duration: Duration,
) -> Result<Opened, OpenError> {
    let platform = client.platform();
    let end_date =
        now + chrono::Duration::from_std(duration).unwrap_or_else(|_| chrono::Duration::hours(8));
    // Daily (and the mock) name rooms `<prefix>-<second>`, and Daily deletes by name: racing
    // callers within one second would otherwise collide, and a loser would delete the winner's
    // room. A random part keeps every caller's room its own. Whereby names rooms itself.
    let prefix = match platform {
        Platform::Whereby => room.name.to_string(),
        _ => {
            let tag = uuid::Uuid::new_v4().simple().to_string();
            format!("{}-{}", room.name, &tag[..6])
        }
    };
    let created = client
        .create_meeting(&prefix, end_date, room)
        .await
        .map_err(|source| OpenError::Platform { platform, source })?;

    let meeting = Meeting {
        recordings_started: Default::default(),
        id: created.meeting_id.clone(),
        room_id: room.id.clone(),
        room_name: created.room_name.clone(),
        room_url: created.room_url.clone(),
        host_room_url: created.host_room_url.clone(),
        start_date: now,
        end_date,
        user_id: user,
        is_locked: room.is_locked,
        room_mode: room.room_mode,
        recording_type: room.recording_type,
        recording_trigger: room.recording_trigger,
        num_clients: 0,
        is_active: true,
        platform: created.platform,
        extra_data: created.extra_data,
    };
    match meetings.claim_active(&meeting, now).await {
        Ok(Claim::Won) => {
            info!(meeting_id = %meeting.id, %platform, "meeting created");
            Ok(Opened::Created(meeting))
        }
        Ok(Claim::Lost(winner)) => {
            info!(winner = %winner.id, "another request created the meeting first");
            discard_platform_room(client, &meeting).await;
            Ok(Opened::Existing(winner))
        }
        Err(e) => {
            discard_platform_room(client, &meeting).await;
            Err(e.into())
        }
    }
}

/// Deletes a platform room that will not be used. A failure is logged: the room expires on its
/// own at `end_date` on both platforms.
async fn discard_platform_room(client: &dyn VideoPlatform, meeting: &Meeting) {
    if let Err(e) = client
        .delete_room(&meeting.room_name, Some(&meeting.id))
        .await
    {
        warn!(room_name = %meeting.room_name, platform = %meeting.platform, error = %e,
            "could not delete an unused platform room; it expires at its end date");
    }
}
