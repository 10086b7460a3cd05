//! `POST /v1/daily_webhook` (DESIGN.md section 4).
//!
//! Order of checks, each before any parsing of what follows it: body size (413), Daily's
//! `{"test":"test"}` creation probe (200, signed or not, no effect), signature over the raw bytes
//! (401), envelope (422), then the event. Events that change state are claimed by id first, so a
//! retry or replay changes nothing twice; if handling fails after the claim, the claim is
//! released and the answer is 503 so that Daily's retry can succeed.
//!
//! DynamoDB requests per participant event: 4 (claim, meeting by room name, session record,
//! counter update). The meeting lookup is needed because Daily names rooms, not our meetings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use lambda_http::{Body, Error, Request, Response};
use secrecy::SecretString;
use tracing::{error, info, instrument, warn};

use shared::domain::{
    Meeting, ParticipantSession, Platform, Recording, RecordingSource, RecordingStatus, S3Location,
};
use shared::messages::{RecordingJob, RecordingJobSource};
use shared::platform::signature::verify_daily;
use shared::platform::SignatureError;
use shared::queue::{QueueError, RecordingQueue};
use shared::store::{
    MeetingStore, ParticipantSessionStore, RecordingStore, StoreError, WebhookEventStore,
};
use shared::webhook::daily::{self, EventKind, Participant, RecordingLocation, RecordingReady};
use shared::webhook::{responses, MAX_BODY_BYTES};

/// How long an event id is remembered. Daily retries for at most about an hour (5 tries,
/// backoff up to 15 min); a week also covers manual replays.
pub const DEDUPE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the handler needs; built once per process.
#[derive(Clone)]
pub struct Deps {
    pub meetings: Arc<dyn MeetingStore>,
    pub sessions: Arc<dyn ParticipantSessionStore>,
    pub recordings: Arc<dyn RecordingStore>,
    pub events: Arc<dyn WebhookEventStore>,
    pub queue: Arc<dyn RecordingQueue>,
    /// `DAILY_WEBHOOK_SECRET`; `None` rejects every signed request.
    pub secret: Option<SecretString>,
    /// `AWS_DAILY_S3_BUCKET`: where Daily's `s3_key` objects live.
    pub daily_bucket: Option<String>,
}

/// Failures of our own dependencies while handling a claimed event.
#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The Lambda entry point: reads the raw body (lambda_http has decoded base64 already).
pub async fn handle(deps: &Deps, request: Request) -> Result<Response<Body>, Error> {
    Ok(handle_raw(deps, request.headers(), request.body().as_ref(), Utc::now()).await)
}

/// The whole webhook over raw parts, with the time as a parameter so tests can check tolerance.
#[instrument(skip_all, fields(bytes = body.len()))]
pub async fn handle_raw(
    deps: &Deps,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response<Body> {
    if body.len() > MAX_BODY_BYTES {
        warn!(limit = MAX_BODY_BYTES, "daily webhook body too large");
        return responses::too_large();
    }
    if daily::is_probe(body) {
        info!("daily webhook verification probe answered");
        return responses::ok();
    }
    if let Err(e) = verify_daily(deps.secret.as_ref(), headers, body, now) {
        log_rejection(&e);
        return responses::signature_rejected(&e);
    }
    let event = match daily::parse(body) {
        Ok(event) => event,
        Err(e) => {
            warn!(error = %e, "signed daily webhook body is malformed");
            return responses::unprocessable(&e);
        }
    };
    let span = tracing::info_span!("daily_event", event_id = %event.id, event_type = %event.event_type, format = ?event.format);
    let _guard = span.enter();

    match &event.kind {
        EventKind::Unknown => {
            info!("daily event type not handled; accepted");
            return responses::ok();
        }
        EventKind::MeetingStarted { room } | EventKind::MeetingEnded { room } => {
            // Nothing to change: meetings start and end by our own records and the sweeper.
            info!(
                room = room.as_deref().unwrap_or(""),
                "daily meeting event accepted"
            );
            return responses::ok();
        }
        _ => {}
    }

    match deps
        .events
        .claim(Platform::Daily, &event.id, DEDUPE_TTL)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            info!("daily event already handled; duplicate ignored");
            return responses::ok();
        }
        Err(e) => {
            error!(error = %e, "cannot claim daily event");
            return responses::retry_later();
        }
    }
    match apply(deps, &event.kind, now).await {
        Ok(()) => responses::ok(),
        Err(e) => {
            error!(error = %e, "daily event handling failed; releasing the claim for a retry");
            if let Err(release) = deps.events.release(Platform::Daily, &event.id).await {
                error!(error = %release, "cannot release the daily event claim; a retry will be ignored");
            }
            responses::retry_later()
        }
    }
}

static SECRET_MISSING_LOGGED: AtomicBool = AtomicBool::new(false);

fn log_rejection(e: &SignatureError) {
    match e {
        SignatureError::NotConfigured => {
            if !SECRET_MISSING_LOGGED.swap(true, Ordering::Relaxed) {
                error!("DAILY_WEBHOOK_SECRET is not set: every Daily webhook is rejected");
            }
        }
        SignatureError::Missing => warn!("daily webhook without signature rejected"),
        SignatureError::Invalid { reason } => warn!(reason, "daily webhook signature rejected"),
    }
}

async fn apply(deps: &Deps, kind: &EventKind<'_>, now: DateTime<Utc>) -> Result<(), HandleError> {
    match kind {
        EventKind::ParticipantJoined(p) => participant_joined(deps, p, now).await,
        EventKind::ParticipantLeft(p) => participant_left(deps, p, now).await,
        EventKind::RecordingStarted { room, recording_id } => {
            recording_started(deps, room.as_deref(), recording_id, now).await
        }
        EventKind::RecordingReady(r) => recording_ready(deps, r, now).await,
        EventKind::RecordingError {
            room,
            recording_id,
            message,
        } => recording_error(deps, room.as_deref(), recording_id.as_deref(), message, now).await,
        EventKind::MeetingStarted { .. } | EventKind::MeetingEnded { .. } | EventKind::Unknown => {
            Ok(())
        }
    }
}

async fn meeting_for(deps: &Deps, room: &str) -> Result<Option<Meeting>, HandleError> {
    let meeting = deps.meetings.get_by_room_name(room).await?;
    if meeting.is_none() {
        warn!(
            room,
            "daily event for an unknown meeting; accepted and ignored"
        );
    }
    Ok(meeting)
}

async fn participant_joined(
    deps: &Deps,
    p: &Participant<'_>,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    let Some(meeting) = meeting_for(deps, &p.room).await? else {
        return Ok(());
    };
    // The session first: if the counter update then fails, the claim is released and the retry
    // finds the session recorded (false) but still adds the client, because the claim, not the
    // session, is what makes an event count once.
    let session = ParticipantSession {
        meeting_id: meeting.id.clone(),
        session_id: p.session_id.to_string(),
        user_id: p.user_id.as_deref().map(str::to_owned),
        user_name: p.user_name.as_deref().map(str::to_owned),
        joined_at: p.joined_at.unwrap_or(now),
        left_at: None,
    };
    let new_session = deps.sessions.record_join(&session).await?;
    let count = deps.meetings.add_clients(&meeting.id, 1).await?;
    info!(meeting_id = %meeting.id, session_id = %p.session_id, new_session, num_clients = count, "participant joined");
    Ok(())
}

async fn participant_left(
    deps: &Deps,
    p: &Participant<'_>,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    let Some(meeting) = meeting_for(deps, &p.room).await? else {
        return Ok(());
    };
    deps.sessions
        .record_leave(&meeting.id, &p.session_id, p.left_at.unwrap_or(now))
        .await?;
    let count = deps.meetings.add_clients(&meeting.id, -1).await?;
    info!(meeting_id = %meeting.id, session_id = %p.session_id, num_clients = count, "participant left");
    Ok(())
}

fn daily_source(recording_id: &str) -> RecordingSource {
    RecordingSource::PlatformRecording {
        platform: Platform::Daily,
        recording_id: recording_id.to_owned(),
    }
}

fn new_recording(meeting_id: &str, recording_id: &str, now: DateTime<Utc>) -> Recording {
    Recording {
        id: uuid::Uuid::new_v4().to_string(),
        meeting_id: meeting_id.to_owned(),
        source: daily_source(recording_id),
        status: RecordingStatus::Pending,
        error: None,
        created_at: now,
        updated_at: now,
    }
}

async fn recording_started(
    deps: &Deps,
    room: Option<&str>,
    recording_id: &str,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    let Some(room) = room else {
        // Daily's documented recording.started has no room name: nothing ties it to a meeting.
        // The ready-to-download event (which has one) creates the record instead.
        info!(
            recording_id,
            "recording.started without a room name; accepted and ignored"
        );
        return Ok(());
    };
    let Some(meeting) = meeting_for(deps, room).await? else {
        return Ok(());
    };
    let (stored, created) = deps
        .recordings
        .create_if_absent(&new_recording(&meeting.id, recording_id, now))
        .await?;
    info!(meeting_id = %meeting.id, recording = %stored.id, created, "recording in progress");
    Ok(())
}

async fn recording_ready(
    deps: &Deps,
    r: &RecordingReady<'_>,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    let Some(meeting) = meeting_for(deps, &r.room).await? else {
        return Ok(());
    };
    let (stored, created) = deps
        .recordings
        .create_if_absent(&new_recording(&meeting.id, &r.recording_id, now))
        .await?;
    if stored.status == RecordingStatus::Completed {
        info!(recording = %stored.id, "recording already processed; not queued again");
        return Ok(());
    }
    let source = match (&r.location, &deps.daily_bucket) {
        (RecordingLocation::Url(url), _) => RecordingJobSource::Url(url.to_string()),
        (RecordingLocation::S3Key(key), Some(bucket)) => RecordingJobSource::S3(S3Location {
            bucket: bucket.clone(),
            key: key.to_string(),
        }),
        (RecordingLocation::S3Key(_), None) => {
            warn!("recording has an s3_key but AWS_DAILY_S3_BUCKET is not set; the processor will ask Daily for a link");
            RecordingJobSource::DailyRecording(r.recording_id.to_string())
        }
        (RecordingLocation::Unknown, _) => {
            RecordingJobSource::DailyRecording(r.recording_id.to_string())
        }
    };
    let job = RecordingJob {
        meeting_id: meeting.id.clone(),
        recording_id: stored.id.clone(),
        room_name: r.room.to_string(),
        source,
    };
    deps.queue.send(&job).await?;
    info!(meeting_id = %meeting.id, recording = %stored.id, created, "recording queued for processing");
    Ok(())
}

async fn recording_error(
    deps: &Deps,
    room: Option<&str>,
    recording_id: Option<&str>,
    message: &str,
    now: DateTime<Utc>,
) -> Result<(), HandleError> {
    let Some(recording_id) = recording_id else {
        // Daily's documented recording.error names no recording; there is nothing to mark.
        warn!(
            room = room.unwrap_or(""),
            message, "recording.error without a recording id; logged only"
        );
        return Ok(());
    };
    let existing = deps
        .recordings
        .get_by_source(&daily_source(recording_id))
        .await?;
    let stored = match existing {
        Some(r) => r,
        None => {
            let Some(room) = room else {
                warn!(
                    recording_id,
                    message, "recording.error for an unknown recording without a room; logged only"
                );
                return Ok(());
            };
            let Some(meeting) = meeting_for(deps, room).await? else {
                return Ok(());
            };
            let (stored, _) = deps
                .recordings
                .create_if_absent(&new_recording(&meeting.id, recording_id, now))
                .await?;
            stored
        }
    };
    match deps
        .recordings
        .set_status(&stored.id, RecordingStatus::Failed, Some(message))
        .await
    {
        Ok(_) => {
            warn!(recording = %stored.id, message, "recording marked failed");
            Ok(())
        }
        // A recording already completed (or failed) stays as it is; the event is still handled.
        Err(StoreError::Conflict { condition, .. }) => {
            info!(recording = %stored.id, condition, "recording.error ignored for the recording's current status");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
