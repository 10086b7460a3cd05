//! Server-started Daily recordings (issue 14): when a start is due, and starting one.
//!
//! Daily records only when something starts a recording. For Daily meetings whose room records
//! to the `cloud`, the server starts one recording per kind in `DAILY_RECORDING_TYPES` when the
//! room's `recording_trigger` is met ([`start_due`], [`kinds_to_start`]): `automatic` at the
//! first participant, `automatic-2nd-participant` once two are in; `none` and `prompt` never
//! (a prompt is the participant's own choice).
//!
//! The webhook only decides and enqueues a [`StartRecording`]; [`start`] runs from the queue,
//! so a slow or failing Daily never holds the webhook answer. Each attempt is one request with
//! the kind's deterministic `instanceId`, so duplicates, retries and a manual start converge on
//! one recording per kind; the meeting's `recordings_started` marker, written after Daily
//! accepted, makes every later message for that kind a no-op without a request. Transient
//! failures (Daily answers 503 while no recording worker is free) come back as
//! [`StartOutcome::RetryAfter`]: the caller re-sends the message with that delay and
//! `attempt + 1`.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Meeting, Platform, RecordingKind, RecordingTrigger, RecordingType};
use crate::messages::StartRecording;
use crate::platform::daily::{recording_instance_id, RecordingStart};
use crate::platform::{DailyClient, PlatformError};
use crate::retry::Transient;
use crate::store::MeetingStore;

/// The first retry delay; each further attempt doubles it.
pub const BASE_RETRY_DELAY: Duration = Duration::from_secs(5);
/// SQS's maximum message delay (15 minutes).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(900);

/// Whether the join that brought the meeting to `participants` makes a server-started recording
/// due: a Daily meeting recording to the cloud whose trigger is met. At or above the threshold
/// rather than exactly at it, so a join whose webhook was lost does not lose the recording;
/// repeats are harmless (the marker and the instance id make them no-ops).
pub fn start_due(meeting: &Meeting, participants: i64) -> bool {
    if meeting.platform != Platform::Daily || meeting.recording_type != RecordingType::Cloud {
        return false;
    }
    let threshold = match meeting.recording_trigger {
        RecordingTrigger::Automatic => 1,
        RecordingTrigger::Automatic2ndParticipant => 2,
        RecordingTrigger::None | RecordingTrigger::Prompt => return false,
    };
    participants >= threshold
}

/// The configured kinds to start now: none unless [`start_due`], and none already marked
/// started on `meeting` (so joins after the start enqueue nothing).
pub fn kinds_to_start(
    meeting: &Meeting,
    participants: i64,
    configured: &BTreeSet<RecordingKind>,
) -> Vec<RecordingKind> {
    if !start_due(meeting, participants) {
        return Vec::new();
    }
    configured
        .iter()
        .filter(|k| !meeting.recordings_started.contains(k))
        .copied()
        .collect()
}

/// The delay before attempt `attempt + 1`: 5 s * 2^attempt, at most [`MAX_RETRY_DELAY`].
pub fn retry_delay(attempt: u32) -> Duration {
    retry_delay_from(BASE_RETRY_DELAY, attempt)
}

/// [`retry_delay`] from another first delay (`base` * 2^attempt, at most [`MAX_RETRY_DELAY`]):
/// the recording processor's `RECORDING_START_RETRY_SECONDS`, short in tests.
pub fn retry_delay_from(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_RETRY_DELAY)
}

/// What happened to one [`StartRecording`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Daily started the recording now, and the meeting is marked.
    Started,
    /// Already started: the meeting's marker was set (no request made), or Daily said the
    /// instance is recording.
    AlreadyActive,
    /// Nothing to start: the meeting is unknown, inactive, ended, or not on Daily.
    Skipped(&'static str),
    /// A transient failure: send the message again after this delay with `attempt + 1`.
    /// Never past the meeting's end.
    RetryAfter(Duration),
    /// A permanent failure (Daily refused the start); retrying would not help.
    Failed(String),
}

/// What [`start`] needs from Daily; implemented by [`DailyClient`], and by fakes in tests.
#[async_trait]
pub trait RecordingStarter: Send + Sync {
    async fn start_recording(
        &self,
        room_name: &str,
        kind: RecordingKind,
        instance_id: uuid::Uuid,
    ) -> Result<RecordingStart, PlatformError>;
}

#[async_trait]
impl RecordingStarter for DailyClient {
    async fn start_recording(
        &self,
        room_name: &str,
        kind: RecordingKind,
        instance_id: uuid::Uuid,
    ) -> Result<RecordingStart, PlatformError> {
        DailyClient::start_recording(self, room_name, kind, instance_id).await
    }
}

/// Handles one [`StartRecording`] at `now`: at most one store read, one request to Daily and
/// one conditional store write. The room name comes from the stored meeting, not the message.
/// Retries back off from [`BASE_RETRY_DELAY`]; [`start_with_base`] takes another first delay.
pub async fn start(
    meetings: &dyn MeetingStore,
    daily: &dyn RecordingStarter,
    msg: &StartRecording,
    now: DateTime<Utc>,
) -> StartOutcome {
    start_with_base(meetings, daily, msg, now, BASE_RETRY_DELAY).await
}

/// [`start`] whose [`StartOutcome::RetryAfter`] delays grow from `base` ([`retry_delay_from`]).
pub async fn start_with_base(
    meetings: &dyn MeetingStore,
    daily: &dyn RecordingStarter,
    msg: &StartRecording,
    now: DateTime<Utc>,
    base: Duration,
) -> StartOutcome {
    let meeting = match meetings.get(&msg.meeting_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return StartOutcome::Skipped("meeting not found"),
        Err(e) if e.is_transient() => {
            tracing::warn!(meeting_id = %msg.meeting_id, error = %e, "reading the meeting failed");
            return retry_or_skip(base, msg.attempt, now, None);
        }
        Err(e) => return StartOutcome::Failed(e.to_string()),
    };
    if meeting.platform != Platform::Daily {
        return StartOutcome::Skipped("meeting is not on Daily");
    }
    if !meeting.is_active || meeting.end_date <= now {
        return StartOutcome::Skipped("meeting is no longer active");
    }
    if meeting.recordings_started.contains(&msg.kind) {
        return StartOutcome::AlreadyActive;
    }
    let instance_id = recording_instance_id(&meeting.id, msg.kind);
    let answer = match daily
        .start_recording(&meeting.room_name, msg.kind, instance_id)
        .await
    {
        Ok(answer) => answer,
        Err(e) if e.is_transient() => {
            tracing::warn!(
                meeting_id = %meeting.id, kind = %msg.kind, attempt = msg.attempt, error = %e,
                "Daily could not start the recording yet"
            );
            return retry_or_skip(base, msg.attempt, now, Some(meeting.end_date));
        }
        Err(e) => {
            tracing::error!(meeting_id = %meeting.id, kind = %msg.kind, error = %e, "Daily refused to start the recording");
            return StartOutcome::Failed(e.to_string());
        }
    };
    match meetings.mark_recording_started(&meeting.id, msg.kind).await {
        Ok(_) => {}
        // The recording runs; only the marker is missing. A retry asks Daily again (same
        // instance id, so no second recording) and then writes the marker.
        Err(e) if e.is_transient() => {
            tracing::warn!(meeting_id = %meeting.id, kind = %msg.kind, error = %e, "marking the recording started failed");
            return retry_or_skip(base, msg.attempt, now, Some(meeting.end_date));
        }
        Err(e) => return StartOutcome::Failed(e.to_string()),
    }
    tracing::info!(meeting_id = %meeting.id, kind = %msg.kind, %instance_id, answer = ?answer, "Daily recording started");
    match answer {
        RecordingStart::Started => StartOutcome::Started,
        RecordingStart::AlreadyActive => StartOutcome::AlreadyActive,
    }
}

/// [`retry_delay`], cut so the retry arrives no later than the meeting's end.
fn retry_or_skip(
    base: Duration,
    attempt: u32,
    now: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) -> StartOutcome {
    let delay = retry_delay_from(base, attempt);
    let Some(end) = end else {
        return StartOutcome::RetryAfter(delay);
    };
    match (end - now).to_std() {
        Ok(left) if !left.is_zero() => StartOutcome::RetryAfter(delay.min(left)),
        _ => StartOutcome::Skipped("meeting is no longer active"),
    }
}

#[cfg(test)]
mod tests;
