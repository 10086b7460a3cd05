//! Issue 7 acceptance, black-box: a signed Daily recording webhook through `reflector-local`
//! over HTTP, the local SQS poller feeding the real recording processor, and the outcome read
//! from the recordings bucket, the transcript store and the pipeline queue. Recording URLs point
//! at a local file server (wiremock) that counts the requests it gets.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use shared::domain::{Platform, RecordingSource, RecordingStatus, Transcript, TranscriptStatus};
use shared::store::{RecordingStore, TranscriptStore};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use support::{
    event_file, eventually, file_server, fixture_json, ok, seed_ready, MeetingRef, Stack, AUDIO,
};

/// How long the poller and processor get to settle a recording.
const SETTLE: Duration = Duration::from_secs(30);

async fn stack(test: &str, vars: &[(&str, &str)]) -> Stack {
    // A short retry delay, so that a wrongly retried job would show up within the test.
    Stack::start(test, vars, true, Duration::from_secs(1)).await
}

/// The stored recording for Daily recording `platform_id` and, once the processor has settled
/// it (status no longer `idle`), its transcript.
async fn settled(s: &Stack, platform_id: &str) -> (String, Transcript) {
    let recording_id = s
        .stores
        .recordings
        .get_by_source(&RecordingSource::PlatformRecording {
            platform: Platform::Daily,
            recording_id: platform_id.to_owned(),
        })
        .await
        .unwrap()
        .expect("the webhook stored the recording")
        .id;
    let transcript = eventually("the transcript settles", SETTLE, || async {
        s.stores
            .transcripts
            .get_by_recording(&recording_id)
            .await
            .unwrap()
            .filter(|t| t.status != TranscriptStatus::Idle)
    })
    .await;
    (recording_id, transcript)
}

/// Waits until the recordings queue is empty (the job acknowledged), then checks the DLQ is too.
async fn assert_jobs_settled(s: &Stack) {
    eventually("the recordings queue empties", SETTLE, || async {
        (s.queue_depth(&s.queues.recordings).await == 0).then_some(())
    })
    .await;
    assert_eq!(s.queue_depth(&s.queues.recordings_dlq).await, 0, "DLQ");
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

/// The uploaded outcome every successful recording must reach: the audio in our bucket with
/// the source's bytes, the transcript `uploaded`, the recording completed, the job acknowledged
/// and exactly one pipeline message.
async fn assert_uploaded(
    s: &Stack,
    m: &MeetingRef,
    recording_id: &str,
    transcript: &Transcript,
    source_bytes: &[u8],
) {
    assert_eq!(
        transcript.status,
        TranscriptStatus::Uploaded,
        "{transcript:?}"
    );
    let audio = transcript.audio.clone().expect("audio location stored");
    assert_eq!(audio.bucket, s.recordings_bucket);
    let prefix = format!("recordings/{}/{recording_id}.", m.id);
    assert!(audio.key.starts_with(&prefix), "{} vs {prefix}", audio.key);
    assert_eq!(
        object_bytes(s, &audio.bucket, &audio.key).await,
        source_bytes,
        "stored audio differs from the recording"
    );
    let recording = s
        .stores
        .recordings
        .get(recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recording.status, RecordingStatus::Completed);
    assert_jobs_settled(s).await;
    let messages = s.drain(&s.queues.pipeline).await;
    assert_eq!(
        messages,
        vec![json!({
            "transcript_id": transcript.id,
            "recording_id": recording_id,
            "meeting_id": m.id,
            "room_id": m.room_id,
            "audio": {"bucket": audio.bucket, "key": audio.key},
            "tracks": [],
        })]
    );
}

/// The failed outcome: transcript `error` (permanent), recording failed, nothing queued anywhere.
async fn assert_failed_for_good(s: &Stack, recording_id: &str, transcript: &Transcript) {
    assert_eq!(transcript.status, TranscriptStatus::Error, "{transcript:?}");
    assert!(transcript.error_permanent, "{transcript:?}");
    assert!(transcript.error.is_some(), "{transcript:?}");
    assert_eq!(transcript.audio, None);
    let recording = s
        .stores
        .recordings
        .get(recording_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recording.status, RecordingStatus::Failed, "{recording:?}");
    assert_jobs_settled(s).await;
    assert_eq!(s.drain(&s.queues.pipeline).await, Vec::<Value>::new());
}

async fn gets(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

#[tokio::test]
async fn a_seed_download_url_ends_as_stored_audio_an_uploaded_transcript_and_one_pipeline_message()
{
    let files = file_server().await;
    let s = stack("rec_url", &[("RECORDING_URL_ALLOWED_HOSTS", &files.uri())]).await;
    let m = s.meeting("rec-url").await;
    let url = format!("{}/files/audio.m4a", files.uri());
    assert_eq!(s.daily_seed(&seed_ready(&m, &url)).await, ok());

    let (recording_id, transcript) = settled(&s, "recording-789").await;
    assert_uploaded(&s, &m, &recording_id, &transcript, &event_file(AUDIO)).await;
    assert_eq!(gets(&files).await, 1);
    s.stop().await;
}

#[tokio::test]
async fn a_real_s3_key_in_the_daily_bucket_ends_the_same_way() {
    let daily_bucket = reflector_tests::unique_prefix("daily-src");
    let s = stack("rec_s3", &[("AWS_DAILY_S3_BUCKET", &daily_bucket)]).await;
    let m = s.meeting("rec-s3").await;
    let event = fixture_json("daily/real/recording.ready-to-download.json", &m.room_name);
    let key = event["payload"]["s3_key"].as_str().unwrap().to_owned();
    // The moov box at the end: the processor must read the container's tail, not just the head.
    let media = event_file("media/av-moov-last.mp4");
    s.aws
        .s3
        .create_bucket()
        .bucket(&daily_bucket)
        .send()
        .await
        .unwrap();
    s.aws
        .s3
        .put_object()
        .bucket(&daily_bucket)
        .key(&key)
        .body(media.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(s.daily(event.to_string().as_bytes()).await, ok());

    let platform_id = event["payload"]["recording_id"].as_str().unwrap();
    let (recording_id, transcript) = settled(&s, platform_id).await;
    assert_uploaded(&s, &m, &recording_id, &transcript, &media).await;
    s.stop().await;
}

#[tokio::test]
async fn a_text_file_served_as_a_recording_ends_in_error_and_is_not_redelivered() {
    let files = file_server().await;
    let s = stack("rec_text", &[("RECORDING_URL_ALLOWED_HOSTS", &files.uri())]).await;
    let m = s.meeting("rec-text").await;
    let url = format!("{}/files/notes.txt", files.uri());
    assert_eq!(s.daily_seed(&seed_ready(&m, &url)).await, ok());

    let (recording_id, transcript) = settled(&s, "recording-789").await;
    assert_failed_for_good(&s, &recording_id, &transcript).await;
    // The job is gone from the queue, so this count is final.
    assert_eq!(gets(&files).await, 1);
    s.stop().await;
}

#[tokio::test]
async fn a_url_on_a_host_off_the_allow_list_is_never_requested_and_fails_for_good() {
    let files = file_server().await;
    let allowed = files.uri(); // http://127.0.0.1:<port>
    let s = stack("rec_host", &[("RECORDING_URL_ALLOWED_HOSTS", &allowed)]).await;
    let m = s.meeting("rec-host").await;
    // The same server under another host name: reachable, but not on the list.
    let port = files.address().port();
    let url = format!("http://localhost:{port}/files/audio.m4a");
    assert_eq!(s.daily_seed(&seed_ready(&m, &url)).await, ok());

    let (recording_id, transcript) = settled(&s, "recording-789").await;
    assert_failed_for_good(&s, &recording_id, &transcript).await;
    assert_eq!(gets(&files).await, 0);
    s.stop().await;
}

#[tokio::test]
async fn a_recording_announced_twice_is_stored_once_with_one_pipeline_message() {
    let files = file_server().await;
    let s = stack(
        "rec_twice",
        &[("RECORDING_URL_ALLOWED_HOSTS", &files.uri())],
    )
    .await;
    let m = s.meeting("rec-twice").await;
    let url = format!("{}/files/audio.m4a", files.uri());
    // Two deliveries with different event ids (a replay from Daily's dashboard, say): both
    // pass the dedupe, so the processor sees the recording twice.
    for id in ["evt-ready-1", "evt-ready-2"] {
        let mut event: Value = serde_json::from_slice(&seed_ready(&m, &url)).unwrap();
        event["id"] = json!(id);
        assert_eq!(s.daily_seed(event.to_string().as_bytes()).await, ok());
    }
    let (recording_id, transcript) = settled(&s, "recording-789").await;
    assert_uploaded(&s, &m, &recording_id, &transcript, &event_file(AUDIO)).await;
    let stored = s
        .aws
        .s3
        .list_objects_v2()
        .bucket(&s.recordings_bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.contents().len(), 1, "{:?}", stored.contents());
    s.stop().await;
}

#[tokio::test]
async fn a_recording_without_a_location_is_fetched_through_daily_access_link() {
    // One local server plays Daily's API and the storage its link points to.
    let server = file_server().await;
    let link = format!("{}/files/audio.m4a", server.uri());
    Mock::given(method("GET"))
        .and(path("/v1/recordings/rec-no-location/access-link"))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer e2e-daily-key",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"download_link": link, "expires": 4102444800_i64})),
        )
        .mount(&server)
        .await;
    let api = format!("{}/v1", server.uri());
    let s = stack(
        "rec_link",
        &[
            ("RECORDING_URL_ALLOWED_HOSTS", &server.uri()),
            ("DAILY_API_KEY", "e2e-daily-key"),
            ("DAILY_API_URL", &api),
            // Meetings stay on the mock platform although a Daily key is set (the flags choose
            // the default platform only with the migration on).
            ("DAILY_MIGRATION_ENABLED", "true"),
            ("DEFAULT_VIDEO_PLATFORM", "mock"),
        ],
    )
    .await;
    let m = s.meeting("rec-link").await;
    let mut event = fixture_json("daily/real/recording.ready-to-download.json", &m.room_name);
    event["payload"]["recording_id"] = json!("rec-no-location");
    event["payload"].as_object_mut().unwrap().remove("s3_key");
    assert_eq!(s.daily(event.to_string().as_bytes()).await, ok());

    let (recording_id, transcript) = settled(&s, "rec-no-location").await;
    assert_uploaded(&s, &m, &recording_id, &transcript, &event_file(AUDIO)).await;
    s.stop().await;
}
