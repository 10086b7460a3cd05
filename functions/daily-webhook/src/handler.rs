//! `POST /v1/daily_webhook` (DESIGN.md section 4).
//!
//! The steps are [`shared::webhook::pipeline`]'s, each before any parsing of what follows it:
//! body size (413), Daily's `{"test":"test"}` creation probe (200, signed or not, no effect),
//! signature over the raw bytes (401), envelope (422), then the event; this module supplies
//! Daily's verifier, parser and apply step. Every event that changes state is claimed by id, so a
//! retry or replay changes nothing twice. A participant event is claimed in the same transaction
//! that records the session and changes the count ([`ParticipantEvents`]): it is applied whole or
//! not at all, and a failure (503) leaves nothing behind for Daily's retry to trip over. Recording
//! events take a lease first (`IN_PROGRESS`, completed after the effect); if handling fails after
//! the claim, the lease is released and the answer is 503 so that Daily's retry can succeed, and
//! if the delivery dies instead, Daily's retry after the lease applies the event. Their effects
//! are idempotent, so a re-apply changes nothing twice: the recording is created if absent (one
//! per Daily recording id), a job queued again is one pipeline message (the processor's marker),
//! and a failed recording stays failed. Meeting events need no claim at all (the first start is
//! kept; an inactive meeting stays inactive).
//!
//! Server-started recordings (issue 14, [`shared::recording_start`]): after a join is applied,
//! and again on a replayed join, the webhook checks whether a start is due with the count after
//! the join and puts one [`StartRecording`] per kind still to start on the recordings queue. It
//! never calls Daily's recording API itself, so a slow or failing Daily cannot delay the answer;
//! the recording processor starts the recording and retries with backoff. The check runs inside
//! the apply step, after the transaction, so a failed enqueue answers 503: Daily's retry is then
//! a duplicate, which checks and enqueues again (duplicates of the message are harmless: one
//! `instanceId` per meeting and kind, and the meeting's `recordings_started` marker).
//!
//! DynamoDB requests per participant event: at most 3. A join: the meeting by room name, then
//! one transaction of claim, session record and counter update, and, only when the meeting reads
//! as not yet due for an `automatic-2nd-participant` start with a kind still to start, one
//! strongly consistent GetItem of the meeting (the lookup is an index read, which may miss a
//! concurrent join). A replayed join
//! makes the same requests (its transaction is refused as a duplicate). A leave: 2, 3 when it
//! finds the count at 0 already. The meeting lookup is needed because Daily names rooms, not
//! meetings. SQS requests: one per kind enqueued.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
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
use shared::domain::{
    Meeting, Platform, Recording, RecordingKind, RecordingSource, RecordingStatus,
};
use shared::http::Route;
use shared::messages::StartRecording;
use shared::metrics::{Function, Metric, Metrics};
use shared::queue::{QueueError, RecordingQueue, SqsQueue};
use shared::recording_intake::{self, Content, Finished, IntakeError, Known};
use shared::recording_start::{kinds_to_start, start_due};
use shared::store::dynamo::DynamoStores;
use shared::store::{
    Applied, EventClaim, MeetingStore, ParticipantChange, ParticipantEvents, RecordingStore,
    StoreError, WebhookEventStore,
};
use shared::webhook::daily::{self, EventKind, Participant, RecordingLocation, RecordingReady};
use shared::webhook::pipeline::{self, Claiming, Outcome, Webhook};
use shared::webhook::signature::{verify_daily, SignatureError};
use shared::webhook::ParseError;

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
    /// `DAILY_RECORDING_TYPES`: the kinds of recording the server starts.
    pub recording_types: BTreeSet<RecordingKind>,
    /// `WEBHOOK_LEASE_SECONDS`: how long a delivery holds an event before a retry may take it
    /// over.
    pub lease: Duration,
    pub metrics: Metrics,
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
            recording_types: config.daily.recording_types.clone(),
            lease: config.webhook_lease,
            metrics: Metrics::standard(Function::DailyWebhook),
        })
    }
}

/// Failures of our own dependencies while handling an event (answered 503).
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a handled Daily event changed, for the steps after its claim is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing to change (a meeting event, an unknown meeting, a recording event we could not
    /// tie to anything).
    Nothing,
    /// A participant's join (`joined`) or leave was recorded and the meeting's count changed.
    Participant { meeting_id: String, joined: bool },
    /// A recording event was handled (its record created, queued or marked as it says).
    Recording,
    /// A meeting event changed the meeting (its start recorded, or deactivated).
    Meeting { meeting_id: String },
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
/// The steps are [`pipeline::run`]'s; what is Daily's is the [`Webhook`] implementation below.
#[instrument(skip_all, fields(bytes = body.len(), event_id = Empty, event_type = Empty, format = Empty, room = Empty, meeting_id = Empty))]
pub async fn handle_raw(
    deps: &Deps,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Response<Body> {
    pipeline::run(deps, headers, body, now).await
}

#[async_trait]
impl Webhook for Deps {
    type Event<'a> = daily::Event<'a>;
    type Effect = Effect;
    type Error = HandleError;

    const PLATFORM: Platform = Platform::Daily;
    const NAME: &'static str = "daily";
    const TITLE: &'static str = "Daily";
    const SECRET_VAR: &'static str = "DAILY_WEBHOOK_SECRET";
    const DEDUPE_TTL: Duration = DEDUPE_TTL;

    fn events(&self) -> &dyn WebhookEventStore {
        self.events.as_ref()
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    fn is_probe(&self, body: &[u8]) -> bool {
        daily::is_probe(body)
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        verify_daily(self.secret.as_ref(), headers, body, now)
    }

    fn parse<'a>(&self, body: &'a [u8]) -> Result<Self::Event<'a>, ParseError> {
        daily::parse(body)
    }

    fn event_id<'e>(event: &'e Self::Event<'_>) -> &'e str {
        &event.id
    }

    fn event_type<'e>(event: &'e Self::Event<'_>) -> &'e str {
        &event.event_type
    }

    fn record_details(event: &Self::Event<'_>, span: &Span) {
        span.record("format", tracing::field::debug(event.format));
        if let Some(room) = event_room(&event.kind) {
            span.record("room", room);
        }
    }

    fn claiming(&self, event: &Self::Event<'_>) -> Claiming {
        match event.kind {
            EventKind::Unknown => Claiming::NotHandled,
            // Idempotent effects (the first start is kept; an inactive meeting stays so), so a
            // replay changes nothing without a dedupe write.
            EventKind::MeetingStarted { .. } | EventKind::MeetingEnded { .. } => {
                Claiming::Unclaimed
            }
            // Claimed in the transaction that records the session and changes the count.
            EventKind::ParticipantJoined(_) | EventKind::ParticipantLeft(_) => Claiming::InApply,
            EventKind::RecordingStarted { .. }
            | EventKind::RecordingReady(_)
            | EventKind::RecordingError { .. } => Claiming::Pipeline,
        }
    }

    async fn apply(
        &self,
        event: Self::Event<'_>,
        claim: EventClaim<'_>,
    ) -> Result<Outcome<Effect>, HandleError> {
        let now = claim.now;
        let recording = Outcome::Applied(Effect::Recording);
        match &event.kind {
            EventKind::MeetingStarted { room } => {
                meeting_started(self, room.as_deref(), event.sent_at.unwrap_or(now)).await
            }
            EventKind::MeetingEnded { room } => meeting_ended(self, room.as_deref()).await,
            EventKind::ParticipantJoined(p) => participant_event(self, claim, p, true).await,
            EventKind::ParticipantLeft(p) => participant_event(self, claim, p, false).await,
            EventKind::RecordingStarted { room, recording_id } => {
                recording_started(self, room.as_deref(), recording_id, now).await?;
                Ok(recording)
            }
            EventKind::RecordingReady(r) => {
                recording_ready(self, r, now).await?;
                Ok(recording)
            }
            EventKind::RecordingError {
                room,
                recording_id,
                message,
            } => {
                recording_error(self, room.as_deref(), recording_id.as_deref(), message, now)
                    .await?;
                Ok(recording)
            }
            // Answered before apply (`Claiming::NotHandled`).
            EventKind::Unknown => Ok(Outcome::Applied(Effect::Nothing)),
        }
    }
}

/// The Daily room an event names, if any.
fn event_room<'e>(kind: &'e EventKind<'_>) -> Option<&'e str> {
    match kind {
        EventKind::ParticipantJoined(p) | EventKind::ParticipantLeft(p) => Some(&p.room),
        EventKind::RecordingReady(r) => Some(&r.room),
        EventKind::MeetingStarted { room }
        | EventKind::MeetingEnded { room }
        | EventKind::RecordingStarted { room, .. }
        | EventKind::RecordingError { room, .. } => room.as_deref(),
        EventKind::Unknown => None,
    }
}

/// `meeting.started`: the meeting's platform start time is recorded (the first one is kept).
async fn meeting_started(
    deps: &Deps,
    room: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Outcome<Effect>, HandleError> {
    let Some(room) = room else {
        warn!("meeting.started without a room; accepted and ignored");
        return Ok(Outcome::Applied(Effect::Nothing));
    };
    let Some(meeting) = meeting_for(deps, room).await? else {
        return Ok(Outcome::Applied(Effect::Nothing));
    };
    let first = deps.meetings.record_platform_start(&meeting.id, at).await?;
    info!(meeting_id = %meeting.id, %at, first, "daily meeting started");
    Ok(Outcome::Applied(Effect::Meeting {
        meeting_id: meeting.id,
    }))
}

/// `meeting.ended`: the last participant left, so the meeting is deactivated now rather than at
/// the next sweep, and the room's next get-or-create makes a new meeting.
async fn meeting_ended(deps: &Deps, room: Option<&str>) -> Result<Outcome<Effect>, HandleError> {
    let Some(room) = room else {
        warn!("meeting.ended without a room; accepted and ignored");
        return Ok(Outcome::Applied(Effect::Nothing));
    };
    let Some(meeting) = meeting_for(deps, room).await? else {
        return Ok(Outcome::Applied(Effect::Nothing));
    };
    if meeting.is_active {
        deps.meetings.deactivate(&meeting.id).await?;
        info!(meeting_id = %meeting.id, "meeting deactivated: Daily says it ended");
    } else {
        info!(meeting_id = %meeting.id, "meeting.ended for an inactive meeting; nothing to do");
    }
    Ok(Outcome::Applied(Effect::Meeting {
        meeting_id: meeting.id,
    }))
}

/// The meeting of a Daily room, recorded on the request's span so every later line names it.
async fn meeting_for(deps: &Deps, room: &str) -> Result<Option<Meeting>, HandleError> {
    let meeting = deps.meetings.get_by_room_name(room).await?;
    if let Some(m) = &meeting {
        Span::current().record("meeting_id", m.id.as_str());
    }
    if meeting.is_none() {
        warn!(
            room,
            "daily event for an unknown meeting; accepted and ignored"
        );
    }
    Ok(meeting)
}

/// A participant join (`joined`) or leave: the meeting lookup, then one transaction that writes
/// the event's claim, records the session and changes the count. Nothing is claimed for an
/// unknown meeting (nothing would change), and a failure writes nothing, so there is no claim
/// to release.
async fn participant_event(
    deps: &Deps,
    claim: EventClaim<'_>,
    p: &Participant<'_>,
    joined: bool,
) -> Result<Outcome<Effect>, HandleError> {
    let now = claim.now;
    let meeting = match meeting_for(deps, &p.room).await {
        Ok(Some(meeting)) => meeting,
        Ok(None) => return Ok(Outcome::Applied(Effect::Nothing)),
        Err(e) => {
            error!(error = %e, "cannot look up the meeting of a daily participant event");
            return Err(e);
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
    match deps.participants.apply(claim, &meeting.id, change).await {
        Ok(Applied::Applied) => {
            info!(meeting_id = %meeting.id, session_id = %p.session_id, joined, "participant change applied");
            if joined {
                deps.metrics
                    .count(Metric::ParticipantJoined, Some(Platform::Daily));
                // The count the lookup saw, plus this join.
                enqueue_due_starts(deps, &meeting, meeting.num_clients.saturating_add(1)).await?;
            }
            Ok(Outcome::Applied(Effect::Participant {
                meeting_id: meeting.id,
                joined,
            }))
        }
        Ok(Applied::Duplicate) => {
            if joined {
                // A replay, or Daily's retry after a failed enqueue: the join is counted in what
                // the lookup saw. Enqueued again only while a kind is still unmarked.
                enqueue_due_starts(deps, &meeting, meeting.num_clients).await?;
            }
            Ok(Outcome::Duplicate)
        }
        Err(e) => {
            error!(error = %e, meeting_id = %meeting.id, "daily participant event not applied; nothing written, a retry can apply it");
            Err(e.into())
        }
    }
}

/// Puts one [`StartRecording`] per kind still to start on the recordings queue when a start is
/// due for `meeting` with `participants` in it. When the looked-up meeting is not due yet but
/// could become due with more participants (`automatic-2nd-participant`), one strongly
/// consistent read of the meeting catches a join the index lookup missed. A failure is logged
/// here and answered 503; the join itself is already recorded, so Daily's retry is a duplicate
/// that comes back here.
async fn enqueue_due_starts(
    deps: &Deps,
    meeting: &Meeting,
    participants: i64,
) -> Result<(), HandleError> {
    let mut kinds = kinds_to_start(meeting, participants, &deps.recording_types);
    // Started kinds are only ever added to a meeting, so when the lookup already shows every
    // configured kind started, a fresher read cannot find one to start: no re-read.
    let could_start_more = !kinds_to_start(meeting, i64::MAX, &deps.recording_types).is_empty();
    if !start_due(meeting, participants) && could_start_more {
        match deps.meetings.get(&meeting.id).await {
            Ok(Some(current)) => {
                kinds = kinds_to_start(&current, current.num_clients, &deps.recording_types);
            }
            Ok(None) => {}
            Err(e) => {
                error!(error = %e, meeting_id = %meeting.id, "cannot re-read the meeting to check for a recording start; the join is recorded, a retry checks again");
                return Err(e.into());
            }
        }
    }
    for kind in kinds {
        let start = StartRecording {
            meeting_id: meeting.id.clone(),
            room_name: meeting.room_name.clone(),
            kind,
            attempt: 0,
        };
        if let Err(e) = deps.queue.send_start(&start, Duration::ZERO).await {
            error!(error = %e, meeting_id = %meeting.id, %kind, "cannot queue the recording start; the join is recorded, a retry queues it");
            return Err(e.into());
        }
        info!(meeting_id = %meeting.id, %kind, "recording start queued");
    }
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
    let content = match &r.location {
        RecordingLocation::Url(url) => Content::Url(url.to_string()),
        RecordingLocation::S3Key(key) => Content::S3Key(key.to_string()),
        RecordingLocation::Unknown => Content::Unknown,
        RecordingLocation::Tracks(keys) => Content::Tracks(
            keys.as_ref()
                .map(|keys| keys.iter().map(|k| k.to_string()).collect()),
        ),
    };
    let finished = Finished {
        recording_id: r.recording_id.to_string(),
        content,
    };
    let accepted = recording_intake::accept(
        deps.recordings.as_ref(),
        deps.queue.as_ref(),
        deps.daily_bucket.as_deref(),
        &meeting,
        &finished,
        Known::QueueAgain,
        now,
    )
    .await
    .map_err(|e| match e {
        IntakeError::Store(e) => HandleError::Store(e),
        IntakeError::Queue(e) => HandleError::Queue(e),
    })?;
    if accepted.queued {
        deps.metrics
            .count(Metric::RecordingQueued, Some(Platform::Daily));
    }
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
