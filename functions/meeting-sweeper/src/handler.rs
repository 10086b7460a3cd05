//! The meeting sweeper (DESIGN.md section 8), run on a schedule.
//!
//! One run does the steps below; the meetings (1 then 3), the requeue (2) and Daily's recording
//! list and webhook (4) run at the same time, each bounded by the deadline, since none needs
//! another's result (see [`run`]):
//! 1. Active meetings past their end date are deactivated. These need no platform call, so they
//!    go first among the meetings and are never starved by slow platforms.
//! 2. Recordings that were never turned into a transcript, or whose transcript failed for a
//!    transient reason, are requeued on the recordings queue: at most
//!    [`Settings::requeue_limit`] per run, each at most once per [`Settings::requeue_cooldown`]
//!    (a conditional write, [`RecordingStore::claim_requeue`], so concurrent runs never requeue
//!    one twice).
//! 3. Every other active meeting asks its platform for the room's sessions: none yet, or one
//!    still open -> stays active; all ended -> deactivated. A platform or store error for one
//!    meeting is logged and that meeting skipped.
//!
//! 4. Daily reconciliation ([`crate::daily`]), when `DAILY_API_KEY` is set: step 3 asks Daily's
//!    presence for each active Daily meeting and corrects its sessions and count before the
//!    rule runs; then Daily's recording list within `DAILY_RECORDING_LOOKBACK` gives the finished
//!    recordings no webhook announced (queued as the webhook would), and our webhook endpoint
//!    (`DAILY_WEBHOOK_URL`) is re-armed if Daily marked it FAILED.
//!
//! This module orchestrates the steps (deadline, concurrency, summary); [`crate::deactivate`],
//! [`crate::requeue`] and [`crate::daily`] do them.
//!
//! The run stops starting work at the deadline (the Lambda timeout minus a margin) and reports
//! `stopped_early`; whatever it did not reach is still there for the next run (meetings stay
//! active, recordings stay unclaimed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info, instrument, warn};

use shared::aws::AwsClients;
use shared::config::{Config, ConfigError};
use shared::domain::Meeting;
use shared::metrics::{Function, Metrics, SweeperCounts};
use shared::platform::daily::DailyClient;
use shared::platform::{PlatformError, PlatformRegistry, RegistryOptions};
use shared::queue::{QueueError, RecordingQueue, SqsQueue};
use shared::store::dynamo::DynamoStores;
use shared::store::sessions::StoredRoomSessions;
use shared::store::{
    MeetingStore, ParticipantSessionStore, RecordingStore, StoreError, TranscriptStore,
};

use crate::daily::{check_webhook, recover_recordings, PresenceChanges, WEBHOOK_UNCHECKED};
pub use crate::deactivate::still_in_use;
use crate::deactivate::sweep_meetings;
use crate::requeue::requeue_recordings;
pub use crate::requeue::{job_source, Reprocess, CANDIDATES_PER_REQUEUE};

/// Time kept free before the Lambda deadline: the longest single AWS call
/// ([`shared::aws::OPERATION_TIMEOUT`], 8 s) plus the summary log, so a call started just before
/// the deadline still ends inside the invocation.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// A recording changed this recently may still be in the processor's hands (the recordings
/// queue's visibility timeout is 90 minutes, so a failed attempt is redelivered by SQS itself
/// within that time): requeuing it would only duplicate work.
pub const DEFAULT_IN_FLIGHT_GRACE: Duration = Duration::from_secs(2 * 3600);

/// Platform calls made at once. Small: it keeps the run well under the platforms' rate limits
/// while still checking hundreds of meetings within one invocation.
pub const DEFAULT_PLATFORM_CONCURRENCY: usize = 4;

/// Tunables of one run, from [`Config`] plus the constants above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub requeue_limit: u32,
    pub requeue_cooldown: Duration,
    pub in_flight_grace: Duration,
    pub platform_concurrency: usize,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            requeue_limit: config.sweeper_requeue_limit,
            requeue_cooldown: config.sweeper_requeue_cooldown,
            in_flight_grace: DEFAULT_IN_FLIGHT_GRACE,
            platform_concurrency: DEFAULT_PLATFORM_CONCURRENCY,
        }
    }
}

/// The stores the sweeper reads and writes.
#[derive(Clone)]
pub struct Stores {
    pub meetings: Arc<dyn MeetingStore>,
    pub participant_sessions: Arc<dyn ParticipantSessionStore>,
    pub recordings: Arc<dyn RecordingStore>,
    pub transcripts: Arc<dyn TranscriptStore>,
}

pub struct Deps {
    pub config: Arc<Config>,
    pub settings: Settings,
    pub meetings: Arc<dyn MeetingStore>,
    pub participant_sessions: Arc<dyn ParticipantSessionStore>,
    pub recordings: Arc<dyn RecordingStore>,
    pub transcripts: Arc<dyn TranscriptStore>,
    pub platforms: PlatformRegistry,
    pub queue: Arc<dyn RecordingQueue>,
    pub metrics: Metrics,
    /// Daily's API for the reconciliation: the registry's client; `None` without `DAILY_API_KEY`.
    pub daily: Option<Arc<DailyClient>>,
}

impl Deps {
    /// Builds the platform registry from `config` and `options` (the Lambda passes the default
    /// options; the local stack allows the mock), with Daily sessions read from the stored
    /// participant sessions.
    pub fn new(
        config: Arc<Config>,
        stores: Stores,
        queue: Arc<dyn RecordingQueue>,
        options: RegistryOptions,
    ) -> Self {
        let session_source =
            StoredRoomSessions::new(stores.meetings.clone(), stores.participant_sessions.clone());
        let platforms = PlatformRegistry::from_config(
            &config,
            RegistryOptions {
                session_source: Some(Arc::new(session_source)),
                ..options
            },
        );
        let daily = platforms.daily_client();
        Self {
            settings: Settings::from_config(&config),
            config,
            meetings: stores.meetings,
            participant_sessions: stores.participant_sessions,
            recordings: stores.recordings,
            transcripts: stores.transcripts,
            platforms,
            queue,
            metrics: Metrics::standard(Function::MeetingSweeper),
            daily,
        }
    }
}

impl Deps {
    /// The real adapters: DynamoDB stores over `clients.dynamodb` and the SQS recordings queue.
    /// `RECORDINGS_QUEUE_URL` is required: without it nothing could be requeued.
    pub fn from_aws(
        config: Arc<Config>,
        clients: &AwsClients,
        options: RegistryOptions,
    ) -> Result<Self, ConfigError> {
        let queue_url = config
            .recordings_queue_url
            .clone()
            .ok_or(ConfigError::Missing {
                var: "RECORDINGS_QUEUE_URL",
                why: "by the meeting sweeper to requeue recordings",
            })?;
        let stores = DynamoStores::new(clients.dynamodb.clone(), &config.tables);
        let stores = Stores {
            meetings: Arc::new(stores.meetings),
            participant_sessions: Arc::new(stores.participant_sessions),
            recordings: Arc::new(stores.recordings),
            transcripts: Arc::new(stores.transcripts),
        };
        let queue = Arc::new(SqsQueue::new(clients.sqs.clone(), queue_url));
        Ok(Self::new(config, stores, queue, options))
    }
}

/// What one run did; also logged as one line and returned as the invocation's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Active meetings looked at (past their end date, or asked their platform).
    pub checked: u32,
    pub deactivated: u32,
    /// Meetings left as they were because their platform or the store failed.
    pub skipped_on_error: u32,
    pub requeued: u32,
    /// Recordings that needed a requeue but the store or the queue failed.
    pub requeue_failed: u32,
    /// Active Daily meetings whose sessions were checked against Daily's presence.
    pub presence_checked: u32,
    /// Sessions recorded because Daily showed them present without a join event.
    pub sessions_opened: u32,
    /// Sessions closed because Daily no longer showed them.
    pub sessions_closed: u32,
    /// Meetings whose `num_clients` was set from Daily's presence.
    pub clients_corrected: u32,
    /// Daily recordings within the lookback looked at.
    pub daily_recordings_seen: u32,
    /// Finished Daily recordings no webhook announced, now recorded and queued.
    pub recordings_recovered: u32,
    /// Such recordings whose recording or queueing failed (tried again next run).
    pub recordings_recovery_failed: u32,
    /// Our Daily webhook: `active`, `rearmed`, `rearm_failed`, `missing`, `list_failed`, or
    /// `unchecked` (no `DAILY_API_KEY` or `DAILY_WEBHOOK_URL`, or no time left).
    pub webhook: String,
    /// The deadline came before the run finished; the next run picks up the rest.
    pub stopped_early: bool,
    /// Steps that failed as a whole (a listing), so the run could not do them at all.
    pub errors: Vec<String>,
}

impl Summary {
    /// Adds what another step did (its counts, errors and whether it stopped early); the webhook
    /// state stays this summary's.
    fn add(&mut self, other: Summary) {
        self.checked += other.checked;
        self.deactivated += other.deactivated;
        self.skipped_on_error += other.skipped_on_error;
        self.requeued += other.requeued;
        self.requeue_failed += other.requeue_failed;
        self.presence_checked += other.presence_checked;
        self.sessions_opened += other.sessions_opened;
        self.sessions_closed += other.sessions_closed;
        self.clients_corrected += other.clients_corrected;
        self.daily_recordings_seen += other.daily_recordings_seen;
        self.recordings_recovered += other.recordings_recovered;
        self.recordings_recovery_failed += other.recordings_recovery_failed;
        self.stopped_early |= other.stopped_early;
        self.errors.extend(other.errors);
    }

    pub(crate) fn add_presence(&mut self, changes: Option<PresenceChanges>) {
        if let Some(c) = changes {
            self.presence_checked += 1;
            self.sessions_opened += c.opened;
            self.sessions_closed += c.closed;
            self.clients_corrected += u32::from(c.count_corrected);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SweepError {
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Lambda entry point: runs until [`DEADLINE_MARGIN`] before the invocation's deadline. Fails
/// the invocation (so the function's error metric shows it) only when a whole step failed.
#[instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Summary, Error> {
    let deadline =
        shared::deadline::before_lambda_deadline_now(event.context.deadline(), DEADLINE_MARGIN);
    let summary = run(deps, Utc::now(), deadline).await;
    if summary.errors.is_empty() {
        Ok(summary)
    } else {
        Err(format!("meeting sweep incomplete: {}", summary.errors.join("; ")).into())
    }
}

/// One sweep as of `now`, starting no work at or after `deadline`.
///
/// The meetings, the requeue and Daily's recording list and webhook share nothing but the
/// deadline, so they run at once: every step waits on DynamoDB or a platform, not on the CPU,
/// and a run then takes as long as its longest step instead of the sum of all of them (a cold
/// start's first run most of all). Each step checks the deadline itself.
#[instrument(skip(deps, deadline))]
pub async fn run(deps: &Deps, now: DateTime<Utc>, deadline: Instant) -> Summary {
    let requeue = async {
        let mut summary = Summary::default();
        requeue_recordings(deps, now, deadline, &mut summary).await;
        summary
    };
    let (meetings, requeued, daily) = tokio::join!(
        sweep_active_meetings(deps, now, deadline),
        requeue,
        reconcile_with_daily(deps, now, deadline),
    );
    let mut summary = Summary {
        webhook: daily.webhook.clone(),
        ..Summary::default()
    };
    for part in [meetings, requeued, daily] {
        summary.add(part);
    }
    info!(
        checked = summary.checked,
        deactivated = summary.deactivated,
        skipped_on_error = summary.skipped_on_error,
        requeued = summary.requeued,
        requeue_failed = summary.requeue_failed,
        presence_checked = summary.presence_checked,
        sessions_opened = summary.sessions_opened,
        sessions_closed = summary.sessions_closed,
        clients_corrected = summary.clients_corrected,
        daily_recordings_seen = summary.daily_recordings_seen,
        recordings_recovered = summary.recordings_recovered,
        recordings_recovery_failed = summary.recordings_recovery_failed,
        webhook = %summary.webhook,
        stopped_early = summary.stopped_early,
        errors = summary.errors.len(),
        "meeting sweep finished"
    );
    deps.metrics.sweeper_run(SweeperCounts {
        deactivated: summary.deactivated,
        requeued: summary.requeued,
        // What Daily's records corrected: meetings whose participant count was wrong, and
        // recordings no webhook announced.
        reconciled: summary.clients_corrected + summary.recordings_recovered,
        webhooks_rearmed: u32::from(summary.webhook == "rearmed"),
    });
    summary
}

/// Steps 1 and 3: the active meetings, those past their end date first (they need no platform
/// call, so slow platforms never starve them), then the others.
async fn sweep_active_meetings(deps: &Deps, now: DateTime<Utc>, deadline: Instant) -> Summary {
    let mut summary = Summary::default();
    let active = match deps.meetings.list_active().await {
        Ok(active) => active,
        Err(e) => {
            error!(error = %e, "listing active meetings failed");
            summary.errors.push(format!("listing active meetings: {e}"));
            return summary;
        }
    };
    let (ended, mut open): (Vec<Meeting>, Vec<Meeting>) =
        active.into_iter().partition(|m| m.end_date <= now);
    sweep_meetings(deps, ended, now, deadline, &mut summary).await;
    if !summary.stopped_early {
        // The listing comes back in the same order every run; when runs keep hitting the
        // deadline, starting at a different place each time lets every meeting get its turn.
        if !open.is_empty() {
            let start = usize::try_from(now.timestamp().unsigned_abs()).unwrap_or(0) % open.len();
            open.rotate_left(start);
        }
        sweep_meetings(deps, open, now, deadline, &mut summary).await;
    }
    summary
}

/// Step 4's own parts: Daily's recording list and our webhook's health, at once (the presence
/// checks are part of the meetings' step).
async fn reconcile_with_daily(deps: &Deps, now: DateTime<Utc>, deadline: Instant) -> Summary {
    let mut recovered = Summary::default();
    let mut webhook = Summary {
        webhook: WEBHOOK_UNCHECKED.into(),
        ..Summary::default()
    };
    let Some(daily) = &deps.daily else {
        return webhook;
    };
    if Instant::now() >= deadline {
        webhook.stopped_early = true;
        return webhook;
    }
    let check = async {
        match &deps.config.daily.webhook_url {
            Some(url) => check_webhook(daily, url, deadline, &mut webhook).await,
            None => {
                warn!("DAILY_WEBHOOK_URL is not set: the Daily webhook's health is not checked")
            }
        }
    };
    tokio::join!(
        recover_recordings(deps, daily, now, deadline, &mut recovered),
        check
    );
    recovered.webhook = webhook.webhook.clone();
    recovered.add(webhook);
    recovered
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as Span;
    use shared::domain::{
        Platform, Recording, RecordingSource, RecordingStatus, S3Location, Transcript,
        TranscriptStatus,
    };
    use shared::domain::{RecordingTrigger, RecordingType, RoomMode};
    use shared::fakes::{
        MemoryMeetings, MemoryRecordingQueue, MemoryRecordings, MemorySessions, MemoryTranscripts,
    };
    use shared::messages::JobSource;
    use shared::platform::SessionData;
    use std::time::{SystemTime, UNIX_EPOCH};

    const SCHEDULE_EVENT: &str = include_str!("../../../events/schedule/sweep.json");

    fn session(ended: bool) -> SessionData {
        let t = Utc::now();
        SessionData {
            session_id: "s".into(),
            started_at: t,
            ended_at: ended.then_some(t),
        }
    }

    #[test]
    fn a_meeting_is_over_only_when_it_had_sessions_and_all_ended() {
        assert!(still_in_use(&[]), "nobody joined yet");
        assert!(still_in_use(&[session(true), session(false)]));
        assert!(!still_in_use(&[session(true)]));
        assert!(!still_in_use(&[session(true), session(true)]));
    }

    fn transcript(status: TranscriptStatus, permanent: bool) -> Transcript {
        Transcript {
            id: "t".into(),
            recording_id: "r".into(),
            meeting_id: "m".into(),
            room_id: "room".into(),
            status,
            error: None,
            error_permanent: permanent,
            audio: None,
            pipeline_sent_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn only_missing_unfinished_and_transiently_failed_transcripts_are_reprocessed() {
        use TranscriptStatus::*;
        let cases = [
            (None, Reprocess::Unprocessed, true),
            (Some(transcript(Idle, false)), Reprocess::Unprocessed, true),
            (
                Some(transcript(Error, false)),
                Reprocess::TransientError,
                true,
            ),
            (
                Some(transcript(Error, true)),
                Reprocess::PermanentError,
                false,
            ),
            (Some(transcript(Uploaded, false)), Reprocess::Done, false),
        ];
        for (t, want, wanted) in cases {
            let got = Reprocess::of(t.as_ref());
            assert_eq!(got, want, "{t:?}");
            assert_eq!(got.wanted(), wanted, "{t:?}");
        }
    }

    #[test]
    fn job_sources_follow_the_recording_source() {
        assert_eq!(
            job_source(&RecordingSource::S3 {
                bucket: "b".into(),
                key: "k.mp4".into()
            }),
            Some(JobSource::S3(S3Location {
                bucket: "b".into(),
                key: "k.mp4".into()
            }))
        );
        assert_eq!(
            job_source(&RecordingSource::PlatformRecording {
                platform: Platform::Daily,
                recording_id: "d1".into()
            }),
            Some(JobSource::DailyRecording("d1".into()))
        );
        // Nothing could fetch a Whereby "platform recording": Whereby recordings arrive in S3.
        assert_eq!(
            job_source(&RecordingSource::PlatformRecording {
                platform: Platform::Whereby,
                recording_id: "w1".into()
            }),
            None
        );
    }

    struct Fakes {
        meetings: Arc<MemoryMeetings>,
        recordings: Arc<MemoryRecordings>,
        queue: Arc<MemoryRecordingQueue>,
        deps: Deps,
    }

    fn fakes() -> Fakes {
        let meetings = Arc::new(MemoryMeetings::default());
        let recordings = Arc::new(MemoryRecordings::default());
        let queue = Arc::new(MemoryRecordingQueue::default());
        let config = Arc::new(Config::from_vars(&Default::default()).unwrap());
        let deps = Deps::new(
            config,
            Stores {
                meetings: meetings.clone(),
                participant_sessions: Arc::new(MemorySessions::default()),
                recordings: recordings.clone(),
                transcripts: Arc::new(MemoryTranscripts::default()),
            },
            queue.clone(),
            RegistryOptions::default(),
        );
        Fakes {
            meetings,
            recordings,
            queue,
            deps,
        }
    }

    fn meeting(id: &str, end_date: DateTime<Utc>) -> Meeting {
        Meeting {
            recordings_started: Default::default(),
            id: id.into(),
            room_id: format!("room-{id}"),
            room_name: format!("name-{id}"),
            room_url: String::new(),
            host_room_url: String::new(),
            start_date: end_date - Span::hours(8),
            end_date,
            user_id: None,
            is_locked: false,
            room_mode: RoomMode::Normal,
            recording_type: RecordingType::Cloud,
            recording_trigger: RecordingTrigger::Automatic2ndParticipant,
            num_clients: 0,
            is_active: true,
            platform: Platform::Whereby,
            extra_data: Value::Null,
        }
    }

    fn invocation(seconds_left: u64) -> LambdaEvent<Value> {
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-1".into();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        context.deadline = now_ms + seconds_left * 1000;
        LambdaEvent::new(serde_json::from_str(SCHEDULE_EVENT).unwrap(), context)
    }

    #[tokio::test]
    async fn the_schedule_event_runs_a_sweep_and_returns_its_summary() {
        let f = fakes();
        f.meetings
            .insert(meeting("old", Utc::now() - Span::minutes(1)));

        let summary = handle(&f.deps, invocation(60)).await.unwrap();

        assert_eq!((summary.checked, summary.deactivated), (1, 1));
        assert!(!f.meetings.get("old").await.unwrap().unwrap().is_active);
    }

    #[tokio::test]
    async fn a_failed_meeting_listing_fails_the_invocation_but_recordings_are_still_requeued() {
        let f = fakes();
        let m = meeting("m1", Utc::now() - Span::hours(3));
        f.meetings.insert(m.clone());
        f.meetings.failures.fail("list_active");
        let old = Utc::now() - Span::hours(3);
        f.recordings.insert(Recording {
            id: "r1".into(),
            meeting_id: m.id.clone(),
            source: RecordingSource::S3 {
                bucket: "b".into(),
                key: "k.mp4".into(),
            },
            status: RecordingStatus::Failed,
            error: Some("download timed out".into()),
            created_at: old,
            updated_at: old,
        });

        let err = handle(&f.deps, invocation(60)).await.unwrap_err();

        assert!(err.to_string().contains("listing active meetings"), "{err}");
        let sent = f.queue.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].recording_id, "r1");
        assert_eq!(sent[0].room_name, "name-m1");
    }

    #[tokio::test]
    async fn a_failed_send_is_counted_and_the_claim_holds_until_the_cooldown() {
        let f = fakes();
        // Ended: a recording of a meeting still running is not requeued at all.
        let m = meeting("m1", Utc::now() - Span::hours(3));
        f.meetings.insert(m.clone());
        let old = Utc::now() - Span::hours(3);
        f.recordings.insert(Recording {
            id: "r1".into(),
            meeting_id: m.id.clone(),
            source: RecordingSource::S3 {
                bucket: "b".into(),
                key: "k.mp4".into(),
            },
            status: RecordingStatus::Pending,
            error: None,
            created_at: old,
            updated_at: old,
        });
        f.queue.set_failing(true);
        let now = Utc::now();
        let later = Instant::now() + Duration::from_secs(30);

        let summary = run(&f.deps, now, later).await;
        assert_eq!((summary.requeued, summary.requeue_failed), (0, 1));

        f.queue.set_failing(false);
        assert_eq!(run(&f.deps, now + Span::hours(1), later).await.requeued, 0);
        assert_eq!(run(&f.deps, now + Span::hours(7), later).await.requeued, 1);
    }
}
