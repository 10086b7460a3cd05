//! The recording processor (DESIGN.md section 7): each SQS record becomes audio in the
//! recordings bucket, a transcript record and one message on the pipeline queue.
//!
//! The same queue carries [`StartRecording`] messages from the Daily webhook
//! ([`start_recording`]): each is one attempt of [`recording_start::start_with_base`]; a
//! transient failure re-sends the message with `attempt + 1` and SQS `DelaySeconds` set to the
//! backoff, and acknowledges the original, so retries never count towards the DLQ's
//! `maxReceiveCount`. Only a failed re-send is reported as a batch item failure.
//!
//! Error policy, in one place ([`Failure`]): transient failures (timeouts, 5xx, throttling, our
//! own AWS calls) are reported as batch item failures, so SQS redelivers just those records;
//! permanent ones (meeting unknown, disallowed host, no audio, 4xx from the source) are written
//! to the recording and transcript and the record is acknowledged. A body that is not a known
//! message is also reported, so that it reaches the DLQ after the redrive count instead of
//! vanishing.
//!
//! The invocation's deadline ([`Deadline`], from Lambda's `Context::deadline`): a record is
//! started only while [`MIN_RECORD_TIME`] is left before the cut-off ([`DEADLINE_MARGIN`] before
//! the deadline), and records still running at the cut-off are dropped (their uploads abort
//! themselves) and reported; both are batch item failures that count as no failure of the
//! recording. The batch is always answered before the function would be killed, so the records
//! that finished are acknowledged and never redelivered with the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use futures::{stream, StreamExt};
use shared::blob::{
    BlobSettings, BlobStore, Blobs, MediaCheck, S3Error, UploadError, UploadTarget,
};
use shared::config::Config;
use shared::domain::{
    Meeting, Platform, Recording, RecordingKind, RecordingSource, RecordingStatus, S3Location,
    Transcript, TranscriptStatus,
};
use shared::download::{Downloader, HttpDownloader};
use shared::media::{self, Sniffer};
use shared::messages::{AudioTrack, JobSource, PipelineMessage, RecordingJob, StartRecording};
use shared::metrics::{FailureKind, Function, Metric, Metrics};
use shared::platform::daily::{parse_track_key, TrackKey};
use shared::queue::{PipelineQueue, RecordingQueue};
use shared::recording_start::{self, RecordingStarter, StartOutcome};
use shared::retry::Transient;
use shared::store::{MeetingStore, RecordingStore, StoreError, TranscriptStore};
use tracing::field::Empty;
use tracing::{error, info, info_span, warn, Instrument, Span};

use crate::job::{parse_body, parse_whereby_key, CreatedObject, Work};
use crate::links::RecordingLinks;

/// Sends of one pipeline message before giving up (each already retried by the SDK).
const PIPELINE_SEND_ATTEMPTS: u32 = 3;

/// Records processed at once within a batch. Each upload holds up to 3 parts of 8 MiB, so 2 at
/// once stays well inside the 128 MiB budget.
pub const DEFAULT_CONCURRENCY: usize = 2;

/// Everything the handler uses, built once per process.
pub struct Deps {
    pub meetings: Arc<dyn MeetingStore>,
    pub recordings: Arc<dyn RecordingStore>,
    pub transcripts: Arc<dyn TranscriptStore>,
    pub pipeline: Arc<dyn PipelineQueue>,
    pub links: Arc<dyn RecordingLinks>,
    /// The recordings bucket and the sources copied from (S3 in production).
    pub blobs: Arc<dyn BlobStore>,
    /// URL downloads, limited to `RECORDING_URL_ALLOWED_HOSTS` (HTTP in production).
    pub downloader: Arc<dyn Downloader>,
    /// Our recordings bucket (`RECORDINGS_BUCKET`).
    pub bucket: String,
    /// The bucket Daily records into (`AWS_DAILY_S3_BUCKET`): where raw-tracks keys live.
    pub daily_bucket: Option<String>,
    pub concurrency: usize,
    /// Daily's recording start (`POST /rooms/:name/recordings/start`).
    pub starter: Arc<dyn RecordingStarter>,
    /// The recordings queue (`RECORDINGS_QUEUE_URL`), for delayed re-sends of a start.
    pub recordings_queue: Arc<dyn RecordingQueue>,
    /// The first retry delay of a start (`RECORDING_START_RETRY_SECONDS`, default 5 s); each
    /// further attempt doubles it, up to SQS's 15 minutes.
    pub start_retry_base: Duration,
    pub metrics: Metrics,
}

/// `RECORDING_START_RETRY_SECONDS`: the first delay before a failed recording start is tried
/// again. Short in tests; the default suits Daily's 503 while no recording worker is free.
pub const START_RETRY_VAR: &str = "RECORDING_START_RETRY_SECONDS";

/// The data stores the processor needs.
pub struct Stores {
    pub meetings: Arc<dyn MeetingStore>,
    pub recordings: Arc<dyn RecordingStore>,
    pub transcripts: Arc<dyn TranscriptStore>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("PIPELINE_QUEUE_URL is required by the recording processor")]
    NoPipelineQueue,
    #[error(
        "RECORDINGS_QUEUE_URL is required by the recording processor (to retry recording starts)"
    )]
    NoRecordingsQueue,
    #[error("{START_RETRY_VAR} must be a whole number of seconds from 1 to 900, not {0:?}")]
    StartRetry(String),
}

impl Deps {
    /// Wires the processor from configuration: S3 and SQS from `aws`, the pipeline queue from
    /// `PIPELINE_QUEUE_URL`, the download allow-list from `RECORDING_URL_ALLOWED_HOSTS`.
    pub fn new(
        config: &Config,
        aws: &shared::aws::AwsClients,
        stores: Stores,
        links: Arc<dyn RecordingLinks>,
        starter: Arc<dyn RecordingStarter>,
    ) -> Result<Self, BuildError> {
        let pipeline_url = config
            .pipeline_queue_url
            .clone()
            .ok_or(BuildError::NoPipelineQueue)?;
        let recordings_url = config
            .recordings_queue_url
            .clone()
            .ok_or(BuildError::NoRecordingsQueue)?;
        let start_retry_base = start_retry_base(std::env::var(START_RETRY_VAR).ok().as_deref())?;
        Ok(Self {
            meetings: stores.meetings,
            recordings: stores.recordings,
            transcripts: stores.transcripts,
            pipeline: Arc::new(shared::queue::SqsQueue::new(aws.sqs.clone(), pipeline_url)),
            links,
            blobs: Arc::new(Blobs::new(&aws.s3, BlobSettings::default())),
            downloader: Arc::new(HttpDownloader::new(
                config.recording_url_allowed_hosts.clone(),
            )),
            bucket: config.recordings_bucket.clone(),
            daily_bucket: config.daily.s3_bucket.clone(),
            concurrency: DEFAULT_CONCURRENCY,
            starter,
            recordings_queue: Arc::new(shared::queue::SqsQueue::new(
                aws.sqs.clone(),
                recordings_url,
            )),
            start_retry_base,
            metrics: Metrics::standard(Function::RecordingProcessor),
        })
    }
}

/// The value of [`START_RETRY_VAR`]: [`recording_start::BASE_RETRY_DELAY`] when unset.
pub fn start_retry_base(value: Option<&str>) -> Result<Duration, BuildError> {
    let Some(value) = value else {
        return Ok(recording_start::BASE_RETRY_DELAY);
    };
    match value.trim().parse::<u64>() {
        Ok(secs @ 1..=900) => Ok(Duration::from_secs(secs)),
        _ => Err(BuildError::StartRetry(value.to_owned())),
    }
}

/// Why a record was not processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Retrying will not help: recorded, logged and acknowledged.
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Worth a redelivery.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Not a message we know: redelivered until it lands in the DLQ.
    #[error("{0}")]
    Unrecognised(String),
    /// Not processed (or cut off) for lack of time in the invocation: redelivered, and not a
    /// failure of the recording.
    #[error("deferred: {0}")]
    Deferred(String),
}

impl From<StoreError> for Failure {
    // Any data-layer error is ours to fix or wait out, never the recording's fault.
    fn from(e: StoreError) -> Self {
        Failure::Transient(e.to_string())
    }
}

impl Failure {
    /// The one mapping from an error that knows whether it may pass ([`Transient`]) to
    /// redelivery (transient) or record-and-acknowledge (permanent).
    fn classify(e: impl Transient + std::fmt::Display) -> Self {
        if e.is_transient() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

/// What happened to a record that was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Audio stored (or found stored) and the pipeline told.
    Uploaded {
        transcript_id: String,
        audio: S3Location,
    },
    /// A multitrack recording's audio tracks stored (under `prefix`) and the pipeline told.
    UploadedTracks {
        transcript_id: String,
        prefix: S3Location,
        tracks: usize,
    },
    /// Stored without a transcript: a cloud recording of a meeting that also has a multitrack
    /// one, which is what the pipeline gets.
    Stored { audio: S3Location },
    /// Recorded as failed (no audio, disallowed host ...).
    Failed { reason: String },
    /// Nothing to do (S3 test event, a notification with no created object).
    Ignored,
    /// A recording start was handled: started, found started, skipped, refused by Daily
    /// (`Failed`, logged), or sent again for later (`RetryAfter`).
    Start(StartOutcome),
}

/// When the invocation must be answered, and what a record needs to be started.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// The invocation's deadline (Lambda's `Context::deadline`).
    pub at: Instant,
    /// Time kept back for answering: records still running this long before `at` are cut off
    /// (their uploads aborted) and reported for redelivery, so the answer always goes out and
    /// the records that finished are never redelivered with the rest of the batch.
    pub margin: Duration,
    /// A record is started only while at least this much time is left before the cut-off: a
    /// conservative bound of one record's work (a large download and upload), so a record is
    /// not begun only to be cut off.
    pub min_record: Duration,
}

/// [`Deadline::margin`] in Lambda.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// [`Deadline::min_record`] in Lambda: a 1 GB recording at 20 MB/s (the bench's S3 copy is
/// faster; a slow URL source is not, and is then cut off and redelivered).
pub const MIN_RECORD_TIME: Duration = Duration::from_secs(60);

impl Deadline {
    /// Lambda's deadline (wall clock) as seen now, with the standard margin and minimum.
    pub fn from_lambda(deadline: SystemTime) -> Self {
        Self {
            at: shared::deadline::before_lambda_deadline_now(deadline, Duration::ZERO),
            margin: DEADLINE_MARGIN,
            min_record: MIN_RECORD_TIME,
        }
    }

    /// When running records are cut off.
    fn cut_off(&self) -> Instant {
        self.at.checked_sub(self.margin).unwrap_or(self.at)
    }

    /// Whether a record may start now.
    fn allows_start(&self) -> bool {
        Instant::now() + self.min_record <= self.cut_off()
    }
}

/// Processes an SQS batch with no deadline (the local stack's poller); the answer lists the
/// records to redeliver.
pub async fn handle(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    handle_until(deps, event, None).await
}

/// Processes an SQS batch within `deadline`; the answer lists the records to redeliver: those
/// that failed transiently, those not started for lack of time and those cut off by it.
pub async fn handle_until(
    deps: &Deps,
    event: SqsEvent,
    deadline: Option<Deadline>,
) -> SqsBatchResponse {
    let results: Vec<(Option<String>, Result<Outcome, Failure>)> = stream::iter(event.records)
        .map(|record| async move {
            let id = record.message_id.clone();
            let span = info_span!(
                "record",
                message_id = id.as_deref().unwrap_or("-"),
                meeting_id = Empty,
                room = Empty
            );
            let work = process_message(deps, &record).instrument(span);
            let result = match deadline {
                None => work.await,
                Some(d) if !d.allows_start() => Err(Failure::Deferred(
                    "not started: too little time left in the invocation".into(),
                )),
                Some(d) => match tokio::time::timeout_at(d.cut_off().into(), work).await {
                    Ok(result) => result,
                    Err(_) => Err(Failure::Deferred(
                        "cut off at the invocation's deadline; its upload was aborted".into(),
                    )),
                },
            };
            (id, result)
        })
        .buffer_unordered(deps.concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (id, result) in results {
        match &result {
            Ok(Outcome::Failed { .. }) | Err(Failure::Permanent(_)) => {
                deps.metrics.recording_failed(None, FailureKind::Permanent)
            }
            Err(Failure::Transient(_) | Failure::Unrecognised(_)) => {
                deps.metrics.recording_failed(None, FailureKind::Transient)
            }
            // Nothing failed: the record is left for the next invocation.
            Ok(_) | Err(Failure::Deferred(_)) => {}
        }
        let failed = match &result {
            Ok(outcome) => {
                info!(
                    message_id = id.as_deref().unwrap_or("-"),
                    ?outcome,
                    "record done"
                );
                false
            }
            Err(Failure::Permanent(reason)) => {
                warn!(message_id = id.as_deref().unwrap_or("-"), %reason, "record failed permanently; not retried");
                false
            }
            Err(f @ (Failure::Transient(_) | Failure::Unrecognised(_))) => {
                error!(message_id = id.as_deref().unwrap_or("-"), failure = %f, "record will be redelivered");
                true
            }
            Err(Failure::Deferred(reason)) => {
                warn!(message_id = id.as_deref().unwrap_or("-"), %reason, "record left for redelivery");
                true
            }
        };
        if failed {
            match id {
                Some(id) => {
                    let mut item = BatchItemFailure::default();
                    item.item_identifier = id;
                    response.batch_item_failures.push(item);
                }
                None => error!("a failed record has no message id; it cannot be redelivered alone"),
            }
        }
    }
    response
}

/// Processes one SQS message.
pub async fn process_message(deps: &Deps, record: &SqsMessage) -> Result<Outcome, Failure> {
    let body = record.body.as_deref().unwrap_or_default();
    let work = parse_body(body).map_err(|e| Failure::Unrecognised(e.to_string()))?;
    match work {
        Work::TestEvent => Ok(Outcome::Ignored),
        Work::Job(job) => process_job(deps, &job).await,
        Work::StartRecording(start) => start_recording(deps, &start).await,
        Work::Objects(objects) => {
            // One message may carry several objects: all are attempted; a transient failure of
            // any redelivers the message (the others are then found done).
            let mut last = Ok(Outcome::Ignored);
            let mut transient = None;
            for object in objects {
                match process_object(deps, &object).await {
                    Err(Failure::Transient(e)) => transient = Some(e),
                    other => last = other,
                }
            }
            match transient {
                Some(e) => Err(Failure::Transient(e)),
                None => last,
            }
        }
    }
}

/// One attempt at a Daily recording start. Only a failed re-send is a [`Failure`] (redelivered
/// by SQS as is); every other outcome acknowledges the message.
async fn start_recording(deps: &Deps, start: &StartRecording) -> Result<Outcome, Failure> {
    on_record_span(&start.meeting_id, &start.room_name);
    let outcome = recording_start::start_with_base(
        deps.meetings.as_ref(),
        deps.starter.as_ref(),
        start,
        Utc::now(),
        deps.start_retry_base,
    )
    .await;
    match &outcome {
        StartOutcome::RetryAfter(delay) => {
            let next = start.next_attempt();
            deps.recordings_queue
                .send_start(&next, *delay)
                .await
                .map_err(|e| {
                    Failure::Transient(format!("cannot re-send the recording start: {e}"))
                })?;
            info!(meeting_id = %start.meeting_id, kind = %start.kind, attempt = next.attempt, ?delay, "recording start sent again for later");
        }
        StartOutcome::Failed(reason) => {
            error!(meeting_id = %start.meeting_id, kind = %start.kind, %reason, "recording start failed; not retried");
        }
        StartOutcome::Started => deps
            .metrics
            .count(Metric::RecordingStarted, Some(Platform::Daily)),
        StartOutcome::AlreadyActive | StartOutcome::Skipped(_) => {}
    }
    if matches!(
        outcome,
        StartOutcome::RetryAfter(_) | StartOutcome::Failed(_)
    ) {
        deps.metrics
            .count(Metric::PlatformError, Some(Platform::Daily));
    }
    Ok(Outcome::Start(outcome))
}

/// Where to get the bytes of one recording.
#[derive(Debug, Clone)]
enum Source {
    Url(String),
    S3 {
        location: S3Location,
        size: Option<u64>,
    },
    DailyRecording(String),
    /// The audio tracks of a multitrack recording, in the Daily bucket.
    Tracks(Vec<S3Location>),
    /// A multitrack recording whose tracks Daily's `GET /recordings/:id` lists.
    DailyTracks(String),
}

impl Source {
    fn is_multitrack(&self) -> bool {
        matches!(self, Source::Tracks(_) | Source::DailyTracks(_))
    }
}

async fn process_job(deps: &Deps, job: &RecordingJob) -> Result<Outcome, Failure> {
    on_record_span(&job.meeting_id, &job.room_name);
    let Some(meeting) = deps.meetings.get(&job.meeting_id).await? else {
        let reason = format!("meeting {} is unknown", job.meeting_id);
        if deps.recordings.get(&job.recording_id).await?.is_some() {
            fail_recording(deps, &job.recording_id, &reason).await;
        }
        return Err(Failure::Permanent(reason));
    };
    let source = match &job.source {
        JobSource::Url(url) => Source::Url(url.clone()),
        JobSource::S3(location) => Source::S3 {
            location: location.clone(),
            size: None,
        },
        JobSource::DailyRecording(id) => Source::DailyRecording(id.clone()),
        JobSource::Tracks(tracks) => Source::Tracks(tracks.clone()),
        JobSource::DailyTracks(id) => Source::DailyTracks(id.clone()),
    };
    let recording = match deps.recordings.get(&job.recording_id).await? {
        Some(r) => r,
        None => {
            // The webhook normally stores the recording first; a job built by hand or by an
            // older producer still works.
            let identity = match &job.source {
                JobSource::S3(loc) => RecordingSource::S3 {
                    bucket: loc.bucket.clone(),
                    key: loc.key.clone(),
                },
                source if source.is_multitrack() => RecordingSource::PlatformTracks {
                    platform: meeting.platform,
                    recording_id: job.recording_id.clone(),
                },
                _ => RecordingSource::PlatformRecording {
                    platform: meeting.platform,
                    recording_id: job.recording_id.clone(),
                },
            };
            create_recording(deps, job.recording_id.clone(), &meeting, identity).await?
        }
    };
    process_recording(deps, &meeting, &recording, &source).await
}

async fn process_object(deps: &Deps, object: &CreatedObject) -> Result<Outcome, Failure> {
    let loc = &object.location;
    if loc.bucket == deps.bucket && loc.key.starts_with(AUDIO_KEY_ROOT) {
        // Our own output, when the notification covers the whole recordings bucket.
        info!(key = %loc.key, "notification for audio this function stored; ignored");
        return Ok(Outcome::Ignored);
    }
    let parsed = parse_whereby_key(&loc.key).map_err(|reason| {
        error!(bucket = %loc.bucket, key = %loc.key, %reason, "S3 object is not a Whereby recording; ignored");
        Failure::Permanent(reason)
    })?;
    Span::current().record("room", parsed.room_name.as_str());
    let Some(meeting) = deps.meetings.get_by_room_name(&parsed.room_name).await? else {
        let reason = format!(
            "no meeting for room {} (object s3://{}/{})",
            parsed.room_name, loc.bucket, loc.key
        );
        error!(bucket = %loc.bucket, key = %loc.key, room_name = %parsed.room_name, "{reason}");
        return Err(Failure::Permanent(reason));
    };
    Span::current().record("meeting_id", meeting.id.as_str());
    let identity = RecordingSource::S3 {
        bucket: loc.bucket.clone(),
        key: loc.key.clone(),
    };
    let recording =
        create_recording(deps, uuid::Uuid::new_v4().to_string(), &meeting, identity).await?;
    let source = Source::S3 {
        location: loc.clone(),
        size: object.size,
    };
    process_recording(deps, &meeting, &recording, &source).await
}

/// Creates the recording unless one with the same source exists (a redelivered notification
/// reuses it).
async fn create_recording(
    deps: &Deps,
    id: String,
    meeting: &Meeting,
    source: RecordingSource,
) -> Result<Recording, Failure> {
    let now = Utc::now();
    let (recording, created) = deps
        .recordings
        .create_if_absent(&Recording {
            id,
            meeting_id: meeting.id.clone(),
            source,
            status: RecordingStatus::Pending,
            error: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    info!(recording_id = %recording.id, meeting_id = %meeting.id, created, "recording");
    Ok(recording)
}

async fn process_recording(
    deps: &Deps,
    meeting: &Meeting,
    recording: &Recording,
    source: &Source,
) -> Result<Outcome, Failure> {
    if source.is_multitrack() {
        return process_tracks(deps, meeting, recording, source).await;
    }
    if superseded_by_tracks(meeting, recording) {
        return store_only(deps, meeting, recording, source).await;
    }
    let transcript = transcript_for(deps, meeting, recording).await?;

    if let (TranscriptStatus::Uploaded, Some(audio)) = (transcript.status, &transcript.audio) {
        // A redelivery after the upload: only the hand-off may be missing.
        complete_recording(deps, &recording.id).await;
        send_pipeline_once(deps, meeting.platform, &transcript, Some(audio), Vec::new()).await?;
        return Ok(Outcome::Uploaded {
            transcript_id: transcript.id.clone(),
            audio: audio.clone(),
        });
    }

    move_recording(deps, &recording.id, RecordingStatus::Processing, None).await;
    let started = std::time::Instant::now();
    match obtain_audio(deps, meeting, recording, source).await {
        Ok((audio, bytes)) => {
            let transcript = deps
                .transcripts
                .set_status(
                    &transcript.id,
                    TranscriptStatus::Uploaded,
                    None,
                    Some(&audio),
                )
                .await?;
            deps.metrics.recording_uploaded(
                meeting.platform,
                bytes,
                started.elapsed().as_secs_f64(),
            );
            complete_recording(deps, &recording.id).await;
            send_pipeline_once(
                deps,
                meeting.platform,
                &transcript,
                Some(&audio),
                Vec::new(),
            )
            .await?;
            Ok(Outcome::Uploaded {
                transcript_id: transcript.id,
                audio,
            })
        }
        Err(Failure::Permanent(reason)) => {
            record_unusable(deps, recording, &transcript, reason).await
        }
        Err(other) => Err(other),
    }
}

/// A meeting whose multitrack (raw-tracks) recording the server started hands that one to the
/// pipeline: its single-file Daily recordings are stored, not transcribed twice.
fn superseded_by_tracks(meeting: &Meeting, recording: &Recording) -> bool {
    meeting.platform == Platform::Daily
        && !recording.source.is_multitrack()
        && meeting
            .recordings_started
            .contains(&RecordingKind::RawTracks)
}

/// The file kept in our bucket (media-checked like any other), the recording `stored`, no
/// transcript and no pipeline message.
async fn store_only(
    deps: &Deps,
    meeting: &Meeting,
    recording: &Recording,
    source: &Source,
) -> Result<Outcome, Failure> {
    move_recording(deps, &recording.id, RecordingStatus::Processing, None).await;
    match obtain_audio(deps, meeting, recording, source).await {
        Ok((audio, _bytes)) => {
            move_recording(deps, &recording.id, RecordingStatus::Stored, None).await;
            info!(recording_id = %recording.id, key = %audio.key, "recording stored without a transcript: the meeting's multitrack recording goes to the pipeline");
            Ok(Outcome::Stored { audio })
        }
        Err(Failure::Permanent(reason)) => {
            fail_recording(deps, &recording.id, &reason).await;
            Ok(Outcome::Failed { reason })
        }
        Err(other) => Err(other),
    }
}

async fn record_unusable(
    deps: &Deps,
    recording: &Recording,
    transcript: &Transcript,
    reason: String,
) -> Result<Outcome, Failure> {
    warn!(recording_id = %recording.id, transcript_id = %transcript.id, %reason, "recording unusable");
    deps.transcripts
        .set_status(
            &transcript.id,
            TranscriptStatus::Error,
            Some((&reason, true)),
            None,
        )
        .await?;
    fail_recording(deps, &recording.id, &reason).await;
    Ok(Outcome::Failed { reason })
}

/// A multitrack recording: each audio track copied (server-side) under
/// `recordings/<meeting_id>/<recording_id>/`, media-checked, then one pipeline message listing
/// the tracks ordered by track start. A track that is not usable audio is left out (logged);
/// no usable track at all fails the recording for good.
async fn process_tracks(
    deps: &Deps,
    meeting: &Meeting,
    recording: &Recording,
    source: &Source,
) -> Result<Outcome, Failure> {
    let transcript = transcript_for(deps, meeting, recording).await?;
    let prefix = S3Location {
        bucket: deps.bucket.clone(),
        key: tracks_prefix(&meeting.id, &recording.id),
    };
    if transcript.status == TranscriptStatus::Uploaded && transcript.pipeline_sent_at.is_some() {
        info!(transcript_id = %transcript.id, "multitrack recording already handed off");
        complete_recording(deps, &recording.id).await;
        return Ok(Outcome::UploadedTracks {
            transcript_id: transcript.id,
            prefix,
            tracks: 0,
        });
    }
    let sources = match source {
        Source::Tracks(tracks) => tracks.clone(),
        Source::DailyTracks(id) => match daily_tracks(deps, id).await {
            Ok(tracks) => tracks,
            Err(Failure::Permanent(reason)) => {
                return record_unusable(deps, recording, &transcript, reason).await
            }
            Err(other) => return Err(other),
        },
        _ => Vec::new(),
    };
    move_recording(deps, &recording.id, RecordingStatus::Processing, None).await;
    let mut stored = Vec::new();
    let mut refused = Vec::new();
    for (from, key) in ordered_tracks(sources) {
        let file = from.key.rsplit('/').next().unwrap_or(&from.key).to_owned();
        let target_prefix = format!("{}{file}.", prefix.key);
        let existing = deps
            .blobs
            .find_by_prefix(&deps.bucket, &target_prefix)
            .await
            .map_err(own_s3)?;
        let location = match existing {
            Some(found) => Ok(found.location),
            None => {
                let metadata = HashMap::from([
                    ("recording-id".to_owned(), recording.id.clone()),
                    ("meeting-id".to_owned(), meeting.id.clone()),
                    ("session-id".to_owned(), key.session_id.clone()),
                ]);
                copy_s3(deps, &from, None, &target_prefix, metadata)
                    .await
                    .map(|(location, _bytes)| location)
            }
        };
        match location {
            Ok(location) => stored.push(AudioTrack {
                bucket: location.bucket,
                key: location.key,
                session_id: key.session_id,
            }),
            Err(Failure::Permanent(reason)) => {
                warn!(recording_id = %recording.id, key = %from.key, %reason, "audio track left out: not usable audio");
                refused.push(format!("{}: {reason}", from.key));
            }
            Err(other) => return Err(other),
        }
    }
    if stored.is_empty() {
        let reason = if refused.is_empty() {
            "the multitrack recording has no audio track".to_owned()
        } else {
            format!("no usable audio track ({})", refused.join("; "))
        };
        return record_unusable(deps, recording, &transcript, reason).await;
    }
    let transcript = deps
        .transcripts
        .set_status(
            &transcript.id,
            TranscriptStatus::Uploaded,
            None,
            Some(&prefix),
        )
        .await?;
    complete_recording(deps, &recording.id).await;
    let count = stored.len();
    send_pipeline_once(deps, meeting.platform, &transcript, None, stored).await?;
    Ok(Outcome::UploadedTracks {
        transcript_id: transcript.id,
        prefix,
        tracks: count,
    })
}

/// The audio tracks Daily lists for recording `id`. Daily may not have listed them yet when
/// the event arrives: an empty list is transient, so the record is redelivered later.
async fn daily_tracks(deps: &Deps, id: &str) -> Result<Vec<S3Location>, Failure> {
    let Some(bucket) = deps.daily_bucket.clone() else {
        return Err(Failure::Permanent(format!(
            "raw-tracks recording {id}: AWS_DAILY_S3_BUCKET is not set, so its tracks cannot be read"
        )));
    };
    let keys = deps
        .links
        .audio_tracks(id)
        .await
        .map_err(Failure::classify)?;
    if keys.is_empty() {
        return Err(Failure::Transient(format!(
            "Daily lists no audio track of raw-tracks recording {id} yet; retried later"
        )));
    }
    Ok(keys
        .into_iter()
        .map(|key| S3Location {
            bucket: bucket.clone(),
            key,
        })
        .collect())
}

/// Tracks ordered by their start (from Daily's key); a key of another shape goes last, named
/// by its file name.
fn ordered_tracks(sources: Vec<S3Location>) -> Vec<(S3Location, TrackKey)> {
    let mut tracks: Vec<(S3Location, TrackKey)> = sources
        .into_iter()
        .map(|from| {
            let key = parse_track_key(&from.key).unwrap_or_else(|| {
                warn!(key = %from.key, "track key not in Daily's raw-tracks shape; its session id is its file name");
                // Unknown start: after every track whose start is known.
                TrackKey {
                    session_id: from.key.rsplit('/').next().unwrap_or(&from.key).to_owned(),
                    track_start_ms: u64::MAX,
                }
            });
            (from, key)
        })
        .collect();
    tracks.sort_by(|a, b| (a.1.track_start_ms, &a.0.key).cmp(&(b.1.track_start_ms, &b.0.key)));
    tracks
}

/// The key prefix of a multitrack recording's tracks in our bucket.
pub fn tracks_prefix(meeting_id: &str, recording_id: &str) -> String {
    format!("{AUDIO_KEY_ROOT}{meeting_id}/{recording_id}/")
}

async fn transcript_for(
    deps: &Deps,
    meeting: &Meeting,
    recording: &Recording,
) -> Result<Transcript, Failure> {
    let now = Utc::now();
    let (transcript, created) = deps
        .transcripts
        .create_if_absent(&Transcript {
            id: uuid::Uuid::new_v4().to_string(),
            recording_id: recording.id.clone(),
            meeting_id: meeting.id.clone(),
            room_id: meeting.room_id.clone(),
            status: TranscriptStatus::Idle,
            error: None,
            error_permanent: false,
            audio: None,
            pipeline_sent_at: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    info!(transcript_id = %transcript.id, recording_id = %recording.id, created, status = ?transcript.status, "transcript");
    Ok(transcript)
}

/// Best-effort status move: an illegal transition (already there, or further) is not an error
/// for a redelivered record.
async fn move_recording(deps: &Deps, id: &str, status: RecordingStatus, error: Option<&str>) {
    if let Err(e) = deps.recordings.set_status(id, status, error).await {
        match e {
            StoreError::Conflict { .. } => {
                info!(recording_id = %id, ?status, reason = %e, "recording status unchanged")
            }
            e => {
                warn!(recording_id = %id, ?status, error = %e, "could not update the recording status")
            }
        }
    }
}

async fn complete_recording(deps: &Deps, id: &str) {
    move_recording(deps, id, RecordingStatus::Completed, None).await;
}

async fn fail_recording(deps: &Deps, id: &str, reason: &str) {
    move_recording(deps, id, RecordingStatus::Failed, Some(reason)).await;
}

/// Sends the pipeline message unless it was sent for this transcript. The claim comes first, so
/// two workers racing on a redelivered message never both send.
async fn send_pipeline_once(
    deps: &Deps,
    platform: Platform,
    transcript: &Transcript,
    audio: Option<&S3Location>,
    tracks: Vec<AudioTrack>,
) -> Result<(), Failure> {
    if transcript.pipeline_sent_at.is_some() {
        info!(transcript_id = %transcript.id, "pipeline message already sent");
        return Ok(());
    }
    let claimed_at = Utc::now();
    if !deps
        .transcripts
        .mark_pipeline_sent(&transcript.id, claimed_at)
        .await?
    {
        info!(transcript_id = %transcript.id, "pipeline message already sent");
        return Ok(());
    }
    let message = PipelineMessage {
        transcript_id: transcript.id.clone(),
        recording_id: transcript.recording_id.clone(),
        meeting_id: transcript.meeting_id.clone(),
        room_id: transcript.room_id.clone(),
        audio: audio.cloned(),
        tracks,
    };
    // Try harder than the SDK does before giving the record back for redelivery.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match deps.pipeline.send(&message).await {
            Ok(()) => break,
            Err(e) if attempt < PIPELINE_SEND_ATTEMPTS => {
                warn!(transcript_id = %transcript.id, attempt, error = %e, "pipeline send failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500 * 2u64.pow(attempt))).await;
            }
            Err(e) => {
                // Give the claim back so the redelivery sends the message instead of skipping it.
                if let Err(release) = deps
                    .transcripts
                    .release_pipeline_sent(&transcript.id, claimed_at)
                    .await
                {
                    error!(transcript_id = %transcript.id, error = %release,
                        "pipeline message not sent and its claim not released: requeue this transcript by hand");
                } else {
                    warn!(transcript_id = %transcript.id, error = %e,
                        "pipeline message not sent; the record will be redelivered");
                }
                return Err(Failure::Transient(e.to_string()));
            }
        }
    }
    deps.metrics
        .count(Metric::PipelineMessageSent, Some(platform));
    info!(transcript_id = %transcript.id, audio = ?message.audio.as_ref().map(|a| &a.key), tracks = message.tracks.len(), "pipeline message sent");
    Ok(())
}

/// Where this function stores audio in the recordings bucket.
pub const AUDIO_KEY_ROOT: &str = "recordings/";

/// The key prefix of a recording's audio in our bucket; the extension follows the container.
pub fn audio_prefix(meeting_id: &str, recording_id: &str) -> String {
    format!("{AUDIO_KEY_ROOT}{meeting_id}/{recording_id}.")
}

async fn obtain_audio(
    deps: &Deps,
    meeting: &Meeting,
    recording: &Recording,
    source: &Source,
) -> Result<(S3Location, u64), Failure> {
    let prefix = audio_prefix(&meeting.id, &recording.id);
    if let Some(existing) = deps
        .blobs
        .find_by_prefix(&deps.bucket, &prefix)
        .await
        .map_err(own_s3)?
    {
        // Objects appear only once complete and checked: a redelivery does not upload twice.
        info!(key = %existing.location.key, size = existing.size, "audio already stored");
        return Ok((existing.location, existing.size));
    }
    let metadata = HashMap::from([
        ("recording-id".to_owned(), recording.id.clone()),
        ("meeting-id".to_owned(), meeting.id.clone()),
    ]);
    match source {
        Source::Url(url) => stream_url(deps, url, &prefix, metadata).await,
        Source::DailyRecording(id) => {
            if meeting.platform != Platform::Daily {
                warn!(platform = %meeting.platform, "daily_recording source on a non-Daily meeting");
            }
            let link = deps
                .links
                .access_link(id)
                .await
                .map_err(Failure::classify)?;
            stream_url(deps, &link, &prefix, metadata).await
        }
        Source::S3 { location, size } => copy_s3(deps, location, *size, &prefix, metadata).await,
        Source::Tracks(_) | Source::DailyTracks(_) => Err(Failure::Permanent(
            "a multitrack recording has no single audio file".into(),
        )),
    }
}

/// S3 errors on our own bucket are never the recording's fault (permissions, throttling, an
/// outage): always worth a redelivery, and the DLQ if they persist.
fn own_s3(e: S3Error) -> Failure {
    Failure::Transient(e.to_string())
}

/// Bytes needed to name the container before the upload starts.
const DETECT_BYTES: usize = 12;

async fn stream_url(
    deps: &Deps,
    url: &str,
    prefix: &str,
    metadata: HashMap<String, String>,
) -> Result<(S3Location, u64), Failure> {
    let download = deps.downloader.open(url).await.map_err(Failure::classify)?;
    info!(url = %shared::download::redact(&download.url), length = ?download.content_length,
        content_type = ?download.content_type, "download started");
    let mut body = download.body;
    // Read just enough to name the object after its container.
    let mut head = BytesMut::new();
    let mut first: Vec<Bytes> = Vec::new();
    while head.len() < DETECT_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => {
                head.extend_from_slice(&chunk[..chunk.len().min(DETECT_BYTES - head.len())]);
                first.push(chunk);
            }
            Some(Err(e)) => return Err(Failure::classify(e)),
            None => break,
        }
    }
    let Some(container) = media::detect(&head) else {
        let mut sniffer = Sniffer::new();
        sniffer.feed(&head);
        let reason = match sniffer.finish() {
            Err(e) => e.to_string(),
            Ok(_) => "not a media container".to_owned(),
        };
        return Err(Failure::Permanent(reason));
    };
    let target = UploadTarget {
        bucket: deps.bucket.clone(),
        key: format!("{prefix}{}", container.extension()),
        content_type: Some(container.content_type().to_owned()),
        metadata,
    };
    let stream = stream::iter(first.into_iter().map(Ok)).chain(body).boxed();
    let mut check = MediaCheck::new();
    let uploaded = deps
        .blobs
        .upload(&target, stream, download.content_length, &mut check)
        .await
        .map_err(|e| match e {
            UploadError::Source { error, .. } => Failure::classify(error),
            UploadError::Rejected(media) => Failure::Permanent(media.to_string()),
            e @ UploadError::Incomplete { .. } => Failure::Transient(e.to_string()),
            UploadError::S3(e) => own_s3(e),
        })?;
    info!(key = %uploaded.location.key, bytes = uploaded.bytes, parts = uploaded.parts,
        codec = ?check.info().and_then(|i| i.audio_codec.as_deref()), "audio stored");
    Ok((uploaded.location, uploaded.bytes))
}

async fn copy_s3(
    deps: &Deps,
    from: &S3Location,
    size: Option<u64>,
    prefix: &str,
    metadata: HashMap<String, String>,
) -> Result<(S3Location, u64), Failure> {
    let size = match size {
        Some(s) => s,
        None => match deps.blobs.head(from).await.map_err(Failure::classify)? {
            Some(info) => info.size,
            None => {
                return Err(Failure::Permanent(format!(
                    "source object s3://{}/{} does not exist",
                    from.bucket, from.key
                )))
            }
        },
    };
    // Range reads: only the container's structure is read, never the whole object.
    let info = deps
        .blobs
        .check_media(from, size)
        .await
        .map_err(Failure::classify)?
        .map_err(|e| Failure::Permanent(e.to_string()))?;
    if from.bucket == deps.bucket {
        info!(key = %from.key, size, "audio already in our bucket; referenced in place");
        return Ok((from.clone(), 0));
    }
    let target = UploadTarget {
        bucket: deps.bucket.clone(),
        key: format!("{prefix}{}", info.container.extension()),
        content_type: Some(info.container.content_type().to_owned()),
        metadata,
    };
    let copied = deps.blobs.copy(from, size, &target).await.map_err(|e| {
        // The copy reads the source: a refused read of it is permanent, ours is not.
        if e.is_transient() {
            Failure::Transient(e.to_string())
        } else if e.status == Some(404) || e.status == Some(403) {
            Failure::Permanent(e.to_string())
        } else {
            Failure::Transient(e.to_string())
        }
    })?;
    info!(from = %format!("s3://{}/{}", from.bucket, from.key), key = %copied.location.key, size, "audio copied");
    Ok((copied.location, size))
}

/// Names the record's meeting and room on its span, so every later line of the record has them.
fn on_record_span(meeting_id: &str, room: &str) {
    let span = Span::current();
    span.record("meeting_id", meeting_id);
    span.record("room", room);
}
