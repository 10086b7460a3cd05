//! Helpers for the black-box tests: the emulator the scripts started, a private emulator a test
//! may kill, and a local stack on a free port with its own uniquely named AWS resources.

pub mod platforms;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shared::aws::AwsClients;
use shared::config::{Config, TableNames};
use shared::domain::{Platform, RecordingTrigger, RecordingType, Room, RoomMode, RoomName};

/// The endpoint of the emulator `scripts/test` started.
pub fn emulator_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: run scripts/test, which starts the emulator")
    })
}

/// Clients for `endpoint`, with the emulator's dummy credentials.
pub async fn clients_for(endpoint: &str) -> AwsClients {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(8))
                .operation_attempt_timeout(Duration::from_secs(3))
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .load()
        .await;
    AwsClients::new(&sdk)
}

/// A unique lowercase prefix for one test's tables, queues and bucket.
pub fn unique_prefix(test: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{}-{}", test.replace('_', "-"), &id[..8])
}

/// Config for a stack whose resources all carry `prefix`, plus `vars`.
pub fn config_with(prefix: &str, endpoint: &str, vars: &[(&str, &str)]) -> Config {
    let mut map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    map.insert("AWS_ENDPOINT_URL".into(), endpoint.to_owned());
    map.entry("RECORDINGS_BUCKET".into())
        .or_insert_with(|| format!("{prefix}-recordings"));
    let mut config = Config::from_vars(&map).expect("test config is valid");
    config.tables = TableNames::with_prefix(prefix);
    config
}

/// A moto server of this test's own, on a free port, killed on drop.
pub struct PrivateEmulator {
    pub endpoint: String,
    child: Child,
}

impl PrivateEmulator {
    /// Starts the project's pinned moto (`.venv`, installed by the scripts) the way
    /// scripts/emulator does, through scripts/moto_server.py.
    pub fn start() -> Self {
        let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
        let wrapper = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/moto_server.py");
        assert!(
            std::path::Path::new(python).exists(),
            "{python} is missing: run scripts/test, which installs the emulator"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new(python)
            .args([wrapper, "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server on PATH: run scripts/test, which installs it into .venv");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { endpoint, child };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto_server did not start on port {port} within 30 s");
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateEmulator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Whereby room named `name` to store directly (a fresh id, no owner, not shared, created now):
/// tests that need more set those fields with `Room { .., ..room(name) }`.
pub fn room(name: &str) -> Room {
    Room {
        id: uuid::Uuid::new_v4().to_string(),
        name: RoomName::parse(name).expect("a valid room name"),
        user_id: None,
        created_at: chrono::Utc::now(),
        zulip_auto_post: false,
        zulip_stream: String::new(),
        zulip_topic: String::new(),
        is_locked: false,
        room_mode: RoomMode::Normal,
        recording_type: RecordingType::Cloud,
        recording_trigger: RecordingTrigger::Automatic2ndParticipant,
        is_shared: false,
        platform: Platform::Whereby,
        skip_consent: false,
    }
}
