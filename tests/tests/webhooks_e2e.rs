//! Issue 6 acceptance, black-box: Daily and Whereby webhooks through `reflector-local` over HTTP
//! on loopback, with the emulator behind it. Meetings are made through the rooms API (the mock
//! platform, as no platform keys are set) and events are addressed to the meeting's room name.
//! Daily events are sent in both formats: the seed's (`X-Daily-Signature`, `data`) and Daily's
//! real one (`X-Webhook-Signature` + `X-Webhook-Timestamp`, `payload`).
//!
//! The recording-ready tests run without the background poller, so the jobs stay on the
//! recordings queue to be read here.

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use shared::domain::{Platform, RecordingSource, RecordingStatus};
use shared::store::{ParticipantSessionStore, RecordingStore};

use support::{fixture, fixture_json, ok, MeetingRef, Stack, DAILY_SECRET};

const FORMATS: [&str; 2] = ["seed", "real"];

async fn stack(test: &str, vars: &[(&str, &str)]) -> Stack {
    Stack::start(test, vars, false, Duration::from_secs(1)).await
}

fn daily_recording(id: &str) -> RecordingSource {
    RecordingSource::PlatformRecording {
        platform: Platform::Daily,
        recording_id: id.to_owned(),
    }
}

/// The fixtures' session ids and recording ids, per format.
fn session_id(format: &str) -> &'static str {
    match format {
        "seed" => "session-456",
        _ => "0c0d2dda-f21d-4cf9-ab56-86bf3c407ffa",
    }
}

fn recording_id(format: &str) -> &'static str {
    match format {
        "seed" => "recording-789",
        _ => "08fa0b24-9220-44c5-846c-3f116cf8e738",
    }
}

#[tokio::test]
async fn participant_joined_then_left_counts_the_client_and_closes_the_session() {
    let s = stack("wh_join_leave", &[]).await;
    for format in FORMATS {
        let m = s.meeting(&format!("join-{format}")).await;
        let join = fixture(
            &format!("daily/{format}/participant.joined.json"),
            &m.room_name,
            None,
        );
        assert_eq!(s.daily_as(format, &join).await, ok(), "{format}");
        assert_eq!(s.num_clients(&m).await, 1, "{format}");
        let sessions = s
            .stores
            .participant_sessions
            .list_by_meeting(&m.id)
            .await
            .unwrap();
        assert_eq!(sessions.len(), 1, "{format}: {sessions:?}");
        assert_eq!(sessions[0].session_id, session_id(format), "{format}");
        assert_eq!(sessions[0].left_at, None, "{format}");

        let leave = fixture(
            &format!("daily/{format}/participant.left.json"),
            &m.room_name,
            None,
        );
        assert_eq!(s.daily_as(format, &leave).await, ok(), "{format}");
        assert_eq!(s.num_clients(&m).await, 0, "{format}");
        let sessions = s
            .stores
            .participant_sessions
            .list_by_meeting(&m.id)
            .await
            .unwrap();
        assert_eq!(sessions.len(), 1, "{format}: {sessions:?}");
        assert!(sessions[0].left_at.is_some(), "{format}: {sessions:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn recording_started_stores_the_recording_as_pending() {
    let s = stack("wh_rec_started", &[]).await;
    for format in FORMATS {
        let m = s.meeting(&format!("rec-{format}")).await;
        let started = fixture(
            &format!("daily/{format}/recording.started.json"),
            &m.room_name,
            None,
        );
        assert_eq!(s.daily_as(format, &started).await, ok(), "{format}");
        let recording = s
            .stores
            .recordings
            .get_by_source(&daily_recording(recording_id(format)))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{format}: no recording stored"));
        assert_eq!(recording.meeting_id, m.id, "{format}");
        assert_eq!(recording.status, RecordingStatus::Pending, "{format}");
    }
    // Nothing to process yet.
    assert_eq!(s.drain(&s.queues.recordings).await, Vec::<Value>::new());
    s.stop().await;
}

/// The one job on the recordings queue, after checking there is exactly one.
async fn the_only_job(s: &Stack) -> Value {
    let jobs = s.drain(&s.queues.recordings).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs.into_iter().next().unwrap()
}

async fn stored_recording_id(s: &Stack, platform_id: &str) -> String {
    s.stores
        .recordings
        .get_by_source(&daily_recording(platform_id))
        .await
        .unwrap()
        .expect("recording stored")
        .id
}

#[tokio::test]
async fn seed_recording_ready_queues_one_job_with_the_download_url() {
    let s = stack("wh_ready_seed", &[]).await;
    let m = s.meeting("ready-seed").await;
    let body = fixture(
        "daily/seed/recording.ready-to-download.json",
        &m.room_name,
        None,
    );
    assert_eq!(s.daily_seed(&body).await, ok());
    let id = stored_recording_id(&s, "recording-789").await;
    assert_eq!(
        the_only_job(&s).await,
        json!({
            "meeting_id": m.id,
            "recording_id": id,
            "room_name": m.room_name,
            "source": {"url": "https://bucket.s3.amazonaws.com/recording.mp4"},
        })
    );
    s.stop().await;
}

#[tokio::test]
async fn real_recording_ready_with_an_s3_key_queues_the_object_in_the_daily_bucket() {
    let s = stack(
        "wh_ready_s3",
        &[("AWS_DAILY_S3_BUCKET", "e2e-daily-bucket")],
    )
    .await;
    let m = s.meeting("ready-s3").await;
    let body = fixture(
        "daily/real/recording.ready-to-download.json",
        &m.room_name,
        None,
    );
    assert_eq!(s.daily(&body).await, ok());
    let id = stored_recording_id(&s, recording_id("real")).await;
    assert_eq!(
        the_only_job(&s).await,
        json!({
            "meeting_id": m.id,
            "recording_id": id,
            "room_name": m.room_name,
            "source": {"s3": {
                "bucket": "e2e-daily-bucket",
                "key": format!("api-test-1j8fizhzd30c/{}/1692124183028", m.room_name),
            }},
        })
    );
    s.stop().await;
}

#[tokio::test]
async fn real_recording_ready_without_a_usable_location_queues_the_daily_recording_id() {
    // No AWS_DAILY_S3_BUCKET: neither an event without s3_key nor one with it can name an
    // object, so the processor is to ask Daily for a link.
    let s = stack("wh_ready_daily", &[]).await;
    for (room, with_key) in [("ready-no-key", false), ("ready-no-bucket", true)] {
        let m = s.meeting(room).await;
        let mut event = fixture_json("daily/real/recording.ready-to-download.json", &m.room_name);
        let platform_id = format!("rec-{room}");
        event["payload"]["recording_id"] = json!(platform_id);
        if !with_key {
            event["payload"]
                .as_object_mut()
                .unwrap()
                .remove("s3_key")
                .unwrap();
        }
        event["id"] = json!(format!("evt-{room}"));
        assert_eq!(s.daily(event.to_string().as_bytes()).await, ok(), "{room}");
        let id = stored_recording_id(&s, &platform_id).await;
        assert_eq!(
            the_only_job(&s).await,
            json!({
                "meeting_id": m.id,
                "recording_id": id,
                "room_name": m.room_name,
                "source": {"daily_recording": platform_id},
            }),
            "{room}"
        );
    }
    s.stop().await;
}

/// Checks that `m` still has no client and no participant session.
async fn assert_untouched(s: &Stack, m: &MeetingRef, what: &str) {
    assert_eq!(s.num_clients(m).await, 0, "{what}");
    let sessions = s
        .stores
        .participant_sessions
        .list_by_meeting(&m.id)
        .await
        .unwrap();
    assert!(sessions.is_empty(), "{what}: {sessions:?}");
}

#[tokio::test]
async fn a_wrong_or_missing_signature_is_401_and_changes_nothing() {
    let s = stack("wh_bad_sig", &[]).await;
    let m = s.meeting("bad-sig").await;
    let invalid = (401, json!({"detail": "Invalid signature"}));
    let missing = (401, json!({"detail": "Missing signature"}));
    for format in FORMATS {
        let join = fixture(
            &format!("daily/{format}/participant.joined.json"),
            &m.room_name,
            None,
        );
        assert_eq!(s.post("/v1/daily_webhook", &[], &join).await, missing);
        let wrong_seed = shared::webhook::signature::sign_daily_seed("not-the-secret", &join);
        assert_eq!(
            s.post("/v1/daily_webhook", &wrong_seed, &join).await,
            invalid,
            "{format} seed scheme"
        );
        let wrong_real = shared::webhook::signature::sign_daily(
            "bm90LXRoZS1zZWNyZXQ=",
            Utc::now().timestamp(),
            &join,
        )
        .unwrap();
        assert_eq!(
            s.post("/v1/daily_webhook", &wrong_real, &join).await,
            invalid,
            "{format} real scheme"
        );
        // Signed for other bytes than those sent.
        let mut tampered = join.clone();
        tampered.push(b' ');
        let signed_other = shared::webhook::signature::sign_daily_seed(DAILY_SECRET, &join);
        assert_eq!(
            s.post("/v1/daily_webhook", &signed_other, &tampered).await,
            invalid,
            "{format} tampered"
        );
    }
    assert_untouched(&s, &m, "after rejected events").await;
    let whereby = fixture("whereby/room.client.joined.json", &m.room_name, None);
    assert_eq!(s.post("/v1/whereby", &[], &whereby).await, missing);
    let wrong = shared::webhook::signature::sign_whereby("nope", Utc::now().timestamp(), &whereby);
    assert_eq!(s.post("/v1/whereby", &wrong, &whereby).await, invalid);
    assert_untouched(&s, &m, "after rejected whereby events").await;
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_event_type_is_200_and_changes_nothing() {
    let s = stack("wh_unknown", &[]).await;
    let m = s.meeting("unknown-type").await;
    for format in FORMATS {
        let mut event = fixture_json(
            &format!("daily/{format}/participant.joined.json"),
            &m.room_name,
        );
        event["type"] = json!("participant.updated");
        event["id"] = json!(format!("evt-unknown-{format}"));
        let body = event.to_string();
        assert_eq!(s.daily_as(format, body.as_bytes()).await, ok(), "{format}");
    }
    let mut whereby = fixture_json("whereby/room.client.joined.json", &m.room_name);
    whereby["type"] = json!("room.knock.accepted");
    let body = whereby.to_string();
    assert_eq!(
        s.whereby_at(Utc::now().timestamp(), body.as_bytes()).await,
        ok()
    );
    assert_untouched(&s, &m, "after unknown types").await;
    assert_eq!(s.drain(&s.queues.recordings).await, Vec::<Value>::new());
    s.stop().await;
}

#[tokio::test]
async fn a_correctly_signed_malformed_body_is_422() {
    let s = stack("wh_malformed", &[]).await;
    let m = s.meeting("malformed").await;
    let not_json = br#"{"type": "participant.joined", "id": "evt-broken", "#;
    for format in FORMATS {
        let (status, body) = s.daily_as(format, not_json).await;
        assert_eq!(status, 422, "{format}: {body}");
        assert!(body["detail"].is_string(), "{format}: {body}");
    }
    // A known type without the fields it needs is malformed too.
    let no_participant =
        json!({"type": "participant.joined", "id": "evt-empty", "ts": 1, "data": {}});
    let (status, body) = s.daily_seed(no_participant.to_string().as_bytes()).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s.whereby_at(Utc::now().timestamp(), not_json).await;
    assert_eq!(status, 422, "{body}");
    assert_untouched(&s, &m, "after malformed events").await;
    s.stop().await;
}

#[tokio::test]
async fn the_daily_creation_probe_is_200_without_a_signature() {
    let s = stack("wh_probe", &[]).await;
    let probe = support::event_file("daily/probe.json");
    assert_eq!(s.post("/v1/daily_webhook", &[], &probe).await, ok());
    assert_eq!(s.daily(&probe).await, ok());
    s.stop().await;
}

#[tokio::test]
async fn the_same_signed_event_sent_ten_times_counts_once() {
    let s = stack("wh_replay", &[]).await;
    for format in FORMATS {
        let m = s.meeting(&format!("replay-{format}")).await;
        let join = fixture(
            &format!("daily/{format}/participant.joined.json"),
            &m.room_name,
            None,
        );
        for _ in 0..10 {
            assert_eq!(s.daily_as(format, &join).await, ok(), "{format}");
        }
        assert_eq!(s.num_clients(&m).await, 1, "{format}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_hundred_concurrent_joins_of_distinct_participants_count_a_hundred() {
    let s = Arc::new(stack("wh_hundred", &[]).await);
    let m = Arc::new(s.meeting("hundred").await);
    let joins = (0..100).map(|i| {
        let (s, m) = (s.clone(), m.clone());
        tokio::spawn(async move {
            // Alternate the formats: both count toward the same meeting.
            if i % 2 == 0 {
                let body = json!({
                    "version": "1.0.0", "type": "participant.joined", "id": format!("join-{i}"),
                    "payload": {"room": m.room_name, "session_id": format!("s-{i}"),
                                "user_name": format!("user {i}"), "joined_at": 1708972279.5},
                    "event_ts": 1708972280
                });
                s.daily(body.to_string().as_bytes()).await
            } else {
                let body = json!({
                    "type": "participant.joined", "id": format!("join-{i}"), "ts": 1640995200000_i64,
                    "data": {"room": {"name": m.room_name},
                             "participant": {"id": format!("p-{i}"), "user_name": format!("user {i}"),
                                             "session_id": format!("s-{i}")}}
                });
                s.daily_seed(body.to_string().as_bytes()).await
            }
        })
    });
    for r in futures::future::join_all(joins).await {
        assert_eq!(r.unwrap(), ok());
    }
    assert_eq!(s.num_clients(&m).await, 100);
    let sessions = s
        .stores
        .participant_sessions
        .list_by_meeting(&m.id)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 100);
    let s = Arc::try_unwrap(s).ok().expect("no other holder");
    s.stop().await;
}

fn whereby_event(
    m: &MeetingRef,
    kind: &str,
    id: &str,
    num_clients: i64,
    created_at: &str,
) -> Vec<u8> {
    let mut event = fixture_json(&format!("whereby/{kind}.json"), &m.room_name);
    event["id"] = json!(id);
    event["createdAt"] = json!(created_at);
    event["data"]["numClients"] = json!(num_clients);
    event.to_string().into_bytes()
}

#[tokio::test]
async fn whereby_client_events_set_num_clients_from_num_clients() {
    let s = stack("wh_whereby_set", &[]).await;
    let m = s.meeting("whereby-set").await;
    let now = Utc::now().timestamp();
    let fixture_join = fixture("whereby/room.client.joined.json", &m.room_name, None);
    assert_eq!(s.whereby_at(now, &fixture_join).await, ok());
    assert_eq!(s.num_clients(&m).await, 1);
    let three = whereby_event(
        &m,
        "room.client.joined",
        "j3",
        3,
        "2025-01-01T10:05:00.000Z",
    );
    assert_eq!(s.whereby_at(now, &three).await, ok());
    assert_eq!(s.num_clients(&m).await, 3);
    let two = whereby_event(&m, "room.client.left", "l2", 2, "2025-01-01T10:10:00.000Z");
    assert_eq!(s.whereby_at(now, &two).await, ok());
    assert_eq!(s.num_clients(&m).await, 2);
    s.stop().await;
}

#[tokio::test]
async fn an_older_whereby_event_after_a_newer_one_does_not_overwrite_the_count() {
    let s = stack("wh_whereby_order", &[]).await;
    let m = s.meeting("whereby-order").await;
    let now = Utc::now().timestamp();
    let newer = whereby_event(
        &m,
        "room.client.joined",
        "newer",
        4,
        "2025-01-01T10:30:00.000Z",
    );
    let older = whereby_event(
        &m,
        "room.client.left",
        "older",
        1,
        "2025-01-01T10:20:00.000Z",
    );
    assert_eq!(s.whereby_at(now, &newer).await, ok());
    assert_eq!(s.whereby_at(now, &older).await, ok());
    assert_eq!(s.num_clients(&m).await, 4);
    // And a genuinely newer one still applies.
    let newest = whereby_event(
        &m,
        "room.client.left",
        "newest",
        3,
        "2025-01-01T10:40:00.000Z",
    );
    assert_eq!(s.whereby_at(now, &newest).await, ok());
    assert_eq!(s.num_clients(&m).await, 3);
    s.stop().await;
}

#[tokio::test]
async fn a_whereby_signature_older_than_sixty_seconds_is_401_and_changes_nothing() {
    let s = stack("wh_whereby_stale", &[]).await;
    let m = s.meeting("whereby-stale").await;
    let body = whereby_event(
        &m,
        "room.client.joined",
        "stale",
        2,
        "2025-01-01T10:00:00.000Z",
    );
    let stale = Utc::now().timestamp() - 61;
    assert_eq!(
        s.whereby_at(stale, &body).await,
        (401, json!({"detail": "Invalid signature"}))
    );
    assert_eq!(s.num_clients(&m).await, 0);
    // The same event signed now is accepted: only the age was wrong.
    assert_eq!(s.whereby_at(Utc::now().timestamp(), &body).await, ok());
    assert_eq!(s.num_clients(&m).await, 2);
    s.stop().await;
}
