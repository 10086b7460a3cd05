//! The processor over in-memory ports ([`Harness`]), the one fake of its own port
//! ([`FakeLinks`]), and the messages and emulator helpers shared by the tests and the
//! benchmark.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{Duration as ChronoDuration, Utc};
use recording_processor::handler::{Deps, DEFAULT_CONCURRENCY};
use recording_processor::links::{LinkError, RecordingLinks};
use shared::blob::BlobSettings;
use shared::config::AllowedHost;
use shared::domain::*;
use shared::fakes::{
    MemoryBlobs, MemoryDownloads, MemoryMeetings, MemoryPipelineQueue, MemoryRecordingQueue,
    MemoryRecordingStarter, MemoryRecordings, MemoryTranscripts, Reply,
};
use shared::metrics::{Function, Metrics, Registry};

/// Access links by Daily recording id, and the audio track keys Daily lists (`tracks`).
#[derive(Default)]
pub struct FakeLinks(
    pub Mutex<HashMap<String, Result<String, LinkError>>>,
    pub Mutex<HashMap<String, Vec<String>>>,
);

#[async_trait]
impl RecordingLinks for FakeLinks {
    async fn audio_tracks(&self, recording_id: &str) -> Result<Vec<String>, LinkError> {
        Ok(self
            .1
            .lock()
            .unwrap()
            .get(recording_id)
            .cloned()
            .unwrap_or_default())
    }

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

/// The handler over in-memory ports: stores, pipeline, blob store and downloads from
/// `shared::fakes`, and links from [`FakeLinks`]. Files are served under [`FILES`], the one
/// allowed download origin.
pub struct Harness {
    pub deps: Deps,
    /// Daily's recording start, scripted.
    pub starter: Arc<MemoryRecordingStarter>,
    /// Where recording starts are sent again.
    pub recordings_queue: Arc<MemoryRecordingQueue>,
    pub bucket: String,
    pub blobs: Arc<MemoryBlobs>,
    pub downloads: Arc<MemoryDownloads>,
    pub meetings: Arc<MemoryMeetings>,
    pub recordings: Arc<MemoryRecordings>,
    pub transcripts: Arc<MemoryTranscripts>,
    pub pipeline: Arc<MemoryPipelineQueue>,
    pub links: Arc<FakeLinks>,
    /// What the handler counted.
    pub metrics: Arc<Registry>,
}

/// The bucket Daily records into, in [`Harness`].
pub const DAILY_BUCKET: &str = "daily-bucket";

/// The origin [`Harness`] serves files from.
pub const FILES: &str = "https://files.test";

impl Harness {
    pub fn new() -> Self {
        let bucket = unique("rec");
        let blobs = Arc::new(MemoryBlobs::new(BlobSettings {
            part_size: 5 * 1024 * 1024,
            ..BlobSettings::default()
        }));
        let downloads = Arc::new(MemoryDownloads::new(vec![AllowedHost::Exact(
            "files.test".into(),
        )]));
        let meetings = Arc::new(MemoryMeetings::default());
        let recordings = Arc::new(MemoryRecordings::default());
        let transcripts = Arc::new(MemoryTranscripts::default());
        let pipeline = Arc::new(MemoryPipelineQueue::default());
        let links = Arc::new(FakeLinks::default());
        let starter = Arc::new(MemoryRecordingStarter::default());
        let recordings_queue = Arc::new(MemoryRecordingQueue::default());
        let metrics = Arc::new(Registry::default());
        let deps = Deps {
            metrics: Metrics::new(Function::RecordingProcessor, metrics.clone()),
            meetings: meetings.clone(),
            recordings: recordings.clone(),
            transcripts: transcripts.clone(),
            pipeline: pipeline.clone(),
            links: links.clone(),
            blobs: blobs.clone(),
            downloader: downloads.clone(),
            bucket: bucket.clone(),
            daily_bucket: Some(DAILY_BUCKET.into()),
            concurrency: DEFAULT_CONCURRENCY,
            starter: starter.clone(),
            recordings_queue: recordings_queue.clone(),
            start_retry_base: std::time::Duration::from_secs(5),
        };
        Self {
            deps,
            starter,
            recordings_queue,
            bucket,
            blobs,
            downloads,
            meetings,
            recordings,
            transcripts,
            pipeline,
            links,
            metrics,
        }
    }

    /// A stored meeting.
    pub fn meeting(&self, room_name: &str, platform: Platform) -> Meeting {
        let m = meeting_for_bench(room_name, platform);
        self.meetings.insert(m.clone());
        m
    }

    /// The URL of `path` on the file server.
    pub fn url(&self, path: &str) -> String {
        format!("{FILES}{path}")
    }

    /// Serves `body` at `path` with `status` (a non-2xx status serves no body).
    pub fn serve(&self, path: &str, status: u16, body: Vec<u8>) {
        if status == 200 {
            self.downloads.serve(&self.url(path), body);
        } else {
            self.downloads.then(&self.url(path), Reply::Status(status));
        }
    }

    /// An object of our bucket.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.blobs
            .object(&self.bucket, key)
            .map(|o| o.bytes.to_vec())
    }

    /// Our bucket's keys.
    pub fn keys(&self) -> Vec<String> {
        self.blobs.keys(&self.bucket)
    }

    pub fn recording(&self, id: &str) -> Recording {
        self.recordings.get(id).expect("recording stored")
    }
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

/// A TCP proxy in front of the emulator that a test cuts, as if the emulator stopped: every
/// open connection is dropped and new ones are refused (accepted and closed) until
/// [`CutProxy::restore`]. [`CutProxy::cut_after`] cuts it by itself once that many request bytes
/// went upstream, so a test can stop the emulator in the middle of an upload.
pub struct CutProxy {
    pub url: String,
    state: Arc<ProxyState>,
}

struct ProxyState {
    up: std::sync::atomic::AtomicBool,
    /// Request bytes forwarded upstream since the last restore.
    forwarded: std::sync::atomic::AtomicU64,
    cut_after: std::sync::atomic::AtomicU64,
    /// Bumped on every cut: open connections watch it and close.
    cuts: tokio::sync::watch::Sender<u64>,
    /// Times the proxy was cut.
    cut_count: std::sync::atomic::AtomicU64,
}

impl ProxyState {
    fn cut(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.up.swap(false, SeqCst) {
            self.cut_count.fetch_add(1, SeqCst);
            self.cuts.send_modify(|n| *n += 1);
        }
    }
}

impl CutProxy {
    /// Starts the proxy to `upstream` (`http://host:port`), up.
    pub async fn start(upstream: &str) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        let target = url::Url::parse(upstream).unwrap();
        let target = format!(
            "{}:{}",
            target.host_str().unwrap(),
            target.port_or_known_default().unwrap()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(ProxyState {
            up: AtomicBool::new(true),
            forwarded: AtomicU64::new(0),
            cut_after: AtomicU64::new(u64::MAX),
            cuts: tokio::sync::watch::channel(0).0,
            cut_count: AtomicU64::new(0),
        });
        let accepting = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if !accepting.up.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                tokio::spawn(proxy_connection(client, target.clone(), accepting.clone()));
            }
        });
        Self { url, state }
    }

    /// Cuts the proxy once `bytes` more request bytes went upstream.
    pub fn cut_after(&self, bytes: u64) {
        use std::sync::atomic::Ordering::SeqCst;
        self.state.forwarded.store(0, SeqCst);
        self.state.cut_after.store(bytes, SeqCst);
    }

    /// Brings the proxy back (the emulator is up again); it no longer cuts by itself.
    pub fn restore(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.state.cut_after.store(u64::MAX, SeqCst);
        self.state.forwarded.store(0, SeqCst);
        self.state.up.store(true, SeqCst);
    }

    /// How many times the proxy was cut.
    pub fn cuts(&self) -> u64 {
        self.state
            .cut_count
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn proxy_connection(client: tokio::net::TcpStream, target: String, state: Arc<ProxyState>) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(upstream) = tokio::net::TcpStream::connect(&target).await else {
        return;
    };
    let mut cuts = state.cuts.subscribe();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    let requests = {
        let state = state.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let total = state.forwarded.fetch_add(n as u64, SeqCst) + n as u64;
                if total >= state.cut_after.load(SeqCst) {
                    state.cut();
                    return;
                }
                if up_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let responses = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match up_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either direction ending, or a cut, closes both sockets.
    tokio::select! {
        _ = requests => {}
        _ = responses => {}
        _ = cuts.changed() => {}
    }
}
