//! The processor as deployed: built by `recording_processor::build` over the DynamoDB stores,
//! S3 and SQS of the real emulator, with recordings served by a local file server.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use recording_processor::handler::{audio_prefix, handle, Deps};
use serde_json::json;
use shared::aws::AwsClients;
use shared::config::{AllowedHost, Config};
use shared::domain::{Meeting, Platform, RecordingStatus, TranscriptStatus};
use shared::media::samples;
use shared::store::dynamo::DynamoStores;
use shared::store::{MeetingStore, RecordingStore, TranscriptStore};
use support::{job, meeting_for_bench, s3_notification, sqs_event, unique};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Env {
    aws: AwsClients,
    deps: Deps,
    stores: DynamoStores,
    bucket: String,
    pipeline_url: String,
    server: MockServer,
}

impl Env {
    async fn new() -> Self {
        Self::through(None).await
    }

    /// An environment whose processor reaches the emulator through `proxy` (when given); the
    /// test's own clients go to the emulator directly.
    async fn through(proxy: Option<&str>) -> Self {
        let aws = shared::testing::emulator().await;
        let tables = shared::testing::fresh_tables(&aws).await;
        let bucket = unique("rec");
        aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let pipeline_url = aws
            .sqs
            .create_queue()
            .queue_name(unique("pipeline"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let server = MockServer::start().await;
        let port = url::Url::parse(&server.uri()).unwrap().port().unwrap();
        let mut config = Config::from_vars(&HashMap::new()).unwrap();
        config.tables = tables.clone();
        config.recordings_bucket = bucket.clone();
        config.pipeline_queue_url = Some(pipeline_url.clone());
        // Recording starts are re-sent there; these tests send none.
        config.recordings_queue_url = Some(pipeline_url.clone());
        config.recording_url_allowed_hosts = vec![AllowedHost::HttpOrigin {
            host: "127.0.0.1".into(),
            port,
        }];
        let deps_aws = match proxy {
            None => aws.clone(),
            Some(url) => {
                // Set on each client: the SDK prefers AWS_ENDPOINT_URL to the shared config's.
                let sdk = shared::testing::emulator_sdk_config().await;
                AwsClients {
                    dynamodb: aws_sdk_dynamodb::Client::from_conf(
                        aws_sdk_dynamodb::config::Builder::from(&sdk)
                            .endpoint_url(url)
                            .build(),
                    ),
                    s3: aws_sdk_s3::Client::from_conf(
                        aws_sdk_s3::config::Builder::from(&sdk)
                            .endpoint_url(url)
                            .force_path_style(true)
                            .build(),
                    ),
                    sqs: aws_sdk_sqs::Client::from_conf(
                        aws_sdk_sqs::config::Builder::from(&sdk)
                            .endpoint_url(url)
                            .build(),
                    ),
                }
            }
        };
        let deps = recording_processor::build(&config, &deps_aws).unwrap();
        let stores = DynamoStores::new(aws.dynamodb.clone(), &tables);
        Self {
            aws,
            deps,
            stores,
            bucket,
            pipeline_url,
            server,
        }
    }

    async fn meeting(&self, room_name: &str, platform: Platform) -> Meeting {
        let m = meeting_for_bench(room_name, platform);
        self.stores
            .meetings
            .claim_active(&m, Utc::now())
            .await
            .unwrap();
        m
    }

    async fn serve(&self, at: &str, status: u16, body: Vec<u8>) {
        Mock::given(path(at))
            .respond_with(ResponseTemplate::new(status).set_body_bytes(body))
            .mount(&self.server)
            .await;
    }

    /// The size of the object stored under `key` in our bucket (it must exist).
    async fn stored_size(&self, key: &str) -> Option<i64> {
        let head = self.aws.s3.head_object().bucket(&self.bucket).key(key);
        head.send().await.unwrap().content_length()
    }

    /// The multipart uploads of our bucket still in progress (neither completed nor aborted).
    async fn open_uploads(&self) -> Vec<String> {
        let listed = self
            .aws
            .s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        listed
            .uploads()
            .iter()
            .map(|u| u.key().unwrap_or_default().to_owned())
            .collect()
    }

    /// Every message on the pipeline queue (received and deleted).
    async fn pipeline_messages(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let got = self
                .aws
                .sqs
                .receive_message()
                .queue_url(&self.pipeline_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = got.messages();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.aws
                    .sqs
                    .delete_message()
                    .queue_url(&self.pipeline_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test]
async fn daily_seed_job_ends_with_audio_uploaded_transcript_and_one_pipeline_message() {
    let env = Env::new().await;
    let meeting = env.meeting("daily-seed-room", Platform::Daily).await;
    let file = samples::mp4_audio(100_000);
    env.serve("/recording.mp4", 200, file.clone()).await;
    let body = job(
        &meeting,
        "rec-1",
        json!({"url": format!("{}/recording.mp4", env.server.uri())}),
    );

    let first = handle(&env.deps, sqs_event(&[("m1", body.clone())])).await;
    let again = handle(&env.deps, sqs_event(&[("m1", body)])).await;

    assert!(first.batch_item_failures.is_empty() && again.batch_item_failures.is_empty());
    let key = format!("{}mp4", audio_prefix(&meeting.id, "rec-1"));
    assert_eq!(env.stored_size(&key).await, Some(file.len() as i64));
    let transcript = env
        .stores
        .transcripts
        .get_by_recording("rec-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(transcript.status, TranscriptStatus::Uploaded);
    let recording = env.stores.recordings.get("rec-1").await.unwrap().unwrap();
    assert_eq!(recording.status, RecordingStatus::Completed);
    assert_eq!(
        env.pipeline_messages().await,
        vec![json!({
            "transcript_id": transcript.id, "recording_id": "rec-1", "meeting_id": meeting.id,
            "room_id": meeting.room_id, "audio": {"bucket": env.bucket, "key": key}, "tracks": [],
        })]
    );
}

#[tokio::test]
async fn daily_s3_key_job_copies_from_the_daily_bucket() {
    let env = Env::new().await;
    let meeting = env.meeting("daily-real-room", Platform::Daily).await;
    let daily_bucket = unique("daily");
    env.aws
        .s3
        .create_bucket()
        .bucket(&daily_bucket)
        .send()
        .await
        .unwrap();
    let key = "reflector/daily-real-room/1692124183028";
    let file = samples::webm(&[1, 2], b"webm");
    env.aws
        .s3
        .put_object()
        .bucket(&daily_bucket)
        .key(key)
        .body(file.clone().into())
        .send()
        .await
        .unwrap();
    let body = job(
        &meeting,
        "rec-2",
        json!({"s3": {"bucket": daily_bucket, "key": key}}),
    );

    let response = handle(&env.deps, sqs_event(&[("m1", body)])).await;

    assert!(response.batch_item_failures.is_empty());
    let stored = format!("{}webm", audio_prefix(&meeting.id, "rec-2"));
    let got = env
        .aws
        .s3
        .get_object()
        .bucket(&env.bucket)
        .key(&stored)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        file
    );
    let transcript = env
        .stores
        .transcripts
        .get_by_recording("rec-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(transcript.status, TranscriptStatus::Uploaded);
    assert_eq!(env.pipeline_messages().await.len(), 1);
}

#[tokio::test]
async fn text_file_as_recording_ends_in_error_with_no_pipeline_message() {
    let env = Env::new().await;
    let meeting = env.meeting("daily-text-room", Platform::Daily).await;
    env.serve("/notes.txt", 200, b"plain text, not audio\n".to_vec())
        .await;
    let body = job(
        &meeting,
        "rec-3",
        json!({"url": format!("{}/notes.txt", env.server.uri())}),
    );

    let response = handle(&env.deps, sqs_event(&[("m1", body)])).await;

    assert!(response.batch_item_failures.is_empty());
    let transcript = env
        .stores
        .transcripts
        .get_by_recording("rec-3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(transcript.status, TranscriptStatus::Error);
    assert!(transcript.error_permanent);
    assert!(transcript
        .error
        .unwrap()
        .starts_with("not a media container"));
    let recording = env.stores.recordings.get("rec-3").await.unwrap().unwrap();
    assert_eq!(recording.status, RecordingStatus::Failed);
    assert!(env.pipeline_messages().await.is_empty());
}

#[tokio::test]
async fn whereby_notification_finds_the_meeting_by_room_name_once() {
    let env = Env::new().await;
    let meeting = env.meeting("f0e1d2c3-b4a5", Platform::Whereby).await;
    let whereby = unique("whereby");
    env.aws
        .s3
        .create_bucket()
        .bucket(&whereby)
        .send()
        .await
        .unwrap();
    let key = "f0e1d2c3-b4a5-2026-01-15T10:30:00Z.mp4";
    let file = samples::mp4_audio(5000);
    env.aws
        .s3
        .put_object()
        .bucket(&whereby)
        .key(key)
        .body(file.clone().into())
        .send()
        .await
        .unwrap();
    let body = s3_notification(&whereby, key, file.len() as u64);

    handle(&env.deps, sqs_event(&[("n1", body.clone())])).await;
    let again = handle(&env.deps, sqs_event(&[("n1", body)])).await;

    assert!(again.batch_item_failures.is_empty());
    let source = shared::domain::RecordingSource::S3 {
        bucket: whereby.clone(),
        key: key.into(),
    };
    let recording = env
        .stores
        .recordings
        .get_by_source(&source)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recording.meeting_id, meeting.id);
    let messages = env.pipeline_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["recording_id"], json!(recording.id));
}

/// Polls `queue` the way the Lambda event source mapping does: receive a batch, hand it to the
/// handler, delete what it did not report as failed, make the failures visible again.
async fn poll_once(env: &Env, queue: &str) -> usize {
    let got = env
        .aws
        .sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let mut event = SqsEvent::default();
    let mut receipts = HashMap::new();
    for m in got.messages() {
        let mut msg = SqsMessage::default();
        msg.message_id = m.message_id().map(str::to_owned);
        msg.body = m.body().map(str::to_owned);
        receipts.insert(
            m.message_id().unwrap().to_owned(),
            m.receipt_handle().unwrap().to_owned(),
        );
        event.records.push(msg);
    }
    let n = event.records.len();
    let response = handle(&env.deps, event).await;
    for (id, receipt) in receipts {
        let failed = response
            .batch_item_failures
            .iter()
            .any(|f| f.item_identifier == id);
        let sqs = &env.aws.sqs;
        if failed {
            sqs.change_message_visibility()
                .queue_url(queue)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        } else {
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(receipt)
                .send()
                .await
                .unwrap();
        }
    }
    n
}

#[tokio::test]
async fn poison_message_reaches_the_dlq_after_the_redrive_count() {
    let env = Env::new().await;
    let sqs = &env.aws.sqs;
    let dlq = sqs
        .create_queue()
        .queue_name(unique("dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue = sqs
        .create_queue()
        .queue_name(unique("recordings"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    sqs.send_message()
        .queue_url(&queue)
        .message_body("this is not a recording job")
        .send()
        .await
        .unwrap();

    let mut deliveries = 0;
    for _ in 0..10 {
        deliveries += poll_once(&env, &queue).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(deliveries, 3);
    let dead = sqs.receive_message().queue_url(&dlq).send().await.unwrap();
    let bodies: Vec<_> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, vec!["this is not a recording job"]);
}

fn failed_ids(r: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// Fault: the emulator stops in the middle of a recording's multipart upload (a proxy in front
/// of it is cut after 4 MiB of request bytes, inside the first 8 MiB part) and comes back. The
/// record is reported for redelivery; the upload it could not abort (S3 was unreachable) is
/// aborted by the redelivery, which completes the recording once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_stopping_mid_upload_is_redelivered_completes_once_and_leaves_no_upload() {
    let proxy = support::CutProxy::start(&shared::testing::endpoint_url()).await;
    let env = Env::through(Some(&proxy.url)).await;
    let meeting = env.meeting("fault-room", Platform::Daily).await;
    let file = samples::mp4_audio(20 * 1024 * 1024);
    env.serve("/big.mp4", 200, file.clone()).await;
    let body = job(
        &meeting,
        "rec-fault",
        json!({"url": format!("{}/big.mp4", env.server.uri())}),
    );

    proxy.cut_after(4 * 1024 * 1024);
    let first = handle(&env.deps, sqs_event(&[("m1", body.clone())])).await;
    assert_eq!(failed_ids(&first), ["m1"]);
    assert_eq!(proxy.cuts(), 1);
    let key = format!("{}mp4", audio_prefix(&meeting.id, "rec-fault"));
    // S3 was gone when the upload failed, so it could not be aborted then.
    assert_eq!(env.open_uploads().await, std::slice::from_ref(&key));

    proxy.restore();
    let redelivered = handle(&env.deps, sqs_event(&[("m1", body.clone())])).await;
    let duplicate = handle(&env.deps, sqs_event(&[("m1", body)])).await;

    assert!(redelivered.batch_item_failures.is_empty());
    assert!(duplicate.batch_item_failures.is_empty());
    assert_eq!(env.open_uploads().await, Vec::<String>::new());
    assert_eq!(env.stored_size(&key).await, Some(file.len() as i64));
    let messages = env.pipeline_messages().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["recording_id"], "rec-fault");
}

/// Fault: two deliveries of one recording job run at the same time (a duplicate message). Each
/// record reported for redelivery is delivered again; in the end one object, no upload left
/// open and one pipeline message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_of_one_job_at_the_same_time_send_one_pipeline_message() {
    let env = Env::new().await;
    let meeting = env.meeting("twice-room", Platform::Daily).await;
    let file = samples::mp4_audio(20 * 1024 * 1024);
    env.serve("/twice.mp4", 200, file.clone()).await;
    let body = job(
        &meeting,
        "rec-twice",
        json!({"url": format!("{}/twice.mp4", env.server.uri())}),
    );

    let (a, b) = tokio::join!(
        handle(&env.deps, sqs_event(&[("m1", body.clone())])),
        handle(&env.deps, sqs_event(&[("m2", body.clone())])),
    );
    // SQS redelivers what was reported (at most twice here: a lost race finds the work done).
    let mut pending: Vec<String> = failed_ids(&a).into_iter().chain(failed_ids(&b)).collect();
    let redeliveries = pending.len();
    for _ in 0..2 {
        if pending.is_empty() {
            break;
        }
        let again = handle(
            &env.deps,
            sqs_event(
                &pending
                    .iter()
                    .map(|id| (id.as_str(), body.clone()))
                    .collect::<Vec<_>>(),
            ),
        )
        .await;
        pending = failed_ids(&again);
    }
    assert!(pending.is_empty(), "still failing: {pending:?}");
    let messages = env.pipeline_messages().await;
    assert_eq!(
        messages.len(),
        1,
        "{messages:?} after {redeliveries} redeliveries"
    );
    assert_eq!(env.open_uploads().await, Vec::<String>::new());
    let key = format!("{}mp4", audio_prefix(&meeting.id, "rec-twice"));
    assert_eq!(env.stored_size(&key).await, Some(file.len() as i64));
}
