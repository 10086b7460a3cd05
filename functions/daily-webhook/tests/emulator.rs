//! The Daily webhook wired as in production (`Deps::from_config`: DynamoDB stores and the SQS
//! recordings queue) against the moto emulator. Each test gets its own tables and queue.
//! Needs `AWS_ENDPOINT_URL` (scripts/test starts the emulator); fails without it.

use std::sync::Arc;

use chrono::{Duration, Utc};
use daily_webhook::handler::{router, Deps};
use secrecy::SecretString;
use serde_json::{json, Value};
use shared::aws::AwsClients;
use shared::config::Config;
use shared::domain::{
    Meeting, Platform, RecordingSource, RecordingStatus, RecordingTrigger, RecordingType, RoomMode,
};
use shared::messages::{JobSource, RecordingJob};
use shared::store::dynamo::{DynamoStores, RequestCounter};
use shared::store::{Claim, MeetingStore, ParticipantSessionStore, RecordingStore};
use shared::testing::{emulator, fresh_tables, unique_prefix};
use shared::webhook::fixtures::{apigw_v2_event, retarget, signed_request, Scheme};
use tower::ServiceExt;

const SECRET: &str = "ZW11bGF0b3ItZGFpbHktc2VjcmV0";
const BUCKET: &str = "daily-bucket";

struct Env {
    deps: Arc<Deps>,
    /// Uncounted stores for arranging and inspecting state.
    stores: DynamoStores,
    counter: RequestCounter,
    clients: AwsClients,
    queue_url: String,
    meeting: Meeting,
}

async fn env() -> Env {
    let clients = emulator().await;
    let tables = fresh_tables(&clients).await;
    let queue_url = clients
        .sqs
        .create_queue()
        .queue_name(unique_prefix("recordings"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut config = Config::from_vars(&Default::default()).unwrap();
    config.tables = tables.clone();
    config.recordings_queue_url = Some(queue_url.clone());
    config.daily.webhook_secret = Some(SecretString::from(SECRET.to_owned()));
    config.daily.s3_bucket = Some(BUCKET.into());
    let (counted, counter) = RequestCounter::instrument(&clients.dynamodb);
    let counted_clients = AwsClients {
        dynamodb: counted,
        s3: clients.s3.clone(),
        sqs: clients.sqs.clone(),
    };
    let deps = Deps::from_config(&config, &counted_clients).unwrap();
    let stores = DynamoStores::new(clients.dynamodb.clone(), &tables);

    let now = Utc::now();
    let room_name = unique_prefix("room");
    let meeting = Meeting {
        recordings_started: Default::default(),
        id: uuid::Uuid::new_v4().to_string(),
        room_id: uuid::Uuid::new_v4().to_string(),
        room_name: room_name.clone(),
        room_url: format!("https://example.daily.co/{room_name}"),
        host_room_url: String::new(),
        start_date: now,
        end_date: now + Duration::hours(8),
        user_id: None,
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        num_clients: 0,
        is_active: true,
        platform: Platform::Daily,
        extra_data: Value::Null,
    };
    assert_eq!(
        stores.meetings.claim_active(&meeting, now).await.unwrap(),
        Claim::Won
    );
    counter.take();
    Env {
        deps: Arc::new(deps),
        stores,
        counter,
        clients,
        queue_url,
        meeting,
    }
}

impl Env {
    fn fixture(&self, path: &str, id: Option<&str>) -> Vec<u8> {
        let full = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
        retarget(&raw, Some(&self.meeting.room_name), id).unwrap()
    }

    async fn send(&self, scheme: Scheme, body: &[u8]) -> (u16, Value) {
        let (headers, body) = signed_request(scheme, SECRET, Utc::now().timestamp(), body).unwrap();
        let event = apigw_v2_event("/v1/daily_webhook", &headers, &body);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        let response = router(self.deps.clone()).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_slice(
                &axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap(),
            )
            .unwrap_or(Value::Null),
        )
    }

    async fn num_clients(&self) -> i64 {
        self.stores
            .meetings
            .get(&self.meeting.id)
            .await
            .unwrap()
            .unwrap()
            .num_clients
    }

    async fn queued_jobs(&self) -> Vec<RecordingJob> {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        out.messages()
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
            .collect()
    }
}

fn ok() -> (u16, Value) {
    (200, json!({"status": "ok"}))
}

#[tokio::test]
async fn participant_join_and_leave_update_the_stored_count_and_session() {
    let e = env().await;
    for (format, scheme) in [("real", Scheme::Daily), ("seed", Scheme::DailySeed)] {
        let join = e.fixture(&format!("daily/{format}/participant.joined.json"), None);
        assert_eq!(e.send(scheme, &join).await, ok(), "{format}");
        assert_eq!(e.num_clients().await, 1, "{format}");
        let leave = e.fixture(&format!("daily/{format}/participant.left.json"), None);
        assert_eq!(e.send(scheme, &leave).await, ok(), "{format}");
        assert_eq!(e.num_clients().await, 0, "{format}");
    }
    let sessions = e
        .stores
        .participant_sessions
        .list_by_meeting(&e.meeting.id)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.left_at.is_some()), "{sessions:?}");
}

/// The meeting records to the cloud from its second participant, so a join that leaves it below
/// two is checked once more with a strongly consistent read (a concurrent join the index lookup
/// missed would otherwise leave the recording unstarted): the budget's 3 requests, not more.
#[tokio::test]
async fn a_first_join_makes_three_dynamodb_requests_and_so_does_a_replay() {
    let e = env().await;
    let join = e.fixture("daily/real/participant.joined.json", None);
    assert_eq!(e.send(Scheme::Daily, &join).await, ok());
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems", "GetItem"]);
    assert_eq!(e.num_clients().await, 1);
    // The replay's transaction is cancelled by the claim: nothing changes.
    assert_eq!(e.send(Scheme::Daily, &join).await, ok());
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems", "GetItem"]);
    assert_eq!(e.num_clients().await, 1);
    assert!(
        e.queued_jobs().await.is_empty(),
        "one participant starts no recording"
    );
}

/// A join that makes the start due needs no second look: 2 requests (and the queued start).
#[tokio::test]
async fn a_second_join_makes_two_dynamodb_requests() {
    let e = env().await;
    let first = e.fixture("daily/real/participant.joined.json", None);
    assert_eq!(e.send(Scheme::Daily, &first).await, ok());
    let mut second: Value = serde_json::from_slice(&first).unwrap();
    second["id"] = json!("join-second-participant");
    second["payload"]["session_id"] = json!("second-session");
    e.counter.take();
    assert_eq!(
        e.send(Scheme::Daily, second.to_string().as_bytes()).await,
        ok()
    );
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems"]);
    assert_eq!(e.num_clients().await, 2);
}

#[tokio::test]
async fn a_leave_at_zero_clients_makes_three_requests_and_records_the_leave() {
    let e = env().await;
    let leave = e.fixture("daily/real/participant.left.json", None);
    assert_eq!(e.send(Scheme::Daily, &leave).await, ok());
    assert_eq!(
        e.counter.take(),
        ["Query", "TransactWriteItems", "TransactWriteItems"]
    );
    assert_eq!(e.num_clients().await, 0);
    let sessions = e
        .stores
        .participant_sessions
        .list_by_meeting(&e.meeting.id)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].left_at.is_some(), "{sessions:?}");
    // The leave was claimed: its replay changes nothing.
    assert_eq!(e.send(Scheme::Daily, &leave).await, ok());
    assert_eq!(e.counter.take(), ["Query", "TransactWriteItems"]);
}

#[tokio::test]
async fn the_same_signed_event_ten_times_changes_the_count_once() {
    let e = env().await;
    let join = e.fixture("daily/seed/participant.joined.json", None);
    for _ in 0..10 {
        assert_eq!(e.send(Scheme::DailySeed, &join).await, ok());
    }
    assert_eq!(e.num_clients().await, 1);
}

#[tokio::test]
async fn a_hundred_concurrent_joins_of_distinct_participants_count_a_hundred() {
    let e = Arc::new(env().await);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({
                "version": "1.0.0", "type": "participant.joined", "id": format!("join-{i}"),
                "payload": {"room": e.meeting.room_name, "session_id": format!("s-{i}"),
                            "user_name": format!("user {i}"), "joined_at": 1708972279.5},
                "event_ts": 1708972280
            })
            .to_string();
            e.send(Scheme::Daily, body.as_bytes()).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), ok());
    }
    assert_eq!(e.num_clients().await, 100);
    let sessions = e
        .stores
        .participant_sessions
        .list_by_meeting(&e.meeting.id)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 100);
}

#[tokio::test]
async fn seed_recording_ready_stores_the_recording_and_queues_the_download_url() {
    let e = env().await;
    let body = e.fixture("daily/seed/recording.ready-to-download.json", None);
    assert_eq!(e.send(Scheme::DailySeed, &body).await, ok());
    let recording = e
        .stores
        .recordings
        .get_by_source(&RecordingSource::PlatformRecording {
            platform: Platform::Daily,
            recording_id: "recording-789".into(),
        })
        .await
        .unwrap()
        .expect("recording stored");
    assert_eq!(recording.meeting_id, e.meeting.id);
    assert_eq!(
        e.queued_jobs().await,
        vec![RecordingJob {
            meeting_id: e.meeting.id.clone(),
            recording_id: recording.id,
            room_name: e.meeting.room_name.clone(),
            source: JobSource::Url("https://bucket.s3.amazonaws.com/recording.mp4".into()),
        }]
    );
}

#[tokio::test]
async fn real_recording_ready_queues_the_s3_object_once_even_when_replayed() {
    let e = env().await;
    let body = e.fixture("daily/real/recording.ready-to-download.json", None);
    for _ in 0..3 {
        assert_eq!(e.send(Scheme::Daily, &body).await, ok());
    }
    let jobs = e.queued_jobs().await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        jobs[0].source,
        JobSource::S3(shared::domain::S3Location {
            bucket: BUCKET.into(),
            key: format!(
                "api-test-1j8fizhzd30c/{}/1692124183028",
                e.meeting.room_name
            ),
        })
    );
}

#[tokio::test]
async fn recording_started_then_error_leaves_a_failed_recording_with_the_message() {
    let e = env().await;
    let started = e.fixture("daily/seed/recording.started.json", None);
    assert_eq!(e.send(Scheme::DailySeed, &started).await, ok());
    let source = RecordingSource::PlatformRecording {
        platform: Platform::Daily,
        recording_id: "recording-789".into(),
    };
    let r = e
        .stores
        .recordings
        .get_by_source(&source)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, RecordingStatus::Pending);
    let error = e.fixture("daily/seed/recording.error.json", None);
    assert_eq!(e.send(Scheme::DailySeed, &error).await, ok());
    let r = e.stores.recordings.get(&r.id).await.unwrap().unwrap();
    assert_eq!(r.status, RecordingStatus::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("recording failed: storage unavailable")
    );
}

#[tokio::test]
async fn an_event_for_an_unknown_room_is_200_and_stores_nothing() {
    let e = env().await;
    let full = format!(
        "{}/../../events/daily/real/participant.joined.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = retarget(&std::fs::read(full).unwrap(), Some("no-such-room"), None).unwrap();
    assert_eq!(e.send(Scheme::Daily, &body).await, ok());
    assert_eq!(e.num_clients().await, 0);
}
