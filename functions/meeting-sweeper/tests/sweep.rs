//! The sweeper against the real emulator (DynamoDB and SQS in moto) and a fake Whereby API.
//! Each test gets its own tables and queue. Requires `AWS_ENDPOINT_URL` (scripts/test sets it).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, SubsecRound, Utc};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use meeting_sweeper::handler::{run, Deps, Summary};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::domain::{
    Meeting, Platform, Recording, RecordingSource, RecordingStatus, RecordingTrigger,
    RecordingType, RoomMode, Transcript, TranscriptStatus,
};
use shared::metrics::{Function, Metric, Metrics, Registry};
use shared::platform::{HttpSettings, RegistryOptions};
use shared::store::dynamo::DynamoStores;
use shared::store::{
    EventClaim, MeetingStore, ParticipantChange, ParticipantEvents, RecordingStore, TranscriptStore,
};
use shared::testing;

const WHEREBY_KEY: &str = "wb-test-key";

struct Env {
    clients: AwsClients,
    stores: DynamoStores,
    config: Config,
    queue_url: String,
    whereby: MockServer,
    /// The fake Daily API: by default nobody present, no recordings, no webhook.
    daily: MockServer,
    now: DateTime<Utc>,
}

const DAILY_KEY: &str = "daily-test-key";
const WEBHOOK_URL: &str = "https://reflector.example/v1/daily_webhook";

/// The fake Daily's answers when a test mounted nothing more specific.
async fn daily_defaults(daily: &MockServer) {
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/rooms/[^/]+/presence$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "data": []})),
        )
        .with_priority(10)
        .mount(daily)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "data": []})),
        )
        .with_priority(10)
        .mount(daily)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .with_priority(10)
        .mount(daily)
        .await;
}

async fn env() -> Env {
    let clients = testing::emulator().await;
    let tables = testing::fresh_tables(&clients).await;
    let queue_url = clients
        .sqs
        .create_queue()
        .queue_name(testing::unique_prefix("recordings"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let whereby = MockServer::start().await;
    let daily = MockServer::start().await;
    daily_defaults(&daily).await;
    let vars: HashMap<String, String> = [
        ("WHEREBY_API_URL", format!("{}/v1", whereby.uri())),
        ("WHEREBY_API_KEY", WHEREBY_KEY.to_owned()),
        ("DAILY_API_URL", format!("{}/v1", daily.uri())),
        ("DAILY_API_KEY", DAILY_KEY.to_owned()),
        ("DAILY_WEBHOOK_URL", WEBHOOK_URL.to_owned()),
        ("AWS_DAILY_S3_BUCKET", "daily-bucket".to_owned()),
        ("AWS_DAILY_S3_REGION", "us-east-1".to_owned()),
        (
            "AWS_DAILY_ROLE_ARN",
            "arn:aws:iam::123456789012:role/daily".to_owned(),
        ),
        ("RECORDINGS_QUEUE_URL", queue_url.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut config = Config::from_vars(&vars).unwrap();
    config.tables = tables;
    let stores = DynamoStores::new(clients.dynamodb.clone(), &config.tables);
    Env {
        clients,
        stores,
        config,
        queue_url,
        whereby,
        daily,
        // Stored timestamps have microsecond precision at most; keep comparisons exact.
        now: Utc::now().trunc_subsecs(3),
    }
}

impl Env {
    fn deps(&self) -> Deps {
        self.deps_with(|_| {})
    }

    fn deps_with(&self, tweak: impl FnOnce(&mut Config)) -> Deps {
        let mut config = self.config.clone();
        tweak(&mut config);
        Deps::from_aws(
            Arc::new(config),
            &self.clients,
            RegistryOptions {
                http: HttpSettings::fast_for_tests(),
                ..RegistryOptions::default()
            },
        )
        .unwrap()
    }

    async fn sweep(&self, deps: &Deps, now: DateTime<Utc>) -> Summary {
        run(deps, now, Instant::now() + Duration::from_secs(30)).await
    }

    async fn add_meeting(&self, room_name: &str, platform: Platform, end_in: Span) -> Meeting {
        let meeting = Meeting {
            recordings_started: Default::default(),
            id: uuid::Uuid::new_v4().to_string(),
            room_id: format!("room-of-{room_name}"),
            room_name: room_name.to_owned(),
            room_url: format!("https://example.test/{room_name}"),
            host_room_url: String::new(),
            start_date: (self.now + end_in).min(self.now) - Span::hours(1),
            end_date: self.now + end_in,
            user_id: None,
            is_locked: false,
            room_mode: RoomMode::Normal,
            recording_type: RecordingType::Cloud,
            recording_trigger: RecordingTrigger::Automatic2ndParticipant,
            num_clients: 0,
            is_active: true,
            platform,
            extra_data: Value::Null,
        };
        self.stores
            .meetings
            .claim_active(&meeting, meeting.start_date)
            .await
            .unwrap();
        meeting
    }

    /// Applies a participant join or leave under a fresh event id, as the Daily webhook does.
    async fn participant_event(&self, meeting: &Meeting, change: ParticipantChange<'_>) {
        let event_id = uuid::Uuid::new_v4().to_string();
        let claim = EventClaim {
            platform: Platform::Daily,
            event_id: &event_id,
            ttl: Duration::from_secs(86_400),
            lease: Duration::from_secs(60),
            now: self.now,
        };
        self.stores
            .participant_events
            .apply(claim, &meeting.id, change)
            .await
            .unwrap();
    }

    async fn is_active(&self, meeting: &Meeting) -> bool {
        self.stores
            .meetings
            .get(&meeting.id)
            .await
            .unwrap()
            .unwrap()
            .is_active
    }

    /// A recording last changed `age` before `now`, with a transcript if given.
    async fn add_recording(
        &self,
        meeting: &Meeting,
        source: RecordingSource,
        status: RecordingStatus,
        age: Span,
        transcript: Option<(TranscriptStatus, bool)>,
    ) -> Recording {
        let at = self.now - age;
        let recording = Recording {
            id: uuid::Uuid::new_v4().to_string(),
            meeting_id: meeting.id.clone(),
            source,
            status,
            error: (status == RecordingStatus::Failed).then(|| "boom".to_owned()),
            created_at: at,
            updated_at: at,
        };
        self.stores
            .recordings
            .create_if_absent(&recording)
            .await
            .unwrap();
        if let Some((status, permanent)) = transcript {
            let t = Transcript {
                id: uuid::Uuid::new_v4().to_string(),
                recording_id: recording.id.clone(),
                meeting_id: meeting.id.clone(),
                room_id: meeting.room_id.clone(),
                status,
                error: (status == TranscriptStatus::Error).then(|| "failed".to_owned()),
                error_permanent: permanent,
                audio: None,
                pipeline_sent_at: None,
                created_at: at,
                updated_at: at,
            };
            self.stores.transcripts.create_if_absent(&t).await.unwrap();
        }
        recording
    }

    /// Every message on the recordings queue, as JSON, by recording id.
    async fn queued(&self) -> BTreeMap<String, Vec<Value>> {
        let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        loop {
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return by_id;
            }
            for m in messages {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let id = body["recording_id"].as_str().unwrap().to_owned();
                by_id.entry(id).or_default().push(body);
            }
        }
    }

    /// Daily's presence of `room_name` from now on: these participant session ids.
    async fn presence(&self, room_name: &str, ids: &[&str]) {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"room": room_name, "id": id, "userId": null, "userName": id,
                "joinTime": "2026-01-02T03:00:00.000Z", "duration": 60})
            })
            .collect();
        Mock::given(method("GET"))
            .and(path(format!("/v1/rooms/{room_name}/presence")))
            .and(header(
                "authorization",
                format!("Bearer {DAILY_KEY}").as_str(),
            ))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"total_count": ids.len(), "data": data})),
            )
            .mount(&self.daily)
            .await;
    }

    /// Forgets every Daily answer a test mounted (back to the defaults).
    async fn reset_daily(&self) {
        self.daily.reset().await;
        daily_defaults(&self.daily).await;
    }

    async fn sessions(&self, meeting: &Meeting) -> BTreeMap<String, bool> {
        use shared::store::ParticipantSessionStore;
        self.stores
            .participant_sessions
            .list_by_meeting(&meeting.id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.session_id, s.left_at.is_none()))
            .collect()
    }

    async fn num_clients(&self, meeting: &Meeting) -> i64 {
        self.stores
            .meetings
            .get(&meeting.id)
            .await
            .unwrap()
            .unwrap()
            .num_clients
    }

    async fn whereby_sessions(&self, room_name: &str, response: ResponseTemplate) {
        let room_param = format!("/{room_name}");
        Mock::given(method("GET"))
            .and(path("/v1/insights/room-sessions"))
            .and(header(
                "authorization",
                format!("Bearer {WHEREBY_KEY}").as_str(),
            ))
            .and(query_param("roomName", room_param.as_str()))
            .respond_with(response)
            .mount(&self.whereby)
            .await;
    }
}

fn sessions_page(sessions: &[(&str, Option<&str>)]) -> ResponseTemplate {
    let results: Vec<Value> = sessions
        .iter()
        .map(|(id, ended)| {
            json!({
                "roomSessionId": id,
                "roomName": "/ignored",
                "startedAt": "2026-01-02T03:04:05.000Z",
                "endedAt": ended,
            })
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"cursor": null, "results": results}))
}

fn s3(key: &str) -> RecordingSource {
    RecordingSource::S3 {
        bucket: "whereby-recordings".into(),
        key: key.into(),
    }
}

fn daily(id: &str) -> RecordingSource {
    RecordingSource::PlatformRecording {
        platform: Platform::Daily,
        recording_id: id.into(),
    }
}

// ---- meetings ----

#[tokio::test]
async fn meeting_past_its_end_date_is_deactivated_without_asking_the_platform() {
    let e = env().await;
    let ended = e
        .add_meeting("wb-ended", Platform::Whereby, -Span::minutes(1))
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&e.whereby)
        .await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert!(!e.is_active(&ended).await);
    assert_eq!((summary.checked, summary.deactivated), (1, 1));
    assert!(e.stores.meetings.list_active().await.unwrap().is_empty());
}

#[tokio::test]
async fn whereby_meeting_with_a_session_whose_ended_at_is_null_stays_active() {
    let e = env().await;
    let m = e
        .add_meeting("wb-open", Platform::Whereby, Span::hours(2))
        .await;
    e.whereby_sessions(
        "wb-open",
        sessions_page(&[("s1", Some("2026-01-02T03:30:00.000Z")), ("s2", None)]),
    )
    .await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert!(e.is_active(&m).await);
    assert_eq!((summary.checked, summary.deactivated), (1, 0));
    assert_eq!(summary.skipped_on_error, 0);
}

#[tokio::test]
async fn whereby_meeting_nobody_has_joined_yet_stays_active() {
    let e = env().await;
    let m = e
        .add_meeting("wb-empty", Platform::Whereby, Span::hours(2))
        .await;
    e.whereby_sessions("wb-empty", sessions_page(&[])).await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert!(e.is_active(&m).await);
    assert_eq!((summary.checked, summary.deactivated), (1, 0));
}

#[tokio::test]
async fn whereby_meeting_whose_sessions_all_ended_is_deactivated() {
    let e = env().await;
    let m = e
        .add_meeting("wb-done", Platform::Whereby, Span::hours(2))
        .await;
    e.whereby_sessions(
        "wb-done",
        sessions_page(&[
            ("s1", Some("2026-01-02T03:30:00.000Z")),
            ("s2", Some("2026-01-02T04:30:00.000Z")),
        ]),
    )
    .await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert!(!e.is_active(&m).await);
    assert_eq!((summary.checked, summary.deactivated), (1, 1));
}

#[tokio::test]
async fn daily_meeting_stays_active_while_a_stored_participant_is_in_and_ends_after_all_left() {
    let e = env().await;
    let m = e
        .add_meeting("daily-room-20260102", Platform::Daily, Span::hours(2))
        .await;
    let deps = e.deps();

    // Nobody joined yet.
    e.sweep(&deps, e.now).await;
    assert!(e.is_active(&m).await);

    // Sessions are written the way the Daily webhook writes them.
    for (id, joined) in [("p1", 30), ("p2", 20)] {
        e.participant_event(
            &m,
            ParticipantChange::Joined {
                session_id: id,
                user_id: None,
                user_name: Some(id),
                joined_at: e.now - Span::minutes(joined),
            },
        )
        .await;
    }
    e.participant_event(
        &m,
        ParticipantChange::Left {
            session_id: "p1",
            left_at: e.now - Span::minutes(10),
        },
    )
    .await;
    e.presence(&m.room_name, &["p2"]).await;
    let summary = e.sweep(&deps, e.now).await;
    assert!(e.is_active(&m).await, "p2 is still in the room");
    assert_eq!(summary.deactivated, 0);
    e.reset_daily().await;

    e.participant_event(
        &m,
        ParticipantChange::Left {
            session_id: "p2",
            left_at: e.now - Span::minutes(5),
        },
    )
    .await;
    let summary = e.sweep(&deps, e.now).await;
    assert!(!e.is_active(&m).await);
    assert_eq!((summary.checked, summary.deactivated), (1, 1));
}

#[tokio::test]
async fn platform_500_for_one_of_three_meetings_skips_it_and_the_others_are_processed() {
    let e = env().await;
    let broken = e
        .add_meeting("wb-broken", Platform::Whereby, Span::hours(2))
        .await;
    let done_a = e
        .add_meeting("wb-a", Platform::Whereby, Span::hours(2))
        .await;
    let done_b = e
        .add_meeting("wb-b", Platform::Whereby, Span::hours(2))
        .await;
    e.whereby_sessions(
        "wb-broken",
        ResponseTemplate::new(500).set_body_string("internal error"),
    )
    .await;
    let ended = sessions_page(&[("s1", Some("2026-01-02T03:30:00.000Z"))]);
    e.whereby_sessions("wb-a", ended.clone()).await;
    e.whereby_sessions("wb-b", ended).await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert!(e.is_active(&broken).await);
    assert!(!e.is_active(&done_a).await);
    assert!(!e.is_active(&done_b).await);
    assert_eq!(
        (
            summary.checked,
            summary.deactivated,
            summary.skipped_on_error
        ),
        (3, 2, 1)
    );
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
}

#[tokio::test]
async fn a_run_whose_deadline_has_passed_does_nothing_and_the_next_run_does_the_work() {
    let e = env().await;
    let ended = e
        .add_meeting("wb-late", Platform::Whereby, -Span::minutes(1))
        .await;
    let rec = e
        .add_recording(
            &ended,
            s3("late.mp4"),
            RecordingStatus::Failed,
            Span::hours(3),
            None,
        )
        .await;
    let deps = e.deps();

    let summary = run(&deps, e.now, Instant::now()).await;
    assert!(summary.stopped_early);
    assert_eq!((summary.checked, summary.requeued), (0, 0));
    assert!(e.is_active(&ended).await);

    let summary = e.sweep(&deps, e.now).await;
    assert!(!summary.stopped_early);
    assert!(!e.is_active(&ended).await);
    assert_eq!(summary.requeued, 1);
    assert!(e.queued().await.contains_key(&rec.id));
}

#[tokio::test]
async fn a_platform_call_running_into_the_deadline_is_cut_off_and_left_for_the_next_run() {
    let e = env().await;
    let slow = e
        .add_meeting("wb-slow", Platform::Whereby, Span::hours(2))
        .await;
    e.whereby_sessions(
        "wb-slow",
        sessions_page(&[("s1", Some("2026-01-02T03:30:00.000Z"))])
            .set_delay(Duration::from_millis(1500)),
    )
    .await;
    // The production HTTP timeout (10 s), so only the deadline can cut the call short.
    let deps = Deps::from_aws(
        Arc::new(e.config.clone()),
        &e.clients,
        RegistryOptions::default(),
    )
    .unwrap();

    let started = Instant::now();
    let summary = run(&deps, e.now, Instant::now() + Duration::from_millis(200)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "the run waited for the slow call: {:?}",
        started.elapsed()
    );
    assert!(summary.stopped_early);
    assert!(e.is_active(&slow).await);

    let summary = e.sweep(&deps, e.now).await;
    assert!(!summary.stopped_early);
    assert!(!e.is_active(&slow).await);
}

// ---- recordings ----

#[tokio::test]
async fn recordings_without_a_transcript_or_with_a_transient_error_are_requeued_as_processor_jobs()
{
    let e = env().await;
    let m = e
        .add_meeting("wb-rec", Platform::Whereby, -Span::hours(3))
        .await;
    let no_transcript = e
        .add_recording(
            &m,
            s3("wb-rec-2026.mp4"),
            RecordingStatus::Pending,
            Span::hours(3),
            None,
        )
        .await;
    let transient = e
        .add_recording(
            &m,
            daily("daily-rec-1"),
            RecordingStatus::Failed,
            Span::hours(3),
            Some((TranscriptStatus::Error, false)),
        )
        .await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert_eq!(summary.requeued, 2);
    let queued = e.queued().await;
    assert_eq!(
        queued[&no_transcript.id],
        vec![json!({
            "meeting_id": m.id,
            "recording_id": no_transcript.id,
            "room_name": "wb-rec",
            "source": {"s3": {"bucket": "whereby-recordings", "key": "wb-rec-2026.mp4"}},
        })]
    );
    assert_eq!(
        queued[&transient.id],
        vec![json!({
            "meeting_id": m.id,
            "recording_id": transient.id,
            "room_name": "wb-rec",
            "source": {"daily_recording": "daily-rec-1"},
        })]
    );
}

#[tokio::test]
async fn permanently_failed_and_finished_recordings_are_not_requeued() {
    let e = env().await;
    let m = e
        .add_meeting("wb-perm", Platform::Whereby, -Span::hours(3))
        .await;
    e.add_recording(
        &m,
        s3("no-audio.mp4"),
        RecordingStatus::Failed,
        Span::hours(3),
        Some((TranscriptStatus::Error, true)),
    )
    .await;
    e.add_recording(
        &m,
        s3("uploaded.mp4"),
        RecordingStatus::Processing,
        Span::hours(3),
        Some((TranscriptStatus::Uploaded, false)),
    )
    .await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert_eq!(summary.requeued, 0);
    assert!(e.queued().await.is_empty());
}

#[tokio::test]
async fn a_recording_of_a_meeting_still_active_is_never_requeued() {
    let e = env().await;
    // A Daily meeting in progress (nobody counted yet, so it stays active) whose recording
    // `recording.started` created long ago: still being made, whatever its age.
    let m = e
        .add_meeting("daily-live", Platform::Daily, Span::hours(3))
        .await;
    e.add_recording(
        &m,
        daily("rec-live"),
        RecordingStatus::Pending,
        Span::hours(3),
        None,
    )
    .await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert!(e.is_active(&m).await);
    assert_eq!((summary.requeued, summary.requeue_failed), (0, 0));
    assert!(e.queued().await.is_empty());
}

#[tokio::test]
async fn a_daily_recording_daily_says_is_in_progress_is_requeued_only_once_finished() {
    let e = env().await;
    let m = e
        .add_meeting("daily-ended", Platform::Daily, -Span::hours(3))
        .await;
    let r = e
        .add_recording(
            &m,
            daily("rec-finishing"),
            RecordingStatus::Pending,
            Span::hours(3),
            None,
        )
        .await;
    let status = |s: &str| {
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "rec-finishing", "room_name": "daily-ended", "status": s,
        }))
    };
    // Daily answers `in-progress` once, then `finished`.
    Mock::given(method("GET"))
        .and(path("/v1/recordings/rec-finishing"))
        .respond_with(status("in-progress"))
        .up_to_n_times(1)
        .mount(&e.daily)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings/rec-finishing"))
        .respond_with(status("finished"))
        .mount(&e.daily)
        .await;

    let summary = e.sweep(&e.deps(), e.now).await;
    assert!(!e.is_active(&m).await);
    assert_eq!((summary.requeued, summary.requeue_failed), (0, 0));
    assert!(e.queued().await.is_empty());

    let summary = e.sweep(&e.deps(), e.now).await;
    assert_eq!(summary.requeued, 1, "{summary:?}");
    assert_eq!(e.queued().await[&r.id].len(), 1);
}

#[tokio::test]
async fn recordings_changed_recently_are_left_to_the_processor() {
    let e = env().await;
    let m = e
        .add_meeting("wb-fresh", Platform::Whereby, -Span::hours(3))
        .await;
    e.add_recording(
        &m,
        s3("fresh.mp4"),
        RecordingStatus::Pending,
        Span::minutes(5),
        None,
    )
    .await;

    let summary = e.sweep(&e.deps(), e.now).await;

    assert_eq!(summary.requeued, 0);
    assert!(e.queued().await.is_empty());
}

#[tokio::test]
async fn requeues_stop_at_the_limit_and_the_next_run_takes_the_rest() {
    let e = env().await;
    let m = e
        .add_meeting("wb-many", Platform::Whereby, -Span::hours(3))
        .await;
    for i in 0..3 {
        e.add_recording(
            &m,
            s3(&format!("many-{i}.mp4")),
            RecordingStatus::Failed,
            Span::hours(3) + Span::minutes(i),
            Some((TranscriptStatus::Error, false)),
        )
        .await;
    }
    let deps = e.deps_with(|c| c.sweeper_requeue_limit = 2);

    assert_eq!(e.sweep(&deps, e.now).await.requeued, 2);
    assert_eq!(e.queued().await.len(), 2);
    assert_eq!(e.sweep(&deps, e.now).await.requeued, 1);
    assert_eq!(e.queued().await.len(), 1);
}

#[tokio::test]
async fn a_requeued_recording_is_not_requeued_again_until_the_cooldown_has_passed() {
    let e = env().await;
    let m = e
        .add_meeting("wb-cool", Platform::Whereby, -Span::hours(3))
        .await;
    let rec = e
        .add_recording(
            &m,
            s3("cool.mp4"),
            RecordingStatus::Failed,
            Span::hours(3),
            Some((TranscriptStatus::Error, false)),
        )
        .await;
    let deps = e.deps();
    assert_eq!(
        deps.config.sweeper_requeue_cooldown,
        Duration::from_secs(6 * 3600)
    );

    assert_eq!(e.sweep(&deps, e.now).await.requeued, 1);
    assert_eq!(e.sweep(&deps, e.now + Span::hours(5)).await.requeued, 0);
    assert_eq!(e.queued().await[&rec.id].len(), 1);

    assert_eq!(e.sweep(&deps, e.now + Span::hours(7)).await.requeued, 1);
    assert_eq!(e.queued().await[&rec.id].len(), 1);
}

#[tokio::test]
async fn two_sweeper_runs_at_the_same_time_never_requeue_a_recording_twice() {
    let e = env().await;
    let m = e
        .add_meeting("wb-race", Platform::Whereby, -Span::hours(3))
        .await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let rec = e
            .add_recording(
                &m,
                s3(&format!("race-{i}.mp4")),
                RecordingStatus::Failed,
                Span::hours(3),
                Some((TranscriptStatus::Error, false)),
            )
            .await;
        ids.push(rec.id);
    }
    let (a, b) = (e.deps(), e.deps());

    let (sa, sb) = tokio::join!(e.sweep(&a, e.now), e.sweep(&b, e.now));

    assert_eq!(sa.requeued + sb.requeued, 8, "{sa:?} {sb:?}");
    let queued = e.queued().await;
    ids.sort();
    assert_eq!(queued.keys().cloned().collect::<Vec<_>>(), ids);
    assert!(queued.values().all(|jobs| jobs.len() == 1), "{queued:?}");
}

// ---- Daily reconciliation (issue 16) ----

async fn join(e: &Env, m: &Meeting, id: &str) {
    e.participant_event(
        m,
        ParticipantChange::Joined {
            session_id: id,
            user_id: None,
            user_name: Some(id),
            joined_at: e.now - Span::minutes(10),
        },
    )
    .await;
}

#[tokio::test]
async fn daily_presence_corrects_the_count_and_sessions_and_an_empty_room_ends_the_meeting() {
    let e = env().await;
    let m = e
        .add_meeting("daily-presence-1", Platform::Daily, Span::hours(2))
        .await;
    for id in ["a", "b", "c"] {
        join(&e, &m, id).await;
    }
    assert_eq!(e.num_clients(&m).await, 3);
    // Two `participant.left` were lost: Daily shows only "b".
    e.presence(&m.room_name, &["b"]).await;
    let deps = e.deps();

    let summary = e.sweep(&deps, e.now).await;
    assert_eq!(e.num_clients(&m).await, 1);
    assert_eq!(
        e.sessions(&m).await,
        BTreeMap::from([("a".into(), false), ("b".into(), true), ("c".into(), false)])
    );
    assert!(e.is_active(&m).await);
    assert_eq!(
        (
            summary.presence_checked,
            summary.sessions_closed,
            summary.clients_corrected
        ),
        (1, 2, 1)
    );

    // A participant Daily shows but no webhook announced is recorded.
    e.reset_daily().await;
    e.presence(&m.room_name, &["b", "d"]).await;
    let summary = e.sweep(&deps, e.now + Span::minutes(1)).await;
    assert_eq!(summary.sessions_opened, 1);
    assert_eq!(e.num_clients(&m).await, 2);
    assert_eq!(e.sessions(&m).await.get("d"), Some(&true));

    // Everyone left, and no webhook said so.
    e.reset_daily().await;
    let summary = e.sweep(&deps, e.now + Span::minutes(2)).await;
    assert_eq!(e.num_clients(&m).await, 0);
    assert!(e.sessions(&m).await.values().all(|open| !open));
    assert!(!e.is_active(&m).await);
    assert_eq!(summary.deactivated, 1);
}

fn webhook(state: &str, failed_count: u64) -> Value {
    json!({"uuid": "wh-1", "url": WEBHOOK_URL, "hmac": "c2VjcmV0", "basicAuth": null,
        "retryType": "circuit-breaker", "eventTypes": ["participant.joined"], "state": state,
        "failedCount": failed_count, "domainId": "dom", "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z"})
}

async fn rearms(e: &Env) -> usize {
    e.daily
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/webhooks/wh-1")
        .count()
}

#[tokio::test]
async fn a_failed_daily_webhook_is_rearmed_and_an_active_one_left_alone() {
    let e = env().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([webhook("FAILED", 3)])))
        .mount(&e.daily)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/webhooks/wh-1"))
        .and(header(
            "authorization",
            format!("Bearer {DAILY_KEY}").as_str(),
        ))
        .and(body_json(json!({"url": WEBHOOK_URL})))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook("ACTIVE", 0)))
        .mount(&e.daily)
        .await;
    let registry = Arc::new(Registry::default());
    let mut deps = e.deps();
    deps.metrics = Metrics::new(Function::MeetingSweeper, registry.clone());
    let rearmed_metric = || registry.sum_where(Metric::WebhookRearmed, |_| true);
    let summary = e.sweep(&deps, e.now).await;
    assert_eq!(summary.webhook, "rearmed");
    assert_eq!(rearms(&e).await, 1);
    assert_eq!(rearmed_metric(), 1.0, "the re-arm is counted for its alarm");

    e.reset_daily().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([webhook("ACTIVE", 0)])))
        .mount(&e.daily)
        .await;
    let summary = e.sweep(&deps, e.now).await;
    assert_eq!(summary.webhook, "active");
    assert_eq!(rearms(&e).await, 0);
    assert_eq!(rearmed_metric(), 1.0, "an active webhook adds no re-arm");

    // Our URL absent from Daily's list is reported as missing.
    e.reset_daily().await;
    assert_eq!(e.sweep(&deps, e.now).await.webhook, "missing");
}

fn daily_recording(id: &str, room: &str, start: DateTime<Utc>) -> Value {
    json!({"id": id, "room_name": room, "start_ts": start.timestamp(), "status": "finished",
        "max_participants": 2, "duration": 60, "s3key": format!("dom/{room}/{}", start.timestamp_millis()),
        "tracks": []})
}

#[tokio::test]
async fn a_finished_recording_no_webhook_announced_is_queued_once_and_older_ones_are_not_read() {
    let e = env().await;
    let m = e
        .add_meeting("daily-rec-1", Platform::Daily, Span::hours(2))
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 3, "data": [
                daily_recording("rec-new", &m.room_name, e.now - Span::minutes(30)),
                daily_recording("rec-other-app", "not-our-room", e.now - Span::minutes(40)),
                daily_recording("rec-old", &m.room_name, e.now - Span::hours(49)),
            ]})),
        )
        .mount(&e.daily)
        .await;
    let deps = e.deps();
    let summary = e.sweep(&deps, e.now).await;
    assert_eq!(summary.recordings_recovered, 1);
    assert_eq!(
        summary.daily_recordings_seen, 2,
        "the 49-hour-old one is past the lookback"
    );
    let queued = e.queued().await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let job = queued.values().next().unwrap()[0].clone();
    assert_eq!(
        job["source"],
        json!({"s3": {"bucket": "daily-bucket", "key": format!("dom/{}/{}", m.room_name, (e.now - Span::minutes(30)).timestamp_millis())}})
    );
    assert!(e
        .stores
        .recordings
        .get_by_source(&daily("rec-new"))
        .await
        .unwrap()
        .is_some());
    assert!(e
        .stores
        .recordings
        .get_by_source(&daily("rec-old"))
        .await
        .unwrap()
        .is_none());

    // The next run finds it known and queues nothing.
    let summary = e.sweep(&deps, e.now).await;
    assert_eq!(summary.recordings_recovered, 0);
    assert!(e.queued().await.is_empty());
}

/// Daily and DynamoDB requests of one run over `meetings` active Daily meetings in a steady
/// state (presence unchanged, nothing to deactivate, no new recording), for BENCHMARKS.md.
#[tokio::test]
async fn requests_per_active_daily_meeting_per_run_are_one_to_daily_and_one_to_dynamodb() {
    let e = env().await;
    let mut meetings = Vec::new();
    for i in 0..5 {
        let m = e
            .add_meeting(&format!("daily-count-{i}"), Platform::Daily, Span::hours(2))
            .await;
        join(&e, &m, "p").await;
        e.presence(&m.room_name, &["p"]).await;
        meetings.push(m);
    }
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([webhook("ACTIVE", 0)])))
        .mount(&e.daily)
        .await;
    let (counted, counter) = shared::store::dynamo::RequestCounter::instrument(&e.clients.dynamodb);
    let clients = AwsClients {
        dynamodb: counted,
        ..e.clients.clone()
    };
    let mut config = e.config.clone();
    config.sweeper_requeue_limit = 0;
    let deps = Deps::from_aws(
        Arc::new(config),
        &clients,
        RegistryOptions {
            http: HttpSettings::fast_for_tests(),
            ..RegistryOptions::default()
        },
    )
    .unwrap();
    // A first run settles the counts (num_clients 1 already, so nothing is written).
    e.sweep(&deps, e.now).await;
    counter.take();
    let before = e.daily.received_requests().await.unwrap_or_default().len();

    let summary = e.sweep(&deps, e.now).await;

    let dynamodb = counter.take();
    let daily = e.daily.received_requests().await.unwrap_or_default().len() - before;
    assert_eq!(summary.presence_checked, 5);
    assert_eq!(summary.deactivated, 0);
    // Per run: the active-meeting listing (1 Query); per meeting: its sessions (1 Query).
    assert_eq!(dynamodb.len(), 1 + 5, "{dynamodb:?}");
    // Per run: one recordings page and the webhook list; per meeting: its presence.
    assert_eq!(daily, 2 + 5);
}
