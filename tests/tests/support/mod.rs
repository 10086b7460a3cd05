//! What the webhook and recording black-box tests share: a local stack on a free port with its
//! own tables, queues and bucket, rooms and meetings made through the HTTP API, signed webhook
//! requests, and reading queues and stores to see the outcome.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use serde_json::{json, Value};
use shared::aws::AwsClients;
use shared::config::TableNames;
use shared::store::dynamo::DynamoStores;
use shared::webhook::fixtures::retarget;
use shared::webhook::fixtures::{signed_request, Scheme};
use shared::webhook::signature::{sign_daily, sign_whereby};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use reflector_tests::{clients_for, config_with, emulator_endpoint, unique_prefix};

/// `DAILY_WEBHOOK_SECRET` of every stack: base64, as Daily issues it. The seed scheme keys its
/// HMAC with this text's bytes, Daily's real scheme with the decoded bytes.
pub const DAILY_SECRET: &str = "ZTJlLWRhaWx5LXdlYmhvb2stc2VjcmV0";
pub const WHEREBY_SECRET: &str = "e2e-whereby-webhook-secret";

/// A room and its active meeting, as the HTTP API returned them.
#[derive(Debug, Clone)]
pub struct MeetingRef {
    pub room_id: String,
    pub room: String,
    pub id: String,
    /// The platform room name webhooks are addressed to.
    pub room_name: String,
}

pub struct Stack {
    pub running: local::Running,
    pub http: reqwest::Client,
    pub base: String,
    pub prefix: String,
    pub aws: AwsClients,
    pub stores: DynamoStores,
    pub queues: local::provision::Queues,
    pub recordings_bucket: String,
}

impl Stack {
    /// A stack named after `test` with both webhook secrets and `vars`. With `background` the
    /// SQS poller feeds the recording processor (failed jobs retried after `retry_delay`).
    pub async fn start(
        test: &str,
        vars: &[(&str, &str)],
        background: bool,
        retry_delay: Duration,
    ) -> Self {
        let endpoint = emulator_endpoint();
        let prefix = unique_prefix(test);
        let mut all = vec![
            ("DAILY_WEBHOOK_SECRET", DAILY_SECRET),
            ("WHEREBY_WEBHOOK_SECRET", WHEREBY_SECRET),
        ];
        all.extend_from_slice(vars);
        let config = config_with(&prefix, &endpoint, &all);
        let recordings_bucket = config.recordings_bucket.clone();
        let aws = clients_for(&endpoint).await;
        let running = local::start(
            config,
            aws.clone(),
            local::Options {
                resource_prefix: prefix.clone(),
                background,
                retry_delay,
                ..Default::default()
            },
        )
        .await
        .expect("local stack starts");
        let base = format!("http://{}", running.addr);
        let stores = DynamoStores::new(aws.dynamodb.clone(), &TableNames::with_prefix(&prefix));
        let queues = running.stack.queues.clone();
        Self {
            running,
            http: reqwest::Client::new(),
            base,
            prefix,
            aws,
            stores,
            queues,
            recordings_bucket,
        }
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// `POST path` with `headers` and the exact `body`; the status and the JSON answer (`Null`
    /// when the answer is not JSON).
    pub async fn post(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Creates room `room` and its meeting through the API (the mock platform, as no platform
    /// keys are configured).
    pub async fn meeting(&self, room: &str) -> MeetingRef {
        let (s, created) = self
            .post(
                "/v1/rooms",
                &[],
                json!({ "name": room }).to_string().as_bytes(),
            )
            .await;
        assert_eq!(s, 200, "create room: {created}");
        let (s, meeting) = self.meeting_json(room).await;
        assert_eq!(s, 200, "create meeting: {meeting}");
        MeetingRef {
            room_id: created["id"].as_str().unwrap().to_owned(),
            room: room.to_owned(),
            id: meeting["id"].as_str().unwrap().to_owned(),
            room_name: meeting["room_name"].as_str().unwrap().to_owned(),
        }
    }

    /// The room's active meeting as the API shows it.
    pub async fn meeting_json(&self, room: &str) -> (u16, Value) {
        self.post(&format!("/v1/rooms/{room}/meeting"), &[], b"")
            .await
    }

    /// `num_clients` of the room's meeting, as the API shows it.
    pub async fn num_clients(&self, meeting: &MeetingRef) -> i64 {
        let (s, m) = self.meeting_json(&meeting.room).await;
        assert_eq!(s, 200, "{m}");
        assert_eq!(m["id"], meeting.id.as_str(), "the same meeting is reused");
        m["num_clients"].as_i64().unwrap()
    }

    /// Daily's real scheme: `X-Webhook-Signature` over `timestamp.body`, signed now.
    pub async fn daily(&self, body: &[u8]) -> (u16, Value) {
        let headers = sign_daily(DAILY_SECRET, Utc::now().timestamp(), body).unwrap();
        self.post("/v1/daily_webhook", &headers, body).await
    }

    /// The seed's scheme: `X-Daily-Signature`, hex HMAC of the body, whose `ts` is set to now
    /// first (the seed signs its time only there; a stale one is refused).
    pub async fn daily_seed(&self, body: &[u8]) -> (u16, Value) {
        let (headers, body) = signed_request(
            Scheme::DailySeed,
            DAILY_SECRET,
            Utc::now().timestamp(),
            body,
        )
        .expect("the seed scheme takes any secret");
        self.post("/v1/daily_webhook", &headers, &body).await
    }

    /// Signed with the scheme that belongs to the fixture directory (`real` or `seed`).
    pub async fn daily_as(&self, format: &str, body: &[u8]) -> (u16, Value) {
        match format {
            "real" => self.daily(body).await,
            "seed" => self.daily_seed(body).await,
            other => panic!("unknown Daily format {other}"),
        }
    }

    /// Whereby, signed at `timestamp` (unix seconds).
    pub async fn whereby_at(&self, timestamp: i64, body: &[u8]) -> (u16, Value) {
        let headers = sign_whereby(WHEREBY_SECRET, timestamp, body);
        self.post("/v1/whereby", &headers, body).await
    }

    /// Every message on `queue_url` now, each received once (they stay invisible afterwards,
    /// for the queue's visibility timeout): receives until a receive that waited comes back
    /// empty.
    pub async fn drain(&self, queue_url: &str) -> Vec<Value> {
        let mut bodies = Vec::new();
        loop {
            let out = self
                .aws
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for m in messages {
                let body = m.body.unwrap_or_default();
                bodies.push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
            }
        }
    }

    /// Messages on the queue, visible or in flight (SQS's approximate counts; exact on moto).
    pub async fn queue_depth(&self, queue_url: &str) -> u64 {
        let out = self
            .aws
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("queue attributes");
        out.attributes
            .unwrap_or_default()
            .values()
            .map(|v| v.parse::<u64>().unwrap_or(0))
            .sum()
    }
}

/// A fixture from events/, addressed to `room` and, when given, with event id `id`.
pub fn fixture(path: &str, room: &str, id: Option<&str>) -> Vec<u8> {
    let full = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    retarget(&raw, Some(room), id).unwrap()
}

/// A fixture as JSON, to edit before sending.
pub fn fixture_json(path: &str, room: &str) -> Value {
    serde_json::from_slice(&fixture(path, room, None)).unwrap()
}

/// Bytes of a file under events/.
pub fn event_file(path: &str) -> Vec<u8> {
    let full = format!("{}/../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

pub const AUDIO: &str = "media/audio-faststart.m4a";

/// A file server with the m4a fixture at `/files/audio.m4a` and a text file at `/files/notes.txt`.
pub async fn file_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/files/audio.m4a"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "audio/mp4")
                .set_body_bytes(event_file(AUDIO)),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/files/notes.txt"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain")
                .set_body_string("Meeting notes: these are words, not audio.\n".repeat(20)),
        )
        .mount(&server)
        .await;
    server
}

/// The seed's recording.ready-to-download for `m`, downloading from `url`.
pub fn seed_ready(m: &MeetingRef, url: &str) -> Vec<u8> {
    let mut event = fixture_json("daily/seed/recording.ready-to-download.json", &m.room_name);
    event["data"]["recording"]["download_url"] = json!(url);
    event.to_string().into_bytes()
}

pub fn ok() -> (u16, Value) {
    (200, json!({"status": "ok"}))
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics naming `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not reached within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
