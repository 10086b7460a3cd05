//! Step 2 of a sweep: recordings never turned into a transcript, or whose transcript failed for a
//! transient reason, are requeued, bounded per run and claimed once per cooldown. A recording
//! still being made is never requeued: not while its meeting is active, nor while Daily says
//! it is `in-progress` (`GET /recordings/:id`, one request per Daily candidate).

use std::time::Instant;

use chrono::{DateTime, Utc};
use tracing::{debug, error, info, warn};

use shared::domain::{
    Platform, Recording, RecordingSource, RecordingStatus, S3Location, Transcript, TranscriptStatus,
};
use shared::messages::{JobSource, RecordingJob};
use shared::platform::PlatformError;
use shared::store::StoreError;

use crate::handler::{Deps, Summary, SweepError};

/// How many recordings of one status are looked at per requeued recording allowed: recordings
/// that need nothing (permanent failures, cooling down) are skipped, so more are read than sent.
pub const CANDIDATES_PER_REQUEUE: u32 = 4;

/// Why a recording needs (or does not need) to go through the processor again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reprocess {
    /// Never got a transcript, or its transcript was never uploaded: the processing was lost.
    Unprocessed,
    /// Its transcript is `error` for a reason worth another try.
    TransientError,
    /// Its transcript is `error` for good (no audio, disallowed host): another try fails again.
    PermanentError,
    /// Its transcript was uploaded; nothing to do.
    Done,
}

impl Reprocess {
    pub fn of(transcript: Option<&Transcript>) -> Self {
        match transcript {
            None => Reprocess::Unprocessed,
            Some(t) => match t.status {
                TranscriptStatus::Idle => Reprocess::Unprocessed,
                TranscriptStatus::Uploaded => Reprocess::Done,
                TranscriptStatus::Error if t.error_permanent => Reprocess::PermanentError,
                TranscriptStatus::Error => Reprocess::TransientError,
            },
        }
    }

    pub fn wanted(self) -> bool {
        matches!(self, Reprocess::Unprocessed | Reprocess::TransientError)
    }
}

/// The processor's job source for a stored recording source (`None` when no job can fetch it).
pub fn job_source(source: &RecordingSource) -> Option<JobSource> {
    match source {
        RecordingSource::S3 { bucket, key } => Some(JobSource::S3(S3Location {
            bucket: bucket.clone(),
            key: key.clone(),
        })),
        RecordingSource::PlatformRecording {
            platform: Platform::Daily,
            recording_id,
        } => Some(JobSource::DailyRecording(recording_id.clone())),
        RecordingSource::PlatformTracks {
            platform: Platform::Daily,
            recording_id,
        } => Some(JobSource::DailyTracks(recording_id.clone())),
        RecordingSource::PlatformRecording { .. } | RecordingSource::PlatformTracks { .. } => None,
    }
}

#[derive(Debug)]
enum RequeueOutcome {
    Sent,
    NotNeeded(&'static str),
}

pub(crate) async fn requeue_recordings(
    deps: &Deps,
    now: DateTime<Utc>,
    deadline: Instant,
    summary: &mut Summary,
) {
    let limit = deps.settings.requeue_limit;
    if limit == 0 {
        return;
    }
    let window = limit.saturating_mul(CANDIDATES_PER_REQUEUE);
    if Instant::now() >= deadline {
        summary.stopped_early = true;
        return;
    }
    // Failed first: those are known to need it; pending and processing ones are only suspects.
    let statuses = [
        RecordingStatus::Failed,
        RecordingStatus::Pending,
        RecordingStatus::Processing,
    ];
    // The three listings are read at once: a run usually finds nothing to requeue and reads all
    // three anyway, so waiting for each in turn would only add two round trips to every run. When
    // the failed ones alone fill the limit, the other two listings were read for nothing.
    let listings = futures::future::join_all(
        statuses.map(|status| deps.recordings.list_by_status(status, window)),
    )
    .await;
    for (status, listing) in statuses.into_iter().zip(listings) {
        if summary.requeued >= limit {
            return;
        }
        if Instant::now() >= deadline {
            summary.stopped_early = true;
            return;
        }
        let candidates = match listing {
            Ok(c) => c,
            Err(e) => {
                error!(status = ?status, error = %e, "listing recordings failed");
                summary
                    .errors
                    .push(format!("listing {status:?} recordings: {e}"));
                continue;
            }
        };
        for recording in candidates {
            if summary.requeued >= limit {
                return;
            }
            if Instant::now() >= deadline {
                summary.stopped_early = true;
                return;
            }
            match requeue_one(deps, &recording, now).await {
                Ok(RequeueOutcome::Sent) => summary.requeued += 1,
                Ok(RequeueOutcome::NotNeeded(why)) => {
                    debug!(recording_id = %recording.id, why, "recording not requeued");
                }
                Err(e) => {
                    summary.requeue_failed += 1;
                    warn!(recording_id = %recording.id, error = %e, "requeuing recording failed");
                }
            }
        }
    }
}

async fn requeue_one(
    deps: &Deps,
    recording: &Recording,
    now: DateTime<Utc>,
) -> Result<RequeueOutcome, SweepError> {
    let grace =
        chrono::Duration::from_std(deps.settings.in_flight_grace).unwrap_or(chrono::Duration::MAX);
    let recent = |at: DateTime<Utc>| now.signed_duration_since(at) < grace;
    if recent(recording.updated_at) {
        return Ok(RequeueOutcome::NotNeeded(
            "changed recently; may be in flight",
        ));
    }
    let transcript = deps.transcripts.get_by_recording(&recording.id).await?;
    let reprocess = Reprocess::of(transcript.as_ref());
    match reprocess {
        Reprocess::Done => return Ok(RequeueOutcome::NotNeeded("transcript uploaded")),
        Reprocess::PermanentError => return Ok(RequeueOutcome::NotNeeded("failed permanently")),
        Reprocess::Unprocessed | Reprocess::TransientError => {}
    }
    if transcript.as_ref().is_some_and(|t| recent(t.updated_at)) {
        return Ok(RequeueOutcome::NotNeeded(
            "transcript changed recently; may be in flight",
        ));
    }
    let Some(source) = job_source(&recording.source) else {
        warn!(recording_id = %recording.id, source = %recording.source.source_key(), "recording source cannot be requeued");
        return Ok(RequeueOutcome::NotNeeded(
            "source cannot be fetched by the processor",
        ));
    };
    // A recording still being made is never requeued: the processor would find no file (or a
    // partial one) and fail it. Its meeting still active says so for every platform; Daily
    // also says so itself after the meeting ended, while it finishes the file.
    let meeting = deps
        .meetings
        .get(&recording.meeting_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            entity: "meeting",
            id: recording.meeting_id.clone(),
        })?;
    // Past its end date it is over, even before step 1 marks it inactive.
    if meeting.is_active && meeting.end_date > now {
        return Ok(RequeueOutcome::NotNeeded(
            "its meeting is active; the recording may still be being made",
        ));
    }
    if daily_recording_in_progress(deps, &recording.source).await? {
        return Ok(RequeueOutcome::NotNeeded(
            "Daily says the recording is still in progress",
        ));
    }
    // The claim comes before the send: of two concurrent runs only one wins it. If the send then
    // fails, the recording waits for the cooldown rather than risk being sent twice.
    if !deps
        .recordings
        .claim_requeue(&recording.id, now, deps.settings.requeue_cooldown)
        .await?
    {
        return Ok(RequeueOutcome::NotNeeded("requeued within the cooldown"));
    }
    let job = RecordingJob {
        meeting_id: meeting.id,
        recording_id: recording.id.clone(),
        room_name: meeting.room_name,
        source,
    };
    deps.queue.send(&job).await?;
    info!(
        recording_id = %recording.id,
        meeting_id = %job.meeting_id,
        status = ?recording.status,
        reason = ?reprocess,
        "recording requeued"
    );
    Ok(RequeueOutcome::Sent)
}

/// Whether Daily still records (or still writes) a recording of ours: `GET /recordings/:id`
/// says `in-progress`. Only for Daily sources, when a Daily client is configured; a recording
/// Daily does not know (404) is not in progress. Any other failure is an error: the recording is
/// not requeued this run rather than requeued while it may still be being made.
async fn daily_recording_in_progress(
    deps: &Deps,
    source: &RecordingSource,
) -> Result<bool, SweepError> {
    let (RecordingSource::PlatformRecording {
        platform: Platform::Daily,
        recording_id,
    }
    | RecordingSource::PlatformTracks {
        platform: Platform::Daily,
        recording_id,
    }) = source
    else {
        return Ok(false);
    };
    let Some(daily) = &deps.daily else {
        return Ok(false);
    };
    match daily.get_recording(recording_id).await {
        Ok(r) => Ok(r.status.as_deref() == Some(DAILY_IN_PROGRESS)),
        Err(PlatformError::Api { status: 404, .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Daily's status of a recording still being made.
const DAILY_IN_PROGRESS: &str = "in-progress";
