//! In-memory fakes of the store traits (same contract as the DynamoDB stores: create-if-absent
//! by source / by recording, legal status transitions, pipeline claim once), plus a harness with
//! a real emulator bucket and a local file server.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use recording_processor::handler::{Deps, DEFAULT_CONCURRENCY};
use recording_processor::links::{LinkError, RecordingLinks};
use shared::blob::{BlobSettings, Blobs};
use shared::config::AllowedHost;
use shared::domain::*;
use shared::download::Downloader;
use shared::messages::PipelineMessage;
use shared::queue::{PipelineQueue, QueueError};
use shared::store::*;
use wiremock::MockServer;

fn unused<T>(what: &str) -> StoreResult<T> {
    Err(StoreError::Other(format!(
        "{what} is not used by the processor"
    )))
}

#[derive(Default)]
pub struct FakeMeetings(pub Mutex<Vec<Meeting>>);

#[async_trait]
impl MeetingStore for FakeMeetings {
    async fn claim_active(&self, _: &Meeting, _: DateTime<Utc>) -> StoreResult<Claim> {
        unused("claim_active")
    }
    async fn get(&self, id: &str) -> StoreResult<Option<Meeting>> {
        Ok(self.0.lock().unwrap().iter().find(|m| m.id == id).cloned())
    }
    async fn get_by_room_name(&self, room_name: &str) -> StoreResult<Option<Meeting>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m.room_name == room_name)
            .cloned())
    }
    async fn get_active_for_room(&self, _: &str, _: DateTime<Utc>) -> StoreResult<Option<Meeting>> {
        unused("get_active_for_room")
    }
    async fn list_active(&self) -> StoreResult<Vec<Meeting>> {
        unused("list_active")
    }
    async fn add_clients(&self, _: &str, _: i64) -> StoreResult<i64> {
        unused("add_clients")
    }
    async fn set_clients_if_newer(&self, _: &str, _: i64, _: DateTime<Utc>) -> StoreResult<bool> {
        unused("set_clients_if_newer")
    }
    async fn deactivate(&self, _: &str) -> StoreResult<()> {
        unused("deactivate")
    }
}

#[derive(Default)]
pub struct FakeRecordings(pub Mutex<HashMap<String, Recording>>);

impl FakeRecordings {
    pub fn all(&self) -> Vec<Recording> {
        self.0.lock().unwrap().values().cloned().collect()
    }
}

#[async_trait]
impl RecordingStore for FakeRecordings {
    async fn create_if_absent(&self, recording: &Recording) -> StoreResult<(Recording, bool)> {
        let mut all = self.0.lock().unwrap();
        if let Some(r) = all
            .values()
            .find(|r| r.source == recording.source || r.id == recording.id)
        {
            return Ok((r.clone(), false));
        }
        all.insert(recording.id.clone(), recording.clone());
        Ok((recording.clone(), true))
    }
    async fn get(&self, id: &str) -> StoreResult<Option<Recording>> {
        Ok(self.0.lock().unwrap().get(id).cloned())
    }
    async fn get_by_source(&self, source: &RecordingSource) -> StoreResult<Option<Recording>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .find(|r| &r.source == source)
            .cloned())
    }
    async fn set_status(
        &self,
        id: &str,
        status: RecordingStatus,
        error: Option<&str>,
    ) -> StoreResult<Recording> {
        let mut all = self.0.lock().unwrap();
        let r = all.get_mut(id).ok_or(StoreError::NotFound {
            entity: "recording",
            id: id.into(),
        })?;
        if !r.status.can_become(status) {
            return Err(StoreError::Conflict {
                entity: "recording",
                id: id.into(),
                condition: format!("illegal status transition {:?} -> {status:?}", r.status),
            });
        }
        r.status = status;
        r.error = error.map(str::to_owned);
        r.updated_at = Utc::now();
        Ok(r.clone())
    }
    async fn list_by_status(&self, _: RecordingStatus, _: u32) -> StoreResult<Vec<Recording>> {
        unused("list_by_status")
    }
    async fn claim_requeue(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: std::time::Duration,
    ) -> StoreResult<bool> {
        unused("claim_requeue")
    }
}

#[derive(Default)]
pub struct FakeTranscripts(pub Mutex<HashMap<String, Transcript>>);

impl FakeTranscripts {
    pub fn all(&self) -> Vec<Transcript> {
        self.0.lock().unwrap().values().cloned().collect()
    }
    pub fn for_recording(&self, recording_id: &str) -> Option<Transcript> {
        self.all()
            .into_iter()
            .find(|t| t.recording_id == recording_id)
    }
}

#[async_trait]
impl TranscriptStore for FakeTranscripts {
    async fn create_if_absent(&self, transcript: &Transcript) -> StoreResult<(Transcript, bool)> {
        let mut all = self.0.lock().unwrap();
        if let Some(t) = all
            .values()
            .find(|t| t.recording_id == transcript.recording_id)
        {
            return Ok((t.clone(), false));
        }
        all.insert(transcript.id.clone(), transcript.clone());
        Ok((transcript.clone(), true))
    }
    async fn get(&self, id: &str) -> StoreResult<Option<Transcript>> {
        Ok(self.0.lock().unwrap().get(id).cloned())
    }
    async fn get_by_recording(&self, recording_id: &str) -> StoreResult<Option<Transcript>> {
        Ok(self.for_recording(recording_id))
    }
    async fn set_status(
        &self,
        id: &str,
        status: TranscriptStatus,
        error: Option<(&str, bool)>,
        audio: Option<&S3Location>,
    ) -> StoreResult<Transcript> {
        let mut all = self.0.lock().unwrap();
        let t = all.get_mut(id).ok_or(StoreError::NotFound {
            entity: "transcript",
            id: id.into(),
        })?;
        t.status = status;
        t.error = error.map(|(e, _)| e.to_owned());
        t.error_permanent = error.is_some_and(|(_, p)| p);
        if let Some(a) = audio {
            t.audio = Some(a.clone());
        }
        Ok(t.clone())
    }
    async fn mark_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let mut all = self.0.lock().unwrap();
        let t = all.get_mut(id).ok_or(StoreError::NotFound {
            entity: "transcript",
            id: id.into(),
        })?;
        if t.pipeline_sent_at.is_some() {
            return Ok(false);
        }
        t.pipeline_sent_at = Some(at);
        Ok(true)
    }

    async fn release_pipeline_sent(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        if let Some(t) = self.0.lock().unwrap().get_mut(id) {
            if t.pipeline_sent_at == Some(at) {
                t.pipeline_sent_at = None;
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct FakePipeline(pub Mutex<Vec<PipelineMessage>>);

#[async_trait]
impl PipelineQueue for FakePipeline {
    async fn send(&self, message: &PipelineMessage) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// Access links by Daily recording id.
#[derive(Default)]
pub struct FakeLinks(pub Mutex<HashMap<String, Result<String, LinkError>>>);

#[async_trait]
impl RecordingLinks for FakeLinks {
    async fn access_link(&self, recording_id: &str) -> Result<String, LinkError> {
        self.0
            .lock()
            .unwrap()
            .get(recording_id)
            .cloned()
            .unwrap_or(Err(LinkError {
                message: format!("recording {recording_id} not found"),
                transient: false,
            }))
    }
}

pub struct Harness {
    pub deps: Deps,
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub server: MockServer,
    pub meetings: Arc<FakeMeetings>,
    pub recordings: Arc<FakeRecordings>,
    pub transcripts: Arc<FakeTranscripts>,
    pub pipeline: Arc<FakePipeline>,
    pub links: Arc<FakeLinks>,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn s3_client() -> aws_sdk_s3::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run scripts/test, which starts the emulator"
    );
    let sdk = shared::aws::load_sdk_config().await;
    shared::aws::AwsClients::new(&sdk).s3
}

pub async fn bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    let name = unique(prefix);
    s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

impl Harness {
    pub async fn new() -> Self {
        let s3 = s3_client().await;
        let bucket = bucket(&s3, "rec").await;
        let server = MockServer::start().await;
        let url = url::Url::parse(&server.uri()).unwrap();
        let allowed = vec![AllowedHost::HttpOrigin {
            host: url.host_str().unwrap().into(),
            port: url.port().unwrap(),
        }];
        let meetings = Arc::new(FakeMeetings::default());
        let recordings = Arc::new(FakeRecordings::default());
        let transcripts = Arc::new(FakeTranscripts::default());
        let pipeline = Arc::new(FakePipeline::default());
        let links = Arc::new(FakeLinks::default());
        let deps = Deps {
            meetings: meetings.clone(),
            recordings: recordings.clone(),
            transcripts: transcripts.clone(),
            pipeline: pipeline.clone(),
            links: links.clone(),
            blobs: Blobs::new(
                &s3,
                BlobSettings {
                    part_size: 5 * 1024 * 1024,
                    ..BlobSettings::default()
                },
            ),
            downloader: Downloader::new(allowed).unwrap(),
            bucket: bucket.clone(),
            concurrency: DEFAULT_CONCURRENCY,
        };
        Self {
            deps,
            s3,
            bucket,
            server,
            meetings,
            recordings,
            transcripts,
            pipeline,
            links,
        }
    }

    pub fn meeting(&self, room_name: &str, platform: Platform) -> Meeting {
        let m = meeting_for_bench(room_name, platform);
        self.meetings.0.lock().unwrap().push(m.clone());
        m
    }

    pub async fn object(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(_) => None,
        }
    }

    pub async fn keys(&self) -> Vec<String> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .unwrap();
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

pub fn sqs_event(bodies: &[(&str, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .map(|(id, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some((*id).to_owned());
            m.body = Some(body.clone());
            m
        })
        .collect();
    event
}

pub fn job(meeting: &Meeting, recording_id: &str, source: serde_json::Value) -> String {
    serde_json::json!({
        "meeting_id": meeting.id,
        "recording_id": recording_id,
        "room_name": meeting.room_name,
        "source": source,
    })
    .to_string()
}

/// An S3 ObjectCreated notification as S3 puts it on SQS (key URL-encoded).
pub fn s3_notification(bucket: &str, key: &str, size: u64) -> String {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b if b.is_ascii_alphanumeric() || b"-_./".contains(&b) => char::from(b).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-15T10:31:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:x"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "recordings",
          "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
          "object": {"key": encoded, "size": size, "eTag": "x", "sequencer": "1"}}
    }]})
    .to_string()
}

/// A meeting that is not stored anywhere yet.
pub fn meeting_for_bench(room_name: &str, platform: Platform) -> Meeting {
    let now = Utc::now();
    Meeting {
        recordings_started: Default::default(),
        id: unique("meeting"),
        room_id: unique("room"),
        room_name: room_name.into(),
        room_url: format!("https://example.test/{room_name}"),
        host_room_url: String::new(),
        start_date: now,
        end_date: now + ChronoDuration::hours(8),
        user_id: None,
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        num_clients: 0,
        is_active: true,
        platform,
        extra_data: serde_json::Value::Null,
    }
}
