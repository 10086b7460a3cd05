//! Step 1 and 3 of a sweep: active meetings past their end date, or whose platform says every
//! session has ended, are deactivated.

use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tracing::{debug, info, warn};

use shared::domain::Meeting;
use shared::platform::SessionData;

use crate::handler::{Deps, Summary, SweepError};

#[derive(Debug)]
enum MeetingOutcome {
    StaysActive,
    Deactivated,
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
                    Ok(Ok(true)) => MeetingOutcome::Deactivated,
                    Ok(Ok(false)) => MeetingOutcome::StaysActive,
                    Ok(Err(e)) => MeetingOutcome::Failed(e),
                    Err(_) => MeetingOutcome::NotReached,
                };
            (meeting, outcome)
        })
        .buffer_unordered(deps.settings.platform_concurrency.max(1));

    while let Some((meeting, outcome)) = outcomes.next().await {
        match outcome {
            MeetingOutcome::NotReached => summary.stopped_early = true,
            MeetingOutcome::StaysActive => summary.checked += 1,
            MeetingOutcome::Deactivated => {
                summary.checked += 1;
                summary.deactivated += 1;
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

/// Returns whether the meeting was deactivated.
async fn sweep_meeting(
    deps: &Deps,
    meeting: &Meeting,
    now: DateTime<Utc>,
) -> Result<bool, SweepError> {
    if meeting.end_date <= now {
        deps.meetings.deactivate(&meeting.id).await?;
        info!(meeting_id = %meeting.id, end_date = %meeting.end_date, "meeting deactivated: past its end date");
        return Ok(true);
    }
    let platform = deps.platforms.get(meeting.platform)?;
    let sessions = platform.get_room_sessions(&meeting.room_name).await?;
    if still_in_use(&sessions) {
        debug!(meeting_id = %meeting.id, sessions = sessions.len(), "meeting stays active");
        return Ok(false);
    }
    deps.meetings.deactivate(&meeting.id).await?;
    info!(meeting_id = %meeting.id, sessions = sessions.len(), "meeting deactivated: all sessions ended");
    Ok(true)
}

/// A meeting nobody has joined yet is waiting for its participants; one with an open session is
/// in use. Only a meeting whose every session has ended is over.
pub fn still_in_use(sessions: &[SessionData]) -> bool {
    sessions.is_empty() || sessions.iter().any(|s| s.ended_at.is_none())
}
