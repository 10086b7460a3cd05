//! The local stack uses exactly the queues and bucket its configuration names, creating those
//! that do not exist yet, and its health check names any configured resource that is missing.

mod support;

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use support::{eventually, file_server, ok, seed_ready, Stack};

/// How long the poller and processor get to settle a recording.
const SETTLE: Duration = Duration::from_secs(30);

/// A queue URL in moto's form (`http://<endpoint host>/<account>/<name>`) for a queue that
/// does not exist yet.
fn queue_url(name: &str) -> String {
    format!(
        "{}/123456789012/{name}",
        reflector_tests::emulator_endpoint()
    )
}

async fn queue_exists(s: &Stack, name: &str) -> bool {
    s.aws
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .is_ok()
}

#[tokio::test]
async fn a_daily_recording_goes_through_the_configured_queues_into_the_configured_bucket() {
    let names = reflector_tests::unique_prefix("configured");
    let recordings_url = queue_url(&format!("{names}-jobs"));
    let pipeline_url = queue_url(&format!("{names}-handoff"));
    let bucket = format!("{names}-audio");
    let files = file_server().await;
    let s = Stack::start(
        "cfg_e2e",
        &[
            ("RECORDINGS_QUEUE_URL", &recordings_url),
            ("PIPELINE_QUEUE_URL", &pipeline_url),
            ("RECORDINGS_BUCKET", &bucket),
            ("RECORDING_URL_ALLOWED_HOSTS", &files.uri()),
        ],
        true,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(s.queues.recordings, recordings_url);
    assert_eq!(s.queues.pipeline, pipeline_url);
    assert_eq!(s.recordings_bucket, bucket);
    // No queue under the stack's prefix: nothing the configuration did not name.
    for suffix in ["recordings", "recordings-dlq", "pipeline"] {
        let name = format!("{}-{suffix}", s.prefix);
        assert!(!queue_exists(&s, &name).await, "{name} was created");
    }
    // The configured recordings queue still redrives into a dead-letter queue named after it.
    let dlq = format!("{names}-jobs-dlq");
    assert!(queue_exists(&s, &dlq).await, "{dlq} is missing");
    let attributes = s
        .aws
        .sqs
        .get_queue_attributes()
        .queue_url(&recordings_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let policy = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .cloned()
        .unwrap_or_default();
    assert!(policy.contains(&format!(":{dlq}\"")), "{policy}");

    let m = s.meeting("cfg-e2e").await;
    let url = format!("{}/files/audio.m4a", files.uri());
    assert_eq!(s.daily_seed(&seed_ready(&m, &url)).await, ok());

    // The poller took the job off the configured queue, the processor stored the audio in the
    // configured bucket and handed it to the pipeline on the configured queue.
    let messages: Vec<Value> = eventually("a pipeline message", SETTLE, || async {
        let got = s.drain(&pipeline_url).await;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["meeting_id"], m.id.as_str());
    assert_eq!(message["audio"]["bucket"], bucket.as_str());
    let key = message["audio"]["key"].as_str().unwrap();
    s.aws
        .s3
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key}: {e:?}"));
    eventually("the recordings queue empties", SETTLE, || async {
        (s.queue_depth(&recordings_url).await == 0).then_some(())
    })
    .await;
    s.stop().await;
}

async fn health(s: &Stack) -> (u16, Value) {
    let response = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn health_is_503_naming_each_configured_resource_that_is_gone() {
    let names = reflector_tests::unique_prefix("gone");
    let pipeline_url = queue_url(&format!("{names}-handoff"));
    let bucket = format!("{names}-audio");
    let s = Stack::start(
        "cfg_health",
        &[
            ("PIPELINE_QUEUE_URL", &pipeline_url),
            ("RECORDINGS_BUCKET", &bucket),
        ],
        false,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(health(&s).await, (200, serde_json::json!({"status": "ok"})));

    let table = shared::config::TableNames::with_prefix(&s.prefix).meetings;
    s.aws
        .dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let (status, body) = health(&s).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("table {table}")), "{detail}");
    assert!(!detail.contains("unreachable"), "{detail}");

    // The runtime flags' config table is one of the stack's tables too.
    let config_table = shared::config::TableNames::with_prefix(&s.prefix).config;
    s.aws
        .dynamodb
        .delete_table()
        .table_name(&config_table)
        .send()
        .await
        .unwrap();
    s.aws
        .sqs
        .delete_queue()
        .queue_url(&pipeline_url)
        .send()
        .await
        .unwrap();
    s.aws
        .s3
        .delete_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let (status, body) = health(&s).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap();
    for gone in [
        format!("table {table}"),
        format!("table {config_table}"),
        format!("queue {pipeline_url}"),
        format!("bucket {bucket}"),
    ] {
        assert!(detail.contains(&gone), "{gone} not in {detail}");
    }
    // What is still there is not named.
    assert!(!detail.contains(&s.queues.recordings), "{detail}");
    s.stop().await;
}
