//! Reconciliation with Daily (DESIGN.md section 8), so that webhooks Daily dropped lose nothing:
//!
//! - **Presence** ([`reconcile_presence`]): for an active Daily meeting, its stored participant
//!   sessions are listed, then `GET /rooms/:name/presence` asked; stored sessions absent from
//!   presence are closed, present participants we lack are recorded, and `num_clients` becomes
//!   the presence count. The deactivation rule then runs on the corrected sessions.
//! - **Recordings** ([`recover_recordings`]): Daily's recording list, newest first, back to
//!   `DAILY_RECORDING_LOOKBACK`; a `finished` recording we do not have, of a Daily meeting of
//!   ours, is recorded and queued by [`shared::recording_intake::accept`], the webhook's path.
//! - **Webhook health** ([`check_webhook`]): our endpoint (`DAILY_WEBHOOK_URL`) in
//!   `GET /webhooks`; `FAILED` is re-armed with `POST /webhooks/:uuid`, missing is an error.
//!
//! The recording list is read for the whole domain rather than per room: no index lists the
//! meetings that ended within the lookback, Daily allows only about 2 `GET /recordings` per
//! second, and one page of 100 covers every room, active or ended. Its cost per run is the
//! number of recordings made within the lookback divided by 100, whatever the number of
//! meetings.

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use shared::domain::{Meeting, ParticipantSession, Platform, RecordingSource};
use shared::platform::daily::{DailyClient, DailyRecording, WebhookState};
use shared::recording_intake::{self, Content, Finished, IntakeError, Known};
use shared::store::sessions::room_sessions;

use crate::deactivate::still_in_use;
use crate::handler::{Deps, Summary, SweepError};

/// Recordings asked of Daily per page (its maximum).
pub const RECORDINGS_PAGE: u32 = 100;

/// Pages of Daily's recording list read per run at most (`GET /recordings` is limited to about
/// 2 per second): 1000 recordings, more than a lookback normally holds.
pub const MAX_RECORDING_PAGES: u32 = 10;

/// A stored session that joined this recently is not closed for missing from presence: Daily's
/// presence may not show a participant in the first seconds.
pub const PRESENCE_GRACE: chrono::Duration = chrono::Duration::seconds(30);

/// What the presence check changed for one meeting.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChanges {
    pub opened: u32,
    pub closed: u32,
    pub count_corrected: bool,
}

/// Corrects `meeting`'s sessions and count from Daily's presence; returns whether the meeting is
/// still in use (the deactivation rule over the corrected sessions) and what changed.
///
/// Requests: Daily 1 (presence); DynamoDB 1 (the sessions) plus 1 per session opened or closed
/// and 1 when the count changes.
pub(crate) async fn reconcile_presence(
    deps: &Deps,
    daily: &DailyClient,
    meeting: &Meeting,
    now: DateTime<Utc>,
) -> Result<(bool, PresenceChanges), SweepError> {
    // Sessions first, presence second: a participant joining in between is then only ever
    // missing from our list (and opened), never closed for missing from an older presence.
    let mut sessions = deps
        .participant_sessions
        .list_by_meeting(&meeting.id)
        .await?;
    let presence = daily.get_presence(&meeting.room_name).await?;
    let present: HashSet<&str> = presence.data.iter().map(|p| p.id.as_str()).collect();
    let mut changes = PresenceChanges::default();

    for session in sessions.iter_mut() {
        if session.left_at.is_some() || present.contains(session.session_id.as_str()) {
            continue;
        }
        if now.signed_duration_since(session.joined_at) < PRESENCE_GRACE {
            continue;
        }
        if deps
            .participant_sessions
            .close(&meeting.id, &session.session_id, now)
            .await?
        {
            changes.closed += 1;
            info!(meeting_id = %meeting.id, session_id = %session.session_id, "session closed: not in Daily's presence");
        }
        session.left_at = Some(now);
    }
    let known: HashSet<String> = sessions.iter().map(|s| s.session_id.clone()).collect();
    for p in presence.data.iter().filter(|p| !known.contains(&p.id)) {
        let joined_at = p
            .join_time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        let session = ParticipantSession {
            meeting_id: meeting.id.clone(),
            session_id: p.id.clone(),
            user_id: p.user_id.clone(),
            user_name: p.user_name.clone(),
            joined_at,
            left_at: None,
        };
        deps.participant_sessions.open(&session).await?;
        changes.opened += 1;
        info!(meeting_id = %meeting.id, session_id = %p.id, "session opened: in Daily's presence without a join event");
        sessions.push(session);
    }
    let count = i64::try_from(presence.total_count).unwrap_or(i64::MAX);
    if count != meeting.num_clients {
        changes.count_corrected = deps
            .meetings
            .set_clients_if_newer(&meeting.id, count, now)
            .await?;
        info!(meeting_id = %meeting.id, from = meeting.num_clients, to = count, "num_clients set from Daily's presence");
    }
    Ok((still_in_use(&room_sessions(sessions)), changes))
}

/// The job content of a recording as Daily's list describes it.
fn content_of(recording: &DailyRecording) -> Content {
    if recording.is_multitrack() {
        let keys = recording.audio_track_keys();
        return Content::Tracks((!keys.is_empty()).then_some(keys));
    }
    match &recording.s3key {
        Some(key) if !key.is_empty() => Content::S3Key(key.clone()),
        _ => Content::Unknown,
    }
}

/// Queues Daily's finished recordings of the lookback that we lack. Stops at the deadline, at
/// [`MAX_RECORDING_PAGES`], or at the first recording older than the lookback.
pub(crate) async fn recover_recordings(
    deps: &Deps,
    daily: &DailyClient,
    now: DateTime<Utc>,
    deadline: Instant,
    summary: &mut Summary,
) {
    let lookback = chrono::Duration::from_std(deps.config.daily.recording_lookback)
        .unwrap_or(chrono::Duration::MAX);
    let cutoff = now
        .checked_sub_signed(lookback)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let tokio_deadline = tokio::time::Instant::from_std(deadline);
    let mut after: Option<String> = None;
    for _ in 0..MAX_RECORDING_PAGES {
        if Instant::now() >= deadline {
            summary.stopped_early = true;
            return;
        }
        let page = match tokio::time::timeout_at(
            tokio_deadline,
            daily.list_recordings(None, after.as_deref(), RECORDINGS_PAGE),
        )
        .await
        {
            Err(_) => {
                summary.stopped_early = true;
                return;
            }
            Ok(Err(e)) => {
                error!(error = %e, "listing Daily recordings failed");
                summary
                    .errors
                    .push(format!("listing Daily recordings: {e}"));
                return;
            }
            Ok(Ok(page)) => page,
        };
        let full = page.data.len() >= RECORDINGS_PAGE as usize;
        after = page.data.last().map(|r| r.id.clone());
        let mut reached_cutoff = false;
        for recording in &page.data {
            let started = recording
                .start_ts
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
            if started.is_some_and(|t| t < cutoff) {
                reached_cutoff = true;
                continue;
            }
            summary.daily_recordings_seen += 1;
            if !recording.is_finished() {
                continue;
            }
            if Instant::now() >= deadline {
                summary.stopped_early = true;
                return;
            }
            match tokio::time::timeout_at(tokio_deadline, recover_one(deps, recording, now)).await {
                Err(_) => {
                    summary.stopped_early = true;
                    return;
                }
                Ok(Ok(true)) => summary.recordings_recovered += 1,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    summary.recordings_recovery_failed += 1;
                    warn!(daily_recording = %recording.id, error = %e, "recovering a Daily recording failed; the next run tries again");
                }
            }
        }
        if reached_cutoff || !full || after.is_none() {
            return;
        }
    }
}

/// Whether `recording` was unknown and is now recorded and queued.
async fn recover_one(
    deps: &Deps,
    recording: &DailyRecording,
    now: DateTime<Utc>,
) -> Result<bool, SweepError> {
    let identity = RecordingSource::PlatformRecording {
        platform: Platform::Daily,
        recording_id: recording.id.clone(),
    };
    if deps.recordings.get_by_source(&identity).await?.is_some() {
        return Ok(false);
    }
    let Some(room) = recording.room_name.as_deref() else {
        return Ok(false);
    };
    let Some(meeting) = deps.meetings.get_by_room_name(room).await? else {
        // Another application's room on the same Daily domain, or a meeting we no longer have.
        return Ok(false);
    };
    if meeting.platform != Platform::Daily {
        return Ok(false);
    }
    let finished = Finished {
        recording_id: recording.id.clone(),
        content: content_of(recording),
    };
    let accepted = recording_intake::accept(
        deps.recordings.as_ref(),
        deps.queue.as_ref(),
        deps.config.daily.s3_bucket.as_deref(),
        &meeting,
        &finished,
        Known::Skip,
        now,
    )
    .await
    .map_err(|e| match e {
        IntakeError::Store(e) => SweepError::Store(e),
        IntakeError::Queue(e) => SweepError::Queue(e),
    })?;
    if accepted.queued {
        warn!(daily_recording = %recording.id, meeting_id = %meeting.id, recording = %accepted.recording_id,
            "recording no webhook announced found in Daily's list; queued");
    }
    Ok(accepted.queued)
}

/// What the webhook check found (the summary's `webhook` field).
pub const WEBHOOK_UNCHECKED: &str = "unchecked";

/// Finds our endpoint in Daily's webhooks; re-arms it when FAILED, reports it missing.
pub(crate) async fn check_webhook(
    daily: &DailyClient,
    url: &str,
    deadline: Instant,
    summary: &mut Summary,
) {
    let tokio_deadline = tokio::time::Instant::from_std(deadline);
    let same = |a: &str| a.trim_end_matches('/') == url.trim_end_matches('/');
    let hooks = match tokio::time::timeout_at(tokio_deadline, daily.list_webhooks()).await {
        Err(_) => {
            summary.stopped_early = true;
            return;
        }
        Ok(Err(e)) => {
            error!(error = %e, "listing Daily webhooks failed");
            summary.webhook = "list_failed".into();
            summary.errors.push(format!("listing Daily webhooks: {e}"));
            return;
        }
        Ok(Ok(hooks)) => hooks,
    };
    let Some(hook) = hooks.iter().find(|h| same(&h.url)) else {
        error!(url, others = hooks.len(), "our Daily webhook is missing: Daily sends us no events; create it (reflector-admin daily webhook create)");
        summary.webhook = "missing".into();
        return;
    };
    match hook.state {
        WebhookState::Active => summary.webhook = "active".into(),
        state => {
            warn!(uuid = %hook.uuid, ?state, failed_count = hook.failed_count, url, "Daily webhook not active; re-arming it");
            match tokio::time::timeout_at(
                tokio_deadline,
                daily.reactivate_webhook(&hook.uuid, &hook.url, None),
            )
            .await
            {
                Err(_) => summary.stopped_early = true,
                Ok(Ok(rearmed)) => {
                    info!(uuid = %rearmed.uuid, state = ?rearmed.state, "Daily webhook re-armed");
                    summary.webhook = "rearmed".into();
                }
                Ok(Err(e)) => {
                    error!(uuid = %hook.uuid, error = %e, "re-arming the Daily webhook failed");
                    summary.webhook = "rearm_failed".into();
                    summary
                        .errors
                        .push(format!("re-arming the Daily webhook: {e}"));
                }
            }
        }
    }
}
