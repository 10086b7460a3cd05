//! The Daily webhook handler through its router, with requests built the way API
//! Gateway (HTTP API, payload v2) delivers them and in-memory stores behind the ports.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use daily_webhook::handler::{handle_raw, router};
use serde_json::{json, Value};
use shared::domain::{
    Platform, RecordingKind, RecordingSource, RecordingStatus, RecordingTrigger, RecordingType,
    S3Location,
};
use shared::messages::JobSource;
use shared::metrics::Metric;
use shared::webhook::fixtures::{apigw_v2_event, retarget, signed_headers, signed_request, Scheme};
use shared::webhook::signature::header_map;
use tower::ServiceExt;

mod world;
use world::*;

/// The scheme each envelope is really sent with.
fn scheme_for(format: &str) -> Scheme {
    if format == "seed" {
        Scheme::DailySeed
    } else {
        Scheme::Daily
    }
}

async fn send_with(w: &World, headers: Vec<(&'static str, String)>, body: &[u8]) -> (u16, Value) {
    let event = apigw_v2_event("/v1/daily_webhook", &headers, body);
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = router(w.deps.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap(),
    )
    .unwrap_or(Value::Null);
    (status, body)
}

/// Signed now, as the platform sends it (a seed body's `ts` is set to now).
async fn send(w: &World, scheme: Scheme, body: &[u8]) -> (u16, Value) {
    let (headers, body) = signed_request(scheme, SECRET, Utc::now().timestamp(), body).unwrap();
    send_with(w, headers, &body).await
}

fn ok() -> (u16, Value) {
    (200, json!({"status": "ok"}))
}

const FORMATS: [&str; 2] = ["real", "seed"];

#[tokio::test]
async fn participant_joined_adds_a_client_and_records_the_session() {
    for format in FORMATS {
        let w = world();
        let body = daily_fixture(format, "participant.joined", None);
        assert_eq!(send(&w, scheme_for(format), &body).await, ok(), "{format}");
        assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1), "{format}");
        let session_id = if format == "real" {
            "0c0d2dda-f21d-4cf9-ab56-86bf3c407ffa"
        } else {
            "session-456"
        };
        let session = w.sessions.get(MEETING_ID, session_id).expect(format);
        assert!(session.user_name.is_some(), "{format}");
        assert_eq!(session.left_at, None);
    }
}

#[tokio::test]
async fn participant_joined_stores_the_join_time_from_the_event() {
    let w = world();
    let body = daily_fixture("real", "participant.joined", None);
    send(&w, Scheme::Daily, &body).await;
    let session = w
        .sessions
        .get(MEETING_ID, "0c0d2dda-f21d-4cf9-ab56-86bf3c407ffa")
        .unwrap();
    assert_eq!(session.joined_at.timestamp_millis(), 1_708_972_279_960);
    assert_eq!(
        session.user_id.as_deref(),
        Some("6497c79b-f326-4942-aef8-c36a29140ad1")
    );
}

#[tokio::test]
async fn participant_left_removes_a_client_and_records_the_leave_time() {
    for format in FORMATS {
        let w = world();
        let join = daily_fixture(format, "participant.joined", None);
        let leave = daily_fixture(format, "participant.left", None);
        send(&w, scheme_for(format), &join).await;
        assert_eq!(send(&w, scheme_for(format), &leave).await, ok(), "{format}");
        assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0), "{format}");
        let session_id = if format == "real" {
            "0c0d2dda-f21d-4cf9-ab56-86bf3c407ffa"
        } else {
            "session-456"
        };
        let session = w.sessions.get(MEETING_ID, session_id).unwrap();
        assert!(session.left_at.is_some(), "{format}");
    }
}

#[tokio::test]
async fn a_leave_without_a_join_never_takes_the_count_below_zero() {
    let w = world();
    let leave = daily_fixture("real", "participant.left", None);
    assert_eq!(send(&w, Scheme::Daily, &leave).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn the_same_signed_event_ten_times_changes_the_count_once() {
    for format in FORMATS {
        let w = world();
        let body = daily_fixture(format, "participant.joined", None);
        let (headers, body) =
            signed_request(scheme_for(format), SECRET, Utc::now().timestamp(), &body).unwrap();
        for _ in 0..10 {
            assert_eq!(
                send_with(&w, headers.clone(), &body).await,
                ok(),
                "{format}"
            );
        }
        assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1), "{format}");
    }
}

#[tokio::test]
async fn a_hundred_concurrent_joins_of_distinct_participants_count_a_hundred() {
    let w = Arc::new(world());
    let mut tasks = Vec::new();
    for i in 0..100 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({
                "version": "1.0.0", "type": "participant.joined", "id": format!("join-{i}"),
                "payload": {"room": ROOM, "session_id": format!("s-{i}"), "joined_at": 1708972279.5},
                "event_ts": 1708972280
            })
            .to_string();
            send(&w, Scheme::Daily, body.as_bytes()).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), ok());
    }
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(100));
}

#[tokio::test]
async fn recording_started_records_a_pending_recording() {
    for (format, daily_id) in [
        ("real", "08fa0b24-9220-44c5-846c-3f116cf8e738"),
        ("seed", "recording-789"),
    ] {
        let w = world();
        let body = daily_fixture(format, "recording.started", None);
        assert_eq!(send(&w, scheme_for(format), &body).await, ok(), "{format}");
        let all = w.recordings.all();
        assert_eq!(all.len(), 1, "{format}");
        assert_eq!(all[0].status, RecordingStatus::Pending);
        assert_eq!(all[0].meeting_id, MEETING_ID);
        assert_eq!(
            all[0].source,
            RecordingSource::PlatformRecording {
                platform: Platform::Daily,
                recording_id: daily_id.into()
            }
        );
        assert!(
            w.queue.sent().is_empty(),
            "started must not queue processing"
        );
    }
}

#[tokio::test]
async fn recording_started_without_room_name_is_accepted_and_changes_nothing() {
    let w = world();
    let body = br#"{"version":"1.0.0","type":"recording.started","id":"rs-1",
        "payload":{"recording_id":"r-1","action":"start-cloud-recording","start_ts":1},"event_ts":1}"#;
    assert_eq!(send(&w, Scheme::Daily, body).await, ok());
    assert!(w.recordings.all().is_empty());
}

#[tokio::test]
async fn seed_recording_ready_queues_one_job_with_the_download_url() {
    let w = world();
    let body = daily_fixture("seed", "recording.ready-to-download", None);
    assert_eq!(send(&w, Scheme::DailySeed, &body).await, ok());
    let recordings = w.recordings.all();
    assert_eq!(recordings.len(), 1);
    let jobs = w.queue.sent();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].meeting_id, MEETING_ID);
    assert_eq!(jobs[0].recording_id, recordings[0].id);
    assert_eq!(jobs[0].room_name, ROOM);
    assert_eq!(
        jobs[0].source,
        JobSource::Url("https://bucket.s3.amazonaws.com/recording.mp4".into())
    );
}

#[tokio::test]
async fn real_recording_ready_queues_the_s3_object_in_the_daily_bucket() {
    let w = world();
    let body = daily_fixture("real", "recording.ready-to-download", None);
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    let jobs = w.queue.sent();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].source,
        JobSource::S3(S3Location {
            bucket: BUCKET.into(),
            key: "api-test-1j8fizhzd30c/fixture-room/1692124183028".into()
        })
    );
    assert_eq!(jobs[0].recording_id, w.recordings.all()[0].id);
}

#[tokio::test]
async fn recording_ready_after_started_reuses_the_recording() {
    let w = world();
    send(
        &w,
        Scheme::Daily,
        &daily_fixture("real", "recording.started", None),
    )
    .await;
    send(
        &w,
        Scheme::Daily,
        &daily_fixture("real", "recording.ready-to-download", None),
    )
    .await;
    let recordings = w.recordings.all();
    assert_eq!(recordings.len(), 1);
    assert_eq!(w.queue.sent()[0].recording_id, recordings[0].id);
}

#[tokio::test]
async fn recording_ready_without_location_asks_daily_by_recording_id() {
    let w = world();
    let body = br#"{"version":"1.0.0","type":"recording.ready-to-download","id":"rtd-2",
        "payload":{"recording_id":"rec-42","room_name":"fixture-room","type":"cloud"},
        "event_ts":1692124192}"#;
    assert_eq!(send(&w, Scheme::Daily, body).await, ok());
    assert_eq!(
        w.queue.sent()[0].source,
        JobSource::DailyRecording("rec-42".into())
    );
}

#[tokio::test]
async fn raw_tracks_queue_only_the_audio_tracks_as_one_multitrack_recording() {
    let w = world();
    let body = br#"{"version":"1.0.0","type":"recording.ready-to-download","id":"rtd-3",
        "payload":{"recording_id":"rec-43","room_name":"fixture-room","type":"raw-tracks",
        "s3_key":"dom/fixture-room/1700000000000",
        "tracks":[{"type":"audio","s3Key":"dom/fixture-room/1700000000000-s-a-cam-audio-1700000001000","size":1},
                  {"type":"video","s3Key":"dom/fixture-room/1700000000000-s-a-cam-video-1700000001000","size":1}]},
        "event_ts":1692124192}"#;
    assert_eq!(send(&w, Scheme::Daily, body).await, ok());
    assert_eq!(
        w.queue.sent()[0].source,
        JobSource::Tracks(vec![S3Location {
            bucket: BUCKET.into(),
            key: "dom/fixture-room/1700000000000-s-a-cam-audio-1700000001000".into()
        }])
    );
    let recordings = w.recordings.all();
    assert_eq!(recordings.len(), 1);
    assert!(recordings[0].source.is_multitrack(), "{recordings:?}");
}

#[tokio::test]
async fn raw_tracks_with_null_tracks_are_read_from_daily_by_the_processor() {
    let w = world();
    let body = br#"{"version":"1.0.0","type":"recording.ready-to-download","id":"rtd-4",
        "payload":{"recording_id":"rec-44","room_name":"fixture-room","type":"raw-tracks","tracks":null},
        "event_ts":1692124192}"#;
    assert_eq!(send(&w, Scheme::Daily, body).await, ok());
    assert_eq!(
        w.queue.sent()[0].source,
        JobSource::DailyTracks("rec-44".into())
    );
}

#[tokio::test]
async fn recording_ready_with_s3_key_but_no_bucket_configured_asks_daily() {
    let w = world_with(Some(SECRET), None);
    let body = daily_fixture("real", "recording.ready-to-download", None);
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    assert_eq!(
        w.queue.sent()[0].source,
        JobSource::DailyRecording("08fa0b24-9220-44c5-846c-3f116cf8e738".into())
    );
}

#[tokio::test]
async fn a_replayed_recording_ready_queues_one_job() {
    let w = world();
    let body = daily_fixture("seed", "recording.ready-to-download", None);
    for _ in 0..3 {
        assert_eq!(send(&w, Scheme::DailySeed, &body).await, ok());
    }
    assert_eq!(w.queue.sent().len(), 1);
    assert_eq!(w.recordings.all().len(), 1);
}

#[tokio::test]
async fn seed_recording_error_marks_the_recording_failed_with_the_message() {
    let w = world();
    send(
        &w,
        Scheme::DailySeed,
        &daily_fixture("seed", "recording.started", None),
    )
    .await;
    let body = daily_fixture("seed", "recording.error", None);
    assert_eq!(send(&w, Scheme::DailySeed, &body).await, ok());
    let r = &w.recordings.all()[0];
    assert_eq!(r.status, RecordingStatus::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("recording failed: storage unavailable")
    );
}

#[tokio::test]
async fn recording_error_for_a_recording_not_seen_before_is_recorded_failed() {
    let w = world();
    let body = br#"{"version":"1.0.0","type":"recording.error","id":"re-2",
        "payload":{"recording_id":"rec-9","room_name":"fixture-room","error_msg":"no worker","action":"cloud-recording-error"}}"#;
    assert_eq!(send(&w, Scheme::Daily, body).await, ok());
    let r = &w.recordings.all()[0];
    assert_eq!(
        (r.status, r.error.as_deref()),
        (RecordingStatus::Failed, Some("no worker"))
    );
}

#[tokio::test]
async fn real_recording_error_without_recording_id_is_accepted_and_changes_nothing() {
    let w = world();
    send(
        &w,
        Scheme::Daily,
        &daily_fixture("real", "recording.started", None),
    )
    .await;
    let body = daily_fixture("real", "recording.error", None);
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    assert_eq!(w.recordings.all()[0].status, RecordingStatus::Pending);
}

#[tokio::test]
async fn recording_error_after_completion_leaves_the_recording_completed() {
    let w = world();
    send(
        &w,
        Scheme::DailySeed,
        &daily_fixture("seed", "recording.started", None),
    )
    .await;
    let id = w.recordings.all()[0].id.clone();
    use shared::store::RecordingStore;
    w.recordings
        .set_status(&id, RecordingStatus::Processing, None)
        .await
        .unwrap();
    w.recordings
        .set_status(&id, RecordingStatus::Completed, None)
        .await
        .unwrap();
    let body = daily_fixture("seed", "recording.error", None);
    assert_eq!(send(&w, Scheme::DailySeed, &body).await, ok());
    assert_eq!(w.recordings.all()[0].status, RecordingStatus::Completed);
}

#[tokio::test]
async fn meeting_started_and_ended_are_accepted_in_both_formats() {
    for format in FORMATS {
        for event in ["meeting.started", "meeting.ended"] {
            let w = world();
            let body = daily_fixture(format, event, None);
            assert_eq!(
                send(&w, scheme_for(format), &body).await,
                ok(),
                "{format} {event}"
            );
            assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
        }
    }
}

#[tokio::test]
async fn meeting_ended_deactivates_the_meeting_at_once_and_a_replay_changes_nothing() {
    let w = world();
    let body = daily_fixture("real", "meeting.ended", None);
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    assert!(!w.meetings.get_sync(MEETING_ID).is_active);
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    assert!(!w.meetings.get_sync(MEETING_ID).is_active);
}

#[tokio::test]
async fn meeting_started_records_the_first_start_only() {
    let w = world();
    let body = daily_fixture("real", "meeting.started", None);
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    let first = w
        .meetings
        .platform_start(MEETING_ID)
        .expect("start recorded");
    // `event_ts` of the fixture.
    assert_eq!(first.timestamp(), 1_708_972_279);
    let mut later: Value = serde_json::from_slice(&body).unwrap();
    later["event_ts"] = json!(1_708_979_999);
    later["id"] = json!("meet-start-again");
    assert_eq!(
        send(&w, Scheme::Daily, later.to_string().as_bytes()).await,
        ok()
    );
    assert_eq!(w.meetings.platform_start(MEETING_ID), Some(first));
    assert!(w.meetings.get_sync(MEETING_ID).is_active);
}

#[tokio::test]
async fn either_envelope_verifies_under_either_daily_scheme() {
    let w = world();
    let seed_body = daily_fixture("seed", "participant.joined", None);
    assert_eq!(send(&w, Scheme::Daily, &seed_body).await, ok());
    let real_body = daily_fixture("real", "participant.joined", None);
    assert_eq!(send(&w, Scheme::DailySeed, &real_body).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(2));
}

#[tokio::test]
async fn an_invalid_signature_is_401_and_changes_nothing() {
    for format in FORMATS {
        let w = world();
        let body = daily_fixture(format, "participant.joined", None);
        let other = "b3RoZXItc2VjcmV0LXZhbHVl";
        let (headers, body) =
            signed_request(scheme_for(format), other, Utc::now().timestamp(), &body).unwrap();
        assert_eq!(
            send_with(&w, headers, &body).await,
            (401, json!({"detail": "Invalid signature"})),
            "{format}"
        );
        assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
    }
}

#[tokio::test]
async fn a_body_changed_after_signing_is_401() {
    let w = world();
    let body = daily_fixture("real", "participant.joined", None);
    let headers = signed_headers(Scheme::Daily, SECRET, Utc::now().timestamp(), &body).unwrap();
    let tampered = daily_fixture("real", "participant.joined", Some("another-id"));
    assert_eq!(
        send_with(&w, headers, &tampered).await,
        (401, json!({"detail": "Invalid signature"}))
    );
}

#[tokio::test]
async fn a_missing_signature_is_401() {
    let w = world();
    let body = daily_fixture("seed", "participant.joined", None);
    assert_eq!(
        send_with(&w, vec![("content-type", "application/json".into())], &body).await,
        (401, json!({"detail": "Missing signature"}))
    );
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn an_unset_secret_rejects_even_a_correctly_signed_event() {
    let w = world_with(None, Some(BUCKET));
    let body = daily_fixture("real", "participant.joined", None);
    let (status, _) = send(&w, Scheme::Daily, &body).await;
    assert_eq!(status, 401);
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn a_stale_daily_timestamp_is_401() {
    let w = world();
    let body = daily_fixture("real", "participant.joined", None);
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let stale = signed_headers(Scheme::Daily, SECRET, now.timestamp() - 301, &body).unwrap();
    let response = handle_raw(&w.deps, &header_map(&stale), &body, now).await;
    assert_eq!(response.status(), 401);
    let fresh = signed_headers(Scheme::Daily, SECRET, now.timestamp() - 299, &body).unwrap();
    let response = handle_raw(&w.deps, &header_map(&fresh), &body, now).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_creation_probe_is_200_signed_or_not_and_changes_nothing() {
    let w = world_with(None, None);
    let probe = fixture("daily/probe.json");
    assert_eq!(send_with(&w, vec![], &probe).await, ok());
    let w = world();
    assert_eq!(send(&w, Scheme::Daily, &probe).await, ok());
    assert_eq!(send_with(&w, vec![], b"{\"test\":\"test\"}").await, ok());
    assert!(!w.events.is_claimed(Platform::Daily, "test"));
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
}

#[tokio::test]
async fn something_that_only_starts_like_the_probe_needs_a_signature() {
    let w = world();
    let body = br#"{"test":"test","type":"participant.joined"}"#;
    assert_eq!(
        send_with(&w, vec![], body).await,
        (401, json!({"detail": "Missing signature"}))
    );
}

#[tokio::test]
async fn an_unknown_event_type_is_200_and_changes_nothing() {
    for body in [
        &br#"{"version":"1.0.0","type":"transcript.started","id":"t-1","payload":{"room":"fixture-room"},"event_ts":1}"#[..],
        br#"{"type":"waiting-participant.joined","id":"t-2","ts":1,"data":{"room":{"name":"fixture-room"}}}"#,
    ] {
        let w = world();
        assert_eq!(send(&w, Scheme::Daily, body).await, ok());
        assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
        assert!(w.recordings.all().is_empty() && w.queue.sent().is_empty());
    }
}

#[tokio::test]
async fn events_for_an_unknown_meeting_are_200_and_change_nothing() {
    for (format, event) in [
        ("real", "participant.joined"),
        ("seed", "participant.left"),
        ("real", "recording.ready-to-download"),
        ("seed", "recording.started"),
    ] {
        let w = world();
        let body = retarget(
            &fixture(&format!("daily/{format}/{event}.json")),
            Some("no-such-room"),
            None,
        )
        .unwrap();
        assert_eq!(
            send(&w, scheme_for(format), &body).await,
            ok(),
            "{format} {event}"
        );
        assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
        assert!(w.recordings.all().is_empty() && w.queue.sent().is_empty());
    }
}

#[tokio::test]
async fn a_signed_but_malformed_body_is_422() {
    for body in [
        &b"{not json"[..],
        br#"{"type":"participant.joined"}"#,
        br#"{"type":"participant.joined","id":"x","payload":{"session_id":"s"}}"#,
        br#"[1,2,3]"#,
        b"",
    ] {
        let w = world();
        let (status, detail) = send(&w, Scheme::Daily, body).await;
        assert_eq!(status, 422, "{}", String::from_utf8_lossy(body));
        assert!(detail["detail"].is_string(), "{detail}");
    }
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let w = world();
    let body = vec![b' '; shared::webhook::MAX_BODY_BYTES + 1];
    let (status, _) = send(&w, Scheme::Daily, &body).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_failed_participant_write_leaves_no_claim_so_the_retry_counts_once() {
    let w = world();
    let body = daily_fixture("real", "participant.joined", Some("evt-fail"));
    w.participants.failures.fail("apply");
    let (status, _) = send(&w, Scheme::Daily, &body).await;
    assert_eq!(status, 503);
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
    assert!(!w.events.is_claimed(Platform::Daily, "evt-fail"));
    w.participants.failures.heal("apply");
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1));
}

#[tokio::test]
async fn a_failed_meeting_lookup_is_503_and_claims_nothing() {
    let w = world();
    let body = daily_fixture("real", "participant.left", Some("evt-lookup"));
    w.meetings.failures.fail("get_by_room_name");
    assert_eq!(send(&w, Scheme::Daily, &body).await.0, 503);
    assert!(!w.events.is_claimed(Platform::Daily, "evt-lookup"));
    w.meetings.failures.heal("get_by_room_name");
    assert_eq!(send(&w, Scheme::Daily, &body).await, ok());
    assert!(w.events.is_claimed(Platform::Daily, "evt-lookup"));
}

#[tokio::test]
async fn a_queue_failure_releases_the_claim_so_the_retry_queues_the_job() {
    let w = world();
    let body = daily_fixture("seed", "recording.ready-to-download", None);
    w.queue.set_failing(true);
    assert_eq!(send(&w, Scheme::DailySeed, &body).await.0, 503);
    w.queue.set_failing(false);
    assert_eq!(send(&w, Scheme::DailySeed, &body).await, ok());
    assert_eq!(w.queue.sent().len(), 1);
    assert_eq!(w.recordings.all().len(), 1);
}

#[tokio::test]
async fn a_claim_store_failure_is_503_and_changes_nothing() {
    let w = world();
    w.events.failures.fail("claim");
    let body = daily_fixture("seed", "recording.ready-to-download", None);
    assert_eq!(send(&w, Scheme::DailySeed, &body).await.0, 503);
    assert!(w.recordings.all().is_empty() && w.queue.sent().is_empty());
}

#[tokio::test]
async fn a_seed_event_signed_more_than_five_minutes_ago_is_401_stale() {
    // A captured seed request replayed after its dedupe record expired: the signature still
    // matches, the signed `ts` does not.
    let w = world();
    let body = daily_fixture("seed", "participant.joined", None);
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let (stale, stale_body) =
        signed_request(Scheme::DailySeed, SECRET, now.timestamp() - 301, &body).unwrap();
    let response = handle_raw(&w.deps, &header_map(&stale), &stale_body, now).await;
    assert_eq!(response.status(), 401);
    let detail: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(detail, json!({"detail": "Invalid signature"}));
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
    let stale = Some(shared::metrics::Detail::Reason(
        shared::metrics::RejectReason::Stale,
    ));
    assert_eq!(
        w.metrics
            .sum_where(Metric::WebhookRejected, |k| k.detail == stale),
        1.0,
        "counted as WebhookRejected Reason=stale"
    );
}

#[tokio::test]
async fn a_seed_event_at_the_five_minute_boundary_is_accepted() {
    let w = world();
    let body = daily_fixture("seed", "participant.joined", None);
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let (edge, edge_body) =
        signed_request(Scheme::DailySeed, SECRET, now.timestamp() - 300, &body).unwrap();
    let response = handle_raw(&w.deps, &header_map(&edge), &edge_body, now).await;
    assert_eq!(response.status(), 200);
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1));
}

#[tokio::test]
async fn a_seed_event_signed_now_is_accepted_through_an_api_gateway_event() {
    // What `sign-webhook --scheme daily-seed --output apigw` produces, signed at the moment.
    let w = world();
    let body = daily_fixture("seed", "participant.joined", None);
    let (headers, body) =
        signed_request(Scheme::DailySeed, SECRET, Utc::now().timestamp(), &body).unwrap();
    let event = apigw_v2_event("/v1/daily_webhook", &headers, &body);
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = router(w.deps.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a sender signs, the answer is one of the documented statuses, never a 5xx.
        #[test]
        fn any_signed_body_gets_a_documented_status(
            body in prop::collection::vec(any::<u8>(), 0..600),
            seed_scheme in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let w = world();
            let scheme = if seed_scheme { Scheme::DailySeed } else { Scheme::Daily };
            let (status, _) = runtime.block_on(send(&w, scheme, &body));
            prop_assert!([200, 413, 422].contains(&status), "status {status}");
        }

        /// Unsigned bytes are rejected (or are the probe), never processed.
        #[test]
        fn any_unsigned_body_is_401_unless_it_is_the_probe(
            body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let w = world();
            let (status, _) = runtime.block_on(send_with(&w, vec![], &body));
            let expected = if shared::webhook::daily::is_probe(&body) { 200 } else { 401 };
            prop_assert_eq!(status, expected);
            prop_assert_eq!(w.meetings.num_clients(MEETING_ID), Some(0));
        }
    }
}

/// A real-format join of session `session` with event id `id`.
fn join(id: &str, session: &str) -> Vec<u8> {
    json!({
        "version": "1.0.0", "type": "participant.joined", "id": id,
        "payload": {"room": ROOM, "session_id": session, "joined_at": 1708972279.5},
        "event_ts": 1708972280
    })
    .to_string()
    .into_bytes()
}

/// The kinds of the recording starts queued so far, in order.
fn queued_kinds(w: &World) -> Vec<RecordingKind> {
    w.queue.starts().into_iter().map(|(s, _)| s.kind).collect()
}

fn world_recording(trigger: RecordingTrigger, kinds: &[RecordingKind]) -> World {
    let mut w = world();
    let mut m = meeting(MEETING_ID, ROOM);
    m.recording_trigger = trigger;
    w.meetings.insert(m);
    let mut deps = (*w.deps).clone();
    deps.recording_types = kinds.iter().copied().collect();
    w.deps = Arc::new(deps);
    w
}

#[tokio::test]
async fn the_second_join_queues_one_start_per_configured_kind_at_once() {
    let both = [RecordingKind::Cloud, RecordingKind::RawTracks];
    let w = world_recording(RecordingTrigger::Automatic2ndParticipant, &both);
    assert_eq!(send(&w, Scheme::Daily, &join("j1", "s1")).await, ok());
    assert!(w.queue.starts().is_empty(), "one participant is not enough");
    assert_eq!(send(&w, Scheme::Daily, &join("j2", "s2")).await, ok());
    let starts = w.queue.starts();
    assert_eq!(queued_kinds(&w), both.to_vec());
    for (start, delay) in starts {
        assert_eq!(start.meeting_id, MEETING_ID);
        assert_eq!(start.room_name, ROOM);
        assert_eq!(start.attempt, 0);
        assert_eq!(delay, std::time::Duration::ZERO);
    }
    assert!(w.queue.sent().is_empty(), "no recording job");
}

#[tokio::test]
async fn an_automatic_meeting_queues_the_start_at_the_first_join() {
    let w = world_recording(RecordingTrigger::Automatic, &[RecordingKind::Cloud]);
    assert_eq!(send(&w, Scheme::Daily, &join("j1", "s1")).await, ok());
    assert_eq!(queued_kinds(&w), vec![RecordingKind::Cloud]);
}

#[tokio::test]
async fn rooms_without_a_server_trigger_or_cloud_recording_never_queue_a_start() {
    for trigger in [RecordingTrigger::None, RecordingTrigger::Prompt] {
        let w = world_recording(trigger, &[RecordingKind::Cloud]);
        for i in 0..3 {
            let id = format!("j{i}");
            let session = format!("s{i}");
            assert_eq!(send(&w, Scheme::Daily, &join(&id, &session)).await, ok());
        }
        assert!(w.queue.starts().is_empty(), "{trigger:?}");
    }
    let w = world();
    let mut local = meeting(MEETING_ID, ROOM);
    local.recording_type = RecordingType::Local;
    w.meetings.insert(local);
    send(&w, Scheme::Daily, &join("j1", "s1")).await;
    send(&w, Scheme::Daily, &join("j2", "s2")).await;
    assert!(w.queue.starts().is_empty(), "local recording");
}

#[tokio::test]
async fn a_replayed_join_queues_again_only_while_the_kind_is_not_marked_started() {
    let w = world_recording(
        RecordingTrigger::Automatic2ndParticipant,
        &[RecordingKind::Cloud],
    );
    send(&w, Scheme::Daily, &join("j1", "s1")).await;
    send(&w, Scheme::Daily, &join("j2", "s2")).await;
    assert_eq!(w.queue.starts().len(), 1);

    assert_eq!(send(&w, Scheme::Daily, &join("j2", "s2")).await, ok());
    assert_eq!(w.queue.starts().len(), 2, "not marked yet: checked again");
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(2), "counted once");

    use shared::store::MeetingStore;
    w.meetings
        .mark_recording_started(MEETING_ID, RecordingKind::Cloud)
        .await
        .unwrap();
    assert_eq!(send(&w, Scheme::Daily, &join("j2", "s2")).await, ok());
    assert_eq!(send(&w, Scheme::Daily, &join("j3", "s3")).await, ok());
    assert_eq!(w.queue.starts().len(), 2, "started: nothing more queued");
}

/// Once every configured kind is marked started, a join has nothing to start and needs no
/// fresher read of the meeting: a meeting store that cannot be read by id does not matter.
#[tokio::test]
async fn a_join_when_every_kind_has_started_does_not_read_the_meeting_again() {
    let both = [RecordingKind::Cloud, RecordingKind::RawTracks];
    let w = world_recording(RecordingTrigger::Automatic2ndParticipant, &both);
    use shared::store::MeetingStore;
    for kind in both {
        w.meetings
            .mark_recording_started(MEETING_ID, kind)
            .await
            .unwrap();
    }
    w.meetings.failures.fail("get");
    assert_eq!(send(&w, Scheme::Daily, &join("j1", "s1")).await, ok());
    assert!(w.queue.starts().is_empty());
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(1));
}

#[tokio::test]
async fn a_failed_start_enqueue_is_503_and_daily_s_retry_queues_it_without_counting_twice() {
    let w = world_recording(
        RecordingTrigger::Automatic2ndParticipant,
        &[RecordingKind::Cloud],
    );
    send(&w, Scheme::Daily, &join("j1", "s1")).await;
    w.queue.set_failing(true);
    assert_eq!(send(&w, Scheme::Daily, &join("j2", "s2")).await.0, 503);
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(2));
    w.queue.set_failing(false);
    assert_eq!(send(&w, Scheme::Daily, &join("j2", "s2")).await, ok());
    assert_eq!(queued_kinds(&w), vec![RecordingKind::Cloud]);
    assert_eq!(w.meetings.num_clients(MEETING_ID), Some(2));
}

#[tokio::test]
async fn a_replayed_join_counts_one_join_one_acceptance_and_the_rest_as_duplicates() {
    let w = world();
    let body = daily_fixture("real", "participant.joined", None);
    let headers = signed_headers(Scheme::Daily, SECRET, Utc::now().timestamp(), &body).unwrap();
    for _ in 0..3 {
        assert_eq!(send_with(&w, headers.clone(), &body).await, ok());
    }
    let daily = |m| {
        w.metrics
            .sum_where(m, |k| k.platform == Some(Platform::Daily))
    };
    assert_eq!(daily(Metric::ParticipantJoined), 1.0);
    assert_eq!(daily(Metric::WebhookAccepted), 1.0);
    assert_eq!(daily(Metric::WebhookDuplicate), 2.0);
}

#[tokio::test]
async fn a_replayed_recording_ready_is_counted_as_queued_once() {
    let w = world();
    let body = daily_fixture("seed", "recording.ready-to-download", None);
    for _ in 0..3 {
        send(&w, Scheme::DailySeed, &body).await;
    }
    assert_eq!(
        w.metrics.sum_where(Metric::RecordingQueued, |_| true),
        w.queue.sent().len() as f64
    );
    assert_eq!(w.queue.sent().len(), 1);
}

/// One delivery handled at `at` (signed then), as Daily would send it.
async fn deliver_at(w: &World, body: &[u8], at: DateTime<Utc>) -> (u16, Value) {
    let headers = signed_headers(Scheme::Daily, SECRET, at.timestamp(), body).unwrap();
    let response = handle_raw(&w.deps, &header_map(&headers), body, at).await;
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(response.body().as_ref()).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_recording_event_whose_delivery_died_after_its_claim_is_applied_once_by_a_retry_after_the_lease(
) {
    let w = world();
    let body = daily_fixture("real", "recording.ready-to-download", Some("evt-died"));
    let t0 = Utc::now();
    // The delivery claims the event, then dies before its job is queued and before it can give
    // the claim back (the queue and the release both fail, as a killed function would).
    w.queue.set_failing(true);
    w.events.failures.fail("release");
    assert_eq!(deliver_at(&w, &body, t0).await.0, 503);
    w.queue.set_failing(false);
    w.events.failures.heal("release");
    assert!(w.events.is_claimed(Platform::Daily, "evt-died"));
    assert!(w.queue.sent().is_empty());

    // Daily's retry within the lease is asked to come back; nothing is applied.
    let (status, answer) = deliver_at(&w, &body, t0 + chrono::Duration::seconds(10)).await;
    assert_eq!(
        (status, answer),
        (
            503,
            json!({"detail": "The event is being handled; retry later"})
        )
    );
    assert!(w.queue.sent().is_empty());

    // Its retry after the lease applies the event: one recording, one job.
    let after = t0 + chrono::Duration::seconds(61);
    assert_eq!(deliver_at(&w, &body, after).await, ok());
    // Later retries and replays are duplicates.
    assert_eq!(
        deliver_at(&w, &body, after + chrono::Duration::seconds(120)).await,
        ok()
    );
    assert_eq!(w.queue.sent().len(), 1);
    assert_eq!(w.recordings.all().len(), 1);
    assert!(w.events.is_completed(Platform::Daily, "evt-died"));
}
