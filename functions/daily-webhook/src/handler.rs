//! `POST /v1/daily_webhook` (DESIGN.md section 4).
//!
//! Order of checks, each before any parsing of what follows it: body size (413), Daily's
//! `{"test":"test"}` creation probe (200, signed or not, no effect), signature over the raw bytes
//! (401), envelope (422), then the event. Every event that changes state is claimed by id, so a
//! retry or replay changes nothing twice. A participant event is claimed in the same transaction
//! that records the session and changes the count ([`ParticipantEvents`]): it is applied whole or
//! not at all, and a failure (503) leaves nothing behind for Daily's retry to trip over. Recording
//! events are claimed first; if handling fails after the claim, the claim is released and the
//! answer is 503 so that Daily's retry can succeed.
//!
//! DynamoDB requests per participant event: 2 (meeting by room name, then one transaction of
//! claim, session record and counter update; 3 when a leave finds the count at 0 already, and a
//! replay also makes 2). The meeting lookup is needed because Daily names rooms, not meetings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use lambda_http::{Body, Response};
use secrecy::SecretString;
use tracing::field::Empty;
use tracing::{error, info, instrument, warn, Span};

use shared::aws::AwsClients;
use shared::config::{Config, ConfigError};
use shared::domain::{Meeting, Platform, Recording, RecordingSource, RecordingStatus, S3Location};
use shared::http::Route;
use shared::messages::{JobSource, RecordingJob};
use shared::platform::signature::verify_daily;
use shared::platform::SignatureError;
use shared::queue::{QueueError, RecordingQueue, SqsQueue};
use shared::store::dynamo::DynamoStores;
use shared::store::{
    Applied, EventClaim, MeetingStore, ParticipantChange, ParticipantEvents, RecordingStore,
    StoreError, WebhookEventStore,
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
    /// Participant joins and leaves (claim, session and count in one write).
    pub participants: Arc<dyn ParticipantEvents>,
    pub recordings: Arc<dyn RecordingStore>,
    pub events: Arc<dyn WebhookEventStore>,
    pub queue: Arc<dyn RecordingQueue>,
    /// `DAILY_WEBHOOK_SECRET`; `None` rejects every signed request.
    pub secret: Option<SecretString>,
    /// `AWS_DAILY_S3_BUCKET`: where Daily's `s3_key` objects live.
    pub daily_bucket: Option<String>,
}

impl Deps {
    /// The production wiring: DynamoDB stores, the SQS recordings queue and the Daily settings
    /// from `config`. Fails, naming the variable, when `RECORDINGS_QUEUE_URL` is unset. An unset
    /// `DAILY_WEBHOOK_SECRET` is not a start-up error: every request is then rejected (401) and
    /// the first rejection logs the configuration error.
    pub fn from_config(config: &Config, clients: &AwsClients) -> Result<Self, ConfigError> {
        let queue_url = config
            .recordings_queue_url
            .clone()
            .ok_or(ConfigError::Missing {
                var: "RECORDINGS_QUEUE_URL",
                why: "for the Daily webhook to queue recordings for processing",
            })?;
        let stores = DynamoStores::new(clients.dynamodb.clone(), &config.tables);
        Ok(Self {
            meetings: Arc::new(stores.meetings),
            participants: Arc::new(stores.participant_events),
            recordings: Arc::new(stores.recordings),
            events: Arc::new(stores.webhook_events),
            queue: Arc::new(SqsQueue::new(clients.sqs.clone(), queue_url)),
            secret: config.daily.webhook_secret.clone(),
            daily_bucket: config.daily.s3_bucket.clone(),
        })
    }
}

/// Failures of our own dependencies while handling a claimed event.
#[derive(Debug, thiserror::Error)]
enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// The function's one route, as in template.yaml's HttpApi events (a test of the local crate
/// checks both ways).
pub const ROUTES: &[Route<Arc<Deps>>] = &[Route {
    method: http::Method::POST,
    path: "/v1/daily_webhook",
    handler: |m| axum::routing::on(m, handle),
}];

/// The function's router over `deps`: `lambda_http` serves it in Lambda, `reflector-local`
/// merges it into its server.
pub fn router(deps: Arc<Deps>) -> axum::Router {
    shared::http::router(ROUTES, deps)
}

/// The route's handler: the raw headers and body (lambda_http has decoded base64 already).
pub async fn handle(
    State(deps): State<Arc<Deps>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    handle_raw(&deps, &headers, &body, Utc::now()).await
}

/// The whole webhook over raw parts, with the time as a parameter so tests can check tolerance.
#[instrument(skip_all, fields(bytes = body.len(), event_id = Empty, event_type = Empty, format = Empty))]
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
    // Recorded on the handler's span (not a guard held across awaits) so every log line of
    // this event carries them.
    let span = Span::current();
    span.record("event_id", event.id.as_ref());
    span.record("event_type", event.event_type.as_ref());
    span.record("format", tracing::field::debug(event.format));

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
        EventKind::ParticipantJoined(p) => {
            return participant_event(deps, &event.id, p, true, now).await;
        }
        EventKind::ParticipantLeft(p) => {
            return participant_event(deps, &event.id, p, false, now).await;
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
        EventKind::RecordingStarted { room, recording_id } => {
            recording_started(deps, room.as_deref(), recording_id, now).await
        }
        EventKind::RecordingReady(r) => recording_ready(deps, r, now).await,
        EventKind::RecordingError {
            room,
            recording_id,
            message,
        } => recording_error(deps, room.as_deref(), recording_id.as_deref(), message, now).await,
        // Answered before any claim (see `handle_raw`).
        EventKind::ParticipantJoined(_)
        | EventKind::ParticipantLeft(_)
        | EventKind::MeetingStarted { .. }
        | EventKind::MeetingEnded { .. }
        | EventKind::Unknown => Ok(()),
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

/// A participant join (`joined`) or leave: the meeting lookup, then one transaction that claims
/// the event, records the session and changes the count. Nothing is claimed for an unknown
/// meeting (nothing would change), and a failure writes nothing, so no claim is released here.
async fn participant_event(
    deps: &Deps,
    event_id: &str,
    p: &Participant<'_>,
    joined: bool,
    now: DateTime<Utc>,
) -> Response<Body> {
    let meeting = match meeting_for(deps, &p.room).await {
        Ok(Some(meeting)) => meeting,
        Ok(None) => return responses::ok(),
        Err(e) => {
            error!(error = %e, "cannot look up the meeting of a daily participant event");
            return responses::retry_later();
        }
    };
    let change = if joined {
        ParticipantChange::Joined {
            session_id: &p.session_id,
            user_id: p.user_id.as_deref(),
            user_name: p.user_name.as_deref(),
            joined_at: p.joined_at.unwrap_or(now),
        }
    } else {
        ParticipantChange::Left {
            session_id: &p.session_id,
            left_at: p.left_at.unwrap_or(now),
        }
    };
    let claim = EventClaim {
        platform: Platform::Daily,
        event_id,
        ttl: DEDUPE_TTL,
        now,
    };
    match deps.participants.apply(claim, &meeting.id, change).await {
        Ok(Applied::Applied) => {
            info!(meeting_id = %meeting.id, session_id = %p.session_id, joined, "participant change applied");
            responses::ok()
        }
        Ok(Applied::Duplicate) => {
            info!("daily event already handled; duplicate ignored");
            responses::ok()
        }
        Err(e) => {
            error!(error = %e, meeting_id = %meeting.id, "daily participant event not applied; nothing written, a retry can apply it");
            responses::retry_later()
        }
    }
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
        (RecordingLocation::Url(url), _) => JobSource::Url(url.to_string()),
        (RecordingLocation::S3Key(key), Some(bucket)) => JobSource::S3(S3Location {
            bucket: bucket.clone(),
            key: key.to_string(),
        }),
        (RecordingLocation::S3Key(_), None) => {
            warn!("recording has an s3_key but AWS_DAILY_S3_BUCKET is not set; the processor will ask Daily for a link");
            JobSource::DailyRecording(r.recording_id.to_string())
        }
        (RecordingLocation::Unknown, _) => JobSource::DailyRecording(r.recording_id.to_string()),
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
