//! Issue 16 acceptance, black-box: `reflector-local` with a fake Daily (wiremock) and the
//! emulator. Reconciliation through the stack's sweeper (the function the local timer runs),
//! multitrack (`raw-tracks`) recordings through the webhook, the poller and the recording
//! processor, and `meeting.ended`.

mod support;

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use shared::domain::{Platform, RecordingSource};
use shared::store::{ParticipantSessionStore, RecordingStore};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use reflector_tests::platforms::{DailyCreate, DAILY_KEY};
use support::{event_file, eventually, fixture_json, ok, Stack};

const SETTLE: Duration = Duration::from_secs(30);

/// A fake Daily: rooms are created as asked, nobody is present, no recording is listed.
async fn fake_daily() -> MockServer {
    let server = MockServer::start().await;
    daily_defaults(&server).await;
    server
}

async fn daily_defaults(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v1/rooms"))
        .respond_with(DailyCreate)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/v1/rooms/[^/]+/presence$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "data": []})),
        )
        .with_priority(10)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 0, "data": []})),
        )
        .with_priority(10)
        .mount(server)
        .await;
}

/// A stack whose meetings are on the fake Daily and whose Daily recordings are in
/// `daily_bucket` (created here).
async fn stack(test: &str, daily: &MockServer, daily_bucket: &str) -> Stack {
    let url = format!("{}/v1", daily.uri());
    let s = Stack::start(
        test,
        &[
            ("DAILY_API_URL", &url),
            ("DAILY_API_KEY", DAILY_KEY),
            ("DAILY_DOMAIN_ID", "domain-e2e"),
            ("DAILY_MIGRATION_ENABLED", "true"),
            ("DEFAULT_VIDEO_PLATFORM", "daily"),
            ("AWS_DAILY_S3_BUCKET", daily_bucket),
            ("AWS_DAILY_S3_REGION", "us-east-1"),
            ("AWS_DAILY_ROLE_ARN", "arn:aws:iam::123456789012:role/daily"),
        ],
        true,
        Duration::from_secs(1),
    )
    .await;
    s.aws
        .s3
        .create_bucket()
        .bucket(daily_bucket)
        .send()
        .await
        .unwrap();
    s
}

async fn put(s: &Stack, bucket: &str, key: &str, bytes: &[u8]) {
    s.aws
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(bytes.to_vec().into())
        .send()
        .await
        .unwrap();
}

async fn object_bytes(s: &Stack, bucket: &str, key: &str) -> Vec<u8> {
    s.aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e:?}"))
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

async fn sweep(s: &Stack) {
    (s.running.stack.sweeper)()
        .await
        .expect("sweep without errors");
}

/// Waits for the pipeline queue's messages: at least one, then whatever else comes within a
/// few seconds.
async fn pipeline_messages(s: &Stack) -> Vec<Value> {
    let mut all = eventually("a pipeline message", SETTLE, || async {
        let got = s.drain(&s.queues.pipeline).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    all.extend(s.drain(&s.queues.pipeline).await);
    all
}

/// After the recordings queue emptied, nothing more reaches the pipeline (and the DLQ is empty).
async fn assert_nothing_more(s: &Stack) {
    eventually("the recordings queue empties", SETTLE, || async {
        (s.queue_depth(&s.queues.recordings).await == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.drain(&s.queues.pipeline).await, Vec::<Value>::new());
    assert_eq!(s.queue_depth(&s.queues.recordings_dlq).await, 0, "DLQ");
}

/// A cloud-recorded room and its Daily meeting: (room, meeting id, room id, Daily room name).
async fn daily_meeting(s: &Stack, room: &str) -> (String, String, String) {
    let (status, created) = s
        .post(
            "/v1/rooms",
            &[],
            json!({"name": room}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let (status, m) = s.meeting_json(room).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["platform"], "daily");
    (
        m["id"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
        m["room_name"].as_str().unwrap().to_owned(),
    )
}

/// Daily's list holds `recording` from now on.
async fn list_recordings(daily: &MockServer, recording: Value) {
    Mock::given(method("GET"))
        .and(path("/v1/recordings"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total_count": 1, "data": [recording]})),
        )
        .mount(daily)
        .await;
}

fn ready_event(room_name: &str, recording_id: &str, key: &str, event_id: &str) -> Vec<u8> {
    let mut event = fixture_json("daily/real/recording.ready-to-download.json", room_name);
    event["id"] = json!(event_id);
    event["payload"]["recording_id"] = json!(recording_id);
    event["payload"]["s3_key"] = json!(key);
    event.to_string().into_bytes()
}

const MEDIA: &str = "media/av-moov-last.mp4";

#[tokio::test]
async fn a_recording_no_webhook_announced_gives_one_pipeline_message_after_a_sweep_and_its_late_webhook_adds_nothing(
) {
    let daily = fake_daily().await;
    let bucket = reflector_tests::unique_prefix("daily-lost");
    let s = stack("rec_lost", &daily, &bucket).await;
    let (meeting_id, room_id, room_name) = daily_meeting(&s, "lost-webhook").await;
    let key = format!("dom/{room_name}/1700000000000");
    let media = event_file(MEDIA);
    put(&s, &bucket, &key, &media).await;
    list_recordings(
        &daily,
        json!({"id": "rec-lost", "room_name": room_name, "start_ts": Utc::now().timestamp() - 600,
            "status": "finished", "max_participants": 2, "duration": 540, "s3key": key, "tracks": []}),
    )
    .await;

    sweep(&s).await;

    let messages = pipeline_messages(&s).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(
        (m["meeting_id"].as_str(), m["room_id"].as_str()),
        (Some(meeting_id.as_str()), Some(room_id.as_str()))
    );
    assert_eq!(m["tracks"], json!([]));
    let audio_key = m["audio"]["key"].as_str().unwrap();
    assert_eq!(
        object_bytes(&s, &s.recordings_bucket, audio_key).await,
        media
    );

    // The webhook Daily sent late (or replayed): answered 200, changes nothing.
    let late = ready_event(&room_name, "rec-lost", &key, "evt-late");
    assert_eq!(s.daily(&late).await, ok());
    sweep(&s).await;
    assert_nothing_more(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn a_recording_whose_webhook_came_first_is_not_queued_again_by_the_sweep() {
    let daily = fake_daily().await;
    let bucket = reflector_tests::unique_prefix("daily-first");
    let s = stack("rec_first", &daily, &bucket).await;
    let (_, _, room_name) = daily_meeting(&s, "webhook-first").await;
    let key = format!("dom/{room_name}/1700000000001");
    put(&s, &bucket, &key, &event_file(MEDIA)).await;

    let event = ready_event(&room_name, "rec-first", &key, "evt-first");
    assert_eq!(s.daily(&event).await, ok());
    assert_eq!(pipeline_messages(&s).await.len(), 1);

    list_recordings(
        &daily,
        json!({"id": "rec-first", "room_name": room_name, "start_ts": Utc::now().timestamp() - 600,
            "status": "finished", "s3key": key}),
    )
    .await;
    sweep(&s).await;
    // The same event delivered twice is deduplicated too.
    assert_eq!(s.daily(&event).await, ok());
    assert_nothing_more(&s).await;
    s.stop().await;
}

/// A raw-tracks key as Daily writes it.
fn track_key(room: &str, session: &str, kind: &str, start_ms: u64) -> String {
    format!("dom/{room}/1700000000000-{session}-cam-{kind}-{start_ms}")
}

/// Puts two audio and two video tracks in the Daily bucket; returns the tracks as Daily's
/// `tracks` lists them and the audio keys with their bytes, ordered by track start (session
/// "bbb" started before "aaa").
async fn put_tracks(
    s: &Stack,
    bucket: &str,
    room: &str,
) -> (Value, Vec<(String, String, Vec<u8>)>) {
    let audio_a = (
        track_key(room, "aaa", "audio", 1700000005000),
        event_file("media/av.webm"),
    );
    let audio_b = (
        track_key(room, "bbb", "audio", 1700000001000),
        event_file("media/av-live.webm"),
    );
    let video = event_file("media/video-only.webm");
    let video_a = track_key(room, "aaa", "video", 1700000005000);
    let video_b = track_key(room, "bbb", "video", 1700000001000);
    for (key, bytes) in [&audio_a, &audio_b] {
        put(s, bucket, key, bytes).await;
    }
    for key in [&video_a, &video_b] {
        put(s, bucket, key, &video).await;
    }
    let tracks = json!([
        {"type": "audio", "s3Key": audio_a.0, "size": audio_a.1.len()},
        {"type": "video", "s3Key": video_a, "size": video.len()},
        {"type": "audio", "s3Key": audio_b.0, "size": audio_b.1.len()},
        {"type": "video", "s3Key": video_b, "size": video.len()},
    ]);
    let ordered = vec![
        ("bbb".to_owned(), audio_b.0, audio_b.1),
        ("aaa".to_owned(), audio_a.0, audio_a.1),
    ];
    (tracks, ordered)
}

async fn assert_multitrack_message(
    s: &Stack,
    meeting_id: &str,
    daily_recording: &str,
    expected: &[(String, String, Vec<u8>)],
) {
    let messages = pipeline_messages(s).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["audio"], Value::Null);
    let recording = s
        .stores
        .recordings
        .get_by_source(&RecordingSource::PlatformTracks {
            platform: Platform::Daily,
            recording_id: daily_recording.to_owned(),
        })
        .await
        .unwrap()
        .expect("the recording is stored");
    assert!(recording.source.is_multitrack(), "{recording:?}");
    assert_eq!(m["recording_id"], recording.id.as_str());
    let tracks = m["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 2, "audio tracks only: {m}");
    let prefix = format!("recordings/{meeting_id}/{}/", recording.id);
    for (track, (session, _, bytes)) in tracks.iter().zip(expected) {
        assert_eq!(track["session_id"], session.as_str(), "{m}");
        assert_eq!(track["bucket"], s.recordings_bucket.as_str());
        let key = track["key"].as_str().unwrap();
        assert!(key.starts_with(&prefix), "{key} not under {prefix}");
        assert_eq!(&object_bytes(s, &s.recordings_bucket, key).await, bytes);
    }
    assert_nothing_more(s).await;
}

#[tokio::test]
async fn raw_tracks_with_two_audio_and_two_video_tracks_give_one_message_with_two_identical_tracks()
{
    let daily = fake_daily().await;
    let bucket = reflector_tests::unique_prefix("daily-tracks");
    let s = stack("raw_tracks", &daily, &bucket).await;
    let (meeting_id, _, room_name) = daily_meeting(&s, "multitrack").await;
    let (tracks, ordered) = put_tracks(&s, &bucket, &room_name).await;
    let mut event = fixture_json("daily/real/recording.ready-to-download.json", &room_name);
    event["payload"]["type"] = json!("raw-tracks");
    event["payload"]["recording_id"] = json!("rec-tracks");
    event["payload"]["tracks"] = tracks;
    assert_eq!(s.daily(event.to_string().as_bytes()).await, ok());

    assert_multitrack_message(&s, &meeting_id, "rec-tracks", &ordered).await;
    s.stop().await;
}

#[tokio::test]
async fn raw_tracks_announced_with_null_tracks_are_read_from_daily_once_it_lists_them() {
    let daily = fake_daily().await;
    let bucket = reflector_tests::unique_prefix("daily-nulltracks");
    let s = stack("raw_null", &daily, &bucket).await;
    let (meeting_id, _, room_name) = daily_meeting(&s, "multitrack-null").await;
    let (tracks, ordered) = put_tracks(&s, &bucket, &room_name).await;
    let recording = |tracks: Value| {
        json!({"id": "rec-null", "room_name": room_name, "start_ts": 1700000000, "status": "finished",
            "max_participants": 2, "duration": 60, "s3key": null, "tracks": tracks})
    };
    // Not listed at the first look: the processor must come back later.
    Mock::given(method("GET"))
        .and(path("/v1/recordings/rec-null"))
        .respond_with(ResponseTemplate::new(200).set_body_json(recording(json!([]))))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&daily)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/recordings/rec-null"))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {DAILY_KEY}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(recording(tracks)))
        .mount(&daily)
        .await;
    let mut event = fixture_json("daily/real/recording.ready-to-download.json", &room_name);
    event["payload"]["type"] = json!("raw-tracks");
    event["payload"]["recording_id"] = json!("rec-null");
    event["payload"]["tracks"] = Value::Null;
    event["payload"].as_object_mut().unwrap().remove("s3_key");
    assert_eq!(s.daily(event.to_string().as_bytes()).await, ok());

    assert_multitrack_message(&s, &meeting_id, "rec-null", &ordered).await;
    let asked = daily
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/v1/recordings/rec-null")
        .count();
    assert!(asked >= 2, "asked Daily {asked} times");
    s.stop().await;
}

#[tokio::test]
async fn meeting_ended_makes_the_next_get_or_create_return_a_new_meeting() {
    let daily = fake_daily().await;
    let bucket = reflector_tests::unique_prefix("daily-ended");
    let s = stack("meeting_ended", &daily, &bucket).await;
    let (meeting_id, _, room_name) = daily_meeting(&s, "ends-now").await;
    let (_, again) = s.meeting_json("ends-now").await;
    assert_eq!(again["id"], meeting_id.as_str(), "still the same meeting");

    let event = fixture_json("daily/real/meeting.ended.json", &room_name);
    assert_eq!(s.daily(event.to_string().as_bytes()).await, ok());

    let (status, next) = s.meeting_json("ends-now").await;
    assert_eq!(status, 200, "{next}");
    assert_ne!(next["id"], meeting_id.as_str());
    assert_eq!(next["is_active"], true);
    s.stop().await;
}

#[tokio::test]
async fn presence_corrects_the_count_and_closes_sessions_and_an_empty_room_ends_the_meeting() {
    let daily = fake_daily().await;
    let bucket = reflector_tests::unique_prefix("daily-presence");
    let s = stack("presence", &daily, &bucket).await;
    let (meeting_id, _, room_name) = daily_meeting(&s, "presence").await;
    for n in 1..=3 {
        let mut event = fixture_json("daily/real/participant.joined.json", &room_name);
        event["id"] = json!(format!("join-{n}"));
        event["payload"]["session_id"] = json!(format!("session-{n}"));
        assert_eq!(s.daily(event.to_string().as_bytes()).await, ok());
    }
    let (_, m) = s.meeting_json("presence").await;
    assert_eq!(m["num_clients"], 3);
    Mock::given(method("GET"))
        .and(path(format!("/v1/rooms/{room_name}/presence")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": 1, "data": [
            {"room": room_name, "id": "session-2", "userId": null, "userName": "Ann",
             "joinTime": "2026-01-02T03:00:00.000Z", "duration": 60}]})),
        )
        .mount(&daily)
        .await;

    sweep(&s).await;

    let (_, m) = s.meeting_json("presence").await;
    assert_eq!(m["id"], meeting_id.as_str());
    assert_eq!(m["num_clients"], 1);
    let sessions = s
        .stores
        .participant_sessions
        .list_by_meeting(&meeting_id)
        .await
        .unwrap();
    let closed: Vec<&str> = sessions
        .iter()
        .filter(|x| x.left_at.is_some())
        .map(|x| x.session_id.as_str())
        .collect();
    assert_eq!(closed.len(), 2, "{sessions:?}");
    assert!(!closed.contains(&"session-2"));

    // Presence empty now: every session is closed and the meeting ends.
    daily.reset().await;
    daily_defaults(&daily).await;
    sweep(&s).await;
    let (_, next) = s.meeting_json("presence").await;
    assert_ne!(
        next["id"],
        meeting_id.as_str(),
        "a new meeting: the old one ended"
    );
    s.stop().await;
}
