//! The handler end to end over in-memory ports (`shared::fakes`): no emulator, no network. The
//! adapters behind the same ports are tested against the emulator and local servers (shared's
//! blob and download tests, and tests/emulator.rs for the real wiring).

mod support;

use recording_processor::handler::{audio_prefix, handle};
use recording_processor::links::LinkError;
use serde_json::json;
use shared::domain::{Platform, RecordingStatus, S3Location, TranscriptStatus};
use shared::fakes::Reply;
use shared::media::samples;
use support::*;

fn failures(r: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn url_job_ends_with_audio_stored_transcript_uploaded_and_one_pipeline_message() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let file = samples::mp4_audio(6 * 1024 * 1024);
    h.serve("/rec.mp4", 200, file.clone());
    let body = job(&meeting, "rec-1", json!({"url": h.url("/rec.mp4")}));

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    let key = format!("{}mp4", audio_prefix(&meeting.id, "rec-1"));
    assert!(h.object(&key).unwrap() == file);
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert_eq!(transcript.status, TranscriptStatus::Uploaded);
    let audio = S3Location {
        bucket: h.bucket.clone(),
        key,
    };
    assert_eq!(transcript.audio.as_ref(), Some(&audio));
    assert_eq!(h.recording("rec-1").status, RecordingStatus::Completed);
    let sent = h.pipeline.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].transcript_id, transcript.id);
    assert_eq!(
        (sent[0].meeting_id.as_str(), sent[0].room_id.as_str()),
        (meeting.id.as_str(), meeting.room_id.as_str())
    );
    assert_eq!(sent[0].audio.as_ref(), Some(&audio));
    assert!(sent[0].tracks.is_empty());
}

#[tokio::test]
async fn redelivered_job_downloads_nothing_again_and_sends_no_second_message() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve("/rec.webm", 200, samples::webm(&[1, 2], b"webm"));
    let body = job(&meeting, "rec-1", json!({"url": h.url("/rec.webm")}));

    handle(&h.deps, sqs_event(&[("m1", body.clone())])).await;
    let again = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&again).is_empty());
    assert_eq!(h.downloads.requests().len(), 1);
    assert_eq!(h.transcripts.all().len(), 1);
    assert_eq!(h.pipeline.sent().len(), 1);
    assert_eq!(
        h.keys(),
        vec![format!("{}webm", audio_prefix(&meeting.id, "rec-1"))]
    );
}

#[tokio::test]
async fn redelivery_after_a_crash_between_upload_and_transcript_reuses_the_stored_object() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    // The object was completed by an earlier attempt that died before updating the transcript.
    let key = format!("{}wav", audio_prefix(&meeting.id, "rec-1"));
    h.blobs.put(&h.bucket, &key, samples::wav());
    let body = job(&meeting, "rec-1", json!({"url": h.url("/never.wav")}));

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    assert!(h.downloads.requests().is_empty());
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert_eq!(transcript.status, TranscriptStatus::Uploaded);
    assert_eq!(transcript.audio.map(|a| a.key), Some(key));
    assert_eq!(h.pipeline.sent().len(), 1);
}

#[tokio::test]
async fn text_file_served_as_a_recording_ends_as_error_without_redelivery() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve(
        "/notes.txt",
        200,
        b"Meeting notes: nothing recorded.\n".repeat(1000),
    );
    let body = job(&meeting, "rec-1", json!({"url": h.url("/notes.txt")}));

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert_eq!(transcript.status, TranscriptStatus::Error);
    assert!(transcript.error_permanent);
    let reason = transcript.error.unwrap();
    assert!(
        reason.contains("not a media container (starts with text \"Meeting note"),
        "{reason}"
    );
    let recording = h.recording("rec-1");
    assert_eq!(recording.status, RecordingStatus::Failed);
    assert_eq!(recording.error.as_deref(), Some(reason.as_str()));
    assert!(h.keys().is_empty());
    assert!(h.pipeline.sent().is_empty());
}

#[tokio::test]
async fn video_without_audio_ends_as_error_and_leaves_no_object() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let file = samples::cat(&[
        samples::ftyp(),
        samples::mdat(6 * 1024 * 1024),
        samples::moov(&[samples::trak(b"vide", b"avc1")]),
    ]);
    h.serve("/video.mp4", 200, file);
    let body = job(&meeting, "rec-1", json!({"url": h.url("/video.mp4")}));

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert_eq!(
        transcript.error.as_deref(),
        Some("mp4 without an audio track")
    );
    assert!(h.keys().is_empty());
    assert!(h.blobs.uploads_in_progress().is_empty());
}

#[tokio::test]
async fn url_on_a_host_not_allowed_is_never_requested_and_recorded_as_failed() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let body = job(
        &meeting,
        "rec-1",
        json!({"url": "https://elsewhere.test/rec.mp4"}),
    );

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    assert!(h.downloads.requests().is_empty());
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert_eq!(transcript.status, TranscriptStatus::Error);
    assert!(transcript
        .error
        .unwrap()
        .contains("RECORDING_URL_ALLOWED_HOSTS"));
}

#[tokio::test]
async fn source_answering_404_is_permanent() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve("/gone.mp4", 404, Vec::new());
    let body = job(&meeting, "rec-1", json!({"url": h.url("/gone.mp4")}));

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert!(transcript.error.unwrap().contains("HTTP 404"));
}

#[tokio::test]
async fn unknown_meeting_is_acknowledged() {
    let h = Harness::new();
    // Never stored.
    let ghost = meeting_for_bench("ghost", Platform::Daily);
    let body = job(&ghost, "rec-1", json!({"url": h.url("/rec.mp4")}));

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    assert!(h.downloads.requests().is_empty());
    assert!(h.transcripts.all().is_empty());
}

#[tokio::test]
async fn batch_of_ten_with_three_transient_failures_reports_exactly_those_three() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve("/ok.ogg", 200, samples::ogg(&[b"OpusHead\x01\x02"]));
    h.serve("/busy.ogg", 503, Vec::new());
    let bodies: Vec<(String, String)> = (0..10)
        .map(|i| {
            let file = if [2, 5, 9].contains(&i) { "busy" } else { "ok" };
            let url = h.url(&format!("/{file}.ogg"));
            (
                format!("m{i}"),
                job(&meeting, &format!("rec-{i}"), json!({"url": url})),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = bodies
        .iter()
        .map(|(id, b)| (id.as_str(), b.clone()))
        .collect();

    let response = handle(&h.deps, sqs_event(&refs)).await;

    assert_eq!(failures(&response), vec!["m2", "m5", "m9"]);
    assert_eq!(h.pipeline.sent().len(), 7);
    // Transient failures leave the transcript to the redelivery, not in error.
    let busy = h.transcripts.for_recording("rec-5").unwrap();
    assert_eq!(busy.status, TranscriptStatus::Idle);
}

#[tokio::test]
async fn transient_failure_then_success_on_redelivery() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.downloads.then(&h.url("/flaky.mp3"), Reply::Status(500));
    h.downloads
        .then(&h.url("/flaky.mp3"), Reply::Body(samples::mp3(true).into()));
    let body = job(&meeting, "rec-1", json!({"url": h.url("/flaky.mp3")}));

    let first = handle(&h.deps, sqs_event(&[("m1", body.clone())])).await;
    let second = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert_eq!(failures(&first), vec!["m1"]);
    assert!(failures(&second).is_empty());
    assert_eq!(
        h.transcripts.for_recording("rec-1").unwrap().status,
        TranscriptStatus::Uploaded
    );
    assert_eq!(h.pipeline.sent().len(), 1);
}

#[tokio::test]
async fn unrecognised_message_is_reported_so_that_it_reaches_the_dlq() {
    let h = Harness::new();
    let response = handle(
        &h.deps,
        sqs_event(&[
            ("bad", "{\"hello\": 1}".into()),
            ("worse", "not json".into()),
        ]),
    )
    .await;
    assert_eq!(failures(&response), vec!["bad", "worse"]);
}

#[tokio::test]
async fn s3_test_event_is_acknowledged_and_does_nothing() {
    let h = Harness::new();
    let body =
        json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-01-15T10:00:00.000Z",
        "Bucket": "wb", "RequestId": "r", "HostId": "h"})
        .to_string();
    let response = handle(&h.deps, sqs_event(&[("t", body)])).await;
    assert!(failures(&response).is_empty());
    assert!(h.recordings.all().is_empty());
}

#[tokio::test]
async fn whereby_upload_in_another_bucket_is_copied_and_a_redelivery_changes_nothing() {
    let h = Harness::new();
    let meeting = h.meeting("a1b2-c3d4", Platform::Whereby);
    let whereby = unique("whereby");
    let key = "recordings/a1b2-c3d4-2026-01-15T10:30:00Z.mp4";
    let file = samples::mp4_audio(200_000);
    h.blobs.put(&whereby, key, file.clone());
    let body = s3_notification(&whereby, key, file.len() as u64);

    let first = handle(&h.deps, sqs_event(&[("n1", body.clone())])).await;
    let second = handle(&h.deps, sqs_event(&[("n1", body)])).await;

    assert!(failures(&first).is_empty() && failures(&second).is_empty());
    let recordings = h.recordings.all();
    assert_eq!(recordings.len(), 1);
    assert_eq!(recordings[0].meeting_id, meeting.id);
    let stored = format!("{}mp4", audio_prefix(&meeting.id, &recordings[0].id));
    assert!(h.object(&stored).unwrap() == file);
    let sent = h.pipeline.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].audio.as_ref().unwrap().key, stored);
}

#[tokio::test]
async fn whereby_key_that_does_not_match_is_acknowledged_not_retried() {
    let h = Harness::new();
    h.meeting("a1b2-c3d4", Platform::Whereby);
    let body = s3_notification("whereby", "uploads/holiday photo.jpg", 10);
    let response = handle(&h.deps, sqs_event(&[("n1", body)])).await;
    assert!(failures(&response).is_empty());
    assert!(h.recordings.all().is_empty());
}

#[tokio::test]
async fn daily_s3_key_in_our_bucket_is_referenced_in_place() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let key = "reflector/daily-room/1692124183028";
    h.blobs.put(&h.bucket, key, samples::webm(&[2], b"webm"));
    let body = job(
        &meeting,
        "rec-1",
        json!({"s3": {"bucket": h.bucket, "key": key}}),
    );

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    assert_eq!(h.keys(), vec![key.to_owned()]);
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert_eq!(
        transcript.audio,
        Some(S3Location {
            bucket: h.bucket.clone(),
            key: key.into()
        })
    );
    assert_eq!(h.pipeline.sent().len(), 1);
}

#[tokio::test]
async fn missing_source_object_is_permanent() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let body = job(
        &meeting,
        "rec-1",
        json!({"s3": {"bucket": h.bucket, "key": "nope"}}),
    );
    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;
    assert!(failures(&response).is_empty());
    let transcript = h.transcripts.for_recording("rec-1").unwrap();
    assert!(transcript.error.unwrap().contains("does not exist"));
}

#[tokio::test]
async fn daily_recording_is_fetched_through_its_access_link() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve("/signed/rec.mp4", 200, samples::mp4_audio(1000));
    h.links.0.lock().unwrap().insert(
        "daily-rec".into(),
        Ok(format!("{}?X-Amz-Signature=s", h.url("/signed/rec.mp4"))),
    );
    h.links.0.lock().unwrap().insert(
        "throttled".into(),
        Err(LinkError {
            message: "429".into(),
            transient: true,
        }),
    );
    let ok = job(&meeting, "rec-1", json!({"daily_recording": "daily-rec"}));
    let busy = job(&meeting, "rec-2", json!({"daily_recording": "throttled"}));
    let unknown = job(&meeting, "rec-3", json!({"daily_recording": "unknown"}));

    let response = handle(
        &h.deps,
        sqs_event(&[("a", ok), ("b", busy), ("c", unknown)]),
    )
    .await;

    assert_eq!(failures(&response), vec!["b"]);
    assert_eq!(
        h.transcripts.for_recording("rec-1").unwrap().status,
        TranscriptStatus::Uploaded
    );
    assert_eq!(
        h.transcripts.for_recording("rec-3").unwrap().status,
        TranscriptStatus::Error
    );
}

#[tokio::test]
async fn notification_for_audio_this_function_stored_is_ignored() {
    let h = Harness::new();
    h.meeting("room", Platform::Whereby);
    // Even a key that would parse as a Whereby recording: our own output is never reprocessed.
    let key = "recordings/meeting-1/room-2026-01-15T10:30:00Z.mp4";
    let body = s3_notification(&h.bucket, key, 10);
    let response = handle(&h.deps, sqs_event(&[("n1", body)])).await;
    assert!(failures(&response).is_empty());
    assert!(h.recordings.all().is_empty());
    assert!(h.pipeline.sent().is_empty());
}

#[tokio::test]
async fn pipeline_send_is_retried_before_giving_up() {
    let h = Harness::new();
    h.pipeline.fail_next(2);
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve("/a.wav", 200, samples::wav());
    let body = job(&meeting, "rec-1", json!({"url": h.url("/a.wav")}));

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    assert_eq!(h.pipeline.sent().len(), 1);
}

#[tokio::test]
async fn a_pipeline_send_that_keeps_failing_is_sent_by_the_redelivery() {
    let h = Harness::new();
    h.pipeline.fail_next(3);
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve("/a.wav", 200, samples::wav());
    let body = job(&meeting, "rec-1", json!({"url": h.url("/a.wav")}));

    let first = handle(&h.deps, sqs_event(&[("m1", body.clone())])).await;
    assert_eq!(failures(&first), vec!["m1".to_owned()]);
    assert!(h.pipeline.sent().is_empty());

    let again = handle(&h.deps, sqs_event(&[("m1", body)])).await;
    assert!(failures(&again).is_empty());
    assert_eq!(h.pipeline.sent().len(), 1);
}

mod recording_start {
    use std::time::Duration;

    use recording_processor::handler::{handle, start_retry_base};
    use shared::domain::{Platform, RecordingKind};
    use shared::messages::StartRecording;
    use shared::platform::daily::recording_instance_id;
    use shared::platform::PlatformError;
    use shared::store::MeetingStore;

    use super::failures;
    use crate::support::*;

    fn daily_error(status: u16) -> PlatformError {
        PlatformError::Api {
            platform: Platform::Daily,
            status,
            error: "fake".into(),
            info: None,
        }
    }

    fn start_body(msg: &StartRecording) -> String {
        serde_json::to_string(msg).unwrap()
    }

    fn first_start(h: &Harness) -> StartRecording {
        let m = h.meeting("daily-room", Platform::Daily);
        StartRecording {
            meeting_id: m.id,
            room_name: m.room_name,
            kind: RecordingKind::Cloud,
            attempt: 0,
        }
    }

    #[tokio::test]
    async fn a_start_daily_answers_503_is_sent_again_delayed_and_the_original_acknowledged() {
        let h = Harness::new();
        let msg = first_start(&h);
        h.starter.then(Err(daily_error(503)));
        let r = handle(&h.deps, sqs_event(&[("m1", start_body(&msg))])).await;
        assert!(failures(&r).is_empty(), "acknowledged: {r:?}");
        assert_eq!(
            h.recordings_queue.starts(),
            vec![(msg.next_attempt(), Duration::from_secs(5))]
        );
    }

    #[tokio::test]
    async fn retries_until_started_use_one_instance_id_and_mark_the_meeting() {
        let h = Harness::new();
        let mut msg = first_start(&h);
        h.starter.then(Err(daily_error(503)));
        h.starter.then(Err(daily_error(429)));
        for _ in 0..3 {
            let r = handle(&h.deps, sqs_event(&[("m", start_body(&msg))])).await;
            assert!(failures(&r).is_empty());
            if let Some((next, _)) = h.recordings_queue.starts().last() {
                msg = next.clone();
            }
        }
        let calls = h.starter.calls();
        assert_eq!(calls.len(), 3);
        let expected = recording_instance_id(&msg.meeting_id, RecordingKind::Cloud);
        assert!(calls.iter().all(|(room, kind, id)| room == &msg.room_name
            && *kind == RecordingKind::Cloud
            && *id == expected));
        let delays: Vec<Duration> = h
            .recordings_queue
            .starts()
            .iter()
            .map(|(_, d)| *d)
            .collect();
        assert_eq!(
            delays,
            vec![Duration::from_secs(5), Duration::from_secs(10)]
        );
        let meeting = h.meetings.get(&msg.meeting_id).await.unwrap().unwrap();
        assert!(meeting.recordings_started.contains(&RecordingKind::Cloud));

        // A duplicate after the start asks Daily nothing.
        let r = handle(&h.deps, sqs_event(&[("dup", start_body(&msg))])).await;
        assert!(failures(&r).is_empty());
        assert_eq!(h.starter.calls().len(), 3);
    }

    #[tokio::test]
    async fn a_failed_resend_is_a_batch_item_failure_so_sqs_redelivers_it() {
        let h = Harness::new();
        let msg = first_start(&h);
        h.starter.then(Err(daily_error(503)));
        h.recordings_queue.set_failing(true);
        let r = handle(&h.deps, sqs_event(&[("m1", start_body(&msg))])).await;
        assert_eq!(failures(&r), vec!["m1".to_owned()]);
    }

    #[tokio::test]
    async fn a_start_daily_refuses_is_acknowledged_and_not_retried() {
        let h = Harness::new();
        let msg = first_start(&h);
        h.starter.then(Err(daily_error(400)));
        let r = handle(&h.deps, sqs_event(&[("m1", start_body(&msg))])).await;
        assert!(failures(&r).is_empty());
        assert!(h.recordings_queue.starts().is_empty());
    }

    #[test]
    fn the_start_retry_base_defaults_to_five_seconds_and_rejects_nonsense() {
        assert_eq!(start_retry_base(None).unwrap(), Duration::from_secs(5));
        assert_eq!(start_retry_base(Some("1")).unwrap(), Duration::from_secs(1));
        for bad in ["0", "901", "soon", ""] {
            assert!(start_retry_base(Some(bad)).is_err(), "{bad:?}");
        }
    }
}

mod metrics {
    use super::*;
    use shared::metrics::{Detail, FailureKind, Metric};

    #[tokio::test]
    async fn an_upload_counts_its_bytes_and_one_pipeline_message_and_a_redelivery_adds_nothing() {
        let h = Harness::new();
        let meeting = h.meeting("daily-room", Platform::Daily);
        let file = samples::mp4_audio(1024 * 1024);
        h.serve("/rec.mp4", 200, file.clone());
        let body = job(&meeting, "rec-1", json!({"url": h.url("/rec.mp4")}));

        handle(&h.deps, sqs_event(&[("m1", body.clone())])).await;
        handle(&h.deps, sqs_event(&[("m1", body)])).await;

        let daily = |m| {
            h.metrics
                .sum_where(m, |k| k.platform == Some(Platform::Daily))
        };
        assert_eq!(daily(Metric::RecordingUploaded), 1.0);
        assert_eq!(daily(Metric::RecordingBytes), file.len() as f64);
        assert_eq!(daily(Metric::PipelineMessageSent), 1.0);
        let seconds = h
            .metrics
            .snapshot()
            .into_iter()
            .find(|(k, _)| k.metric == Metric::RecordingSeconds);
        assert_eq!(seconds.map(|(_, a)| a.samples), Some(1));
    }

    #[tokio::test]
    async fn failures_are_counted_as_permanent_or_transient() {
        let h = Harness::new();
        let meeting = h.meeting("daily-room", Platform::Daily);
        h.serve("/notes.txt", 200, b"not audio at all".repeat(10));
        h.serve("/busy.ogg", 503, Vec::new());
        let unusable = job(&meeting, "rec-1", json!({"url": h.url("/notes.txt")}));
        let busy = job(&meeting, "rec-2", json!({"url": h.url("/busy.ogg")}));

        handle(&h.deps, sqs_event(&[("m1", unusable), ("m2", busy)])).await;

        let failed = |kind| {
            h.metrics.sum_where(Metric::RecordingFailed, |k| {
                k.detail == Some(Detail::Failure(kind))
            })
        };
        assert_eq!(failed(FailureKind::Permanent), 1.0);
        assert_eq!(failed(FailureKind::Transient), 1.0);
        assert_eq!(
            h.metrics.sum_where(Metric::RecordingUploaded, |_| true),
            0.0
        );
    }
}

// ---- multitrack (issue 16) ----

fn track(session: &str, start_ms: u64) -> String {
    format!("dom/room/1700000000000-{session}-cam-audio-{start_ms}")
}

#[tokio::test]
async fn multitrack_tracks_are_copied_ordered_by_start_and_handed_off_with_their_sessions() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let late = samples::mp4_audio(64 * 1024);
    let early = samples::mp4_audio(32 * 1024);
    h.blobs
        .put(DAILY_BUCKET, &track("late", 9_000), late.clone());
    h.blobs
        .put(DAILY_BUCKET, &track("early", 1_000), early.clone());
    let tracks = json!({"tracks": [
        {"bucket": DAILY_BUCKET, "key": track("late", 9_000)},
        {"bucket": DAILY_BUCKET, "key": track("early", 1_000)},
    ]});
    let body = job(&meeting, "rec-mt", tracks);

    let response = handle(&h.deps, sqs_event(&[("m1", body.clone())])).await;
    assert!(failures(&response).is_empty());

    let sent = h.pipeline.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].audio, None);
    let sessions: Vec<&str> = sent[0]
        .tracks
        .iter()
        .map(|t| t.session_id.as_str())
        .collect();
    assert_eq!(sessions, ["early", "late"]);
    for (t, bytes) in sent[0].tracks.iter().zip([&early, &late]) {
        assert!(
            t.key
                .starts_with(&format!("recordings/{}/rec-mt/", meeting.id)),
            "{}",
            t.key
        );
        assert_eq!(h.object(&t.key).as_ref(), Some(bytes));
    }
    assert_eq!(h.recording("rec-mt").status, RecordingStatus::Completed);
    assert!(h.recording("rec-mt").source.is_multitrack());

    // Redelivered: nothing copied again, no second message.
    let keys = h.keys();
    let response = handle(&h.deps, sqs_event(&[("m2", body)])).await;
    assert!(failures(&response).is_empty());
    assert_eq!(h.pipeline.sent().len(), 1);
    assert_eq!(h.keys(), keys);
}

#[tokio::test]
async fn multitrack_tracks_not_yet_listed_by_daily_are_retried_later() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let body = job(&meeting, "rec-wait", json!({"daily_tracks": "daily-rec"}));

    let response = handle(&h.deps, sqs_event(&[("m1", body.clone())])).await;
    assert_eq!(
        failures(&response),
        ["m1"],
        "redelivered while Daily lists no track"
    );
    assert!(h.pipeline.sent().is_empty());

    h.blobs
        .put(DAILY_BUCKET, &track("s1", 5), samples::mp4_audio(16 * 1024));
    h.links
        .1
        .lock()
        .unwrap()
        .insert("daily-rec".into(), vec![track("s1", 5)]);
    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;
    assert!(failures(&response).is_empty());
    assert_eq!(h.pipeline.sent()[0].tracks.len(), 1);
}

#[tokio::test]
async fn a_cloud_recording_of_a_meeting_with_raw_tracks_started_is_stored_without_a_transcript() {
    let h = Harness::new();
    let mut meeting = meeting_for_bench("daily-room", Platform::Daily);
    meeting.recordings_started = [
        shared::domain::RecordingKind::Cloud,
        shared::domain::RecordingKind::RawTracks,
    ]
    .into();
    h.meetings.insert(meeting.clone());
    let file = samples::mp4_audio(128 * 1024);
    h.blobs
        .put(DAILY_BUCKET, "dom/room/1700000000000", file.clone());
    let body = job(
        &meeting,
        "rec-cloud",
        json!({"s3": {"bucket": DAILY_BUCKET, "key": "dom/room/1700000000000"}}),
    );

    let response = handle(&h.deps, sqs_event(&[("m1", body)])).await;

    assert!(failures(&response).is_empty());
    assert!(
        h.pipeline.sent().is_empty(),
        "only the multitrack one is transcribed"
    );
    assert_eq!(h.recording("rec-cloud").status, RecordingStatus::Stored);
    let stored = h.keys();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(h.object(&stored[0]), Some(file));
    assert!(h
        .transcripts
        .all()
        .iter()
        .all(|t| t.recording_id != "rec-cloud"));
}

fn deadline_in(secs: u64, margin: u64, min_record: u64) -> recording_processor::handler::Deadline {
    use std::time::{Duration, Instant};
    recording_processor::handler::Deadline {
        at: Instant::now() + Duration::from_secs(secs),
        margin: Duration::from_secs(margin),
        min_record: Duration::from_secs(min_record),
    }
}

#[tokio::test]
async fn records_are_not_started_without_the_minimum_time_left_and_are_redelivered_untouched() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    h.serve("/a.mp4", 200, samples::mp4_audio(64 * 1024));
    h.serve("/b.mp4", 200, samples::mp4_audio(64 * 1024));
    let a = job(&meeting, "rec-a", json!({"url": h.url("/a.mp4")}));
    let b = job(&meeting, "rec-b", json!({"url": h.url("/b.mp4")}));

    // 60 s left, 10 s kept back, a record needs 120 s: nothing may start.
    let response = recording_processor::handler::handle_until(
        &h.deps,
        sqs_event(&[("m1", a), ("m2", b)]),
        Some(deadline_in(60, 10, 120)),
    )
    .await;

    assert_eq!(failures(&response), ["m1", "m2"]);
    assert!(h.downloads.requests().is_empty());
    assert!(h.recordings.all().is_empty() && h.pipeline.sent().is_empty());
    // Left for later, not failed.
    assert_eq!(
        h.metrics
            .sum_where(shared::metrics::Metric::RecordingFailed, |_| true),
        0.0
    );
}

#[tokio::test]
async fn a_record_running_into_the_deadline_is_cut_off_and_the_finished_one_is_not_redelivered() {
    let h = Harness::new();
    let meeting = h.meeting("daily-room", Platform::Daily);
    let file = samples::mp4_audio(64 * 1024);
    h.serve("/done.mp4", 200, file.clone());
    // A source that sends its first 6 MiB (more than one part) and then nothing more.
    let stalled = samples::mp4_audio(16 * 1024 * 1024);
    h.downloads.then(
        &h.url("/stalls.mp4"),
        Reply::StallsAfter {
            sent: bytes::Bytes::from(stalled[..6 * 1024 * 1024].to_vec()),
            announced: stalled.len() as u64,
        },
    );
    let done = job(&meeting, "rec-done", json!({"url": h.url("/done.mp4")}));
    let stalls = job(&meeting, "rec-stalls", json!({"url": h.url("/stalls.mp4")}));

    // Cut off 5 s from now; any record may start before that.
    let response = recording_processor::handler::handle_until(
        &h.deps,
        sqs_event(&[("m1", done), ("m2", stalls)]),
        Some(deadline_in(6, 1, 0)),
    )
    .await;

    // Only the record cut off is redelivered; the finished one is acknowledged.
    assert_eq!(failures(&response), ["m2"]);
    let sent = h.pipeline.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recording_id, "rec-done");
    let key = format!("{}mp4", audio_prefix(&meeting.id, "rec-done"));
    assert!(h.object(&key).unwrap() == file);
    // The cut-off record left no object behind (that its S3 upload aborts when dropped is the
    // blob adapter's, tested against the emulator).
    assert_eq!(h.keys(), [key]);
}
