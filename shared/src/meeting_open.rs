//! Opening a room's meeting on a platform: the platform room, then the one conditional write
//! that makes it the room's active meeting. Shared by the rooms API's get-or-create and by
//! `reflector-admin meeting create`.
//!
//! Under a request deadline ([`crate::deadline`]) the platform call gets all but
//! [`CLEANUP_RESERVE`] of the time left, so that a room whose creation ran out of time, or
//! whose meeting could not be stored, can still be deleted before the answer is due. A room
//! that cannot be deleted (Whereby names its rooms, so a creation whose answer never came
//! leaves nothing to delete by; the deletion failed; the store write's outcome is unknown) is
//! reported: a warning naming it and the caller's `left_behind` hook (the rooms API counts
//! `PlatformRoomLeftBehind`). Either way it expires at the meeting's end date on both
//! platforms.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::deadline;
use crate::domain::{Meeting, Platform, Room};
use crate::platform::{PlatformError, VideoPlatform};
use crate::store::{Claim, MeetingStore, StoreError};

/// The part of a request's time kept back from creating the platform room, for deleting it
/// again when the creation's answer came too late or the meeting could not be stored.
pub const CLEANUP_RESERVE: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{platform} failed: {source}")]
    Platform {
        platform: Platform,
        source: PlatformError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store write that makes the meeting active did not finish before the deadline: it
    /// may or may not have happened, so the platform room is kept (and reported).
    #[error("the meeting was not stored before the request's deadline")]
    StoreTimedOut,
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
/// the claim fails, or the creation's outcome is unknown, the platform room made here is
/// deleted again; one that cannot be is reported through `left_behind` (see the module
/// documentation), so nothing leaks silently.
pub async fn open_meeting(
    client: &dyn VideoPlatform,
    meetings: &dyn MeetingStore,
    room: &Room,
    user: Option<String>,
    now: DateTime<Utc>,
    duration: Duration,
    left_behind: &(dyn Fn(Platform) + Send + Sync),
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
    let created = match deadline::current() {
        Some(d) => {
            let create_by = d.checked_sub(CLEANUP_RESERVE).unwrap_or(d);
            let create = client.create_meeting(&prefix, end_date, room);
            deadline::within(create_by, deadline::enforce(create))
                .await
                .unwrap_or_else(|| Err(cut_off(platform)))
        }
        None => client.create_meeting(&prefix, end_date, room).await,
    };
    let created = match created {
        Ok(created) => created,
        Err(source) => {
            if let PlatformError::Unconfirmed { room_name, .. } = &source {
                match room_name {
                    Some(name) => {
                        warn!(room_name = %name, %platform, error = %source,
                            "the platform room's creation is unconfirmed; deleting it");
                        discard_platform_room(client, platform, name, None, left_behind).await;
                    }
                    None => report_left_behind(
                        platform,
                        None,
                        "the creation's outcome is unknown and the platform names its rooms",
                        &source.to_string(),
                        left_behind,
                    ),
                }
            }
            return Err(OpenError::Platform { platform, source });
        }
    };

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
    let discard = || {
        discard_platform_room(
            client,
            meeting.platform,
            &meeting.room_name,
            Some(&meeting.id),
            left_behind,
        )
    };
    match deadline::enforce(meetings.claim_active(&meeting, now)).await {
        Some(Ok(Claim::Won)) => {
            info!(meeting_id = %meeting.id, %platform, "meeting created");
            Ok(Opened::Created(meeting))
        }
        Some(Ok(Claim::Lost(winner))) => {
            info!(winner = %winner.id, "another request created the meeting first");
            discard().await;
            Ok(Opened::Existing(winner))
        }
        Some(Err(e)) => {
            warn!(room_name = %meeting.room_name, %platform, error = %e,
                "the meeting could not be stored; deleting its platform room");
            discard().await;
            Err(e.into())
        }
        None => {
            // The write may still land: deleting the room could leave a stored meeting without
            // one, so it is kept, and reported.
            report_left_behind(
                meeting.platform,
                Some(&meeting.room_name),
                "the meeting's store write did not finish before the deadline",
                "",
                left_behind,
            );
            Err(OpenError::StoreTimedOut)
        }
    }
}

/// What a creation that did not come back before the deadline is, as an error.
fn cut_off(platform: Platform) -> PlatformError {
    PlatformError::Unconfirmed {
        platform,
        operation: "create room",
        room_name: None,
        cause: Box::new(PlatformError::Transport {
            platform,
            operation: "create room",
            timed_out: true,
            message: "no answer before the request's deadline".into(),
        }),
    }
}

/// Deletes a platform room that will not be used (within the request's deadline); one that
/// cannot be deleted is reported.
async fn discard_platform_room(
    client: &dyn VideoPlatform,
    platform: Platform,
    room_name: &str,
    platform_meeting_id: Option<&str>,
    left_behind: &(dyn Fn(Platform) + Send + Sync),
) {
    match deadline::enforce(client.delete_room(room_name, platform_meeting_id)).await {
        Some(Ok(())) => info!(%room_name, %platform, "unused platform room deleted"),
        Some(Err(e)) => report_left_behind(
            platform,
            Some(room_name),
            "its deletion failed",
            &e.to_string(),
            left_behind,
        ),
        None => report_left_behind(
            platform,
            Some(room_name),
            "its deletion did not finish before the deadline",
            "",
            left_behind,
        ),
    }
}

fn report_left_behind(
    platform: Platform,
    room_name: Option<&str>,
    reason: &str,
    error: &str,
    left_behind: &(dyn Fn(Platform) + Send + Sync),
) {
    warn!(%platform, room_name = room_name.unwrap_or("unknown"), reason, error,
        "platform room left behind; it expires at the meeting's end date");
    left_behind(platform);
}
