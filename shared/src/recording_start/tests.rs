//! The start decision (pure) and `start` over the in-memory meeting store and a local fake of
//! Daily's API that checks path, bearer token and body.

use std::collections::BTreeSet;

use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::domain::{RecordingType, RoomMode};
use crate::fakes::MemoryMeetings;
use crate::platform::test_support::{fixed_now, key, reject_unexpected, settings};

const ROOM_NAME: &str = "team-standup-20260102030405";
const START_PATH: &str = "/v1/rooms/team-standup-20260102030405/recordings/start";

fn meeting(trigger: RecordingTrigger) -> Meeting {
    Meeting {
        id: "meeting-1".into(),
        room_id: "room-1".into(),
        room_name: ROOM_NAME.into(),
        room_url: format!("https://x.daily.co/{ROOM_NAME}"),
        host_room_url: format!("https://x.daily.co/{ROOM_NAME}"),
        start_date: fixed_now(),
        end_date: fixed_now() + chrono::Duration::hours(8),
        user_id: Some("owner".into()),
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: trigger,
        num_clients: 0,
        is_active: true,
        platform: Platform::Daily,
        extra_data: json!({}),
        recordings_started: BTreeSet::new(),
    }
}

fn message(kind: RecordingKind, attempt: u32) -> StartRecording {
    StartRecording {
        meeting_id: "meeting-1".into(),
        room_name: ROOM_NAME.into(),
        kind,
        attempt,
    }
}

async fn daily() -> (MockServer, DailyClient) {
    let s = MockServer::start().await;
    reject_unexpected(
        &s,
        json!({"error": "authentication-error", "info": "unexpected request in test"}),
    )
    .await;
    let client = DailyClient::new(
        reqwest::Client::new(),
        &format!("{}/v1", s.uri()),
        key(),
        settings(),
    )
    .unwrap();
    (s, client)
}

fn store_with(m: Meeting) -> MemoryMeetings {
    let store = MemoryMeetings::default();
    store.insert(m);
    store
}

async fn instance_ids(s: &MockServer) -> Vec<String> {
    s.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["instanceId"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn start_is_due_only_for_daily_cloud_meetings_whose_trigger_is_met() {
    use RecordingTrigger::*;
    // (trigger, participants after the join) -> due
    let table = [
        (Automatic, 0, false),
        (Automatic, 1, true),
        (Automatic, 2, true),
        (Automatic2ndParticipant, 1, false),
        (Automatic2ndParticipant, 2, true),
        (Automatic2ndParticipant, 3, true),
        (None, 1, false),
        (None, 5, false),
        (Prompt, 1, false),
        (Prompt, 5, false),
    ];
    for (trigger, participants, due) in table {
        assert_eq!(
            start_due(&meeting(trigger), participants),
            due,
            "{trigger} with {participants}"
        );
    }
    for recording_type in [RecordingType::Local, RecordingType::None] {
        let mut m = meeting(Automatic);
        m.recording_type = recording_type;
        assert!(!start_due(&m, 3), "{recording_type}");
    }
    for platform in [Platform::Whereby, Platform::Mock] {
        let mut m = meeting(Automatic);
        m.platform = platform;
        assert!(!start_due(&m, 3), "{platform}");
    }
}

#[test]
fn kinds_already_started_are_not_started_again() {
    let both = BTreeSet::from([RecordingKind::Cloud, RecordingKind::RawTracks]);
    let mut m = meeting(RecordingTrigger::Automatic);
    assert_eq!(
        kinds_to_start(&m, 1, &both),
        vec![RecordingKind::Cloud, RecordingKind::RawTracks]
    );
    m.recordings_started.insert(RecordingKind::Cloud);
    assert_eq!(kinds_to_start(&m, 2, &both), vec![RecordingKind::RawTracks]);
    m.recordings_started.insert(RecordingKind::RawTracks);
    assert!(kinds_to_start(&m, 3, &both).is_empty());
    assert!(kinds_to_start(&meeting(RecordingTrigger::Prompt), 3, &both).is_empty());
}

#[test]
fn retry_delay_doubles_from_five_seconds_up_to_sqs_maximum() {
    let secs = |a| retry_delay(a).as_secs();
    assert_eq!(
        [0, 1, 2, 3, 7, 8, 30, u32::MAX].map(secs),
        [5, 10, 20, 40, 640, 900, 900, 900]
    );
}

#[tokio::test]
async fn daily_busy_twice_then_started_under_one_instance_id_and_later_messages_make_no_request() {
    let (s, client) = daily().await;
    let expected_id = recording_instance_id("meeting-1", RecordingKind::Cloud).to_string();
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .and(header("authorization", "Bearer test-api-key"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": "server-error", "info": "no recording workers available"}),
        ))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .and(header("authorization", "Bearer test-api-key"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .mount(&s)
        .await;
    let store = store_with(meeting(RecordingTrigger::Automatic));
    let now = fixed_now() + chrono::Duration::minutes(1);

    let mut msg = message(RecordingKind::Cloud, 0);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(start(&store, &client, &msg, now).await);
        msg = msg.next_attempt();
    }

    assert_eq!(
        outcomes,
        vec![
            StartOutcome::RetryAfter(Duration::from_secs(5)),
            StartOutcome::RetryAfter(Duration::from_secs(10)),
            StartOutcome::Started,
        ]
    );
    assert_eq!(instance_ids(&s).await, vec![expected_id.clone(); 3]);
    let body: serde_json::Value =
        serde_json::from_slice(&s.received_requests().await.unwrap()[2].body).unwrap();
    assert_eq!(body, json!({"type": "cloud", "instanceId": expected_id}));
    let stored = store.get("meeting-1").await.unwrap().unwrap();
    assert_eq!(
        stored.recordings_started,
        BTreeSet::from([RecordingKind::Cloud])
    );

    // A duplicate, a late retry or a manual start of the same kind: no request.
    let again = start(&store, &client, &message(RecordingKind::Cloud, 0), now).await;
    assert_eq!(again, StartOutcome::AlreadyActive);
    assert_eq!(s.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn each_kind_has_its_own_instance_id_and_marker() {
    let (s, client) = daily().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&s)
        .await;
    let store = store_with(meeting(RecordingTrigger::Automatic));
    for kind in [RecordingKind::Cloud, RecordingKind::RawTracks] {
        assert_eq!(
            start(&store, &client, &message(kind, 0), fixed_now()).await,
            StartOutcome::Started
        );
    }
    let ids = instance_ids(&s).await;
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(
        store
            .get("meeting-1")
            .await
            .unwrap()
            .unwrap()
            .recordings_started,
        BTreeSet::from([RecordingKind::Cloud, RecordingKind::RawTracks])
    );
}

#[tokio::test]
async fn a_retry_is_never_scheduled_past_the_meeting_end() {
    let (s, client) = daily().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"error": "rate-limit-error", "info": "slow down"})),
        )
        .mount(&s)
        .await;
    let m = meeting(RecordingTrigger::Automatic);
    let now = m.end_date - chrono::Duration::seconds(7);
    let store = store_with(m);
    assert_eq!(
        start(&store, &client, &message(RecordingKind::Cloud, 3), now).await,
        StartOutcome::RetryAfter(Duration::from_secs(7))
    );
}

#[tokio::test]
async fn a_timeout_is_retried_later() {
    let (s, client) = daily().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_delay(settings().timeout + Duration::from_millis(300)),
        )
        .mount(&s)
        .await;
    let store = store_with(meeting(RecordingTrigger::Automatic));
    assert_eq!(
        start(
            &store,
            &client,
            &message(RecordingKind::Cloud, 1),
            fixed_now()
        )
        .await,
        StartOutcome::RetryAfter(Duration::from_secs(10))
    );
    assert!(store
        .get("meeting-1")
        .await
        .unwrap()
        .unwrap()
        .recordings_started
        .is_empty());
}

#[tokio::test]
async fn daily_saying_already_recording_marks_the_meeting_and_reports_already_active() {
    let (s, client) = daily().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid-request-error",
            "info": "recording instance already started"
        })))
        .mount(&s)
        .await;
    let store = store_with(meeting(RecordingTrigger::Automatic));
    assert_eq!(
        start(
            &store,
            &client,
            &message(RecordingKind::Cloud, 0),
            fixed_now()
        )
        .await,
        StartOutcome::AlreadyActive
    );
    assert!(store
        .get("meeting-1")
        .await
        .unwrap()
        .unwrap()
        .recordings_started
        .contains(&RecordingKind::Cloud));
}

#[tokio::test]
async fn a_refused_start_fails_without_marking_the_meeting() {
    let (s, client) = daily().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid-request-error",
            "info": "raw-tracks recording requires a custom S3 bucket"
        })))
        .mount(&s)
        .await;
    let store = store_with(meeting(RecordingTrigger::Automatic));
    let outcome = start(
        &store,
        &client,
        &message(RecordingKind::RawTracks, 0),
        fixed_now(),
    )
    .await;
    assert!(
        matches!(&outcome, StartOutcome::Failed(reason) if reason.contains("custom S3 bucket")),
        "{outcome:?}"
    );
    assert!(store
        .get("meeting-1")
        .await
        .unwrap()
        .unwrap()
        .recordings_started
        .is_empty());
}

#[tokio::test]
async fn gone_ended_inactive_or_non_daily_meetings_are_skipped_without_a_request() {
    let (s, client) = daily().await;
    let msg = message(RecordingKind::Cloud, 0);
    let now = fixed_now() + chrono::Duration::minutes(1);

    let empty = MemoryMeetings::default();
    assert!(matches!(
        start(&empty, &client, &msg, now).await,
        StartOutcome::Skipped(_)
    ));
    let mut ended = meeting(RecordingTrigger::Automatic);
    ended.end_date = now;
    let mut inactive = meeting(RecordingTrigger::Automatic);
    inactive.is_active = false;
    let mut whereby = meeting(RecordingTrigger::Automatic);
    whereby.platform = Platform::Whereby;
    for m in [ended, inactive, whereby] {
        let store = store_with(m.clone());
        let outcome = start(&store, &client, &msg, now).await;
        assert!(
            matches!(outcome, StartOutcome::Skipped(_)),
            "{m:?}: {outcome:?}"
        );
    }
    assert!(s.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_store_failure_after_daily_started_is_retried_and_the_retry_marks_it() {
    let (s, client) = daily().await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(START_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid-request-error",
            "info": "instance is already recording"
        })))
        .mount(&s)
        .await;
    let store = store_with(meeting(RecordingTrigger::Automatic));
    store.failures.fail("mark_recording_started");
    let msg = message(RecordingKind::Cloud, 0);
    assert_eq!(
        start(&store, &client, &msg, fixed_now()).await,
        StartOutcome::RetryAfter(Duration::from_secs(5))
    );
    store.failures.heal("mark_recording_started");
    assert_eq!(
        start(&store, &client, &msg.next_attempt(), fixed_now()).await,
        StartOutcome::AlreadyActive
    );
    let ids = instance_ids(&s).await;
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert!(store
        .get("meeting-1")
        .await
        .unwrap()
        .unwrap()
        .recordings_started
        .contains(&RecordingKind::Cloud));
}
