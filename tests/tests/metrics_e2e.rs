//! Issue 20 acceptance, black-box: events driven through `reflector-local` over HTTP, and the
//! metrics they produce read back from its `GET /metrics` (the same samples that are EMF lines
//! in Lambda): webhook outcomes by reason, joins, meetings by platform, and a recording through
//! every stage to the pipeline.

mod support;

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use shared::webhook::signature::{sign_daily, sign_whereby};

use support::{eventually, file_server, fixture, ok, seed_ready, Stack, DAILY_SECRET};

/// The JSON summary of the stack's metrics.
async fn metrics(s: &Stack) -> Value {
    let response = s
        .http
        .get(format!("{}/metrics?format=json", s.base))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    response.json().await.expect("a JSON summary")
}

/// The sum of metric `name` over the series whose dimensions include every pair of `dims`.
fn sum(summary: &Value, name: &str, dims: &[(&str, &str)]) -> f64 {
    summary["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| dims.iter().all(|(k, v)| s["dimensions"][*k] == *v))
        .map(|s| s["sum"].as_f64().unwrap())
        .fold(0.0, |a, b| a + b)
}

#[tokio::test]
async fn webhook_outcomes_are_counted_by_platform_and_reason() {
    let s = Stack::start("metrics_webhooks", &[], false, Duration::from_secs(1)).await;
    let m = s.meeting("metrics-room").await;
    let join = fixture("daily/real/participant.joined.json", &m.room_name, None);

    // Accepted, then Daily's retry of the same event.
    assert_eq!(s.daily(&join).await, ok());
    assert_eq!(s.daily(&join).await, ok());
    // Unsigned, wrongly signed, signed an hour ago, signed but not an event.
    assert_eq!(s.post("/v1/daily_webhook", &[], &join).await.0, 401);
    let wrong = sign_daily("d3Jvbmctc2VjcmV0", Utc::now().timestamp(), &join).unwrap();
    assert_eq!(s.post("/v1/daily_webhook", &wrong, &join).await.0, 401);
    let stale = sign_daily(DAILY_SECRET, Utc::now().timestamp() - 3600, &join).unwrap();
    assert_eq!(s.post("/v1/daily_webhook", &stale, &join).await.0, 401);
    assert_eq!(s.daily(b"not json").await.0, 422);
    // A Whereby join with a wrong secret (a rotation gone wrong).
    let whereby = fixture("whereby/room.client.joined.json", &m.room_name, None);
    let rotated = sign_whereby("old-secret", Utc::now().timestamp(), &whereby);
    assert_eq!(s.post("/v1/whereby", &rotated, &whereby).await.0, 401);

    let summary = metrics(&s).await;
    let daily = [("Function", "daily-webhook"), ("Platform", "daily")];
    assert_eq!(sum(&summary, "WebhookAccepted", &daily), 1.0);
    assert_eq!(sum(&summary, "WebhookDuplicate", &daily), 1.0);
    assert_eq!(sum(&summary, "WebhookRejected", &daily), 4.0);
    for reason in ["missing", "invalid", "stale", "malformed"] {
        let with_reason = [daily[0], daily[1], ("Reason", reason)];
        assert_eq!(
            sum(&summary, "WebhookRejected", &with_reason),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(
        sum(
            &summary,
            "WebhookRejected",
            &[("Platform", "whereby"), ("Reason", "invalid")]
        ),
        1.0
    );
    assert_eq!(
        sum(&summary, "ParticipantJoined", &[("Platform", "daily")]),
        1.0
    );
    // The meeting was made on the mock platform (no platform keys).
    assert_eq!(
        sum(
            &summary,
            "MeetingCreated",
            &[("Function", "rooms-api"), ("Platform", "mock")]
        ),
        1.0
    );
    assert_eq!(summary["totals"]["WebhookRejected"], 5.0);

    // The same figures as Prometheus text.
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "reflector_webhook_rejected_total{function=\"daily-webhook\",platform=\"daily\",reason=\"stale\"} 1\n"
        ),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_metrics_format_is_400_naming_the_choices() {
    let s = Stack::start("metrics_format", &[], false, Duration::from_secs(1)).await;
    let response = s
        .http
        .get(format!("{}/metrics?format=xml", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("json or prometheus"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_recording_is_counted_through_every_stage_to_the_pipeline() {
    let files = file_server().await;
    let s = Stack::start(
        "metrics_recording",
        &[("RECORDING_URL_ALLOWED_HOSTS", &files.uri())],
        true,
        Duration::from_secs(1),
    )
    .await;
    let m = s.meeting("metrics-rec").await;
    let url = format!("{}/files/audio.m4a", files.uri());
    let ready = seed_ready(&m, &url);
    assert_eq!(s.daily_seed(&ready).await, ok());
    // A replay queues nothing more and counts nothing more.
    assert_eq!(s.daily_seed(&ready).await, ok());

    let summary = eventually(
        "the pipeline message is counted",
        Duration::from_secs(30),
        || async {
            let summary = metrics(&s).await;
            (sum(&summary, "PipelineMessageSent", &[]) >= 1.0).then_some(summary)
        },
    )
    .await;
    // The processor counts under the meeting's platform: the mock, as no platform keys are set.
    let processor = [("Function", "recording-processor"), ("Platform", "mock")];
    assert_eq!(
        sum(
            &summary,
            "RecordingQueued",
            &[("Function", "daily-webhook"), ("Platform", "daily")]
        ),
        1.0
    );
    assert_eq!(sum(&summary, "RecordingUploaded", &processor), 1.0);
    assert_eq!(sum(&summary, "PipelineMessageSent", &processor), 1.0);
    let audio_bytes = support::event_file(support::AUDIO).len() as f64;
    assert_eq!(sum(&summary, "RecordingBytes", &processor), audio_bytes);
    assert_eq!(sum(&summary, "RecordingFailed", &[]), 0.0);
    s.stop().await;
}
