//! Step 1 and 3 of a sweep: active meetings past their end date, or whose platform says every
//! session has ended, are deactivated.

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tracing::{debug, info, warn};

use shared::domain::{Meeting, Platform};
use shared::platform::SessionData;

use crate::daily::{reconcile_presence, PresenceChanges};
use crate::handler::{Deps, Summary, SweepError};

#[derive(Debug)]
enum MeetingOutcome {
    StaysActive(Option<PresenceChanges>),
    Deactivated(Option<PresenceChanges>),
    Failed(SweepError),
    /// Not started, or cut off, because the deadline came.
    NotReached,
}

pub(crate) async fn sweep_meetings(
    deps: &Deps,
    meetings: Vec<Meeting>,
    now: DateTime<Utc>,
    deadline: Instant,
    summary: &mut Summary,
) {
    let tokio_deadline = tokio::time::Instant::from_std(deadline);
    let mut outcomes = stream::iter(meetings)
        .map(|meeting| async move {
            if Instant::now() >= deadline {
                return (meeting, MeetingOutcome::NotReached);
            }
            // A platform call may retry for tens of seconds; it must not outlive the run.
            let outcome =
                match tokio::time::timeout_at(tokio_deadline, sweep_meeting(deps, &meeting, now))
                    .await
                {
                    Ok(Ok((true, presence))) => MeetingOutcome::Deactivated(presence),
                    Ok(Ok((false, presence))) => MeetingOutcome::StaysActive(presence),
                    Ok(Err(e)) => MeetingOutcome::Failed(e),
                    Err(_) => MeetingOutcome::NotReached,
                };
            (meeting, outcome)
        })
        .buffer_unordered(deps.settings.platform_concurrency.max(1));

    while let Some((meeting, outcome)) = outcomes.next().await {
        match outcome {
            MeetingOutcome::NotReached => summary.stopped_early = true,
            MeetingOutcome::StaysActive(presence) => {
                summary.checked += 1;
                summary.add_presence(presence);
            }
            MeetingOutcome::Deactivated(presence) => {
                summary.checked += 1;
                summary.deactivated += 1;
                summary.add_presence(presence);
            }
            MeetingOutcome::Failed(e) => {
                summary.checked += 1;
                summary.skipped_on_error += 1;
                warn!(
                    meeting_id = %meeting.id,
                    room_name = %meeting.room_name,
                    platform = %meeting.platform,
                    error = %e,
                    "meeting skipped: checking it failed"
                );
            }
        }
    }
}

/// Returns whether the meeting was deactivated, and what Daily's presence corrected.
async fn sweep_meeting(
    deps: &Deps,
    meeting: &Meeting,
    now: DateTime<Utc>,
) -> Result<(bool, Option<PresenceChanges>), SweepError> {
    if meeting.end_date <= now {
        deps.meetings.deactivate(&meeting.id).await?;
        info!(meeting_id = %meeting.id, end_date = %meeting.end_date, "meeting deactivated: past its end date");
        return Ok((true, None));
    }
    let (in_use, presence) = match (&deps.daily, meeting.platform) {
        // Daily's presence corrects the stored sessions first; the rule then runs on them.
        (Some(daily), Platform::Daily) => {
            let (in_use, changes) = reconcile_presence(deps, daily, meeting, now).await?;
            (in_use, Some(changes))
        }
        _ => {
            let platform = deps.platforms.get(meeting.platform)?;
            let sessions = platform.get_room_sessions(&meeting.room_name).await?;
            (still_in_use(&sessions), None)
        }
    };
    if in_use {
        debug!(meeting_id = %meeting.id, "meeting stays active");
        return Ok((false, presence));
    }
    deps.meetings.deactivate(&meeting.id).await?;
    info!(meeting_id = %meeting.id, "meeting deactivated: all sessions ended");
    Ok((true, presence))
}

/// A meeting nobody has joined yet is waiting for its participants; one with an open session is
/// in use. Only a meeting whose every session has ended is over.
pub fn still_in_use(sessions: &[SessionData]) -> bool {
    sessions.is_empty() || sessions.iter().any(|s| s.ended_at.is_none())
}
